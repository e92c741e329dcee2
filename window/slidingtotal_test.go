package window

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/state"
	"github.com/streamd/streamd/stream"
	"github.com/streamd/streamd/stream/streamtest"
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

// TestSlidingListStateConverts: state written in the list form (an earlier version) is taken over
// by the running-total form after a restart: the results go on as a run in one form gives them (to
// float rounding: the two forms add in different orders), and no key keeps its list.
func TestSlidingListStateConverts(t *testing.T) {
	rng := rand.New(rand.NewPCG(seed(t), 77))
	evs := genEvents(rng, 1200, 5, 2000)
	spec := Spec{Name: "sliding-total", Kind: Sliding, Size: 4 * time.Second, Resolution: 250 * time.Millisecond,
		AllowedLateness: 300 * time.Millisecond, Aggs: totalAggs, Output: "out"}
	runForms := func(switchAt int) ([]*kgo.Record, int) {
		f := mustFormat(t)
		op, err := New(spec, f)
		if err != nil {
			t.Fatal(err)
		}
		sp := op.asg.(*slidingPanes)
		sp.total = switchAt == 0
		d, err := streamtest.NewDriver(&stream.Pipeline{Name: "app", Source: stream.Source{Topic: "in", Format: f},
			Operators: []stream.Operator{op}, DeadLetterTopic: "dlq", LateTopic: "late"}, streamtest.Config{StateDir: t.TempDir(), MaxOutOfOrderness: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		lists := 0
		for i, e := range evs {
			if i == switchAt && i > 0 {
				sp.total = true // the new version starts on the old state
				if err := d.Restart(); err != nil {
					t.Fatal(err)
				}
			}
			if err := d.Process(e.record()); err != nil {
				t.Fatal(err)
			}
			if i%50 == 49 {
				if err := d.Commit(); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := d.Commit(); err != nil {
			t.Fatal(err)
		}
		for _, r := range d.Outputs(state.ChangelogTopic("app", spec.Name)) {
			if len(r.Key) > 0 && r.Key[0] == prefixPanes && r.Value != nil {
				lists++
			}
		}
		return d.Outputs("out"), lists
	}
	want, _ := runForms(0)
	got, lists := runForms(600)
	if lists == 0 {
		t.Fatal("the first half wrote no list-form state: the test converts nothing")
	}
	compare(t, "update", decodeResults(t, got), decodeResults(t, want), false)
}
