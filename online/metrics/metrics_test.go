package metrics

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"sort"
	"testing"
)

type state interface {
	AppendState([]byte) []byte
	DecodeState([]byte) error
}

// exactAUC is the brute-force AUC: ties count half.
func exactAUC(s, y []float64) float64 {
	type e struct{ s, y float64 }
	es := make([]e, len(s))
	for i := range s {
		es[i] = e{s[i], y[i]}
	}
	sort.Slice(es, func(i, j int) bool { return es[i].s < es[j].s })
	var np, nn, ordered float64
	for i := 0; i < len(es); {
		j := i
		var p, n float64
		for ; j < len(es) && es[j].s == es[i].s; j++ {
			if es[j].y == 1 {
				p++
			} else {
				n++
			}
		}
		ordered += p*nn + p*n/2
		np += p
		nn += n
		i = j
	}
	return ordered / (np * nn)
}

// TestAgainstBruteForce runs every metric over seeded random streams and
// compares cumulative and windowed values with a naive recomputation.
func TestAgainstBruteForce(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		for _, window := range []int{0, 1, 7, 100} {
			rng := rand.New(rand.NewPCG(seed, uint64(window)))
			ll, _ := NewLogLoss(window)
			acc, _ := NewAccuracy(window)
			mae, _ := NewMAE(window)
			rmse, _ := NewRMSE(window)
			pr, _ := NewPrecisionRecall(0.5, window)
			auc, _ := NewROCAUC(window, 256)
			var ps, ys []float64
			n := 1000 + rng.IntN(500)
			for i := 0; i < n; i++ {
				y := float64(rng.IntN(2))
				p := min(max(0.3*y+0.7*rng.Float64(), 0), 1)
				if rng.IntN(10) == 0 {
					p = math.Round(p*10) / 10 // ties
				}
				ps, ys = append(ps, p), append(ys, y)
				ll.Update(p, y)
				cls := 0
				if p >= 0.5 {
					cls = 1
				}
				acc.Update(cls, int(y))
				mae.Update(p, y)
				rmse.Update(p, y)
				pr.Update(p, y)
				auc.Update(p, y)
			}
			check := func(name string, got, want, tol float64) {
				t.Helper()
				if math.Abs(got-want) > tol {
					t.Errorf("seed %d window %d: %s = %v, want %v", seed, window, name, got, want)
				}
			}
			naive := func(from int) (l, a, e, r, prec, rec float64) {
				var tp, fp, fn float64
				for i := from; i < n; i++ {
					p, y := ps[i], ys[i]
					if y == 1 {
						l -= math.Log(min(max(p, eps), 1-eps))
					} else {
						l -= math.Log(min(max(1-p, eps), 1-eps))
					}
					if (p >= 0.5) == (y == 1) {
						a++
					}
					e += math.Abs(p - y)
					r += (p - y) * (p - y)
					switch {
					case p >= 0.5 && y == 1:
						tp++
					case p >= 0.5:
						fp++
					case y == 1:
						fn++
					}
				}
				k := float64(n - from)
				return l / k, a / k, e / k, math.Sqrt(r / k), tp / (tp + fp), tp / (tp + fn)
			}
			l, a, e, r, prec, rec := naive(0)
			check("logloss", ll.Value(), l, 1e-9)
			check("accuracy", acc.Value(), a, 1e-12)
			check("mae", mae.Value(), e, 1e-9)
			check("rmse", rmse.Value(), r, 1e-9)
			check("precision", pr.Precision(), prec, 1e-12)
			check("recall", pr.Recall(), rec, 1e-12)
			ex := exactAUC(ps, ys)
			if d := math.Abs(auc.Value() - ex); d > auc.ErrorBound()+1e-12 {
				t.Errorf("seed %d: auc %v vs exact %v: error %v exceeds bound %v", seed, auc.Value(), ex, d, auc.ErrorBound())
			}
			from := 0
			if window > 0 {
				from = n - window
			}
			l, a, e, r, prec, rec = naive(from)
			check("window logloss", ll.Window(), l, 1e-9)
			check("window accuracy", acc.Window(), a, 1e-12)
			check("window mae", mae.Window(), e, 1e-9)
			check("window rmse", rmse.Window(), r, 1e-9)
			if !math.IsNaN(prec) {
				check("window precision", pr.WindowPrecision(), prec, 1e-12)
			}
			if !math.IsNaN(rec) {
				check("window recall", pr.WindowRecall(), rec, 1e-12)
			}
			if window > 1 {
				ex := exactAUC(ps[from:], ys[from:])
				if d := math.Abs(auc.Window() - ex); d > auc.WindowErrorBound()+1e-12 {
					t.Errorf("seed %d window %d: auc %v vs exact %v exceeds bound %v", seed, window, auc.Window(), ex, auc.WindowErrorBound())
				}
			}
			// Round trip, then identical behaviour on more input.
			for _, m := range []state{ll, acc, mae, rmse, pr, auc} {
				b := m.AppendState(nil)
				if err := m.DecodeState(b); err != nil {
					t.Fatalf("%T: %v", m, err)
				}
				if !bytes.Equal(b, m.AppendState(nil)) {
					t.Fatalf("%T: round trip changed the encoding", m)
				}
			}
		}
	}
}

