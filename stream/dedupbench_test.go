package stream_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/stream"
	"github.com/streamd/streamd/stream/streamtest"
)

// dedupStream makes records as a retrying producer writes them: event time advancing 1 ms per
// record with up to 500 ms of disorder, and dupRatio of the records a copy of one of the last 1000.
type dedupStream struct {
	rng      *rand.Rand
	next     int64
	base     int64
	recent   [1000]int64
	dupRatio float64
}

func (s *dedupStream) fill(recs []*kgo.Record) {
	for i := range recs {
		id := s.next
		if s.next > int64(len(s.recent)) && s.rng.Float64() < s.dupRatio {
			id = s.recent[s.rng.IntN(len(s.recent))]
		} else {
			s.recent[s.next%int64(len(s.recent))] = s.next
			s.next++
		}
		ts := s.base + id - int64(s.rng.IntN(500))
		v := fmt.Appendf(recs[i].Value[:0], `{"event_id":"%016x","card_id":"card-%06d","event_time":%d,"amount":12.50}`, id, id%100_000, ts)
		*recs[i] = kgo.Record{Topic: "tx", Value: v, Timestamp: time.UnixMilli(ts)}
	}
}

// nop is an operator that does nothing: the baseline that decode alone costs.
type nop struct{}

func (nop) Name() string                                { return "nop" }
func (nop) Open(*stream.Task) (stream.Processor, error) { return nop{}, nil }
func (nop) Process(*stream.Task, *stream.Event) error   { return nil }
func (nop) Close() error                                { return nil }

// BenchmarkDedup measures decode + dedup per record (5 % duplicates, ttl 1 min of event time: about
// 60k ids remembered, buckets expiring and swept as the run goes), with a commit every 20k records,
// beside decode + a no-op operator.
func BenchmarkDedup(b *testing.B) {
	for _, tc := range []struct {
		name string
		op   stream.Operator
	}{{"decode only", nop{}}, {"decode+dedup", &stream.Dedup{TTL: time.Minute}}} {
		b.Run(tc.name, func(b *testing.B) {
			f := &stream.JSONFormat{KeyField: "card_id", IDField: "event_id",
				Time: stream.EventTimeSpec{Field: "event_time", Format: stream.TimeEpochMillis}}
			if err := f.Init(); err != nil {
				b.Fatal(err)
			}
			d, err := streamtest.NewDriver(&stream.Pipeline{Name: "bench", Source: stream.Source{Topic: "tx", Format: f},
				Operators: []stream.Operator{tc.op}, DeadLetterTopic: "dlq"},
				streamtest.Config{StateDir: b.TempDir(), MaxOutOfOrderness: 5 * time.Second, Discard: true})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { d.Close() })
			s := &dedupStream{rng: rand.New(rand.NewPCG(1, 2)), base: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).UnixMilli(), dupRatio: 0.05}
			recs := make([]*kgo.Record, 20_000)
			for i := range recs {
				recs[i] = &kgo.Record{Value: make([]byte, 0, 128)}
			}
			run := func(n int) {
				for i := 0; i < n; i++ {
					j := i % len(recs)
					if j == 0 {
						b.StopTimer()
						s.fill(recs)
						b.StartTimer()
					}
					if err := d.Process(recs[j]); err != nil {
						b.Fatal(err)
					}
					if j == len(recs)-1 {
						if err := d.Commit(); err != nil {
							b.Fatal(err)
						}
					}
				}
			}
			run(200_000) // warm up: more than a ttl of ids, the first buckets expired
			b.ReportAllocs()
			b.ResetTimer()
			run(b.N)
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// TestDedupAllocations: in steady state (ids expiring as fast as they come, filters sized from the
// buckets before, the cycle's caches grown) looking ids up and remembering them allocates nothing;
// what allocates is a new bucket (its filter, once per ttl/8 of event time) and the sweep of an
// expired one (its Pebble iterator, which allocates tens of objects over the indexed batch): about
// 60 to 550 allocations per 10,000 events here (how many depends on Pebble: its reads open new
// tables after each flush, and a sweep iterates over the batches it holds),
// where a bucket starts and one expires every 10,000
// events. Measured over 10,000 events, so that rare allocations are not rounded away; the bound
// (2,000) fails if anything allocates once per event or more often.
func TestDedupAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	f := &stream.JSONFormat{KeyField: "card_id", IDField: "event_id",
		Time: stream.EventTimeSpec{Field: "event_time", Format: stream.TimeEpochMillis}}
	if err := f.Init(); err != nil {
		t.Fatal(err)
	}
	// ttl 80 s, buckets of 10 s: at 1 ms of event time per event a bucket starts, and one expires,
	// every 10,000 events.
	d, err := streamtest.NewDriver(&stream.Pipeline{Name: "bench", Source: stream.Source{Topic: "tx", Format: f},
		Operators: []stream.Operator{&stream.Dedup{TTL: 80 * time.Second}}, DeadLetterTopic: "dlq"},
		streamtest.Config{StateDir: t.TempDir(), MaxOutOfOrderness: 5 * time.Second, Discard: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	s := &dedupStream{rng: rand.New(rand.NewPCG(3, 4)), base: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).UnixMilli(), dupRatio: 0.05}
	// AllocsPerRun calls the function twice (a warm-up, then the measured run): each call gets its
	// own batch of events, filled beforehand, and a cycle holds both.
	a, b := make([]*kgo.Record, 1000), make([]*kgo.Record, 1000)
	for i := range a {
		a[i], b[i] = &kgo.Record{Value: make([]byte, 0, 128)}, &kgo.Record{Value: make([]byte, 0, 128)}
	}
	cycle := func(measure bool) float64 {
		s.fill(a)
		s.fill(b)
		calls := 0
		run := func() {
			batch := a
			if calls++; calls == 2 {
				batch = b
			}
			for _, r := range batch {
				if err := d.Process(r); err != nil {
					t.Fatal(err)
				}
			}
		}
		var n float64
		if measure {
			n = testing.AllocsPerRun(1, run)
		} else {
			run()
			run()
		}
		if err := d.Commit(); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for range 100 { // 200,000 events: more than two ttls, buckets expired and swept
		cycle(false)
	}
	// The count is the process's: Pebble's flushes and compactions, on goroutines of their own,
	// allocate into whichever cycle they overlap, more so on a loaded machine. A per-event
	// allocation would show in every cycle, so the median cycle is the measure.
	var perCycle []float64
	for range 10 {
		perCycle = append(perCycle, cycle(true))
	}
	slices.Sort(perCycle)
	allocs := 10 * perCycle[len(perCycle)/2]
	t.Logf("%v allocations per 10,000 events (10 x the median of 1,000-event cycles %v)", allocs, perCycle)
	if allocs > 2000 {
		t.Fatalf("%v allocations per 10,000 events, want at most 2000 (a bucket's filter, a sweep's iterator)", allocs)
	}
}
