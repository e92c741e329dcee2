package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"
)

// The checker. Every system's output is compared with a reference computed here, by brute force,
// from the input as the broker holds it (each partition in offset order), so that the systems are
// compared with each other through it: a run whose output differs does not count.
//
// Window results (the window and ysb jobs) are final results: each one a system emits must equal
// the reference's window of that key and start (count exactly, sum within 1e-9 relative: the
// systems add in different orders), none twice; and every window that had closed in every system
// must be there. A window [start, end) closes when the watermark, the newest event time less the
// 5 s allowed out-of-orderness, passes end. Systems keep the watermark per partition (streamd,
// Kafka Streams) or the minimum over partitions (Flink), and the tail of the input leaves
// different windows open in each; so the windows required are those ending at least one window
// size before the oldest of the partitions' newest event times (less the 5 s).
//
// Sliding results (the sliding job) are one per input event: for each key, the sequence of results
// in output order must equal the reference's sequence for that key's events in input order.

// Lateness is the allowed out-of-orderness of every system: their watermark is the newest event
// time less this.
const Lateness = 5 * time.Second

// Slide and Pane are the sliding job's window: the last 10 minutes, in panes of 10 s.
const (
	Slide = 10 * time.Minute
	Pane  = 10 * time.Second
)

// In is one input event as the jobs see it: its key for the job (card; or campaign, joined from
// the table), time (Unix ms), amount, and whether it counts (the ysb job counts views only).
type In struct {
	Key    string
	Time   int64
	Amount float64
	Counts bool
}

// Out is one output record, in any of the systems' JSON: streamd's window result
// ({"key","start","end","count","aggs":{"sum_amount"}}) or the peers' ({"key",...,"sum"}).
type Out struct {
	Key   string              `json:"key"`
	Start int64               `json:"start"`
	End   int64               `json:"end"`
	Count int64               `json:"count"`
	Sum   *float64            `json:"sum"`
	Aggs  map[string]*float64 `json:"aggs"`
}

// ParseOut decodes one output record's value.
func ParseOut(v []byte) (Out, error) {
	var o Out
	if err := json.Unmarshal(v, &o); err != nil {
		return o, err
	}
	if o.Sum == nil && o.Aggs != nil {
		o.Sum = o.Aggs["sum_amount"]
	}
	return o, nil
}

func (o Out) sum() float64 {
	if o.Sum == nil {
		return 0
	}
	return *o.Sum
}

type winKey struct {
	key   string
	start int64
}

type winAgg struct {
	count int64
	sum   float64
	seen  bool
}

// Result is what the checker found of one system's output.
type Result struct {
	Outputs  int    // output records read
	Required int    // window results required (0 for sliding)
	Err      string // empty: the output agrees with the reference
}

// CheckWindows checks tumbling-window results of size size over parts (the input, by partition, in
// offset order) against the reference, as described above.
func CheckWindows(parts [][]In, size time.Duration, outs []Out) Result {
	sz := size.Milliseconds()
	ref := map[winKey]*winAgg{}
	cutoff := int64(math.MaxInt64)
	for _, p := range parts {
		newest := int64(math.MinInt64)
		for _, e := range p {
			if !e.Counts {
				continue
			}
			newest = max(newest, e.Time)
			k := winKey{e.Key, floorDiv(e.Time, sz) * sz}
			a := ref[k]
			if a == nil {
				a = &winAgg{}
				ref[k] = a
			}
			a.count++
			a.sum += e.Amount
		}
		if newest != math.MinInt64 {
			cutoff = min(cutoff, newest)
		}
	}
	cutoff -= Lateness.Milliseconds() + sz
	r := Result{Outputs: len(outs)}
	var errs []error
	for _, o := range outs {
		a := ref[winKey{o.Key, o.Start}]
		switch {
		case a == nil:
			errs = append(errs, fmt.Errorf("window %s [%d, %d): not in the input", o.Key, o.Start, o.End))
		case a.seen:
			errs = append(errs, fmt.Errorf("window %s [%d, %d): emitted twice", o.Key, o.Start, o.End))
		case o.End != o.Start+sz:
			errs = append(errs, fmt.Errorf("window %s [%d, %d): not %v long", o.Key, o.Start, o.End, size))
		case o.Count != a.count || !near(o.sum(), a.sum):
			errs = append(errs, fmt.Errorf("window %s [%d, %d): count %d sum %v, want %d and %v", o.Key, o.Start, o.End, o.Count, o.sum(), a.count, a.sum))
		}
		if a != nil {
			a.seen = true
		}
	}
	var missing []winKey
	for k, a := range ref {
		if k.start+sz <= cutoff {
			r.Required++
			if !a.seen {
				missing = append(missing, k)
			}
		}
	}
	if len(missing) > 0 {
		sort.Slice(missing, func(i, j int) bool { return missing[i].start < missing[j].start })
		errs = append(errs, fmt.Errorf("%d closed windows missing, the first %s [%d, ...)", len(missing), missing[0].key, missing[0].start))
	}
	r.Err = summarize(errs)
	return r
}

