package config

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/streamd/streamd/window"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// kindCases are configs with every window and learner kind, right and wrong. Their messages are in
// testdata/kinds.golden: the golden file was written by the code before window kinds and learners
// became registries, so that the move is shown to keep what users read. One case changed, on
// purpose: a learner key of another kind ("learner key of another kind") used to be accepted and
// ignored, and is now an unknown key, since each kind decodes into its own spec.
var kindCases = []struct{ name, yaml string }{
	{"window unknown kind", "windows:\n  - {name: w, kind: rolling, size: 1m, advance: 10s, resolution: 1s, aggs: [count], output: o}\n"},
	{"window no kind", "windows:\n  - {name: w, size: 1m, aggs: [count], output: o}\n"},
	{"tumbling ok", "windows:\n  - {name: w, kind: tumbling, size: 1m, aggs: [count], output: o}\n"},
	{"tumbling wrong keys", "windows:\n  - {name: w, kind: tumbling, gap: 1s, advance: 10s, resolution: 1s, aggs: [count], output: o}\n"},
	{"hopping ok", "windows:\n  - {name: w, kind: hopping, size: 1m, advance: 10s, aggs: [count], output: o}\n"},
	{"hopping advance not dividing", "windows:\n  - {name: w, kind: hopping, size: 1m, advance: 7s, aggs: [count], output: o}\n"},
	{"hopping no advance", "windows:\n  - {name: w, kind: hopping, size: 1m, gap: 1s, aggs: [count], output: o}\n"},
	{"hopping advance above size", "windows:\n  - {name: w, kind: hopping, size: 10s, advance: 1m, aggs: [count], output: o}\n"},
	{"sliding ok", "windows:\n  - {name: w, kind: sliding, size: 1m, resolution: 1s, aggs: [count], output: o}\n"},
	{"sliding wrong keys", "windows:\n  - {name: w, kind: sliding, gap: 1s, advance: 1s, aggs: [count], output: o}\n"},
	{"session ok", "windows:\n  - {name: w, kind: session, gap: 10s, aggs: [count], output: o}\n"},
	{"session wrong keys", "windows:\n  - {name: w, kind: session, size: 1m, advance: 1s, resolution: 1s, aggs: [count], output: o}\n"},
	{"learner ftrl ok", learner("{kind: ftrl_logistic, alpha: 0.1, beta: 1.0, l1: 1.0, l2: 1.0}")},
	{"learner ftrl bad", learner("{kind: ftrl_logistic, alpha: -1, beta: .nan, l1: .inf, dim: 99999999}")},
	{"learner ftrl typo", learner("{kind: ftrl_logistic, alpah: 0.1}")},
	{"learner linear alias", learner("{kind: linear, learning_rate: 0.5, l2: 0.01}")},
	{"learner linear bad", learner("{kind: adagrad_linear, learning_rate: -1, l2: .nan}")},
	{"learner softmax no classes", learner("{kind: softmax}")},
	{"learner softmax ok", learner("{kind: softmax, classes: 3, learning_rate: 0.2}")},
	{"learner softmax too big", learner("{kind: softmax, classes: 1000, dim: 1048576}")},
	{"learner kmeans ok", learner("{kind: kmeans, k: 4, decay: 0.99}")},
	{"learner kmeans bad", learner("{kind: kmeans, k: 2000, decay: 1.5}")},
	{"learner tree ok", learner("{kind: hoeffding_tree, grace_period: 100, delta: 0.01, tau: 0.1, max_depth: 10, classes: 3}")},
	{"learner tree bad", learner("{kind: hoeffding_tree, grace_period: -1, delta: 2, tau: 3, max_depth: 100, classes: 1}")},
	{"learner unknown kind", learner("{kind: nope}")},
	{"learner no kind", learner("{dim: 16}")},
	{"learner not a mapping", learner("ftrl_logistic")},
	{"learner wrong value type", learner("{kind: hoeffding_tree, grace_period: lots}")},
	{"learner key of another kind", learner("{kind: ftrl_logistic, k: 3, learning_rate: 0.5}")},
	{"learner dim below features", learner("{kind: ftrl_logistic, dim: 1}")},
	{"learner linear target scaling none", learner("{kind: linear, target_scaling: none}")},
	{"learner linear target scaling bad", learner("{kind: adagrad_linear, target_scaling: log}")},
	{"learner hst ok", learner("{kind: hst, trees: 5, height: 6, window_size: 100, seed: 3, low: -1, high: 1}")},
	{"learner tree regressor ok", learner("{kind: hoeffding_tree_regressor, grace_period: 100, leaf_prediction: mean, model_selector_decay: 0.9, min_samples_split: 10, split_digits: 2, learning_rate: 0.05}")},
	{"learner tree regressor bad", learner("{kind: hoeffding_tree_regressor, grace_period: 0, leaf_prediction: median, model_selector_decay: 1.5, split_digits: 99, learning_rate: -1}")},
	{"learner arf classifier ok", learner("{kind: arf_classifier, models: 5, max_features: 1, lambda: 3, seed: 9, drift_delta: 0.002, warning_delta: 0.02, grace_period: 100, delta: 0.001, tau: 0.1, max_depth: 10, classes: 3}")},
	{"learner arf classifier bad", learner("{kind: arf_classifier, models: 1000, lambda: -1, drift_delta: 2, classes: 1, learning_rate: 0.1}")},
	{"learner arf regressor ok", learner("{kind: arf_regressor, models: 3, aggregation: mean, leaf_prediction: model, seed: 2, split_digits: -1}")},
	{"learner arf regressor bad", learner("{kind: arf_regressor, aggregation: max, warning_delta: 1, leaf_prediction: median, classes: 2}")},
	{"learner hst bad", learner("{kind: half_space_trees, trees: 0, height: 40, window_size: 0, low: 2, high: 1}")},
}

