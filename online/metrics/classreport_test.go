package metrics

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestClassReportAgainstBruteForce: per-class recall and macro-F1, cumulative and over the window,
// equal a recount of the examples, through a state round trip; Update allocates nothing.
func TestClassReportAgainstBruteForce(t *testing.T) {
	const k, window = 4, 50
	seed := uint64(7)
	rng := rand.New(rand.NewPCG(seed, seed))
	c, err := NewClassReport(k, window)
	if err != nil {
		t.Fatal(err)
	}
	var preds, ys []int
	for i := range 500 {
		y := rng.IntN(k)
		if rng.Float64() < 0.3 {
			y = 0 // imbalanced
		}
		pred := y
		if rng.Float64() < 0.4 {
			pred = rng.IntN(k)
		}
		c.Update(pred, y)
		preds, ys = append(preds, pred), append(ys, y)
		if i%97 == 0 {
			var d ClassReport
			if err := d.DecodeState(c.AppendState(nil)); err != nil {
				t.Fatal(err)
			}
			c = &d
		}
		for _, win := range []bool{false, true} {
			from := 0
			if win {
				from = max(0, len(ys)-window)
			}
			tp, fp, fn := make([]float64, k), make([]float64, k), make([]float64, k)
			for j := from; j < len(ys); j++ {
				if preds[j] == ys[j] {
					tp[ys[j]]++
				} else {
					fp[preds[j]]++
					fn[ys[j]]++
				}
			}
			f1, n := 0.0, 0
			for cl := range k {
				want := tp[cl] / (tp[cl] + fn[cl])
				if got := c.Recall(cl, win); !(got == want || math.IsNaN(got) && math.IsNaN(want)) {
					t.Fatalf("seed %d, example %d, window %v: recall of %d = %v, want %v", seed, i, win, cl, got, want)
				}
				if tp[cl]+fp[cl]+fn[cl] > 0 {
					p, r := tp[cl]/(tp[cl]+fp[cl]), tp[cl]/(tp[cl]+fn[cl])
					if tp[cl] > 0 {
						f1 += 2 * p * r / (p + r)
					}
					n++
				}
			}
			if got, want := c.MacroF1(win), f1/float64(n); math.Abs(got-want) > 1e-12 {
				t.Fatalf("seed %d, example %d, window %v: macro-F1 %v, want %v", seed, i, win, got, want)
			}
		}
	}
	if n := testing.AllocsPerRun(1000, func() { c.Update(1, 2) }); n != 0 {
		t.Fatalf("%v allocations per Update", n)
	}
	var bad ClassReport
	if err := bad.DecodeState(c.AppendState(nil)[:10]); err == nil {
		t.Fatal("a truncated state decoded")
	}
}
