package model

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/online"
	"github.com/streamd/streamd/stream"
)

// binaryPipeline scores the events of genExamples (labels in the events) with models, on an amount
// (log1p, standardize) and a one-hot channel; edit adjusts the spec before New.
func binaryPipeline(t testing.TB, models []ModelSpec, edit func(*Spec)) *stream.Pipeline {
	t.Helper()
	f := sourceFormat()
	if err := f.Init(); err != nil {
		t.Fatal(err)
	}
	spec := Spec{
		Features: []FeatureSpec{
			{Name: "amount_log", Field: "amount", Window: -1, Transforms: []Transform{{Kind: "log1p"}, {Kind: "standardize"}}},
			{Name: "channel", Field: "channel", Window: -1, Encoding: OneHot, Values: []string{"pos", "online", "atm"}},
		},
		Models: models, Output: "predictions", SnapshotEvery: 200, Labels: LabelSpec{Field: "label"},
	}
	if edit != nil {
		edit(&spec)
	}
	op, err := New(spec, f, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &stream.Pipeline{Name: "app", Source: stream.Source{Topic: "tx", Format: f}, DeadLetterTopic: "dlq",
		Operators: []stream.Operator{op}}
}

func labelled(exs []example) []*kgo.Record {
	recs := make([]*kgo.Record, len(exs))
	for i, e := range exs {
		recs[i] = e.record(true)
	}
	return recs
}

type warmPrediction struct {
	Warm  *bool    `json:"warm"`
	Score float64  `json:"score"`
	Class *int     `json:"class"`
	Label *float64 `json:"label"`
}

// TestColdStart: a model is cold until it has learned its min examples (the default, or the one
// configured): its predictions say "warm":false and decide no class (class and label null), and
// from the example after the last one it needed on, "warm":true with a class. Before, an
// unlearned FTRL scored 0.5 and published class 1 (fraud) for every event.
func TestColdStart(t *testing.T) {
	for _, c := range []struct {
		name string
		min  int
		want int // the first warm prediction
	}{
		{"default", 0, DefaultMinExamples},
		{"configured", 7, 7},
	} {
		t.Run(c.name, func(t *testing.T) {
			exs := genExamples(rand.New(rand.NewPCG(11, 11)), 300)
			d := newDriver(t, binaryPipeline(t, []ModelSpec{{Name: "ftrl", Learner: online.FTRLSpec{}, MinExamples: c.min}}, nil))
			// Restarts and aborts: warmth is model state, exact across recovery.
			feed(t, d, labelled(exs), 13, 3, 4)
			preds := d.Outputs("predictions")
			if len(preds) != len(exs) {
				t.Fatalf("%d predictions for %d events", len(preds), len(exs))
			}
			for i, r := range preds {
				var p warmPrediction
				if err := json.Unmarshal(r.Value, &p); err != nil {
					t.Fatal(err)
				}
				if p.Warm == nil {
					t.Fatalf("prediction %d has no warm: %s", i, r.Value)
				}
				// Event i is scored after i examples were learned (test, then train).
				if want := i >= c.want; *p.Warm != want {
					t.Fatalf("prediction %d: warm %v, want %v: %s", i, *p.Warm, want, r.Value)
				}
				if *p.Warm != (p.Class != nil) || *p.Warm != (p.Label != nil) {
					t.Fatalf("prediction %d: warm %v with class %v, label %v: %s", i, *p.Warm, p.Class, p.Label, r.Value)
				}
				if !*p.Warm && !strings.Contains(string(r.Value), `"class":null,"label":null`) {
					t.Fatalf("cold prediction %d: %s", i, r.Value)
				}
			}
		})
	}
}

func TestMinExamplesChecked(t *testing.T) {
	f := sourceFormat()
	if err := f.Init(); err != nil {
		t.Fatal(err)
	}
	_, err := New(Spec{Features: []FeatureSpec{{Name: "a", Field: "amount", Window: -1}},
		Models: []ModelSpec{{Name: "ftrl", Learner: online.FTRLSpec{}, MinExamples: -1}},
		Output: "p", Labels: LabelSpec{Field: "label"}}, f, nil)
	if err == nil || !strings.Contains(err.Error(), "ftrl has min examples -1") {
		t.Errorf("New: %v, want the negative min examples named", err)
	}
}
