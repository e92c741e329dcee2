package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateCommand(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("app: x\nkafka: {brokers: [h:1], comit_interval: 1s}\nsource: {topic: t}\noutputs: {dead_letters: d}\n"), 0o644)
	var out, errOut bytes.Buffer
	if code := run([]string{"validate", "-config", "../../configs/fraud-pipeline.yaml"}, &out, &errOut); code != 0 {
		t.Fatalf("the example config: exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "ok") {
		t.Errorf("output: %s", out.String())
	}
	out.Reset()
	errOut.Reset()
	if code := run([]string{"validate", "-config", bad}, &out, &errOut); code != 1 {
		t.Fatalf("bad config: exit %d, want 1", code)
	}
	for _, want := range []string{"kafka.comit_interval", `did you mean "commit_interval"`, "source.event_time.field"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("error output lacks %q:\n%s", want, errOut.String())
		}
	}
	if code := run([]string{"validate"}, &out, &errOut); code != 2 {
		t.Errorf("no -config: exit %d, want 2", code)
	}
	if code := run([]string{"frobnicate"}, &out, &errOut); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
}

func TestVersionCommand(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"version"}, &out, &out); code != 0 || !strings.HasPrefix(out.String(), "streamd ") {
		t.Fatalf("exit %d: %s", code, out.String())
	}
}

// TestDemo runs `streamd demo` briefly: records must flow end to end and be accounted for.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo for a few seconds")
	}
	var out, errOut bytes.Buffer
	code := run([]string{"demo", "-duration", "4s", "-admin", "127.0.0.1:0", "-rate", "1000/s"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("demo: exit %d\n%s\n%s", code, out.String(), errOut.String())
	}
	for _, want := range []string{"broker        127.0.0.1:", "clean/s", "every generated record was accounted for exactly once"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
}
