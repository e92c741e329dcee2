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
	brokersBefore, hadBrokers := os.LookupEnv("KAFKA_BROKERS")
	var out, errOut bytes.Buffer
	code := run([]string{"demo", "-duration", "4s", "-admin", "127.0.0.1:0", "-rate", "1000/s"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("demo: exit %d\n%s\n%s", code, out.String(), errOut.String())
	}
	// Tests run the demo beside others that dial KAFKA_BROKERS: it must not repoint it.
	if after, has := os.LookupEnv("KAFKA_BROKERS"); after != brokersBefore || has != hadBrokers {
		t.Errorf("the demo changed KAFKA_BROKERS from %q to %q", brokersBefore, after)
	}
	for _, want := range []string{"broker        127.0.0.1:", "per second (last 1 s)", "total since start", "read back (read_committed, matched by lineage headers): each of the",
		"warm   cold drifts", "predictions published cold (\"warm\":false, no class)", "drift detections (adwin on the champion's loss"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestValidateMessages: what `streamd validate` says about configs a newcomer gets wrong. Each
// case checks a message the first-hour review found wrong or unhelpful.
func TestValidateMessages(t *testing.T) {
	const base = `app: x
kafka: {brokers: [h:1]}
source: {topic: t, key: k, event_id: id, event_time: {field: ts}, fields: {amount: {type: number}, label: {type: number}}}
outputs: {dead_letters: d, predictions: p}
features:
  - {name: a, from: amount}
labels: {field: label}
`
	for _, tc := range []struct {
		name, yaml string
		want, not  []string
	}{
		{"the problem count is the number of problems listed",
			strings.Replace(base, "[h:1]}", "[h:1], comit_interval: 1s}", 1) + "models:\n  list: [{name: m, learner: {kind: ftrl_logistic, alpha: -1, beta: -1}}]\n",
			[]string{"config: 3 problems:\n  kafka.comit_interval", "\n  models.list[0].learner.alpha: -1: want > 0 and finite", "\n  models.list[0].learner.beta"}, nil},
		{"median is an aggregation, and an unknown one reports nothing else",
			base + "models:\n  list: [{name: m, learner: {kind: ftrl_logistic}}]\nwindows:\n  - {name: w, kind: tumbling, size: 1m, aggs: [count, {median: amount}, {mode: amount}], output: o}\n",
			[]string{`windows[0].aggs[2] (line 11): "mode" is not an aggregation`},
			[]string{"two aggregations", "problems"}},
		{"a tab in the indentation is named",
			"app: x\nkafka:\n\tbrokers: [a]\n",
			[]string{"line 3: a tab in the indentation; YAML indents with spaces only"}, []string{"cannot start any token"}},
		{"a syntax error names the line where its block starts, 1-based",
			"app: x\nkafka:\n  brokers: [a]\n   bad: 1\nsource: {topic: t}\n",
			[]string{"line 3: did not find expected key"}, []string{"yaml: line"}},
		{"a learner's error names its key, without a Go prefix",
			base + "models:\n  list: [{name: m, learner: {kind: linear, learning_rate: -1}}]\n",
			[]string{"models.list[0].learner.learning_rate: -1: want > 0 and finite"}, []string{"online:", "invalid spec"}},
		{"a dim smaller than the features is refused, not raised silently",
			base + "models:\n  list: [{name: m, learner: {kind: ftrl_logistic, dim: 1}}]\n",
			[]string{"m has dim 1, but the features make 2 inputs"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "p.yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			var out, errOut bytes.Buffer
			if code := run([]string{"validate", "-config", path}, &out, &errOut); code != 1 {
				t.Fatalf("exit %d, want 1; output %s%s", code, out.String(), errOut.String())
			}
			msg := errOut.String()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("lacks %q:\n%s", w, msg)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(msg, n) {
					t.Errorf("says %q:\n%s", n, msg)
				}
			}
		})
	}
}
