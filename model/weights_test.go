package model

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/streamd/streamd/online"
)

// imbalanced is genExamples with about 3% positives: the fraud case.
func imbalanced(n int) []example {
	exs := genExamples(rand.New(rand.NewPCG(31, 31)), n)
	rng := rand.New(rand.NewPCG(32, 32))
	for i := range exs {
		// Keep a positive with probability 1/6: the signal stays, the base rate falls.
		if exs[i].label == 1 && rng.Float64() > 1.0/6 {
			exs[i].label = 0
		}
	}
	return exs
}

// TestClassWeightsRaiseRareRecall: on an imbalanced stream, FTRL's prequential recall of the rare
// class rises with explicit class weights and with balanced ones (over none), exactly across
// aborts and restarts (the balanced counts are model state).
func TestClassWeightsRaiseRareRecall(t *testing.T) {
	exs := imbalanced(8000)
	pos := 0
	for _, e := range exs {
		pos += e.label
	}
	t.Logf("%d positives of %d", pos, len(exs))
	recall := func(ms ModelSpec, commit, abort, restart int) (float64, string) {
		d := newDriver(t, binaryPipeline(t, []ModelSpec{ms}, nil))
		feed(t, d, labelled(exs), commit, abort, restart)
		var preds strings.Builder
		for _, r := range d.Outputs("predictions") {
			preds.Write(r.Value)
		}
		return metric(modelView(t, d), ms.Name, "recall"), preds.String()
	}
	none, _ := recall(ModelSpec{Name: "m", Learner: online.FTRLSpec{}}, 500, 0, 0)
	explicit, _ := recall(ModelSpec{Name: "m", Learner: online.FTRLSpec{}, ClassWeights: []float64{1, 20}}, 500, 0, 0)
	balanced, want := recall(ModelSpec{Name: "m", Learner: online.FTRLSpec{}, ClassBalanced: true}, 500, 0, 0)
	t.Logf("recall of the rare class: none %.3f, weights {0: 1, 1: 20} %.3f, balanced %.3f", none, explicit, balanced)
	if !(explicit > none+0.2) || !(balanced > none+0.2) {
		t.Errorf("recall none %.3f, explicit %.3f, balanced %.3f: the weights did not raise it", none, explicit, balanced)
	}
	if _, got := recall(ModelSpec{Name: "m", Learner: online.FTRLSpec{}, ClassBalanced: true}, 37, 3, 4); got != want {
		t.Error("balanced weights: the predictions differ with aborts and restarts")
	}
}

func TestClassWeightsChecked(t *testing.T) {
	f := sourceFormat()
	if err := f.Init(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		ms   ModelSpec
		want string
	}{
		{ModelSpec{Name: "t", Learner: online.TreeSpec{}, ClassBalanced: true}, "does not learn weighted examples"},
		{ModelSpec{Name: "f", Learner: online.FTRLSpec{}, ClassWeights: []float64{1}}, "1 class weights for 2 classes"},
		{ModelSpec{Name: "f", Learner: online.FTRLSpec{}, ClassWeights: []float64{1, -2}}, "class 1's weight -2"},
		{ModelSpec{Name: "r", Learner: online.LinearSpec{}, ClassBalanced: true}, "class weights are for classifiers"},
	} {
		_, err := New(Spec{Features: []FeatureSpec{{Name: "a", Field: "amount", Window: -1}}, Models: []ModelSpec{c.ms},
			Output: "p", Labels: LabelSpec{Field: "label"}}, f, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.ms, err, c.want)
		}
	}
}
