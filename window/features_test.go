package window

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/streamd/streamd/stream"
	"github.com/streamd/streamd/stream/streamtest"
)

// TestFeatureLookupMatchesProcess: on a random out-of-order stream through a sliding window that
// feeds features (every test aggregation), a look-up with each event before it arrives gives bit
// for bit the aggregates its processing then emits (late events: no features, as processing gives
// none); a look-up without the event gives the aggregates of the key's past events only.
func TestFeatureLookupMatchesProcess(t *testing.T) {
	s := seed(t)
	rng := rand.New(rand.NewPCG(s, 41))
	maxOOO := 500 * time.Millisecond
	f := testFormat()
	if err := f.Init(); err != nil {
		t.Fatal(err)
	}
	spec := Spec{Name: "sliding", Kind: Sliding, Size: 4 * time.Second, Resolution: 250 * time.Millisecond,
		AllowedLateness: 300 * time.Millisecond, Aggs: testAggs, Output: "out"}
	var names []string
	for i, a := range testAggs {
		spec.FeatureSlots = append(spec.FeatureSlots, i)
		names = append(names, a.Name)
	}
	op, err := New(spec, f)
	if err != nil {
		t.Fatal(err)
	}
	d, err := streamtest.NewDriver(&stream.Pipeline{Name: "app", Source: stream.Source{Topic: "in", Format: f},
		Operators: []stream.Operator{op}, DeadLetterTopic: "dlq", LateTopic: "late", Features: names},
		streamtest.Config{StateDir: t.TempDir(), MaxOutOfOrderness: maxOOO})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	checked, late := 0, 0
	for i, e := range genEvents(rng, 1500, 5, maxOOO.Milliseconds()) {
		rec := e.record()
		with, err := d.Features([]byte(e.key), rec.Value, 0)
		if err != nil {
			t.Fatal(err)
		}
		past, err := d.Features([]byte(e.key), nil, e.ts)
		if err != nil {
			t.Fatal(err)
		}
		before := len(d.Outputs("out"))
		lateBefore := len(d.Outputs("late"))
		if err := d.Process(rec); err != nil {
			t.Fatal(err)
		}
		if err := d.Commit(); err != nil {
			t.Fatal(err)
		}
		if len(d.Outputs("late")) > lateBefore {
			late++
			for _, n := range names {
				if string(with.Features[n]) != "null" {
					t.Fatalf("event %d is late, but the look-up gave %s = %s", i, n, with.Features[n])
				}
			}
			continue
		}
		outs := d.Outputs("out")
		if len(outs) != before+1 {
			t.Fatalf("event %d: %d results, want 1", i, len(outs)-before)
		}
		var res struct {
			Aggs map[string]json.RawMessage `json:"aggs"`
		}
		if err := json.Unmarshal(outs[len(outs)-1].Value, &res); err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if got, want := string(with.Features[n]), string(res.Aggs[n]); got != want {
				t.Fatalf("event %d (%s at %d): looked up %s = %s, processing gave %s", i, e.key, e.ts, n, got, want)
			}
		}
		// Without the event, one event fewer: the past events' count (a first event: none, null
		// only where the aggregate is undefined, as count is 0).
		if got, want := string(past.Features["count"]), string(res.Aggs["count"]); !countOneLess(got, want) {
			t.Fatalf("event %d: count without the event %s, with it %s", i, got, want)
		}
		checked++
	}
	if checked < 1000 || late == 0 {
		t.Fatalf("checked %d events, %d late: the stream does not exercise both", checked, late)
	}
}

func countOneLess(without, with string) bool {
	var a, b float64
	if err := json.Unmarshal([]byte(strings.Replace(without, "null", "0", 1)), &a); err != nil {
		return false
	}
	if err := json.Unmarshal([]byte(with), &b); err != nil {
		return false
	}
	return a+1 == b
}
