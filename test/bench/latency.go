package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/internal/gen"
	"github.com/streamd/streamd/stream"
)

// Latency runs.
//
// A latency run feeds a workload at a fixed rate (a fraction of the rate it reached on the backlog
// earlier in the same run) from a fresh, empty input topic, and measures, for every input record,
// the time from its produce call to the moment a read_committed consumer of the workload's output
// sees the first output that came from it. streamd's outputs name their source record in lineage
// headers (topic, partition, offset); the bare loop copies each record's timestamp, which franz-go
// sets at the produce call, so for it the output's own timestamp is the produce time.
//
// Only workloads with an output per input record are measured: a window result is published when
// its window closes, which is a semantic delay (the window size), not the pipeline's latency.
//
// The first latencyWarmup of each run is left out of the percentiles: the workload joins its group
// and opens its tasks then, and the records of those seconds wait for that, not for the pipeline.

const latencyWarmup = 10 * time.Second

type latencyResult struct {
	workload string
	fraction float64
	target   float64 // records/s asked for
	achieved float64 // records/s the producer reached
	measured int     // records whose output was seen, after the warm-up
	missing  int     // records produced whose output was not seen
	p50, p99 time.Duration
	p999     time.Duration
	peakRSS  int64
}

// producedTimes keeps the produce time of every input record by partition and offset. A fresh
// topic written by one idempotent producer has dense offsets from 0, so a slice per partition holds
// them (8 bytes a record).
type producedTimes struct {
	mu    sync.Mutex
	parts [][]int64 // unix nanoseconds; 0: not acknowledged (yet)
}

func (pt *producedTimes) set(p int32, off int64, t time.Time) {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	s := pt.parts[p]
	for int64(len(s)) <= off {
		s = append(s, 0)
	}
	s[off] = t.UnixNano()
	pt.parts[p] = s
}

func (pt *producedTimes) get(p int32, off int64) int64 {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	if p < 0 || int(p) >= len(pt.parts) || off < 0 || off >= int64(len(pt.parts[p])) {
		return 0
	}
	return pt.parts[p][off]
}

