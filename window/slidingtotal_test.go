package window

import (
	"math"
	"testing"
	"time"
)

// TestSlidingTotalOverflowPasses: a running total through which an overflowing sum went reads +Inf
// (null, flagged) while the overflow is in the window, in order or not, and finite again once it has
// left, as adding up the window's panes gives; subtraction alone would keep it at +Inf.
func TestSlidingTotalOverflowPasses(t *testing.T) {
	const t0 = 1_700_000_000_000
	spec := Spec{Name: "total", Kind: Sliding, Size: 4 * time.Second, Resolution: time.Second, Aggs: totalAggs}
	evs := []event{
		{key: "a", ts: t0, amount: 1e308, hasAmt: true},
		{key: "a", ts: t0 + 100, amount: 1e308, hasAmt: true}, // the sum overflows
		{key: "a", ts: t0 + 1500, amount: 2, hasAmt: true},
		{key: "a", ts: t0 + 900, amount: 1, hasAmt: true},  // out of order, overflowed window
		{key: "a", ts: t0 + 4200, amount: 3, hasAmt: true}, // the overflowing pane has left
		{key: "a", ts: t0 + 1200, amount: 4, hasAmt: true}, // out of order: its window holds the overflow again
		{key: "a", ts: t0 + 6000, amount: 5, hasAmt: true}, // only 3 (pane 4000) and 5 (pane 6000) remain
	}
	for i := range evs {
		evs[i].offset = int64(i)
	}
	for _, commit := range []int{1, 100} {
		_, updates, _ := run(t, spec, evs, 10*time.Second, commit, 0, 0)
		got := decodeResults(t, updates)
		if len(got) != len(evs) {
			t.Fatalf("%d results, want %d", len(got), len(evs))
		}
		want := []float64{1e308, math.Inf(1), math.Inf(1), math.Inf(1), 5, math.Inf(1), 3 + 5}
		for i, w := range want {
			g := got[i].Aggs["sum"]
			switch {
			case math.IsInf(w, 1) && g != nil:
				t.Errorf("commit %d, result %d: sum %v, want null (overflow)", commit, i, *g)
			case !math.IsInf(w, 1) && (g == nil || *g != w):
				t.Errorf("commit %d, result %d: sum %v, want %v", commit, i, ptr(g), w)
			}
		}
	}
}
