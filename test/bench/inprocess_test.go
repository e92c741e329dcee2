package main

import (
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/config"
	"github.com/streamd/streamd/internal/gen"
	"github.com/streamd/streamd/state"
	"github.com/streamd/streamd/stream"
	"github.com/streamd/streamd/stream/streamtest"
)

// BenchmarkMLInProcess runs the ml pipeline (ml.go) as one task over the bench's generated input,
// without a broker: real Pebble on disk, outputs discarded, a commit every 5,000 records. It gives
// the process's CPU time per record (cpu-ns/rec: the task and Pebble's background work), which a
// loaded machine disturbs less than wall time, and the state changes it writes per record
// (changelog-B/rec: keys and values of every store's changelog, which Pebble writes too and then
// compacts), which does not depend on the machine at all:
//
//	go test ./test/bench -run '^$' -bench MLInProcess -benchtime 500000x -cpuprofile /tmp/ml.pprof
func BenchmarkMLInProcess(b *testing.B) {
	c, err := config.Parse(mlPipeline)
	if err != nil {
		b.Fatal(err)
	}
	c.App, c.State.Dir = "bench-ml", b.TempDir()
	c.Source.Topic, c.Labels.Topic = "in", "labels"
	p, err := c.Pipeline()
	if err != nil {
		b.Fatal(err)
	}
	d, err := streamtest.NewDriver(p, streamtest.Config{StateDir: c.State.Dir, MaxOutOfOrderness: 5 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	g, err := gen.New(gen.Config{Seed: 42, Keys: 100_000, OutOfOrder: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().Add(-time.Duration(b.N) * time.Millisecond)
	recs := make([]*kgo.Record, 0, 5000)
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		at := now.Add(time.Duration(i) * time.Millisecond)
		r := g.Next(at)
		recs = append(recs, &kgo.Record{Topic: "in", Key: r.Key, Value: r.Value, Offset: int64(i), Timestamp: at})
		if len(recs) == cap(recs) || i == b.N-1 {
			if err := d.Process(recs...); err != nil {
				b.Fatal(err)
			}
			if err := d.Commit(); err != nil {
				b.Fatal(err)
			}
			recs = recs[:0]
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/rec")
	changelog := 0
	stores := []string{"task"}
	for _, op := range p.Operators {
		if st, ok := op.(stream.Stateful); ok {
			stores = append(stores, st.Stores()...)
		}
	}
	for _, s := range stores {
		for _, r := range d.Outputs(state.ChangelogTopic(c.App, s)) {
			changelog += len(r.Key) + len(r.Value)
		}
	}
	b.ReportMetric(float64(changelog)/float64(b.N), "changelog-B/rec")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
