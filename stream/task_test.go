package stream

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// newTestTask builds a task outside a runtime: produced records go to sent.
func newTestTask(tb testing.TB, f *JSONFormat, ops []Operator, sent *[]*kgo.Record) *Task {
	tb.Helper()
	if err := f.Init(); err != nil {
		tb.Fatal(err)
	}
	t := &Task{
		topic: "tx", partition: 0,
		dec:   f.NewDecoder(),
		ops:   ops,
		cycle: cycleCounts{deadLetters: map[Reason]int{}, produced: map[string]int{}, late: map[string]int{}},
		wm:    newWatermark(5000),
		lag:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "lag"}),
		send: func(r *kgo.Record) {
			if sent != nil {
				*sent = append(*sent, r)
			}
		},
		deadLetterTopic:    "dlq",
		deadLetterMaxBytes: 1024,
	}
	for _, op := range ops {
		p, err := op.Open(t)
		if err != nil {
			tb.Fatal(err)
		}
		t.procs = append(t.procs, p)
	}
	return t
}

func benchFormat() *JSONFormat {
	zero := 0.0
	return &JSONFormat{
		KeyField: "card_id", IDField: "event_id",
		Time: EventTimeSpec{Field: "event_time", Format: TimeRFC3339, MaxFuture: time.Hour, NotBefore: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)},
		Fields: []FieldSpec{
			{Name: "amount", Type: Number, Required: true, Min: &zero},
			{Name: "merchant", Type: String, MaxLength: 64},
			{Name: "country", Type: String, MaxLength: 2},
			{Name: "channel", Type: String, Values: []string{"pos", "online", "atm"}},
			{Name: "mcc", Type: Number},
		},
		MaxRecordBytes: 64 << 10,
	}
}

func cardRecord(i int, now time.Time) *kgo.Record {
	v := fmt.Sprintf(`{"event_id":"%016x","card_id":"card-%06d","event_time":%q,"amount":%d.17,"merchant":"m-%04d","country":"DE","channel":"online","mcc":5411}`,
		i, i%10000, now.UTC().Format("2006-01-02T15:04:05.000Z"), i%900, i%3000)
	return &kgo.Record{Topic: "tx", Partition: 0, Offset: int64(i), Key: []byte(fmt.Sprintf("card-%06d", i%10000)), Value: []byte(v), Timestamp: now}
}

// TestTaskHotPathAllocs: decoding, validating and forwarding a record allocates nothing once the
// cycle's slabs have grown.
func TestTaskHotPathAllocs(t *testing.T) {
	now := time.Now()
	task := newTestTask(t, benchFormat(), []Operator{&Forward{Topic: "clean"}}, nil)
	recs := make([]*kgo.Record, 512)
	for i := range recs {
		recs[i] = cardRecord(i, now)
	}
	i := 0
	step := func() {
		if err := task.process(recs[i%len(recs)]); err != nil {
			t.Fatal(err)
		}
		i++
		if i%len(recs) == 0 {
			task.out.reset() // a commit cycle ends
			task.cycle.reset()
		}
	}
	for range 2 * len(recs) {
		step() // grow the slabs
	}
	if n := testing.AllocsPerRun(2000, step); n != 0 {
		t.Fatalf("%v allocations per record, want 0", n)
	}
}

// TestTaskDeadLetters: a rejected record is produced to the dead-letter topic with its reason,
// detail, field and lineage headers, truncated past the limit, and counted.
func TestTaskDeadLetters(t *testing.T) {
	var sent []*kgo.Record
	task := newTestTask(t, benchFormat(), []Operator{&Forward{Topic: "clean"}}, &sent)
	now := time.Now()
	good := cardRecord(1, now)
	bad := cardRecord(2, now)
	bad.Value = []byte(`{"event_id":"x","card_id":"c","event_time":"2026-01-01T00:00:00Z","amount":"12"}`)
	bad.Headers = []kgo.RecordHeader{{Key: "trace-id", Value: []byte("t-1")}, {Key: HeaderReplayCount, Value: []byte("1")}}
	huge := cardRecord(3, now)
	huge.Value = append([]byte(`{"pad":"`), make([]byte, 70<<10)...)
	for _, r := range []*kgo.Record{good, bad, huge} {
		if err := task.process(r); err != nil {
			t.Fatal(err)
		}
	}
	if len(sent) != 3 || sent[0].Topic != "clean" || sent[1].Topic != "dlq" || sent[2].Topic != "dlq" {
		t.Fatalf("sent %d records: %v", len(sent), sent)
	}
	hdr := func(r *kgo.Record, k string) string {
		for _, h := range r.Headers {
			if h.Key == k {
				return string(h.Value)
			}
		}
		return ""
	}
	if hdr(sent[1], HeaderReason) != string(ReasonWrongType) || hdr(sent[1], HeaderField) != "amount" || hdr(sent[1], HeaderSourceOffset) != "2" {
		t.Errorf("dead letter headers: %v", sent[1].Headers)
	}
	// The record's own headers are kept, for streamd dlq replay: a user's header, and the replay
	// count that stops a record from being replayed forever.
	if hdr(sent[1], "trace-id") != "t-1" || hdr(sent[1], HeaderReplayCount) != "1" {
		t.Errorf("dead letter lost the record's headers: %v", sent[1].Headers)
	}
	if hdr(sent[2], HeaderReason) != string(ReasonTooLarge) || len(sent[2].Value) != 1024 || hdr(sent[2], HeaderOriginalBytes) != fmt.Sprint(len(huge.Value)) {
		t.Errorf("huge dead letter: %d bytes, headers %v", len(sent[2].Value), sent[2].Headers)
	}
	if string(sent[0].Key) != "card-000001" || hdr(sent[0], HeaderEventTime) != fmt.Sprint(now.UnixMilli()) || hdr(sent[0], HeaderSourceTopic) != "tx" {
		t.Errorf("forwarded record: key %s ts %v headers %v", sent[0].Key, sent[0].Timestamp, sent[0].Headers)
	}
	if task.cycle.consumed != 3 || task.cycle.deadLetters[ReasonWrongType] != 1 || task.cycle.produced["dlq"] != 2 {
		t.Errorf("cycle counts %+v", task.cycle)
	}
}