// TestAUCBound shows the approximation on a realistic score distribution:
// 200k examples, DefaultBins.
func TestAUCBound(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	a, _ := NewROCAUC(0, 0)
	var ps, ys []float64
	for i := 0; i < 200_000; i++ {
		y := float64(rng.IntN(2))
		p := 1 / (1 + math.Exp(-(rng.NormFloat64() + 1.5*y - 0.75)))
		ps, ys = append(ps, p), append(ys, y)
		a.Update(p, y)
	}
	ex := exactAUC(ps, ys)
	t.Logf("auc %.6f exact %.6f error %.2e bound %.2e", a.Value(), ex, math.Abs(a.Value()-ex), a.ErrorBound())
	if math.Abs(a.Value()-ex) > a.ErrorBound() || a.ErrorBound() > 1e-3 {
		t.Errorf("auc %v exact %v bound %v", a.Value(), ex, a.ErrorBound())
	}
}

func TestZeroAllocs(t *testing.T) {
	ll, _ := NewLogLoss(100)
	auc, _ := NewROCAUC(100, 0)
	pr, _ := NewPrecisionRecall(0.5, 100)
	i := 0.0
	if n := testing.AllocsPerRun(1000, func() {
		i++
		p := math.Mod(i*0.37, 1)
		ll.Update(p, math.Mod(i, 2))
		auc.Update(p, math.Mod(i, 2))
		pr.Update(p, math.Mod(i, 2))
	}); n != 0 {
		t.Errorf("%v allocs per update", n)
	}
}

func seeds(f *testing.F, ms ...state) {
	for _, m := range ms {
		f.Add(m.AppendState(nil))
	}
}

func fuzzState(f *testing.F, fresh func() state, filled ...state) {
	seeds(f, filled...)
	f.Fuzz(func(t *testing.T, b []byte) {
		m := fresh()
		before := m.AppendState(nil)
		if err := m.DecodeState(b); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			if !bytes.Equal(before, m.AppendState(nil)) {
				t.Fatal("failed decode changed the metric")
			}
			return
		}
		enc := m.AppendState(nil)
		m2 := fresh()
		if err := m2.DecodeState(enc); err != nil || !bytes.Equal(enc, m2.AppendState(nil)) {
			t.Fatalf("re-encoding not canonical: %v", err)
		}
		// The decoded metric must keep working.
		switch v := m.(type) {
		case *LogLoss:
			v.Update(0.3, 1)
			v.Value()
			v.Window()
		case *PrecisionRecall:
			v.Update(0.7, 0)
			v.WindowPrecision()
		case *ROCAUC:
			v.Update(0.7, 0)
			v.Window()
			v.Value()
		}
	})
}

func filledMean(window int) (*LogLoss, *Accuracy) {
	l, _ := NewLogLoss(window)
	a, _ := NewAccuracy(window)
	for i := 0; i < 20; i++ {
		l.Update(float64(i%10)/10, float64(i%2))
		a.Update(i%3, i%2)
	}
	return l, a
}

func FuzzDecodeLogLoss(f *testing.F) {
	l0, _ := filledMean(0)
	l5, _ := filledMean(5)
	l50, _ := filledMean(50)
	fuzzState(f, func() state { l, _ := NewLogLoss(3); return l }, l0, l5, l50)
}

func FuzzDecodePrecisionRecall(f *testing.F) {
	var ms []state
	for _, w := range []int{0, 4, 40} {
		p, _ := NewPrecisionRecall(0.5, w)
		for i := 0; i < 20; i++ {
			p.Update(float64(i%10)/10, float64(i%2))
		}
		ms = append(ms, p)
	}
	fuzzState(f, func() state { p, _ := NewPrecisionRecall(0.5, 3); return p }, ms...)
}

func FuzzDecodeROCAUC(f *testing.F) {
	var ms []state
	for _, w := range []int{0, 4, 40} {
		a, _ := NewROCAUC(w, 16)
		for i := 0; i < 20; i++ {
			a.Update(float64(i%10)/10, float64(i%2))
		}
		ms = append(ms, a)
	}
	fuzzState(f, func() state { a, _ := NewROCAUC(3, 8); return a }, ms...)
}
