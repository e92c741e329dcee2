package stream_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/stream"
	"github.com/streamd/streamd/test/kafkatest"
)

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() || os.Getenv("STREAMD_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func cardFormat() *stream.JSONFormat {
	zero := 0.0
	return &stream.JSONFormat{
		KeyField: "card_id",
		IDField:  "event_id",
		Time:     stream.EventTimeSpec{Field: "event_time", Format: stream.TimeRFC3339, MaxFuture: time.Hour, NotBefore: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)},
		Fields: []stream.FieldSpec{
			{Name: "amount", Type: stream.Number, Required: true, Min: &zero},
			{Name: "merchant", Type: stream.String},
		},
		MaxRecordBytes: 4096,
	}
}

// input is a record the test produces and what the pipeline must do with it.
type input struct {
	key, value string
	id         string        // event id, for valid records
	reason     stream.Reason // for invalid ones
}

func makeInputs(n int, now time.Time) []input {
	var in []input
	for i := range n {
		card := fmt.Sprintf("card-%03d", i%37)
		id := fmt.Sprintf("ev-%06d", i)
		ts := now.Add(time.Duration(i) * time.Millisecond).UTC().Format(time.RFC3339Nano)
		valid := fmt.Sprintf(`{"event_id":%q,"card_id":%q,"event_time":%q,"amount":%d.5,"merchant":"m-%d"}`, id, card, ts, i%500, i%13)
		switch i % 10 {
		case 3:
			in = append(in, input{key: card, value: valid[:len(valid)-7], reason: stream.ReasonMalformedJSON})
		case 5:
			in = append(in, input{key: card, value: strings.Replace(valid, `"amount":`, `"amount":-`, 1), reason: stream.ReasonOutOfRange})
		case 7:
			in = append(in, input{key: card, value: strings.Replace(valid, ts, "1970-01-01T00:00:00Z", 1), reason: stream.ReasonEventTimeOutOfSpan})
		case 9:
			if i%20 == 9 {
				in = append(in, input{key: card, value: `[1,2,3]`, reason: stream.ReasonNotAnObject})
			} else {
				in = append(in, input{key: card, value: strings.Replace(valid, `"card_id":`, `"card":`, 1), reason: stream.ReasonMissingKey})
			}
		default:
			in = append(in, input{key: card, value: valid, id: id})
		}
	}
	return in
}

func produce(t *testing.T, cl *kgo.Client, topic string, in []input, now time.Time) {
	t.Helper()
	recs := make([]*kgo.Record, len(in))
	for i, x := range in {
		recs[i] = &kgo.Record{Topic: topic, Key: []byte(x.key), Value: []byte(x.value), Timestamp: now}
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// TestPassThroughExactlyOnce runs the decode → validate → forward path and checks that every valid
// input appears once in the clean topic and every invalid one once in the dead-letter topic, with
// its reason, and that the metrics agree.
func TestPassThroughExactlyOnce(t *testing.T) {
	b := kafkatest.Start(t)
	src := b.Topic(t, "src", 4)
	clean, dlq, app := kafkatest.Name(t, "clean"), kafkatest.Name(t, "dlq"), kafkatest.Name(t, "app")
	now := time.Now()
	in := makeInputs(3000, now)
	produce(t, b.Client(t), src, in, now)

	reg := prometheus.NewRegistry()
	rt, err := stream.NewRuntime(&stream.Pipeline{
		Name:            app,
		Source:          stream.Source{Topic: src, Format: cardFormat()},
		Operators:       []stream.Operator{&stream.Forward{Topic: clean}},
		DeadLetterTopic: dlq,
	}, stream.Config{
		Brokers:        b.Addrs,
		InstanceID:     "i1",
		CommitInterval: 50 * time.Millisecond,
		CommitRecords:  500, // several cycles for 3000 records
		SessionTimeout: 6 * time.Second,
		CreateTopics:   true,
		Logger:         testLogger(t),
		Registerer:     reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	stopped := func() error {
		select {
		case err := <-done:
			done <- err
			return fmt.Errorf("runtime returned early: %v", err)
		default:
			return nil
		}
	}
	b.WaitCaughtUp(t, app, src, 60*time.Second, stopped)
	if !rt.Ready() {
		t.Error("runtime not ready while processing")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}

	outs := b.ReadCommitted(t, clean, 30*time.Second)
	dead := b.ReadCommitted(t, dlq, 30*time.Second)
	wantValid, wantBad := map[string]bool{}, map[string]stream.Reason{}
	for i, x := range in {
		if x.id != "" {
			wantValid[x.id] = true
		} else {
			wantBad[fmt.Sprint(i)] = x.reason
		}
	}
	seen := map[string]int{}
	for _, r := range outs {
		id := eventID(t, r.Value)
		seen[id]++
		if !wantValid[id] {
			t.Errorf("clean topic has unexpected event %s", id)
		}
		if kafkatest.Header(r, stream.HeaderSourceTopic) != src {
			t.Errorf("event %s lacks lineage: %v", id, r.Headers)
		}
	}
	for id := range wantValid {
		if seen[id] != 1 {
			t.Errorf("event %s appears %d times in the clean topic, want 1", id, seen[id])
		}
	}
	if len(outs) != len(wantValid) {
		t.Errorf("clean topic has %d records, want %d", len(outs), len(wantValid))
	}
	// Dead letters are identified by their source offset; map offsets back to inputs by value.
	byValue := map[string]stream.Reason{}
	for _, x := range in {
		if x.id == "" {
			byValue[x.value] = x.reason
		}
	}
	gotReasons := map[stream.Reason]int{}
	for _, r := range dead {
		want, ok := byValue[string(r.Value)]
		got := stream.Reason(kafkatest.Header(r, stream.HeaderReason))
		if !ok {
			t.Errorf("unexpected dead letter %q", r.Value)
			continue
		}
		if got != want {
			t.Errorf("dead letter %q: reason %s, want %s (%s)", r.Value, got, want, kafkatest.Header(r, stream.HeaderError))
		}
		gotReasons[got]++
	}
	if len(dead) != len(wantBad) {
		t.Errorf("dead-letter topic has %d records, want %d", len(dead), len(wantBad))
	}

	if got := testutil.ToFloat64(metric(t, reg, "streamd_records_consumed_total")); got != float64(len(in)) {
		t.Errorf("streamd_records_consumed_total = %v, want %d", got, len(in))
	}
	for reason, n := range gotReasons {
		if got := counterWithLabel(t, reg, "streamd_dead_letters_total", "reason", string(reason)); got != float64(n) {
			t.Errorf("streamd_dead_letters_total{reason=%s} = %v, want %d", reason, got, n)
		}
	}
	if got := counterWithLabel(t, reg, "streamd_transactions_total", "result", "committed"); got < 2 {
		t.Errorf("only %v committed transactions", got)
	}
}

func eventID(t *testing.T, v []byte) string {
	s := string(v)
	i := strings.Index(s, `"event_id":"`)
	if i < 0 {
		t.Fatalf("no event id in %s", s)
	}
	s = s[i+len(`"event_id":"`):]
	return s[:strings.IndexByte(s, '"')]
}

// metric returns a collector that sums every series of a metric family, for testutil.ToFloat64.
func metric(t *testing.T, g prometheus.Gatherer, name string) prometheus.Collector {
	t.Helper()
	var sum float64
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "sum"})
	c.Add(sum)
	return c
}

func counterWithLabel(t *testing.T, g prometheus.Gatherer, name, label, value string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
