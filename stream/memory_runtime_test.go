package stream_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/streamd/streamd/stream"
	"github.com/streamd/streamd/test/kafkatest"
)

// TestMemoryPressureKeepsExactlyOnce puts the runtime under memory pressure (a live heap over the
// budget's high-water mark every few polls) and checks that the pauses end cycles early without
// losing or repeating a record, and that the metrics count them.
func TestMemoryPressureKeepsExactlyOnce(t *testing.T) {
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
		CommitRecords:  500,
		SessionTimeout: 6 * time.Second,
		CreateTopics:   true,
		Logger:         testLogger(t),
		Registerer:     reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Every third look at the heap finds it over any budget, until the next collection.
	var probes, collections atomic.Int64
	var high atomic.Bool
	stream.SetMemoryProbe(rt, func() int64 {
		if probes.Add(1)%3 == 0 {
			high.Store(true)
		}
		if high.Load() {
			return 1 << 50
		}
		return 0
	}, func() {
		collections.Add(1)
		high.Store(false)
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	b.WaitCaughtUp(t, app, src, 60*time.Second, func() error {
		select {
		case err := <-done:
			done <- err
			return fmt.Errorf("runtime returned early: %v", err)
		default:
			return nil
		}
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}

	pauses := testutil.ToFloat64(metric(t, reg, "streamd_memory_pauses_total"))
	if pauses < 2 || collections.Load() < 2 {
		t.Fatalf("%v pauses and %d collections under pressure", pauses, collections.Load())
	}
	seen := map[string]int{}
	for _, r := range b.ReadCommitted(t, clean, 30*time.Second) {
		seen[eventID(t, r.Value)]++
	}
	valid, bad := 0, 0
	for _, x := range in {
		if x.id == "" {
			bad++
			continue
		}
		valid++
		if seen[x.id] != 1 {
			t.Errorf("event %s appears %d times in the clean topic, want 1", x.id, seen[x.id])
		}
	}
	if len(seen) != valid {
		t.Errorf("clean topic has %d events, want %d", len(seen), valid)
	}
	if dead := b.ReadCommitted(t, dlq, 30*time.Second); len(dead) != bad {
		t.Errorf("dead-letter topic has %d records, want %d", len(dead), bad)
	}
	t.Logf("%d looks at the heap, %v pauses, %d collections, %v transactions committed", probes.Load(), pauses, collections.Load(),
		counterWithLabel(t, reg, "streamd_transactions_total", "result", "committed"))
}
