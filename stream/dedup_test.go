package stream_test

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/stream"
	"github.com/streamd/streamd/stream/streamtest"
)

// dedupPipeline is a pipeline with source.dedup in front of a Forward: every event the dedup
// accepts reaches "out", once.
func dedupPipeline(ttl time.Duration, deadLetter bool) *stream.Pipeline {
	f := &stream.JSONFormat{
		KeyField: "k",
		IDField:  "id",
		Time:     stream.EventTimeSpec{Field: "ts", Format: stream.TimeEpochMillis},
	}
	return &stream.Pipeline{Name: "app", Source: stream.Source{Topic: "in", Format: f},
		Operators:       []stream.Operator{&stream.Dedup{TTL: ttl, DeadLetter: deadLetter}, &stream.Forward{Topic: "out"}},
		DeadLetterTopic: "dlq"}
}

func dedupRecord(offset int64, id string, ts int64) *kgo.Record {
	return &kgo.Record{Topic: "in", Offset: offset, Timestamp: time.UnixMilli(ts),
		Value: fmt.Appendf(nil, `{"k":"a","id":%q,"ts":%d}`, id, ts)}
}

func newDedupDriver(t *testing.T, p *stream.Pipeline) *streamtest.Driver {
	t.Helper()
	if err := p.Source.Format.Init(); err != nil {
		t.Fatal(err)
	}
	d, err := streamtest.NewDriver(p, streamtest.Config{StateDir: t.TempDir(), MaxOutOfOrderness: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// outIDs returns the ids of the committed events forwarded to "out", in order.
func outIDs(d *streamtest.Driver) []string {
	var ids []string
	for _, r := range d.Outputs("out") {
		var id string
		for _, h := range r.Headers {
			if h.Key == stream.HeaderSourceOffset {
				id = string(h.Value)
			}
		}
		ids = append(ids, id)
	}
	return ids
}

func process(t *testing.T, d *streamtest.Driver, recs ...*kgo.Record) {
	t.Helper()
	if err := d.Process(recs...); err != nil {
		t.Fatal(err)
	}
}

func commit(t *testing.T, d *streamtest.Driver) {
	t.Helper()
	if err := d.Commit(); err != nil {
		t.Fatal(err)
	}
}

func TestDedup(t *testing.T) {
	const hour = int64(time.Hour / time.Millisecond)
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	t.Run("duplicate within the ttl is dropped and counted", func(t *testing.T) {
		d := newDedupDriver(t, dedupPipeline(24*time.Hour, false))
		process(t, d, dedupRecord(0, "e1", t0), dedupRecord(1, "e2", t0+1), dedupRecord(2, "e1", t0+2))
		commit(t, d) // a duplicate within one cycle: the open cycle's writes are seen
		process(t, d, dedupRecord(3, "e2", t0+23*hour), dedupRecord(4, "e3", t0+23*hour))
		commit(t, d)
		if got, want := fmt.Sprint(outIDs(d)), "[0 1 4]"; got != want {
			t.Fatalf("forwarded offsets %s, want %s", got, want)
		}
		if n := len(d.Outputs("dlq")); n != 0 {
			t.Fatalf("%d dead letters without dead_letter", n)
		}
		if got := duplicatesCounted(t, d); got != 2 {
			t.Fatalf("streamd_duplicate_events_total %v, want 2", got)
		}
	})
	t.Run("after the ttl the id is accepted again", func(t *testing.T) {
		d := newDedupDriver(t, dedupPipeline(time.Hour, false))
		process(t, d, dedupRecord(0, "e1", t0))
		// The watermark moves past t0 + ttl: e1 is forgotten.
		process(t, d, dedupRecord(1, "x", t0+hour+2))
		process(t, d, dedupRecord(2, "e1", t0+hour+2))
		// At the edge: e2 at t0+hour+2, the watermark at t0+2*hour+1 is below t0+hour+2+hour.
		process(t, d, dedupRecord(3, "y", t0+2*hour+2), dedupRecord(4, "e1", t0+2*hour+2))
		commit(t, d)
		if got, want := fmt.Sprint(outIDs(d)), "[0 1 2 3]"; got != want {
			t.Fatalf("forwarded offsets %s, want %s", got, want)
		}
	})
	t.Run("an event already behind the watermark by the ttl is not remembered", func(t *testing.T) {
		d := newDedupDriver(t, dedupPipeline(time.Hour, false))
		process(t, d, dedupRecord(0, "now", t0+3*hour), dedupRecord(1, "old", t0), dedupRecord(2, "old", t0))
		commit(t, d)
		if got, want := fmt.Sprint(outIDs(d)), "[0 1 2]"; got != want {
			t.Fatalf("forwarded offsets %s, want %s", got, want)
		}
	})
	t.Run("dead_letter sends the duplicate to the dead letters", func(t *testing.T) {
		d := newDedupDriver(t, dedupPipeline(time.Hour, true))
		process(t, d, dedupRecord(0, "e1", t0), dedupRecord(1, "e1", t0))
		commit(t, d)
		dl := d.Outputs("dlq")
		if len(dl) != 1 || len(d.Outputs("out")) != 1 {
			t.Fatalf("%d dead letters and %d outputs, want 1 and 1", len(dl), len(d.Outputs("out")))
		}
		if got := header(dl[0], stream.HeaderReason); got != string(stream.ReasonDuplicateEventID) {
			t.Fatalf("reason %q", got)
		}
		if got := header(dl[0], stream.HeaderSourceOffset); got != "1" {
			t.Fatalf("dead letter of offset %s, want 1", got)
		}
	})
	t.Run("survives restarts, from the disk and from the changelog", func(t *testing.T) {
		for _, restart := range []string{"disk", "changelog", "commit then crash"} {
			t.Run(restart, func(t *testing.T) {
				d := newDedupDriver(t, dedupPipeline(time.Hour, false))
				process(t, d, dedupRecord(0, "e1", t0), dedupRecord(1, "e2", t0+1))
				var err error
				switch restart {
				case "disk":
					commit(t, d)
					err = d.Restart()
				case "changelog":
					commit(t, d)
					err = d.RestartFromChangelog()
				case "commit then crash":
					err = d.CommitThenCrash()
				}
				if err != nil {
					t.Fatal(err)
				}
				process(t, d, dedupRecord(2, "e1", t0+2), dedupRecord(3, "e3", t0+3), dedupRecord(4, "e2", t0+4))
				commit(t, d)
				if got, want := fmt.Sprint(outIDs(d)), "[0 1 3]"; got != want {
					t.Fatalf("forwarded offsets %s, want %s", got, want)
				}
			})
		}
	})
	t.Run("an aborted cycle is forgotten, its expiry too", func(t *testing.T) {
		d := newDedupDriver(t, dedupPipeline(time.Hour, false))
		process(t, d, dedupRecord(0, "e1", t0))
		commit(t, d)
		// Aborted: a duplicate of e1 dropped, e2 accepted, and the watermark passed e1's expiry
		// (its bucket swept).
		process(t, d, dedupRecord(1, "e1", t0), dedupRecord(1, "e2", t0+1), dedupRecord(2, "far", t0+3*hour))
		if err := d.Abort(); err != nil {
			t.Fatal(err)
		}
		process(t, d, dedupRecord(1, "e2", t0+1), dedupRecord(3, "e1", t0+2))
		commit(t, d)
		if got, want := fmt.Sprint(outIDs(d)), "[0 1]"; got != want {
			t.Fatalf("forwarded offsets %s, want %s", got, want)
		}
		if got := duplicatesCounted(t, d); got != 1 {
			t.Fatalf("streamd_duplicate_events_total %v, want 1: the aborted cycle's duplicate is not counted", got)
		}
	})
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// duplicatesCounted returns streamd_duplicate_events_total from the driver's registry.
func duplicatesCounted(t *testing.T, d *streamtest.Driver) float64 {
	t.Helper()
	mfs, err := d.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() == "streamd_duplicate_events_total" {
			for _, m := range mf.GetMetric() {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}

// TestDedupAgainstReference runs a random stream of ids (a quarter of them replayed, some much
// later), out-of-order event times, commits, aborts and restarts through Dedup, and compares what it
// forwards with a brute-force model of the documented semantics: a map from id to the first event
// time, checked against the watermark of the events before.
func TestDedupAgainstReference(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	const ttl = 10 * time.Second
	ttlMs, maxOOO := ttl.Milliseconds(), int64(1)
	d := newDedupDriver(t, dedupPipeline(ttl, false))

	model, committedModel := map[string]int64{}, map[string]int64{}
	maxTime, committedMax := int64(-1), int64(-1)
	var want, committedWant []string
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	var ids []string
	for off := int64(0); off < 20_000; off++ {
		now += rng.Int64N(20)
		var id string
		if len(ids) > 0 && rng.IntN(4) == 0 {
			id = ids[rng.IntN(len(ids))]
		} else {
			id = "id-" + strconv.Itoa(len(ids))
			ids = append(ids, id)
		}
		ts := now - rng.Int64N(3000) // out of order
		wm := int64(-1 << 63)
		if maxTime >= 0 {
			wm = maxTime - maxOOO
		}
		rec := dedupRecord(off, id, ts)
		process(t, d, rec)
		t0, seen := model[id]
		if seen && t0 > wm-ttlMs {
			// duplicate: dropped, the watermark does not move
		} else {
			if ts > wm-ttlMs || wm == -1<<63 {
				model[id] = ts
			}
			want = append(want, strconv.FormatInt(off, 10))
			maxTime = max(maxTime, ts)
		}
		switch x := rng.IntN(200); {
		case x < 10:
			commit(t, d)
			committedModel, committedMax, committedWant = clone(model), maxTime, append([]string(nil), want...)
		case x == 10:
			if err := d.Abort(); err != nil {
				t.Fatal(err)
			}
			model, maxTime, want = clone(committedModel), committedMax, append([]string(nil), committedWant...)
		case x == 11:
			commit(t, d)
			committedModel, committedMax, committedWant = clone(model), maxTime, append([]string(nil), want...)
			var err error
			if rng.IntN(2) == 0 {
				err = d.Restart()
			} else {
				err = d.RestartFromChangelog()
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	commit(t, d)
	got := outIDs(d)
	t.Logf("%d events, %d distinct ids, %d forwarded", 20_000, len(ids), len(want))
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("seed %d: %d forwarded, want %d; first difference at %d", seed, len(got), len(want), firstDiff(got, want))
	}
	// The expired ids were deleted: the store holds about ttl + ttl/8 of event time.
	var live int
	st, err := d.Task().Store("dedup")
	if err != nil {
		t.Fatal(err)
	}
	it, err := st.NewIter(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for ; it.Valid(); it.Next() {
		live++
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	if live == 0 || live > len(ids)/4 {
		t.Fatalf("%d ids stored of %d: expiry does not bound the store", live, len(ids))
	}
}

func clone(m map[string]int64) map[string]int64 {
	c := make(map[string]int64, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func TestDedupMustComeFirst(t *testing.T) {
	p := dedupPipeline(time.Hour, false)
	p.Operators[0], p.Operators[1] = p.Operators[1], p.Operators[0]
	if err := p.Validate(); err == nil || !strings.Contains(err.Error(), "dedup must be the first operator") {
		t.Fatalf("a pipeline with dedup second: %v", err)
	}
	p = dedupPipeline(0, false)
	if err := p.Validate(); err == nil || !strings.Contains(err.Error(), "dedup ttl 0s") {
		t.Fatalf("a dedup without a ttl: %v", err)
	}
}
