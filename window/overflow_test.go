package window

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/streamd/streamd/stream"
	"github.com/streamd/streamd/stream/streamtest"
	"github.com/streamd/streamd/window/agg"
)

// TestOverflowIsFlaggedAndCounted: a sum and a mean that overflow to +Inf are published as null,
// named in the result's overflow list and counted once committed (not for an aborted cycle); a
// window whose results are finite has no overflow list.
func TestOverflowIsFlaggedAndCounted(t *testing.T) {
	f := testFormat()
	if err := f.Init(); err != nil {
		t.Fatal(err)
	}
	op, err := New(Spec{Name: "w", Kind: Tumbling, Size: 5 * time.Second, Emit: EmitFinal, Output: "out",
		Aggs: []Agg{{Name: "count", Kind: agg.Count}, {Name: "sum", Kind: agg.Sum, Field: "amount"},
			{Name: "mean", Kind: agg.Mean, Field: "amount"}, {Name: "max", Kind: agg.Max, Field: "amount"}}}, f)
	if err != nil {
		t.Fatal(err)
	}
	d, err := streamtest.NewDriver(&stream.Pipeline{Name: "app", Source: stream.Source{Topic: "in", Format: f},
		Operators: []stream.Operator{op}, DeadLetterTopic: "dlq"}, streamtest.Config{StateDir: t.TempDir(), MaxOutOfOrderness: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	const t0 = 1_700_000_000_000
	evs := []event{
		{key: "a", ts: t0, offset: 0, amount: 1e308, hasAmt: true},
		{key: "a", ts: t0 + 1, offset: 1, amount: 1e308, hasAmt: true},
		{key: "b", ts: t0 + 2, offset: 2, amount: 3, hasAmt: true},
		{key: "c", ts: t0 + 6000, offset: 3, amount: 2, hasAmt: true}, // closes a's and b's window
	}
	for pass := 0; pass < 2; pass++ {
		for _, e := range evs {
			if err := d.Process(e.record()); err != nil {
				t.Fatal(err)
			}
		}
		if pass == 0 {
			if err := d.Abort(); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := d.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	type result struct {
		Key      string              `json:"key"`
		Aggs     map[string]*float64 `json:"aggs"`
		Overflow []string            `json:"overflow"`
	}
	got := map[string]result{}
	for _, r := range d.Outputs("out") {
		var res result
		if err := json.Unmarshal(r.Value, &res); err != nil {
			t.Fatalf("%s: %v", r.Value, err)
		}
		got[res.Key] = res
	}
	a, b := got["a"], got["b"]
	if a.Aggs["sum"] != nil || a.Aggs["mean"] != nil || a.Aggs["max"] == nil || *a.Aggs["count"] != 2 ||
		len(a.Overflow) != 2 || a.Overflow[0] != "sum" || a.Overflow[1] != "mean" {
		t.Errorf("a's window: %+v, want sum and mean null and flagged", a)
	}
	if b.Overflow != nil || b.Aggs["sum"] == nil || *b.Aggs["sum"] != 3 {
		t.Errorf("b's window: %+v, want finite results and no overflow list", b)
	}
	if n := testutil.ToFloat64(op.overflows); n != 1 {
		t.Errorf("streamd_window_overflows_total = %v, want 1 (the aborted cycle's not counted)", n)
	}
}
