package window

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/stream"
	"github.com/streamd/streamd/stream/streamtest"
	"github.com/streamd/streamd/window/agg"
)

// benchRecords makes card-transaction-like records: keys Zipf over 100k cards, event time advancing
// 1 ms per record with a little disorder.
func benchRecords(n int) []*kgo.Record {
	rng := rand.New(rand.NewPCG(1, 2))
	zipf := rand.NewZipf(rng, 1.1, 1, 100_000-1)
	base := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC).UnixMilli()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		ts := base + int64(i) - int64(rng.IntN(500))
		v := fmt.Sprintf(`{"event_id":"%016x","card_id":"card-%06d","event_time":%d,"amount":%d.%02d,"merchant":"m-%04d","country":"DE","channel":"pos","mcc":5411}`,
			i, zipf.Uint64(), ts, rng.IntN(500), rng.IntN(100), rng.IntN(3000))
		recs[i] = &kgo.Record{Topic: "tx", Offset: int64(i), Value: []byte(v), Timestamp: time.UnixMilli(ts)}
	}
	return recs
}

func benchPipeline(b *testing.B, spec Spec) *streamtest.Driver {
	f := &stream.JSONFormat{
		KeyField: "card_id", IDField: "event_id",
		Time:   stream.EventTimeSpec{Field: "event_time", Format: stream.TimeEpochMillis},
		Fields: []stream.FieldSpec{{Name: "amount", Type: stream.Number, Required: true}, {Name: "merchant", Type: stream.String}},
	}
	if err := f.Init(); err != nil {
		b.Fatal(err)
	}
	op, err := New(spec, f)
	if err != nil {
		b.Fatal(err)
	}
	d, err := streamtest.NewDriver(&stream.Pipeline{Name: "bench", Source: stream.Source{Topic: "tx", Format: f},
		Operators: []stream.Operator{op}, DeadLetterTopic: "dlq", LateTopic: "late"},
		streamtest.Config{StateDir: b.TempDir(), MaxOutOfOrderness: 5 * time.Second, Discard: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close() })
	return d
}

// benchWindow measures decode + window update per record on one core, with a commit (changelog
// flush and Pebble batch commit) every 20k records, as the runtime's commit cycle would.
func benchWindow(b *testing.B, spec Spec) {
	recs := benchRecords(200_000)
	d := benchPipeline(b, spec)
	// Warm up: open windows for the hot keys, grow the buffers.
	for i := range 40_000 {
		if err := d.Process(recs[i]); err != nil {
			b.Fatal(err)
		}
	}
	if err := d.Commit(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := d.Process(recs[i%len(recs)]); err != nil {
			b.Fatal(err)
		}
		if i%20_000 == 19_999 {
			if err := d.Commit(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkTumblingCountSum is the DESIGN workload's operator: 60 s tumbling count + sum per key.
func BenchmarkTumblingCountSum(b *testing.B) {
	benchWindow(b, Spec{Name: "w", Kind: Tumbling, Size: time.Minute, Aggs: []Agg{
		{Name: "count", Kind: agg.Count}, {Name: "sum_amount", Kind: agg.Sum, Field: "amount"}}})
}

// BenchmarkTumblingAllAggs adds mean, stddev, p99 and distinct merchants.
func BenchmarkTumblingAllAggs(b *testing.B) {
	benchWindow(b, Spec{Name: "w", Kind: Tumbling, Size: time.Minute, Aggs: []Agg{
		{Name: "count", Kind: agg.Count}, {Name: "sum", Kind: agg.Sum, Field: "amount"},
		{Name: "mean", Kind: agg.Mean, Field: "amount"}, {Name: "stddev", Kind: agg.StdDev, Field: "amount"},
		{Name: "p99", Kind: agg.Quantile, Field: "amount", Q: 0.99}, {Name: "distinct", Kind: agg.Distinct, Field: "merchant"}}})
}

// BenchmarkSlidingCountSum: the feature window, 10 minutes at 10 s resolution, per event.
func BenchmarkSlidingCountSum(b *testing.B) {
	benchWindow(b, Spec{Name: "w", Kind: Sliding, Size: 10 * time.Minute, Resolution: 10 * time.Second, Aggs: []Agg{
		{Name: "count", Kind: agg.Count}, {Name: "sum_amount", Kind: agg.Sum, Field: "amount"}}})
}

// BenchmarkSessionCountSum: sessions with a 30 s gap.
func BenchmarkSessionCountSum(b *testing.B) {
	benchWindow(b, Spec{Name: "w", Kind: Session, Gap: 30 * time.Second, Aggs: []Agg{
		{Name: "count", Kind: agg.Count}, {Name: "sum_amount", Kind: agg.Sum, Field: "amount"}}})
}