// TestTaskTimestamps: an output's records carry processing time (an unset timestamp, which the
// producer sets when it takes the record) unless its TopicSettings ask for event time, and their
// event time is always in HeaderEventTime; a dead letter carries processing time with the rejected
// record's own timestamp in HeaderSourceTimestamp, or, with event time, keeps it as its own.
func TestTaskTimestamps(t *testing.T) {
	produced := time.Now()
	old := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	rec := func(i int, value string) *kgo.Record {
		r := cardRecord(i, old)
		r.Timestamp = produced // the source record was produced now, about an event of 2024
		if value != "" {
			r.Value = []byte(value)
		}
		return r
	}
	hdr := func(r *kgo.Record, k string) (string, bool) {
		for _, h := range r.Headers {
			if h.Key == k {
				return string(h.Value), true
			}
		}
		return "", false
	}
	for _, tc := range []struct {
		name      string
		eventTime bool
	}{{"processing time", false}, {"event time", true}} {
		t.Run(tc.name, func(t *testing.T) {
			var sent []*kgo.Record
			task := newTestTask(t, benchFormat(), []Operator{&Forward{Topic: "clean"}}, &sent)
			if tc.eventTime {
				task.eventTime = (&Pipeline{Topics: map[string]TopicSettings{"clean": {EventTime: true}, "dlq": {EventTime: true}}}).eventTimeTopics()
			}
			for _, r := range []*kgo.Record{rec(1, ""), rec(2, `{"event_id":"x","card_id":"c","event_time":"2024-03-01T12:00:00Z","amount":"12"}`)} {
				if err := task.process(r); err != nil {
					t.Fatal(err)
				}
			}
			if len(sent) != 2 || sent[0].Topic != "clean" || sent[1].Topic != "dlq" {
				t.Fatalf("sent %v", sent)
			}
			clean, dead := sent[0], sent[1]
			if v, _ := hdr(clean, HeaderEventTime); v != fmt.Sprint(old.UnixMilli()) {
				t.Errorf("clean record's %s header is %q, want the event time %d", HeaderEventTime, v, old.UnixMilli())
			}
			src, hasSrc := hdr(dead, HeaderSourceTimestamp)
			if tc.eventTime {
				if !clean.Timestamp.Equal(old) {
					t.Errorf("clean record's timestamp %v, want the event time %v", clean.Timestamp, old)
				}
				if !dead.Timestamp.Equal(produced.Truncate(time.Millisecond)) && !dead.Timestamp.Equal(produced) || hasSrc {
					t.Errorf("dead letter's timestamp %v (header %q), want the record's own %v and no header", dead.Timestamp, src, produced)
				}
				return
			}
			if !clean.Timestamp.IsZero() || !dead.Timestamp.IsZero() {
				t.Errorf("timestamps %v and %v are set; the producer is to stamp them with processing time", clean.Timestamp, dead.Timestamp)
			}
			if src != fmt.Sprint(produced.UnixMilli()) {
				t.Errorf("dead letter's %s header is %q, want the record's own timestamp %d", HeaderSourceTimestamp, src, produced.UnixMilli())
			}
		})
	}
}

// BenchmarkTaskProcess measures the per-record path of the pass-through pipeline on one core:
// decode, validate, forward into the cycle's outbox (the Kafka produce itself is not included).
func BenchmarkTaskProcess(b *testing.B) {
	now := time.Now()
	task := newTestTask(b, benchFormat(), []Operator{&Forward{Topic: "clean"}}, nil)
	recs := make([]*kgo.Record, 4096)
	for i := range recs {
		recs[i] = cardRecord(i, now)
	}
	b.SetBytes(int64(len(recs[0].Value)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := task.process(recs[i%len(recs)]); err != nil {
			b.Fatal(err)
		}
		if i%len(recs) == len(recs)-1 {
			task.out.reset()
			task.cycle.reset()
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
