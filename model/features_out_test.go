package model

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/streamd/streamd/online"
	"github.com/streamd/streamd/stream"
)

// TestPredictionFeaturesAreWhatTheModelReceived: a prediction's features are the values the
// model received, after the transforms, under the features' names: amount_log is log1p(amount)
// standardized by the running mean and deviation of the examples learned before the event, a
// clipped feature is clipped, a feature without transforms is the raw value, a one-hot one the
// event's category. Before, every numeric feature showed the raw input (amount_log: the amount).
func TestPredictionFeaturesAreWhatTheModelReceived(t *testing.T) {
	exs := genExamples(rand.New(rand.NewPCG(12, 12)), 400)
	d := newDriver(t, binaryPipeline(t, []ModelSpec{{Name: "ftrl", Learner: online.FTRLSpec{}}}, func(s *Spec) {
		s.Features = append(s.Features,
			FeatureSpec{Name: "amount_clip", Field: "amount", Window: -1, Transforms: []Transform{{Kind: "clip", Min: 0, Max: 20}}},
			FeatureSpec{Name: "amount", Field: "amount", Window: -1})
	}))
	feed(t, d, labelled(exs), 17, 3, 5)
	preds := d.Outputs("predictions")
	if len(preds) != len(exs) {
		t.Fatalf("%d predictions for %d events", len(preds), len(exs))
	}
	var n, mean, m2 float64 // the scaler's statistics of log1p(amount) over the learned examples
	for i, r := range preds {
		var p struct {
			Features map[string]any `json:"features"`
		}
		if err := json.Unmarshal(r.Value, &p); err != nil {
			t.Fatal(err)
		}
		e := exs[i]
		// The amount is written with 4 decimals (example.record).
		amount := math.Round(e.amount*1e4) / 1e4
		x := math.Log1p(amount)
		want := 0.0
		if n > 0 && math.Sqrt(m2/n) >= 1e-9 {
			want = (x - mean) / math.Sqrt(m2/n)
		}
		got, ok := p.Features["amount_log"].(float64)
		if !ok || math.Abs(got-want) > 1e-9*max(1, math.Abs(want)) {
			t.Fatalf("prediction %d: amount_log %v, want %v (amount %v): %s", i, p.Features["amount_log"], want, amount, r.Value)
		}
		if got := p.Features["amount_clip"]; got != min(amount, 20) {
			t.Fatalf("prediction %d: amount_clip %v, want %v", i, got, min(amount, 20))
		}
		if got := p.Features["amount"]; got != amount {
			t.Fatalf("prediction %d: amount %v, want %v", i, got, amount)
		}
		if got := p.Features["channel"]; got != e.channel {
			t.Fatalf("prediction %d: channel %v, want %v", i, got, e.channel)
		}
		// Then the example is learned (test, then train): Welford's update, as the scaler.
		n++
		dx := x - mean
		mean += dx / n
		m2 += dx * (x - mean)
	}
}

// TestOnlineScoringAllocs: the per-event path with online learners (features, scoring a champion
// and a challenger, the prediction record with the transformed features and warmth) allocates
// nothing, measured over 1,000 events per run.
func TestOnlineScoringAllocs(t *testing.T) {
	p := binaryPipeline(t, []ModelSpec{{Name: "ftrl", Learner: online.FTRLSpec{}}, {Name: "tree", Learner: online.TreeSpec{}}}, nil)
	d := newDriver(t, p)
	exs := genExamples(rand.New(rand.NewPCG(13, 13)), 1000)
	feed(t, d, labelled(exs[:300]), 100, 0, 0)
	pr, op := d.op.last, d.op.Operator
	f := p.Source.Format.NewDecoder()
	evs := make([]stream.Event, len(exs))
	for i, e := range exs {
		if err := f.Decode(e.record(false), &evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	run := func() {
		for i := range evs {
			ev := &evs[i]
			pr.buf = op.layout.extract(ev, &pr.raw, pr.buf)
			pr.predict(&pr.raw)
			pr.out = pr.appendPrediction(pr.out[:0], ev)
		}
	}
	run()
	if n := testing.AllocsPerRun(5, run); n != 0 {
		t.Fatalf("%v allocations per 1,000 events, want 0", n)
	}
}
