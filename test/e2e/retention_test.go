package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/internal/gen"
	"github.com/streamd/streamd/stream"
	"github.com/streamd/streamd/test/kafkatest"
)

// retentionTopicConfigs make the broker apply the default 7-day retention within seconds rather than
// at its next retention check (log.retention.check.interval.ms, 5 minutes, a broker setting): the
// log cleaner deletes a compact,delete topic's segments past their retention on every pass (about
// every 15 s, log.cleaner.backoff.ms), segment.ms of 1 s rolls segments so that there are closed
// segments to delete, and a compaction lag of a year keeps compaction itself from removing
// anything. retention.ms is left at the broker's default. (The dead-letter topic cannot be
// compacted, as dead letters may have no key: only its timestamps are checked.)
const retentionTopicConfigs = `{cleanup_policy: "compact,delete", configs: {segment.ms: "1000", min.compaction.lag.ms: "31536000000"}}`

// TestOutputsOfOldEventsOutliveRetention: a pipeline over events of March 2024 (windows, a model,
// clean records, dead letters) on a broker with the default retention keeps every committed
// output, because its outputs are stamped with processing time. The clean topic asks for event-time
// timestamps, as streamd stamped every output before: the broker deletes its records while the
// test watches, which shows that the retention does run and that the check can fail.
func TestOutputsOfOldEventsOutliveRetention(t *testing.T) {
	b := kafkatest.Start(t)
	b.RequireReal(t, "the broker's retention deletes segments")
	const n = 6000
	src := b.Topic(t, "tx", 2)
	app := kafkatest.Name(t, "old")
	clean, preds, dlq, wins := kafkatest.Name(t, "clean"), kafkatest.Name(t, "preds"), kafkatest.Name(t, "dlq"), kafkatest.Name(t, "wins")
	cfg := fmt.Sprintf(`app: %s
instance_id: r-1
kafka:
  brokers: [%s]
  commit_interval: 100ms
  transaction_timeout: 10s
  session_timeout: 6s
state:
  dir: %s
source:
  topic: %s
  key: card_id
  event_id: event_id
  event_time: {field: event_time, format: rfc3339, max_future: 1h}
  idle_timeout: off
  max_record_bytes: 64KiB
  fields:
`+cardFields+`    label: {type: number}
windows:
  - {name: per_minute, kind: tumbling, size: 1m, aggs: [count, {sum: amount}], output: %s}
features:
  - {name: amount_log, from: amount, transform: [log1p, standardize]}
  - {name: channel, from: channel, encode: onehot}
labels:
  field: label
models:
  merge_interval: off
  list:
    - {name: ftrl, learner: {kind: ftrl_logistic}}
outputs:
  clean: %s
  predictions: %s
  dead_letters: %s
  topic_defaults: %s
  topics:
    %s: {timestamp: event}
    %s: {cleanup_policy: delete}   # a compacted topic refuses records without a key
admin:
  listen: 127.0.0.1:0
log:
  level: info
  format: json
`, app, strings.Join(b.Addrs, ","), t.TempDir(), src, wins, clean, preds, dlq, retentionTopicConfigs, clean, dlq)
	cfgPath := filepath.Join(t.TempDir(), "pipeline.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(t.TempDir(), "streamd.log")
	t.Cleanup(func() {
		if t.Failed() {
			data, _ := os.ReadFile(logPath)
			t.Logf("streamd log (tail):\n%s", tail(string(data), 15000))
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	began := time.Now()
	// Events of March 2024, 100 ms apart (10 minutes of event time), produced now: the source's
	// record timestamps are the produce time, as for any topic loaded with history.
	g, err := gen.New(gen.Config{Seed: 21, Keys: 500, BadRatio: 0.02, OutOfOrder: time.Second, FraudRate: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	cl := b.Client(t, kgo.ProducerLinger(5*time.Millisecond))
	base := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	var recs []*kgo.Record
	for i := range n {
		rec := g.Next(base.Add(time.Duration(i) * 100 * time.Millisecond))
		r := &kgo.Record{Topic: src, Key: rec.Key, Value: rec.Value}
		if rec.Bad != gen.NotBad {
			r.Headers = []kgo.RecordHeader{{Key: badHeader, Value: []byte(rec.Bad.String())}}
		} else {
			label := 0
			if rec.Tx.Fraud {
				label = 1
			}
			r.Value = fmt.Appendf(r.Value[:len(r.Value)-1:len(r.Value)-1], `,"label":%d}`, label)
		}
		recs = append(recs, r)
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	proc := start(t, logPath, nil, streamdBin, "run", "-config", cfgPath)
	b.WaitCaughtUp(t, app, src, 3*time.Minute, proc.exited)
	proc.stop(t)

	// The clean topic's records carry 2024 timestamps: the cleaner deletes its closed segments.
	adm := kadm.NewClient(b.Client(t))
	startOffsets := func(topic string) (first int64) {
		so, err := adm.ListStartOffsets(ctx, topic)
		if err != nil {
			t.Fatalf("start offsets of %s: %v", topic, err)
		}
		so.Each(func(o kadm.ListedOffset) { first += o.Offset })
		return first
	}
	deadline := time.Now().Add(90 * time.Second)
	for startOffsets(clean) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the broker deleted nothing of %s (event-time timestamps of 2024) in 90 s: the check below proves nothing", clean)
		}
		time.Sleep(2 * time.Second)
	}
	deletedAt := time.Now()
	// One more pass of the cleaner (15 s apart), which would take the other topics' old segments
	// too, had they any.
	time.Sleep(20 * time.Second)
	t.Logf("%s lost %d records to retention after %s", clean, startOffsets(clean), deletedAt.Sub(began).Round(time.Second))

	for _, topic := range []string{preds, wins} {
		if first := startOffsets(topic); first != 0 {
			t.Errorf("%s: the broker deleted %d committed records", topic, first)
		}
	}
	srcRecs := b.ReadCommitted(t, src, time.Minute)
	predRecs, deadRecs := b.ReadCommitted(t, preds, time.Minute), b.ReadCommitted(t, dlq, time.Minute)
	if rep := verify(srcRecs, predRecs, deadRecs); !rep.ok() {
		t.Errorf("predictions and dead letters are not exactly one per input: %s", rep)
	}
	winRecs := b.ReadCommitted(t, wins, time.Minute)
	if len(winRecs) < 500 {
		t.Errorf("%d window results, want one per card and minute closed (at least 500)", len(winRecs))
	}
	now := time.Now()
	for topic, recs := range map[string][]*kgo.Record{preds: predRecs, dlq: deadRecs, wins: winRecs} {
		for _, r := range recs {
			if r.Timestamp.Before(began.Add(-time.Second)) || r.Timestamp.After(now) {
				t.Fatalf("%s: record timestamp %v is not the processing time (the test ran from %v to %v)", topic, r.Timestamp, began, now)
			}
		}
	}
	for _, r := range predRecs {
		et := kafkatest.Header(r, stream.HeaderEventTime)
		if !strings.HasPrefix(et, "17") || !strings.Contains(string(r.Value), `"event_time":`+et) {
			t.Fatalf("prediction without its 2024 event time in %s (%q): %s", stream.HeaderEventTime, et, r.Value)
		}
	}
	for _, r := range deadRecs {
		if kafkatest.Header(r, stream.HeaderSourceTimestamp) == "" {
			t.Fatalf("dead letter without %s: %v", stream.HeaderSourceTimestamp, r.Headers)
		}
	}
}
