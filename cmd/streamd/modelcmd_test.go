package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

// TestModelCommand: push, list and rollback against an in-process broker with the walkthrough's
// pipeline, and the usage errors.
func TestModelCommand(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	model, _ := filepath.Abs("../../examples/offline/nightly.json")
	t.Setenv("KAFKA_BROKERS", c.ListenAddrs()[0])
	t.Setenv("NIGHTLY_MODEL", model)
	cfg := "../../examples/offline/pipeline.yaml"
	for _, tc := range []struct {
		args     []string
		code     int
		out, err string
	}{
		{[]string{"model"}, 2, "", "Usage"},
		{[]string{"model", "frob"}, 2, "", `unknown subcommand "frob"`},
		{[]string{"model", "push", "-name", "nightly", "-file", model}, 2, "", "-config FILE is required"},
		{[]string{"model", "push", "-config", cfg, "-name", "nightly"}, 2, "", "-file MODEL_FILE is required"},
		{[]string{"model", "rollback", "-config", cfg, "-name", "nightly"}, 2, "", "-version V"},
		{[]string{"model", "push", "-config", "../../configs/fraud-pipeline.yaml", "-name", "nightly", "-file", model}, 1, "", "no offline model"},
		{[]string{"model", "push", "-config", cfg, "-name", "nightly", "-file", "../../model/testdata/fraud_v1.json"}, 1, "", "amount, tx_count_1m"},
		{[]string{"model", "push", "-config", cfg, "-name", "nightly", "-file", model}, 0, "nightly: version 1 published", ""},
		{[]string{"model", "push", "-config", cfg, "-name", "nightly", "-file", model}, 0, "nightly: version 2 published", ""},
		{[]string{"model", "rollback", "-config", cfg, "-name", "nightly", "-version", "1"}, 0, "version 1 is live", ""},
		{[]string{"model", "rollback", "-config", cfg, "-name", "nightly", "-version", "9"}, 1, "", "no version 9"},
		{[]string{"model", "list", "-config", cfg}, 0, "nightly: live 1, versions [1 2]", ""},
	} {
		var out, errOut bytes.Buffer
		code := run(tc.args, &out, &errOut)
		if code != tc.code || !strings.Contains(out.String(), tc.out) || !strings.Contains(errOut.String(), tc.err) {
			t.Errorf("streamd %s: exit %d, out %q, err %q; want %d, %q, %q", strings.Join(tc.args, " "), code, out.String(), errOut.String(), tc.code, tc.out, tc.err)
		}
	}
}
