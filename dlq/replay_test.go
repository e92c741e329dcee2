package dlq_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/dlq"
	"github.com/streamd/streamd/stream"
	"github.com/streamd/streamd/test/kafkatest"
)

// deadLetter is a dead letter as stream writes it: the record (key, value, timestamp, its own
// headers), then the lineage and the rejection.
func deadLetter(dlqTopic, src string, part int32, off int64, reason stream.Reason, ts time.Time, extra ...kgo.RecordHeader) *kgo.Record {
	h := []kgo.RecordHeader{
		{Key: stream.HeaderSourceTopic, Value: []byte(src)},
		{Key: stream.HeaderSourcePartition, Value: []byte(strconv.Itoa(int(part)))},
		{Key: stream.HeaderSourceOffset, Value: []byte(strconv.FormatInt(off, 10))},
		{Key: "trace-id", Value: []byte(fmt.Sprintf("t-%d", off))},
	}
	h = append(h, extra...)
	h = append(h, kgo.RecordHeader{Key: stream.HeaderReason, Value: []byte(reason)},
		kgo.RecordHeader{Key: stream.HeaderError, Value: []byte("detail")})
	return &kgo.Record{Topic: dlqTopic, Partition: 0, Key: []byte(fmt.Sprintf("card-%d", off)),
		Value: []byte(fmt.Sprintf(`{"n":%d}`, off)), Timestamp: ts, Headers: h}
}

func header(r *kgo.Record, key string) string { return kafkatest.Header(r, key) }

type fixture struct {
	b        *kafkatest.Broker
	app      string
	src, dlq string
	base     time.Time
}

