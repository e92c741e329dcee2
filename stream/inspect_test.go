package stream_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamd/streamd/stream"
	"github.com/streamd/streamd/test/kafkatest"
)

// waitUntil polls cond until it holds, failing the test after timeout.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

// TestInspectDuringRebalances calls Inspect and Watermarks without pause on two instances of one
// group, from before the first one starts until both have stopped, while the second instance joins
// and leaves again and again, so that partitions are revoked from and assigned to the first one
// under the look-ups. Run it with -race: a look-up that reads the runtime's partition count
// unsynchronised, or sends to a task whose input a revoke closes, is reported as a race (or panics
// with "send on closed channel"). Each look-up must either answer for the key or say that the key
// is not owned (or the runtime not started).
func TestInspectDuringRebalances(t *testing.T) {
	b := kafkatest.Start(t)
	src := b.Topic(t, "src", 4)
	app := kafkatest.Name(t, "app")
	now := time.Now()
	produce(t, b.Client(t), src, makeInputs(400, now), now)

	newRuntime := func(instance string) *stream.Runtime {
		rt, err := stream.NewRuntime(&stream.Pipeline{
			Name:            app,
			Source:          stream.Source{Topic: src, Format: cardFormat()},
			Operators:       []stream.Operator{&stream.Forward{Topic: kafkatest.Name(t, "clean")}},
			DeadLetterTopic: kafkatest.Name(t, "dlq"),
		}, stream.Config{
			Brokers:              b.Addrs,
			InstanceID:           instance,
			CommitInterval:       20 * time.Millisecond,
			SessionTimeout:       6 * time.Second,
			LeaveGroupOnShutdown: true, // so that the second instance's partitions come back at once
			CreateTopics:         true,
			Logger:               testLogger(t),
			Registerer:           prometheus.NewRegistry(),
		})
		if err != nil {
			t.Fatal(err)
		}
		return rt
	}
	// The second instance's Run may be called only once, so each round uses a fresh runtime, with an
	// instance id of its own (a static member that rejoins under its old id would take its old
	// partitions back without a rebalance); the inspectors find the current one here.
	rt1 := newRuntime("i1")
	var rt2 atomic.Pointer[stream.Runtime]
	rt2.Store(newRuntime("i2"))

	// The inspectors: they start before either runtime runs and stop after both have.
	var (
		stop             = make(chan struct{})
		inspectors       sync.WaitGroup
		answered, notOwn atomic.Int64
		errMu            sync.Mutex
		unexpected       []error
		record           = func(err error) {
			errMu.Lock()
			defer errMu.Unlock()
			if len(unexpected) < 10 {
				unexpected = append(unexpected, err)
			}
		}
	)
	for i := range 4 {
		inspectors.Add(1)
		go func() {
			defer inspectors.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				rt := rt1
				if n%2 == 1 {
					rt = rt2.Load()
				}
				key := fmt.Sprintf("card-%03d", (i*7+n)%37)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				ks, err := rt.Inspect(ctx, []byte(key))
				cancel()
				switch {
				case err == nil:
					answered.Add(1)
					if ks.Key != key {
						record(fmt.Errorf("Inspect(%q) answered for key %q", key, ks.Key))
					}
				case errors.Is(err, stream.ErrNotOwned):
					notOwn.Add(1)
				case errors.Is(err, stream.ErrNotStarted):
				default:
					record(fmt.Errorf("Inspect(%q): %w", key, err))
				}
				_ = rt.Watermarks()
			}
		}()
	}
	defer func() {
		close(stop)
		inspectors.Wait()
		if len(unexpected) > 0 {
			t.Errorf("unexpected look-up results: %v", unexpected)
		}
		if answered.Load() == 0 || notOwn.Load() == 0 {
			t.Errorf("the look-ups did not reach both outcomes: %d answered, %d not owned", answered.Load(), notOwn.Load())
		}
	}()

	run := func(rt *stream.Runtime) (cancel func() error) {
		ctx, stopRun := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- rt.Run(ctx) }()
		return func() error { stopRun(); return <-done }
	}
	stop1 := run(rt1)
	waitUntil(t, 60*time.Second, "the first instance to own every partition", func() bool { return len(rt1.Assigned()) == 4 })
	for round := range 3 {
		if round > 0 {
			rt2.Store(newRuntime(fmt.Sprintf("i2-%d", round)))
		}
		second := rt2.Load()
		stop2 := run(second)
		// Only the first round is sure to revoke from the first instance: on kfake, a later round's
		// newcomer may be handed partitions the first instance still owns, without a revoke.
		waitUntil(t, 60*time.Second, "a rebalance that gives partitions to the second instance", func() bool {
			return len(second.Assigned()) > 0
		})
		if err := stop2(); err != nil {
			t.Fatalf("round %d: second instance: %v", round, err)
		}
		waitUntil(t, 60*time.Second, "the first instance to own every partition again", func() bool { return len(rt1.Assigned()) == 4 })
	}
	if err := stop1(); err != nil {
		t.Fatalf("first instance: %v", err)
	}
}
