package online_test

import (
	"testing"

	"github.com/streamd/streamd/online"
)

// grower is a learner whose structure can change as it learns.
type grower interface {
	online.Learner
	Nodes() int
}

// structure is what a growing learner's allocations follow: its node count and, for a forest, its
// detections (a warning starts a background tree, a drift replaces a tree).
func structure(l grower) [3]int64 {
	s := [3]int64{int64(l.Nodes())}
	if f, ok := l.(*online.ARF); ok {
		s[1], s[2] = f.Detections()
	}
	return s
}

// TestTreesSteadyAllocs: the tree regressor and both forests allocate nothing per Predict+Learn
// once their structure stops changing. Growth allocates (a split its two leaves and their
// statistics, a warning its background tree), so the trees are bounded at depth 3 on a stream
// repeated until a whole pass of 1,024 examples leaves the structure as it was; every such pass
// must then allocate exactly nothing. Counting a whole pass (AllocsPerRun of one run of 1,024
// examples) shows a single allocation, which a per-example AllocsPerRun would round away.
func TestTreesSteadyAllocs(t *testing.T) {
	s := genStream(2, 1024, online.DefaultDim, noDrift)
	for _, spec := range []online.Spec{
		online.TreeRegressorSpec{MaxDepth: 3},
		online.ARFClassifierSpec{MaxDepth: 3},
		online.ARFRegressorSpec{TreeRegressorSpec: online.TreeRegressorSpec{MaxDepth: 3}},
	} {
		t.Run(spec.Kind(), func(t *testing.T) {
			l, err := online.New(spec)
			if err != nil {
				t.Fatal(err)
			}
			g := l.(grower)
			probs := make([]float64, 8)
			pass := func() {
				for i := range s.X {
					l.Predict(s.X[i], probs)
					l.Predict(s.X[i], nil)
					l.Learn(s.X[i], labelFor(spec, s, i))
				}
			}
			pass()
			steady := 0
			for p := 0; p < 30 && steady < 3; p++ {
				before := structure(g)
				allocs := testing.AllocsPerRun(1, pass) // AllocsPerRun runs pass once more first
				if structure(g) != before {
					continue
				}
				steady++
				if allocs != 0 {
					t.Errorf("pass %d: %v allocations over 1,024 examples with the structure unchanged (%v), want 0", p, allocs, before)
				}
			}
			if steady < 3 {
				t.Fatalf("the structure kept changing for 30 passes (%v): no steady state to measure", structure(g))
			}
		})
	}
}
