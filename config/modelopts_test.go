package config

import (
	"strings"
	"testing"
)

// TestModelOptions: the per-model and drift options that shape how models behave in the pipeline
// (min_examples, ...) are accepted when right and refused, under their key, when wrong.
func TestModelOptions(t *testing.T) {
	models := func(entry string) string {
		return "features:\n  - {name: amount, from: amount}\nmodels:\n  list:\n    - " + entry + "\n"
	}
	for _, tc := range []struct {
		name, yaml string
		want       string // "" for a config that compiles
	}{
		{"min_examples", models("{name: m, min_examples: 20, learner: {kind: ftrl_logistic}}"), ""},
		{"top_k", "features:\n  - {name: amount, from: amount}\nmodels:\n  list:\n    - {name: m, top_k: 2, learner: {kind: softmax, classes: 3}}\n", ""},
		{"top_k negative", models("{name: m, top_k: -1, learner: {kind: softmax, classes: 3}}"), "models.list[0].top_k: -1"},
		{"top_k on a binary model", models("{name: m, top_k: 2, learner: {kind: ftrl_logistic}}"), "top k bounds a multiclass model"},
		{"drift", models("{name: m, learner: {kind: ftrl_logistic}}") + "  drift: {detector: adwin, signal: error, direction: both, delta: 0.0001, topic: drift-events}\n", ""},
		{"drift page_hinkley", models("{name: m, learner: {kind: ftrl_logistic}}") + "  drift: {detector: page_hinkley, direction: down, threshold: 20}\n", ""},
		{"drift signal", models("{name: m, learner: {kind: ftrl_logistic}}") + "  drift: {detector: adwin, signal: accuracy}\n", "models.drift.signal: \"accuracy\": use loss or error"},
		{"drift direction", models("{name: m, learner: {kind: ftrl_logistic}}") + "  drift: {detector: adwin, direction: sideways}\n", "models.drift.direction"},
		{"drift delta", models("{name: m, learner: {kind: ftrl_logistic}}") + "  drift: {detector: adwin, delta: 2}\n", "models.drift.delta"},
		{"drift threshold on adwin", models("{name: m, learner: {kind: ftrl_logistic}}") + "  drift: {detector: adwin, threshold: 5}\n", "models.drift.threshold"},
		{"drift topic without detector", models("{name: m, learner: {kind: ftrl_logistic}}") + "  drift: {topic: d}\n", "models.drift.topic"},
		{"class_weights balanced", models("{name: m, class_weights: balanced, learner: {kind: ftrl_logistic}}"), ""},
		{"class_weights by index", models("{name: m, class_weights: {1: 20}, learner: {kind: ftrl_logistic}}"), ""},
		{"class_weights unknown class", models("{name: m, class_weights: {fraud: 20}, learner: {kind: ftrl_logistic}}"), "models.list[0].class_weights: fraud name no class"},
		{"class_weights bad weight", models("{name: m, class_weights: {1: -3}, learner: {kind: ftrl_logistic}}"), "the weight of 1 is \"-3\": want a finite number above 0"},
		{"class_weights word", models("{name: m, class_weights: even, learner: {kind: ftrl_logistic}}"), "write balanced"},
		{"class_weights on a tree", models("{name: m, class_weights: balanced, learner: {kind: hoeffding_tree}}"), "does not learn weighted examples"},
		{"min_examples negative", models("{name: m, min_examples: -1, learner: {kind: ftrl_logistic}}"), "models.list[0].min_examples: -1: want 0 (the default, 100) or more"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := kindOutcome(t, tc.yaml)
			if tc.want == "" {
				if got != "ok" {
					t.Fatalf("refused: %s", got)
				}
				return
			}
			if !strings.Contains(got, tc.want) {
				t.Fatalf("got %s\nwant %q", got, tc.want)
			}
		})
	}
}
