package main

import (
	"context"
	"os"
	"strings"
	"testing"
)

func TestEmbedExample(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), "", f); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(f.Name())
	out := string(data)
	for _, want := range []string{`alert        {"card_id":"c2","amount":4200.00}`, `"amount":1500.75`, "operator_rejected", "unknown currency", "wrong_type"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
