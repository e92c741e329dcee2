package online_test

import (
	"fmt"
	"math"
	"os"
	"slices"
	"testing"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"

	"github.com/streamd/streamd/online"
	"github.com/streamd/streamd/online/drift"
)

// batchLogistic fits an L2-regularized logistic regression on all of s
// offline, minimizing sum(log loss) + lambda/2·||w||² (intercept
// unpenalized) by Newton's method (IRLS) with gonum/mat: each step solves
// (XᵀWX + lambda·I) Δ = Xᵀ(p-y) + lambda·w by Cholesky. It returns the
// weights by column, the intercept last, and the column of each feature
// index.
func batchLogistic(t testing.TB, s stream, lambda float64) (w []float64, col map[uint32]int) {
	col = map[uint32]int{}
	for _, x := range s.X {
		for _, f := range x {
			if _, ok := col[f.Index]; !ok {
				col[f.Index] = len(col)
			}
		}
	}
	d := len(col) + 1 // + intercept
	w = make([]float64, d)
	row := make([]float64, d)
	dense := func(x online.Vector) []float64 {
		clear(row)
		for _, f := range x {
			row[col[f.Index]] = f.Value
		}
		row[d-1] = 1
		return row
	}
	for iter := 0; iter < 50; iter++ {
		h := mat.NewSymDense(d, nil)
		g := mat.NewVecDense(d, nil)
		for i, x := range s.X {
			r := dense(x)
			m := floats.Dot(w, r)
			p := 1 / (1 + math.Exp(-m))
			e, v := p-s.Y[i], max(p*(1-p), 1e-12)
			for a := 0; a < d; a++ {
				if r[a] == 0 {
					continue
				}
				g.SetVec(a, g.AtVec(a)+e*r[a])
				for b := a; b < d; b++ {
					if r[b] != 0 {
						h.SetSym(a, b, h.At(a, b)+v*r[a]*r[b])
					}
				}
			}
		}
		for a := 0; a < d-1; a++ {
			h.SetSym(a, a, h.At(a, a)+lambda)
			g.SetVec(a, g.AtVec(a)+lambda*w[a])
		}
		var chol mat.Cholesky
		if !chol.Factorize(h) {
			t.Fatalf("batch fit: Hessian not positive definite at iteration %d", iter)
		}
		var step mat.VecDense
		if err := chol.SolveVecTo(&step, g); err != nil {
			t.Fatalf("batch fit: %v", err)
		}
		change := 0.0
		for a := range w {
			w[a] -= step.AtVec(a)
			change = max(change, math.Abs(step.AtVec(a)))
		}
		if change < 1e-10 {
			break
		}
	}
	return w, col
}

// batchLogLoss is the mean log loss over s of the batch model: fitted on
// all of s, so it has seen every example it is scored on (an optimistic,
// in-sample baseline).
func batchLogLoss(s stream, w []float64, col map[uint32]int) float64 {
	d := len(col)
	sum := 0.0
	for i, x := range s.X {
		m := w[d]
		for _, f := range x {
			m += w[col[f.Index]] * f.Value
		}
		sum += logloss(1/(1+math.Exp(-m)), s.Y[i])
	}
	return sum / float64(len(s.X))
}

// bayesLogLoss is the log loss of the true probabilities: the floor.
func bayesLogLoss(s stream) float64 {
	sum := 0.0
	for i := range s.X {
		sum += logloss(s.P[i], s.Y[i])
	}
	return sum / float64(len(s.X))
}

const qualityN = 100_000

var qualitySeeds = []uint64{1, 2, 3, 4, 5}