// CheckSliding checks the sliding job's results (10 min in 10 s panes, as of each event; outs in
// the order they were read, which keeps each key's order) against the reference.
func CheckSliding(parts [][]In, outs []Out) Result {
	type res struct {
		start, end, count int64
		sum               float64
	}
	size, res0 := Slide.Milliseconds(), Pane.Milliseconds()
	want := map[string][]res{}
	panes := map[string]map[int64]*winAgg{}
	for _, p := range parts {
		for _, e := range p {
			pane := floorDiv(e.Time, res0) * res0
			ps := panes[e.Key]
			if ps == nil {
				ps = map[int64]*winAgg{}
				panes[e.Key] = ps
			}
			a := ps[pane]
			if a == nil {
				a = &winAgg{}
				ps[pane] = a
			}
			a.count++
			a.sum += e.Amount
			r := res{start: pane - size + res0, end: pane + res0}
			for s := pane - size + res0; s <= pane; s += res0 {
				if a := ps[s]; a != nil {
					r.count += a.count
					r.sum += a.sum
				}
			}
			want[e.Key] = append(want[e.Key], r)
		}
	}
	got := map[string]int{}
	var errs []error
	for _, o := range outs {
		i := got[o.Key]
		got[o.Key]++
		w := want[o.Key]
		if i >= len(w) {
			if i == len(w) {
				errs = append(errs, fmt.Errorf("key %s: more than its %d results", o.Key, len(w)))
			}
			continue
		}
		if o.Start != w[i].start || o.End != w[i].end || o.Count != w[i].count || !near(o.sum(), w[i].sum) {
			errs = append(errs, fmt.Errorf("key %s result %d: [%d, %d) count %d sum %v, want [%d, %d) %d and %v",
				o.Key, i, o.Start, o.End, o.Count, o.sum(), w[i].start, w[i].end, w[i].count, w[i].sum))
		}
	}
	short := 0
	for k, w := range want {
		if got[k] < len(w) {
			short++
		}
	}
	if short > 0 {
		errs = append(errs, fmt.Errorf("%d keys have fewer results than events", short))
	}
	return Result{Outputs: len(outs), Err: summarize(errs)}
}

// CheckCopy checks the bare loop's output: one record per input record.
func CheckCopy(inputs, outputs int) Result {
	r := Result{Outputs: outputs}
	if inputs != outputs {
		r.Err = fmt.Sprintf("%d outputs for %d inputs", outputs, inputs)
	}
	return r
}

func near(a, b float64) bool {
	return math.Abs(a-b) <= 1e-9*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// summarize keeps the first three errors and the count of the others.
func summarize(errs []error) string {
	if len(errs) == 0 {
		return ""
	}
	s := errors.Join(errs[:min(3, len(errs))]...).Error()
	if len(errs) > 3 {
		s += fmt.Sprintf("\n(and %d more)", len(errs)-3)
	}
	return s
}
