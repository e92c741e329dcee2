package online_test

import (
	"math/rand/v2"
	"testing"

	"github.com/streamd/streamd/online"
)

// TestHSTScoresOutliers: during the first window every score is 0 (class -1); after it, a point
// far from where the examples fell scores above one in their midst, and the trees are the same
// for the same seed and differ for another.
func TestHSTScoresOutliers(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	spec := online.HSTSpec{Dim: 2, WindowSize: 100, Seed: 9}
	l, _ := online.New(spec)
	point := func(a, b float64) online.Vector { return online.Vector{{Index: 0, Value: a}, {Index: 1, Value: b}} }
	for i := range 300 {
		if i < 100 {
			if s, c := l.Predict(point(0.3, 0.3), nil); s != 0 || c != -1 {
				t.Fatalf("first window: Predict = %v, %d, want 0, -1", s, c)
			}
		}
		l.Learn(point(0.3+0.03*rng.NormFloat64(), 0.3+0.03*rng.NormFloat64()), 0)
	}
	in, _ := l.Predict(point(0.3, 0.3), nil)
	out, c := l.Predict(point(0.9, 0.9), nil)
	t.Logf("score in the mass %.4f, far from it %.4f", in, out)
	if !(out > in) || c != 0 || in < 0 || out > 1 {
		t.Errorf("scores in %.4f, out %.4f (class %d): want 0 <= in < out <= 1, class 0", in, out, c)
	}
	same, _ := online.New(spec)
	other, _ := online.New(online.HSTSpec{Dim: 2, WindowSize: 100, Seed: 10})
	for range 200 {
		x := point(rng.Float64(), rng.Float64())
		same.Learn(x, 0)
		other.Learn(x, 0)
		l.Learn(x, 0)
	}
	x := point(0.5, 0.1)
	a, _ := l.Predict(x, nil)
	b, _ := same.Predict(x, nil)
	o, _ := other.Predict(x, nil)
	if a != b {
		t.Errorf("same seed, same last two windows: scores %v and %v differ", a, b)
	}
	if a == o {
		t.Errorf("seeds 9 and 10 score %v alike: the seed does not draw the trees", a)
	}
}