// TestFTRLQuality compares FTRL's progressive (test-then-train) log loss
// with the in-sample log loss of a batch logistic regression fitted on the
// whole stream: within 5% without drift, better with abrupt or gradual
// drift.
func TestFTRLQuality(t *testing.T) {
	if testing.Short() {
		t.Skip("quality runs take a few seconds")
	}
	cases := []struct {
		name string
		kind driftKind
	}{{"stationary", noDrift}, {"abrupt", abrupt}, {"gradual", gradual}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, seed := range qualitySeeds {
				s := genStream(seed, qualityN, online.DefaultDim, c.kind)
				w, col := batchLogistic(t, s, 1)
				batch := batchLogLoss(s, w, col)
				l, err := online.New(online.FTRLSpec{})
				if err != nil {
					t.Fatal(err)
				}
				prog, _ := progressive(l, s)
				ratio := prog / batch
				t.Logf("seed %d: ftrl progressive %.4f, batch in-sample %.4f (ratio %.4f), bayes %.4f", seed, prog, batch, ratio, bayesLogLoss(s))
				recordf("quality %s seed %d: ftrl %.4f batch %.4f ratio %.4f bayes %.4f", c.name, seed, prog, batch, ratio, bayesLogLoss(s))
				switch c.kind {
				case noDrift:
					if ratio > 1.05 {
						t.Errorf("seed %d: ftrl progressive log loss %.4f is %.1f%% above batch %.4f, want <= 5%%", seed, prog, 100*(ratio-1), batch)
					}
				default:
					if prog >= batch {
						t.Errorf("seed %d: ftrl progressive log loss %.4f does not beat batch %.4f under %s drift", seed, prog, batch, c.name)
					}
				}
			}
		})
	}
}

// TestDriftDetection feeds FTRL's per-example log loss to ADWIN and
// Page-Hinkley (increases only): each must fire within 1,000 examples after
// an abrupt drift, not before it, and never on the stationary stream.
func TestDriftDetection(t *testing.T) {
	if testing.Short() {
		t.Skip("quality runs take a few seconds")
	}
	detectors := []struct {
		name string
		new  func() interface{ Update(float64) bool }
	}{
		{"adwin", func() interface{ Update(float64) bool } {
			d, err := drift.NewADWIN(drift.ADWINConfig{Direction: drift.Up})
			if err != nil {
				t.Fatal(err)
			}
			return d
		}},
		{"page_hinkley", func() interface{ Update(float64) bool } {
			d, err := drift.NewPageHinkley(drift.PageHinkleyConfig{Direction: drift.Up, Delta: 0.05, Threshold: 50, Alpha: 1})
			if err != nil {
				t.Fatal(err)
			}
			return d
		}},
	}
	seeds := []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, det := range detectors {
		t.Run(det.name, func(t *testing.T) {
			var delays []int
			for _, seed := range seeds {
				for _, kind := range []driftKind{noDrift, abrupt} {
					s := genStream(seed, qualityN, online.DefaultDim, kind)
					l, _ := online.New(online.FTRLSpec{})
					_, losses := progressive(l, s)
					d := det.new()
					var fired []int
					for i, v := range losses {
						if d.Update(v) {
							fired = append(fired, i)
						}
					}
					if kind == noDrift {
						if len(fired) > 0 {
							t.Errorf("seed %d: %s fired on the stationary stream at %v", seed, det.name, fired)
						}
						continue
					}
					first := -1
					for _, f := range fired {
						if f < s.Drift {
							t.Errorf("seed %d: %s fired at %d, before the drift at %d", seed, det.name, f, s.Drift)
						} else if first < 0 {
							first = f
						}
					}
					if first < 0 || first-s.Drift > 1000 {
						t.Errorf("seed %d: %s first fired at %d after a drift at %d, want within 1000", seed, det.name, first, s.Drift)
						continue
					}
					delays = append(delays, first-s.Drift)
				}
			}
			slices.Sort(delays)
			t.Logf("%s: delays after the drift over %d seeds: %v", det.name, len(seeds), delays)
			recordf("drift %s delays %v (seeds %v), stationary false alarms checked", det.name, delays, seeds)
		})
	}
}

// recordf appends a line to $ONLINE_RESULTS if set, so that docs/BENCHMARKS.md
// figures come straight from a test run.
func recordf(format string, args ...any) {
	path := os.Getenv("ONLINE_RESULTS")
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, format+"\n", args...)
}