// latencyRun runs workload w, fed at rate records/s for d, and measures its latencies.
func latencyRun(ctx context.Context, cl *kgo.Client, adm *kadm.Client, addrs []string, partitions int32,
	keys int, w string, fraction, rate float64, d time.Duration, stamp string) (latencyResult, error) {
	res := latencyResult{workload: w, fraction: fraction, target: rate}
	run := fmt.Sprintf("lat-%s-%s-%02.0f", w, stamp, fraction*100)
	input, grp, out := "bench-input-"+run, "bench-"+run, "bench-out-"+run
	for _, t := range []string{input, out} {
		if _, err := adm.CreateTopic(ctx, partitions, 1, nil, t); err != nil {
			return res, err
		}
	}
	if w == "full" || w == "ml" {
		if err := createLabels(ctx, adm, partitions, out+"-labels"); err != nil {
			return res, err
		}
	}

	// The reader: every output record's latency, by the source record it came from.
	times := &producedTimes{parts: make([][]int64, partitions)}
	seen := make([]map[int64]bool, partitions)
	for i := range seen {
		seen[i] = make(map[int64]bool)
	}
	var (
		lmu       sync.Mutex
		latencies []time.Duration
		pending   []pendingOutput // outputs read before their input's acknowledgement came back
		cutoff    time.Time       // inputs produced before this are the warm-up
	)
	rd, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(out),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(10*time.Millisecond))
	if err != nil {
		return res, err
	}
	defer rd.Close()
	rctx, stopReader := context.WithCancel(ctx)
	defer stopReader()
	readerDone := make(chan struct{})
	totalSeen := 0
	record := func(p int32, off int64, producedNs int64, seenAt time.Time) {
		if p < 0 || int(p) >= len(seen) || seen[p][off] {
			return
		}
		seen[p][off] = true
		totalSeen++
		if time.Unix(0, producedNs).Before(cutoff) {
			return
		}
		latencies = append(latencies, seenAt.Sub(time.Unix(0, producedNs)))
	}
	go func() {
		defer close(readerDone)
		for rctx.Err() == nil {
			fs := rd.PollFetches(rctx)
			now := time.Now()
			lmu.Lock()
			fs.EachRecord(func(r *kgo.Record) {
				p, off, ok := lineage(r)
				if !ok {
					// The bare loop: the output carries its input's produce time. Its offset is
					// unknown, so the output's own position stands for it (one output per input).
					record(r.Partition, r.Offset, r.Timestamp.UnixNano(), now)
					return
				}
				if t := times.get(p, off); t != 0 {
					record(p, off, t, now)
				} else {
					pending = append(pending, pendingOutput{p, off, now})
				}
			})
			lmu.Unlock()
		}
	}()

	self, err := os.Executable()
	if err != nil {
		return res, err
	}
	cmd := exec.Command(self, "-role", w, "-brokers", strings.Join(addrs, ","), "-input", input, "-group", grp,
		"-out", out, "-window-size", windowSize.String())
	cmd.Stderr = os.Stderr
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		return res, err
	}
	peak := make(chan workloadOutput, 1)
	go func() { peak <- readOutput(stdout) }()

	// The producer: records stamped with the wall clock as their event time, at the given rate.
	g, err := gen.New(gen.Config{Seed: 7, Keys: min(keys, gen.MaxKeys), OutOfOrder: time.Millisecond})
	if err != nil {
		return res, err
	}
	var perr error
	var pmu sync.Mutex
	start := time.Now()
	lmu.Lock()
	cutoff = start.Add(latencyWarmup)
	lmu.Unlock()
	produced := 0
	tick := time.NewTicker(time.Millisecond)
	for now := start; now.Sub(start) < d; now = <-tick.C {
		due := int(rate * now.Sub(start).Seconds())
		for ; produced < due; produced++ {
			rec := g.Next(now)
			cl.Produce(ctx, &kgo.Record{Topic: input, Key: rec.Key, Value: rec.Value}, func(r *kgo.Record, err error) {
				if err != nil {
					pmu.Lock()
					perr = err
					pmu.Unlock()
					return
				}
				times.set(r.Partition, r.Offset, r.Timestamp)
			})
		}
	}
	tick.Stop()
	res.achieved = float64(produced) / time.Since(start).Seconds()
	if err := cl.Flush(ctx); err != nil {
		return res, err
	}
	if perr != nil {
		return res, perr
	}
	// Wait for the workload to commit everything it was given, then let the reader catch up.
	ends, err := adm.ListEndOffsets(ctx, input)
	if err != nil {
		return res, err
	}
	if err := waitCommitted(ctx, adm, grp, input, ends); err != nil {
		_ = cmd.Process.Kill()
		return res, err
	}
	// Every input (valid by construction) has an output: wait until the reader has seen them all.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		lmu.Lock()
		n := totalSeen + len(pending)
		lmu.Unlock()
		if n >= produced {
			break
		}
	}
	_ = cmd.Process.Signal(os.Interrupt)
	_ = cmd.Wait()
	res.peakRSS = (<-peak).peakRSS
	stopReader()
	<-readerDone

	lmu.Lock()
	defer lmu.Unlock()
	for _, o := range pending {
		if t := times.get(o.partition, o.offset); t != 0 {
			record(o.partition, o.offset, t, o.seen)
		}
	}
	res.missing = produced - totalSeen
	res.measured = len(latencies)
	if len(latencies) == 0 {
		return res, errors.New("no output seen after the warm-up")
	}
	slices.Sort(latencies)
	res.p50, res.p99, res.p999 = percentile(latencies, 0.5), percentile(latencies, 0.99), percentile(latencies, 0.999)
	return res, nil
}

type pendingOutput struct {
	partition int32
	offset    int64
	seen      time.Time
}

// lineage returns the source partition and offset a streamd output names in its headers.
func lineage(r *kgo.Record) (int32, int64, bool) {
	var p, off int64 = -1, -1
	for _, h := range r.Headers {
		switch h.Key {
		case stream.HeaderSourcePartition:
			p, _ = strconv.ParseInt(string(h.Value), 10, 32)
		case stream.HeaderSourceOffset:
			off, _ = strconv.ParseInt(string(h.Value), 10, 64)
		}
	}
	return int32(p), off, p >= 0 && off >= 0
}

func percentile(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func createLabels(ctx context.Context, adm *kadm.Client, partitions int32, labels string) error {
	if _, err := adm.CreateTopic(ctx, partitions, 1, nil, labels); err != nil {
		return err
	}
	// The runtime refuses to start on a source it cannot see: wait for the metadata.
	for i := 0; ; i++ {
		td, err := adm.ListTopics(ctx, labels)
		if err == nil && td.Has(labels) && td[labels].Err == nil {
			return nil
		}
		if i == 100 {
			return fmt.Errorf("labels topic %s did not appear", labels)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