func learner(spec string) string {
	return "features:\n  - {name: amount, from: amount}\nmodels:\n  list:\n    - {name: m, learner: " + spec + "}\n"
}

// kindConfig adds a case's sections to the good config (and, for models, a predictions topic).
func kindConfig(extra string) string {
	cfg := good + extra
	if strings.Contains(extra, "models:") {
		cfg = add("  predictions: p\n", "outputs:")(cfg)
	}
	return cfg
}

func kindOutcome(t *testing.T, yaml string) string {
	c, err := parseWithEnv([]byte(kindConfig(yaml)), noEnv)
	if err != nil {
		return err.Error()
	}
	if _, err := c.Pipeline(); err != nil {
		return "compile: " + err.Error()
	}
	return "ok"
}

// TestKindMessages compares what every window and learner kind says about right and wrong configs
// with testdata/kinds.golden (go test -run TestKindMessages -update rewrites it).
func TestKindMessages(t *testing.T) {
	var b strings.Builder
	for _, tc := range kindCases {
		b.WriteString("# " + tc.name + "\n" + kindOutcome(t, tc.yaml) + "\n\n")
	}
	path := filepath.Join("testdata", "kinds.golden")
	if *updateGolden {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.String(); got != string(want) {
		gotCases, wantCases := strings.Split(got, "\n\n"), strings.Split(string(want), "\n\n")
		for i := range max(len(gotCases), len(wantCases)) {
			var g, w string
			if i < len(gotCases) {
				g = gotCases[i]
			}
			if i < len(wantCases) {
				w = wantCases[i]
			}
			if g != w {
				t.Errorf("got:\n%s\nwant:\n%s", g, w)
			}
		}
	}
}

// TestWindowKindsMatch: the config knows what every window kind reads, and only window kinds.
func TestWindowKindsMatch(t *testing.T) {
	var cfg []string
	for k := range windowKinds {
		cfg = append(cfg, k)
	}
	sort.Strings(cfg)
	names := slices.Clone(window.KindNames())
	sort.Strings(names)
	if !reflect.DeepEqual(cfg, names) {
		t.Errorf("config window kinds %v, window kinds %v", cfg, names)
	}
}
