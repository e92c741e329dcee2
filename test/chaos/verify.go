package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/internal/kafkaread"
	"github.com/streamd/streamd/stream"
)

// readCommitted returns every committed record of topic, reading until it has seen each
// partition's end offset as of the call (within three minutes).
func readCommitted(ctx context.Context, addrs []string, topic string) ([]*kgo.Record, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	return kafkaread.Committed(ctx, []kgo.Opt{kgo.SeedBrokers(addrs...)}, topic)
}

// waitCaughtUp waits until group has committed the end offset of every partition of topic as of
// the call, checking alive between polls (a daemon that died will not catch up).
func waitCaughtUp(ctx context.Context, adm *kadm.Client, group, topic string, timeout time.Duration, alive func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return err
	}
	for {
		committed, err := adm.FetchOffsetsForTopics(ctx, group, topic)
		behind := 0
		ends.Each(func(o kadm.ListedOffset) {
			if c, _ := committed.Lookup(topic, o.Partition); err != nil || c.At < o.Offset {
				behind++
			}
		})
		if behind == 0 {
			return nil
		}
		if err := alive(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("group %s did not catch up on %s within %s (%d partitions behind)", group, topic, timeout, behind)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// pos is an input record's place, which the outputs name in their lineage headers.
type pos struct {
	p int32
	o int64
}

func lineage(r *kgo.Record) (pos, bool) {
	p, err1 := strconv.Atoi(header(r, stream.HeaderSourcePartition))
	o, err2 := strconv.ParseInt(header(r, stream.HeaderSourceOffset), 10, 64)
	return pos{int32(p), o}, err1 == nil && err2 == nil
}

// onceReport is what the exactly-once check found.
type onceReport struct {
	valid, bad                    int
	clean, dead                   int
	missing, duplicated, wrongOut int
	unexpected                    int // outputs that name no input
	noReason                      int // dead letters without a reason header
}

func (r onceReport) ok() bool { return r.missing+r.duplicated+r.wrongOut+r.unexpected+r.noReason == 0 }

// checkOnce checks that every input is exactly once among the outputs: in the clean topic when it
// is valid, in the dead-letter topic when the generator broke it. Outputs are matched to inputs by
// their lineage headers (source partition and offset). Every dead letter must carry its reason.
func checkOnce(src, clean, dead []*kgo.Record) onceReport {
	r := onceReport{clean: len(clean), dead: len(dead)}
	for _, rec := range dead {
		if header(rec, stream.HeaderReason) == "" {
			r.noReason++
		}
	}
	count := func(recs []*kgo.Record) map[pos]int {
		m := map[pos]int{}
		for _, rec := range recs {
			if at, ok := lineage(rec); ok {
				m[at]++
			} else {
				r.unexpected++
			}
		}
		return m
	}
	inClean, inDead := count(clean), count(dead)
	for _, rec := range src {
		at := pos{rec.Partition, rec.Offset}
		want, other := inClean, inDead
		if header(rec, badHeader) != "" {
			r.bad++
			want, other = inDead, inClean
		} else {
			r.valid++
		}
		switch n := want[at]; {
		case n == 0:
			r.missing++
		case n > 1:
			r.duplicated += n - 1
		}
		r.wrongOut += other[at]
		delete(inClean, at)
		delete(inDead, at)
	}
	r.unexpected += len(inClean) + len(inDead)
	return r
}

// windowRules are the window's parameters, in milliseconds, as the pipeline config sets them.
type windowRules struct{ size, maxOOO, lateness int64 }

type winKey struct {
	key        string
	start, end int64
}

type winAgg struct {
	count int64
	sum   float64
}

// windowReport is what the window check found.
type windowReport struct {
	expected, got               int
	missing, duplicated, wrong  int
	unexpected                  int
	lateWant, lateGot, lateDiff int
}

func (r windowReport) ok() bool {
	return r.missing+r.duplicated+r.wrong+r.unexpected+r.lateDiff == 0
}

// checkWindows recomputes the tumbling count and sum windows from the input in one batch pass, per
// partition in offset order with the runtime's watermark (the partition's largest event time minus
// the maximum out-of-orderness) and lateness rules, and compares them with the committed results:
// every window that must have closed appears exactly once with the same count and sum, and the
// records on the late topic are exactly the ones the rules make late.
func checkWindows(w windowRules, src, results, late []*kgo.Record) windowReport {
	byPart := map[int32][]*kgo.Record{}
	for _, r := range src {
		byPart[r.Partition] = append(byPart[r.Partition], r)
	}
	want := map[winKey]winAgg{}
	wantLate := map[pos]bool{}
	for p, recs := range byPart {
		sort.Slice(recs, func(i, j int) bool { return recs[i].Offset < recs[j].Offset })
		maxSeen := int64(math.MinInt64)
		open := map[winKey]winAgg{}
		for _, r := range recs {
			if header(r, badHeader) != "" {
				continue
			}
			var v struct {
				Card   string  `json:"card_id"`
				Time   string  `json:"event_time"`
				Amount float64 `json:"amount"`
			}
			if err := json.Unmarshal(r.Value, &v); err != nil {
				continue
			}
			ts, _ := time.Parse(time.RFC3339Nano, v.Time)
			t := ts.UnixMilli()
			start := int64(math.Floor(float64(t)/float64(w.size))) * w.size
			k := winKey{v.Card, start, start + w.size}
			if maxSeen != math.MinInt64 && k.end+w.lateness <= maxSeen-w.maxOOO {
				wantLate[pos{p, r.Offset}] = true
			} else {
				a := open[k]
				a.count++
				a.sum += v.Amount
				open[k] = a
			}
			maxSeen = max(maxSeen, t)
		}
		for k, a := range open {
			if k.end+w.lateness <= maxSeen-w.maxOOO {
				want[k] = a
			}
		}
	}
	rep := windowReport{expected: len(want), got: len(results), lateWant: len(wantLate), lateGot: len(late)}
	seen := map[winKey]int{}
	for _, r := range results {
		var v struct {
			Key   string             `json:"key"`
			Start int64              `json:"start"`
			End   int64              `json:"end"`
			Emit  string             `json:"emit"`
			Count int64              `json:"count"`
			Aggs  map[string]float64 `json:"aggs"`
		}
		if err := json.Unmarshal(r.Value, &v); err != nil || v.Emit != "final" {
			rep.unexpected++
			continue
		}
		k := winKey{v.Key, v.Start, v.End}
		seen[k]++
		exp, ok := want[k]
		switch {
		case !ok:
			rep.unexpected++
		case seen[k] > 1:
			rep.duplicated++
		case exp.count != v.Count || math.Abs(exp.sum-v.Aggs["sum_amount"]) > 1e-6*math.Max(1, math.Abs(exp.sum)):
			rep.wrong++
		}
	}
	for k := range want {
		if seen[k] == 0 {
			rep.missing++
		}
	}
	gotLate := map[pos]int{}
	for _, r := range late {
		at, ok := lineage(r)
		gotLate[at]++
		if !ok || !wantLate[at] || gotLate[at] > 1 {
			rep.lateDiff++
		}
	}
	for at := range wantLate {
		if gotLate[at] == 0 {
			rep.lateDiff++
		}
	}
	return rep
}
