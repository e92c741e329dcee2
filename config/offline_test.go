package config

import (
	"strings"
	"testing"

	"github.com/streamd/streamd/model"
)

// offlineGood is good with an offline champion trained on amount, channel and tx_count_1m
// (model/testdata/gen.py), an online challenger that stacks its margin, and explanations.
const offlineGood = good + `
features:
  - {name: amount, from: amount}
  - {name: channel, from: channel, encode: onehot}
  - {name: tx_count_1m, window: {kind: sliding, size: 1m}, agg: count}
  - {name: nightly_margin, margin_of: nightly}
labels: {field: label}
models:
  champion: nightly
  versions_topic: fraud-versions
  list:
    - {name: nightly, offline: {file: ../model/testdata/fraud_v1.json, explain_top_k: 3}}
    - {name: online, learner: {kind: ftrl_logistic}}
`

func offlineConfig(t *testing.T, edit func(string) string) (*Config, error) {
	t.Helper()
	y := strings.Replace(offlineGood, "    channel: {type: string, values: [pos, online]}", "    channel: {type: string, values: [pos, online]}\n    label: {type: number}", 1)
	y = strings.Replace(y, "  clean: tx-clean", "  clean: tx-clean\n  predictions: tx-scores", 1)
	return parseWithEnv([]byte(edit(y)), noEnv)
}

// TestOfflineModelConfig: an offline model compiles into the model operator with its file, top-k,
// the versions topic and the stacked margin.
func TestOfflineModelConfig(t *testing.T) {
	c, err := offlineConfig(t, func(s string) string { return s })
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Pipeline()
	if err != nil {
		t.Fatal(err)
	}
	var op *model.Operator
	for _, o := range p.Operators {
		if m, ok := o.(*model.Operator); ok {
			op = m
		}
	}
	if op == nil || op.VersionsTopic() != "fraud-versions" {
		t.Fatalf("model operator %v", op)
	}
	v := op.Registry().View()
	if v.Models[0].Name != "nightly" || v.Models[0].Kind != "gbdt/xgboost" || !v.Models[0].Champion {
		t.Errorf("models %+v", v.Models)
	}
	if got := op.CompactedTopics("fraud"); len(got) != 2 || got[1] != "fraud-versions" {
		t.Errorf("compacted topics %v", got)
	}
	// A very low minimum explains every prediction of a regression model.
	c2, err := offlineConfig(t, func(s string) string {
		return strings.Replace(s, "explain_top_k: 3", "explain_top_k: 3, explain_min_score: -1e300", 1)
	})
	if err != nil || c2.Models.List[0].Offline.ExplainMinScore != -1e300 {
		t.Errorf("explain_min_score -1e300: %v, %v", err, c2)
	}
	c.Models.VersionsTopic = ""
	if c.versionsTopic() != "fraud-model-versions" {
		t.Errorf("default versions topic %q", c.versionsTopic())
	}
}

// TestOfflineModelConfigErrors: every mistake names its key.
func TestOfflineModelConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, from, to, key, msg string
	}{
		{"missing feature", "  - {name: tx_count_1m, window: {kind: sliding, size: 1m}, agg: count}\n", "", "models.list[0].offline.file", "tx_count_1m"},
		{"hashed is not a model input", "{name: channel, from: channel, encode: onehot}", "{name: channel, from: channel, encode: hash, buckets: 8}", "models.list[0].offline.file", "channel"},
		{"no file", "offline: {file: ../model/testdata/fraud_v1.json, explain_top_k: 3}", "offline: {explain_top_k: 3}", "models.list[0].offline.file", "required"},
		{"file missing", "fraud_v1.json", "nope.json", "models.list[0].offline.file", "nope.json"},
		{"not a model", "../model/testdata/fraud_v1.json", "../model/testdata/gen.py", "models.list[0].offline.file", "unknown model format"},
		{"min score NaN", "explain_top_k: 3", "explain_top_k: 3, explain_min_score: .nan", "models.list[0].offline.explain_min_score", "want a number"},
		{"top-k too large", "explain_top_k: 3", "explain_top_k: 1000", "models.list[0].offline.explain_top_k", "want 0 (off) to 100"},
		{"learner and offline", "offline: {file:", "learner: {kind: ftrl_logistic}, offline: {file:", "models.list[0]", "not both"},
		{"margin of an online learner", "margin_of: nightly", "margin_of: online", "features[3].margin_of", "online learner"},
		{"margin of nothing", "margin_of: nightly", "margin_of: daily", "features[3].margin_of", "not in models.list"},
		{"margin with from", "margin_of: nightly}", "margin_of: nightly, from: amount}", "features[3].margin_of", "no from"},
		{"bad versions topic", "versions_topic: fraud-versions", "versions_topic: fraud versions", "models.versions_topic", "letters"},
		{"unknown offline key", "explain_top_k: 3", "explain_topk: 3", "models.list[0].offline.explain_topk", "unknown key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := offlineConfig(t, func(s string) string {
				if !strings.Contains(s, tc.from) {
					t.Fatalf("%q is not in the config", tc.from)
				}
				return strings.Replace(s, tc.from, tc.to, 1)
			})
			if err == nil {
				t.Fatal("accepted a bad config")
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.key+":") && !strings.Contains(msg, tc.key+" (line") {
				t.Errorf("error does not name %s:\n%s", tc.key, msg)
			}
			if !strings.Contains(msg, tc.msg) {
				t.Errorf("error does not say %q:\n%s", tc.msg, msg)
			}
		})
	}
}

// TestOfflineExampleIsValid keeps the walkthrough's pipeline (examples/offline, with the model it
// trained) in step with the code.
func TestOfflineExampleIsValid(t *testing.T) {
	t.Setenv("NIGHTLY_MODEL", "../examples/offline/nightly.json")
	c, err := Load("../examples/offline/pipeline.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Pipeline(); err != nil {
		t.Fatal(err)
	}
}