// newFixture writes 30 dead letters: offsets 0..29 of the source, reason missing_field for even
// offsets and out_of_range for odd ones, one a minute apart; offset 7 was already replayed
// three times, offset 9 was truncated.
func newFixture(t *testing.T) *fixture {
	b := kafkatest.Start(t)
	f := &fixture{b: b, app: kafkatest.Name(t, "app"), src: b.Topic(t, "src", 3), dlq: b.Topic(t, "dlq", 2),
		base: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	cl := b.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var recs []*kgo.Record
	for i := int64(0); i < 30; i++ {
		reason := stream.ReasonMissingField
		if i%2 == 1 {
			reason = stream.ReasonOutOfRange
		}
		var extra []kgo.RecordHeader
		switch i {
		case 7:
			extra = append(extra, kgo.RecordHeader{Key: stream.HeaderReplayCount, Value: []byte("3")})
		case 9:
			extra = append(extra, kgo.RecordHeader{Key: stream.HeaderOriginalBytes, Value: []byte("99999")})
		case 11:
			// A record read from another streamd pipeline's output carries that pipeline's lineage.
			extra = append(extra, kgo.RecordHeader{Key: stream.HeaderSourceTopic, Value: []byte("upstream")})
		}
		r := deadLetter(f.dlq, f.src, int32(i%3), i, reason, f.base.Add(time.Duration(i)*time.Minute), extra...)
		r.Partition = int32(i % 2)
		recs = append(recs, r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) options(sel dlq.Selection) dlq.Options {
	return dlq.Options{App: f.app, Brokers: f.b.Addrs, DeadLetterTopic: f.dlq, Selection: sel, BatchRecords: 4}
}

func (f *fixture) replay(t *testing.T, o dlq.Options) dlq.Summary {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := dlq.Replay(ctx, o)
	if err != nil {
		t.Fatalf("replay: %v (summary %s)", err, s)
	}
	t.Log(s)
	return s
}

// TestReplayExactlyOnce: a replay of one reason re-injects each selected dead letter once, as the
// record it was, into its source partition; the same replay again re-injects nothing; a wider one
// afterwards only what the first left out.
func TestReplayExactlyOnce(t *testing.T) {
	f := newFixture(t)
	s := f.replay(t, f.options(dlq.Selection{Reasons: []string{"out_of_range"}}))
	// 15 odd offsets; 7 was replayed 3 times already, 9 is truncated.
	if s.Scanned != 30 || s.Replayed != 13 || s.Filtered != 15 || s.TooOften != 1 || s.Unusable != 1 || s.Already != 0 {
		t.Fatalf("first run: %+v", s)
	}
	if s.ByReason["out_of_range"] != 13 || s.ByTarget[f.src] != 13 {
		t.Errorf("first run by reason %v, by target %v", s.ByReason, s.ByTarget)
	}
	got := f.b.ReadCommitted(t, f.src, 30*time.Second)
	if len(got) != 13 {
		t.Fatalf("source holds %d records, want 13", len(got))
	}
	for _, r := range got {
		off, err := strconv.Atoi(string(r.Value[5 : len(r.Value)-1]))
		if err != nil {
			t.Fatalf("value %s", r.Value)
		}
		want := deadLetter(f.dlq, f.src, int32(off%3), int64(off), stream.ReasonOutOfRange, f.base.Add(time.Duration(off)*time.Minute))
		if off%2 != 1 || string(r.Key) != string(want.Key) || !r.Timestamp.Equal(want.Timestamp) || r.Partition != int32(off%3) {
			t.Errorf("replayed %s: key %s, ts %v, partition %d; want key %s, ts %v, partition %d", r.Value, r.Key, r.Timestamp,
				r.Partition, want.Key, want.Timestamp, off%3)
		}
		if header(r, "trace-id") != fmt.Sprintf("t-%d", off) || header(r, stream.HeaderReplayCount) != "1" ||
			header(r, stream.HeaderReplayedFrom) != fmt.Sprintf("%s/%d/%d", f.dlq, off%2, off/2) {
			t.Errorf("replayed %s: headers %v", r.Value, r.Headers)
		}
		for _, k := range []string{stream.HeaderReason, stream.HeaderError, stream.HeaderSourceTopic, stream.HeaderSourceOffset} {
			if v := header(r, k); v != "" && (off != 11 || k != stream.HeaderSourceTopic || v != "upstream") {
				t.Errorf("replayed %s kept the dead letter's header %s: %q", r.Value, k, v)
			}
		}
		if off == 11 && header(r, stream.HeaderSourceTopic) != "upstream" {
			t.Errorf("replayed %s lost its own lineage header from upstream: %v", r.Value, r.Headers)
		}
	}

	again := f.replay(t, f.options(dlq.Selection{Reasons: []string{"out_of_range"}}))
	if again.Replayed != 0 || again.Already != 13 {
		t.Fatalf("second run: %+v", again)
	}
	// Every reason, from 10:10 on: the even offsets 10..28 are new (10), the odd ones there done.
	wide := f.replay(t, f.options(dlq.Selection{From: f.base.Add(10 * time.Minute)}))
	if wide.Replayed != 10 || wide.Filtered != 10 || wide.Already != 10 {
		t.Fatalf("wider run: %+v", wide)
	}
	if n := len(f.b.ReadCommitted(t, f.src, 30*time.Second)); n != 23 {
		t.Fatalf("source holds %d records, want 23", n)
	}
}

// TestReplayAfterAKilledRun: a run that died with its transaction open (records and ledger entries
// produced, never committed) is fenced by the next run, whose replay is then exactly once.
func TestReplayAfterAKilledRun(t *testing.T) {
	f := newFixture(t)
	// The killed run: the replay's transactional id, a transaction begun, a replayed record and its
	// ledger entry produced and flushed, then nothing: no commit, no abort.
	dead, err := kgo.NewClient(kgo.SeedBrokers(f.b.Addrs...), kgo.TransactionalID(dlq.TransactionalID(f.app)),
		kgo.TransactionTimeout(60*time.Second), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The first run creates the ledger; a dry run does not, so replay nothing first.
	f.replay(t, f.options(dlq.Selection{Reasons: []string{"bad_event_time"}}))
	if err := dead.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	pos := fmt.Sprintf("%s/1/0", f.dlq) // offset 1 of the source: the first odd one
	res := dead.ProduceSync(ctx,
		&kgo.Record{Topic: f.src, Partition: 1, Key: []byte("card-1"), Value: []byte(`{"n":1}`)},
		&kgo.Record{Topic: dlq.LedgerTopic(f.app), Partition: 0, Key: []byte(pos), Value: []byte(`{}`)})
	if err := res.FirstErr(); err != nil {
		t.Fatal(err)
	}
	// Abandoned: closed without ending the transaction, as by SIGKILL (Close does not end it).
	defer dead.Close()

	s := f.replay(t, f.options(dlq.Selection{Reasons: []string{"out_of_range"}}))
	if s.Replayed != 13 || s.Already != 0 {
		t.Fatalf("after the killed run: %+v", s)
	}
	got := f.b.ReadCommitted(t, f.src, 30*time.Second)
	seen := map[string]int{}
	for _, r := range got {
		seen[string(r.Key)]++
	}
	if len(got) != 13 || seen["card-1"] != 1 {
		t.Fatalf("source holds %d records (card-1 %d times), want 13 and once", len(got), seen["card-1"])
	}
}

// TestReplayDryRunAndTarget: a dry run produces nothing; -topic sends every record to another topic,
// partitioned by key.
func TestReplayDryRunAndTarget(t *testing.T) {
	f := newFixture(t)
	o := f.options(dlq.Selection{Reasons: []string{"missing_field"}})
	o.DryRun = true
	s := f.replay(t, o)
	if s.Replayed != 15 || !s.DryRun {
		t.Fatalf("dry run: %+v", s)
	}
	if n := len(f.b.ReadCommitted(t, f.src, 10*time.Second)); n != 0 {
		t.Fatalf("a dry run produced %d records", n)
	}
	other := f.b.Topic(t, "other", 4)
	o.DryRun, o.Target = false, other
	s = f.replay(t, o)
	if s.Replayed != 15 || s.ByTarget[other] != 15 {
		t.Fatalf("replay into %s: %+v", other, s)
	}
	got := f.b.ReadCommitted(t, other, 30*time.Second)
	if len(got) != 15 {
		t.Fatalf("%s holds %d records, want 15", other, len(got))
	}
	for _, r := range got {
		want := int32(kgo.StickyKeyPartitioner(nil).ForTopic(other).Partition(r, 4))
		if r.Partition != want {
			t.Errorf("%s went to partition %d, its key's is %d", r.Key, r.Partition, want)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	o := dlq.Options{DeadLetterTopic: "d", Target: "d", BatchRecords: -1, Rate: -1,
		Selection: dlq.Selection{From: time.Unix(10, 0), To: time.Unix(5, 0)}}
	o.EnsureDefaults()
	err := o.Validate()
	for _, want := range []string{"no app name", "no brokers", "is the dead-letter topic itself", "is not before", "batch -1", "rate -1"} {
		if err == nil || !contains(err.Error(), want) {
			t.Errorf("Validate: %v; want it to say %q", err, want)
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// TestReplaySlowRateCommitsInTime: a rate slow enough to hold a batch open past a third of the
// transaction timeout commits it early, so that the broker does not abort it.
func TestReplaySlowRateCommitsInTime(t *testing.T) {
	f := newFixture(t)
	o := f.options(dlq.Selection{Reasons: []string{"out_of_range"}})
	// 13 records at 8/s take 1.5 s; a batch may stay open 0.5 s.
	o.BatchRecords, o.Rate, o.TransactionTimeout = 500, 8, 1500*time.Millisecond
	s := f.replay(t, o)
	if s.Replayed != 13 || s.Transactions < 3 {
		t.Fatalf("%+v: want 13 replayed in at least 3 transactions", s)
	}
}
