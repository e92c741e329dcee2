package main

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/stream"
)

// input returns a record of partition 0 at offset off: a valid card transaction at event time ms,
// or, when bad, one the generator broke.
func input(off int64, card string, ms int64, amount float64, bad bool) *kgo.Record {
	r := &kgo.Record{Partition: 0, Offset: off, Value: []byte(fmt.Sprintf(`{"card_id":%q,"event_time":%q,"amount":%v}`,
		card, time.UnixMilli(ms).UTC().Format(time.RFC3339Nano), amount))}
	if bad {
		r.Headers = []kgo.RecordHeader{{Key: badHeader, Value: []byte("malformed_json")}}
	}
	return r
}

// output returns an output record naming its input by the lineage headers.
func output(in *kgo.Record, value string, extra ...kgo.RecordHeader) *kgo.Record {
	return &kgo.Record{Value: []byte(value), Headers: append([]kgo.RecordHeader{
		{Key: stream.HeaderSourcePartition, Value: []byte(strconv.Itoa(int(in.Partition)))},
		{Key: stream.HeaderSourceOffset, Value: []byte(strconv.FormatInt(in.Offset, 10))},
	}, extra...)}
}

var reason = kgo.RecordHeader{Key: stream.HeaderReason, Value: []byte("malformed_json")}

// TestCheckOnceFails: the exactly-once check passes the right outputs and finds each way of
// getting them wrong, so that a chaos run's "duplicates 0, losses 0" means something.
func TestCheckOnceFails(t *testing.T) {
	src := []*kgo.Record{input(0, "a", 0, 1, false), input(1, "a", 1, 2, true), input(2, "b", 2, 3, false)}
	clean := []*kgo.Record{output(src[0], "x"), output(src[2], "y")}
	dead := []*kgo.Record{output(src[1], "z", reason)}
	if r := checkOnce(src, clean, dead); !r.ok() || r.valid != 2 || r.bad != 1 {
		t.Fatalf("right outputs: %+v", r)
	}
	for _, c := range []struct {
		name        string
		clean, dead []*kgo.Record
		bad         func(onceReport) bool
	}{
		{"a valid input lost", clean[:1], dead, func(r onceReport) bool { return r.missing == 1 }},
		{"a valid input twice", append(clean, output(src[0], "x")), dead, func(r onceReport) bool { return r.duplicated == 1 }},
		{"a bad input in the clean topic", append(clean, output(src[1], "z")), nil, func(r onceReport) bool { return r.wrongOut == 1 && r.missing == 1 }},
		{"a dead letter without a reason", clean, []*kgo.Record{output(src[1], "z")}, func(r onceReport) bool { return r.noReason == 1 }},
		{"an output from no input", append(clean, &kgo.Record{Value: []byte("?")}), dead, func(r onceReport) bool { return r.unexpected == 1 }},
	} {
		if r := checkOnce(src, c.clean, c.dead); r.ok() || !c.bad(r) {
			t.Errorf("%s: %+v", c.name, r)
		}
	}
}

// TestCheckWindowsFails: the window check recomputes closed windows and late records, passes the
// right results and finds a wrong sum, a lost or repeated window and a missing late record.
func TestCheckWindowsFails(t *testing.T) {
	w := windowRules{size: 1000, maxOOO: 100, lateness: 50}
	src := []*kgo.Record{
		input(0, "a", 100, 1.5, false),
		input(1, "a", 900, 2, false),
		input(2, "b", 950, 4, false),
		input(3, "a", 1200, 1, false),
		input(4, "a", 1150, 1, true), // bad: counts nowhere
		input(5, "b", 2000, 1, false),
		input(6, "a", 800, 7, false), // watermark 1900 ≥ 1000 + 50: late
		input(7, "a", 3100, 1, false),
	}
	win := func(key string, start int64, count int, sum float64) *kgo.Record {
		return &kgo.Record{Value: []byte(fmt.Sprintf(`{"key":%q,"start":%d,"end":%d,"emit":"final","count":%d,"aggs":{"count":%d,"sum_amount":%v}}`,
			key, start, start+1000, count, count, sum))}
	}
	// The final watermark is 3000: windows ending at or before 2950 have closed.
	results := []*kgo.Record{win("a", 0, 2, 3.5), win("b", 0, 1, 4), win("a", 1000, 1, 1)}
	late := []*kgo.Record{output(src[6], "")}
	if r := checkWindows(w, src, results, late); !r.ok() || r.expected != 3 || r.lateWant != 1 {
		t.Fatalf("right results: %+v", r)
	}
	for _, c := range []struct {
		name    string
		results []*kgo.Record
		late    []*kgo.Record
		bad     func(windowReport) bool
	}{
		{"a wrong sum", []*kgo.Record{win("a", 0, 2, 3.6), results[1], results[2]}, late, func(r windowReport) bool { return r.wrong == 1 }},
		{"a window lost", results[:2], late, func(r windowReport) bool { return r.missing == 1 }},
		{"a window twice", append(results, results[0]), late, func(r windowReport) bool { return r.duplicated == 1 }},
		{"a window still open", append(results, win("b", 2000, 1, 1)), late, func(r windowReport) bool { return r.unexpected == 1 }},
		{"a late record missing", results, nil, func(r windowReport) bool { return r.lateDiff == 1 }},
	} {
		if r := checkWindows(w, src, c.results, c.late); r.ok() || !c.bad(r) {
			t.Errorf("%s: %+v", c.name, r)
		}
	}
}
