package agg

import (
	"bytes"
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

var totalSpecs = []Spec{{Kind: Count}, {Kind: Sum, Field: 0}, {Kind: Mean, Field: 0}, {Kind: Sum, Field: 1}}

func TestInvertible(t *testing.T) {
	if !mustLayout(t, totalSpecs, 2).Invertible() {
		t.Error("count, sum and mean: not invertible")
	}
	for _, k := range []Kind{Min, Max, StdDev, Distinct, Quantile} {
		s := Spec{Kind: k, Field: 0}
		if k == Quantile {
			s.Q = 0.5
		}
		if mustLayout(t, append([]Spec{{Kind: Sum, Field: 0}}, s), 2).Invertible() {
			t.Errorf("a layout with %v is invertible", k)
		}
	}
}

// TestRunningTotal: a total that gains events and loses panes follows the sums of the panes it
// holds to within a few ulps of the result, also after huge values have come and gone (where a
// plain running sum keeps their rounding error), is exactly empty when everything has left, and
// round-trips through its encoding bit for bit.
func TestRunningTotal(t *testing.T) {
	l := mustLayout(t, totalSpecs, 2)
	rng := rand.New(rand.NewPCG(7, 8))
	type pane struct {
		acc  *Acc
		vals []float64
	}
	total := l.NewAcc()
	var live []pane
	// The exact sum of the live values: 2000 bits hold any sum of these doubles exactly.
	exactSum := new(big.Float).SetPrec(2000)
	var n int64
	for step := range 20000 {
		if len(live) == 0 || rng.IntN(4) > 0 {
			p := pane{acc: l.NewAcc()}
			for range 1 + rng.IntN(5) {
				x := rng.NormFloat64() * 100
				if rng.IntN(50) == 0 {
					x *= 1e12 // a huge value, later subtracted again
				}
				in := []Input{NumInput(x), NumInput(1)}
				p.acc.AddTotal(in) // panes are compensated too: a pane's plain sum would carry its rounding into the total
				total.AddTotal(in)
				p.vals = append(p.vals, x)
				exactSum.Add(exactSum, big.NewFloat(x))
				n++
			}
			live = append(live, p)
		} else {
			total.MergeTotal(live[0].acc, -1)
			for _, x := range live[0].vals {
				exactSum.Sub(exactSum, big.NewFloat(x))
				n--
			}
			live = live[1:]
		}
		exact, _ := exactSum.Float64()
		got, _ := total.Result(1)
		// Within a few ulps of the exact sum of what is in the window, however large the values
		// that went through it: a plain running sum would be off by their rounding, ~1e-2 here.
		if tol := 8 * ulp(exact); math.Abs(got-exact) > tol {
			t.Fatalf("step %d: total sum %v, exact sum of the live panes %v (tolerance %g)", step, got, exact, tol)
		}
		if c, _ := total.Result(0); int64(c) != n {
			t.Fatalf("step %d: count %v, want %d", step, c, n)
		}
		if step%97 == 0 {
			enc := total.AppendEncodedTotal(nil)
			back := l.NewAcc()
			if err := back.DecodeTotal(enc); err != nil {
				t.Fatalf("step %d: %v", step, err)
			}
			if again := back.AppendEncodedTotal(nil); !bytes.Equal(enc, again) {
				t.Fatalf("step %d: total does not round-trip", step)
			}
			if err := back.Decode(enc); err == nil && total.mom[0].n > 0 {
				t.Fatalf("step %d: a total decodes as a plain state", step)
			}
		}
	}
	for _, p := range live {
		total.MergeTotal(p.acc, -1)
	}
	if s, _ := total.Result(1); s != 0 || math.Signbit(s) || total.Count() != 0 {
		t.Errorf("emptied total: sum %v count %d, want exactly 0 and 0", s, total.Count())
	}
	if !bytes.Equal(total.AppendEncodedTotal(nil), l.NewAcc().AppendEncodedTotal(nil)) {
		t.Error("an emptied total encodes differently from a new one")
	}
}

func ulp(x float64) float64 {
	x = math.Abs(x)
	return math.Max(math.Nextafter(x, math.Inf(1))-x, 1e-300)
}

func FuzzDecodeTotal(f *testing.F) {
	l := mustLayout(f, totalSpecs, 2)
	a := l.NewAcc()
	f.Add(a.AppendEncodedTotal(nil))
	a.AddTotal([]Input{NumInput(1e300), NumInput(-3)})
	a.AddTotal([]Input{NumInput(1), NumInput(2)})
	f.Add(a.AppendEncodedTotal(nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		b := l.NewAcc()
		if err := b.DecodeTotal(data); err != nil {
			if b.Count() != 0 {
				t.Fatal("failed decode left state behind")
			}
			return
		}
		if again := b.AppendEncodedTotal(nil); !bytes.Equal(again, data) {
			t.Fatalf("decoded total re-encodes as %x, not %x", again, data)
		}
	})
}
