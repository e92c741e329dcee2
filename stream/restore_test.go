package stream

// Restores run off the rebalance callback: a partition that restores does not hold the others, nor
// the group. The tests hold a partition's restore with Runtime.restoreGate, as a restore of a large
// changelog would.

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/streamd/streamd/test/kafkatest"
)

// gate holds the restores of chosen partitions until released.
type gate struct {
	hold    map[int32]bool
	release chan struct{}
	mu      sync.Mutex
	waiting map[int32]bool
}

func newGate(partitions ...int32) *gate {
	g := &gate{hold: map[int32]bool{}, release: make(chan struct{}), waiting: map[int32]bool{}}
	for _, p := range partitions {
		g.hold[p] = true
	}
	return g
}

func (g *gate) wait(ctx context.Context, p int32) error {
	if !g.hold[p] {
		return nil
	}
	g.mu.Lock()
	g.waiting[p] = true
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		delete(g.waiting, p)
		g.mu.Unlock()
	}()
	select {
	case <-g.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *gate) held() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.waiting)
}

// TestRestoreDoesNotHoldOtherPartitions: while partition 1 restores, partition 0 processes and
// commits; the instance is not ready, says so with the partition, and counts the partition in
// streamd_restoring_partitions; once the restore ends, partition 1 processes too, every input
// exactly once.
func TestRestoreDoesNotHoldOtherPartitions(t *testing.T) {
	b := kafkatest.Start(t)
	src := b.Topic(t, "src", 2)
	app, out, dlq := kafkatest.Name(t, "app"), kafkatest.Name(t, "out"), kafkatest.Name(t, "dlq")
	in := produceInputs(t, b, src, 0, 300, "", 0)
	ends := map[int32]int64{}
	for _, x := range in {
		ends[x.partition] = max(ends[x.partition], x.offset+1)
	}
	g := newGate(1)
	r := start(t, &Pipeline{
		Name:            app,
		Source:          Source{Topic: src, Format: fatalFormat()},
		Operators:       []Operator{&countOp{Topic: out}},
		DeadLetterTopic: dlq,
	}, fatalConfig(b, t.TempDir()), func(rt *Runtime) { rt.restoreGate = g.wait })

	waitFor(t, 60*time.Second, "partition 0 to commit everything while partition 1 restores", func() bool {
		if err := r.stopped(); err != nil {
			t.Fatal(err)
		}
		resp, err := kadm.NewClient(b.Client(t)).FetchOffsetsForTopics(context.Background(), app, src)
		if err != nil {
			return false // no group yet
		}
		o, _ := resp.Lookup(src, 0)
		return o.At == ends[0]
	})
	if g.held() != 1 {
		t.Fatalf("%d restores held, want partition 1's", g.held())
	}
	if n := committedOffsets(t, b, app, src)[1]; n != 0 {
		t.Errorf("partition 1 committed offset %d while it restores", n)
	}
	ready, why := r.rt.Readiness()
	if ready || !strings.Contains(why, "restoring the state of partitions [1]") {
		t.Errorf("Readiness while partition 1 restores = %v %q", ready, why)
	}
	if got := testutil.ToFloat64(r.rt.m.restoring); got != 1 {
		t.Errorf("streamd_restoring_partitions = %v, want 1", got)
	}
	if got := r.rt.Assigned(); len(got) != 1 || got[0] != 0 {
		t.Errorf("processing partitions %v, want [0]", got)
	}

	close(g.release)
	b.WaitCaughtUp(t, app, src, 60*time.Second, r.stopped)
	waitFor(t, 10*time.Second, "ready", r.rt.Ready)
	if got := testutil.ToFloat64(r.rt.m.restoring); got != 0 {
		t.Errorf("streamd_restoring_partitions = %v after the restore", got)
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	if n := checkCommittedOutputs(t, b, app, src, out, in); n != len(in) {
		t.Errorf("%d of %d inputs committed", n, len(in))
	}
}

// TestRevokeDuringRestore: partitions taken away while they restore (a second instance joins; the
// first shuts down) have their restores cancelled, without a panic, a leak (-race, t.TempDir's
// cleanup of open databases) or a lost or duplicated output.
func TestRevokeDuringRestore(t *testing.T) {
	b := kafkatest.Start(t)
	src := b.Topic(t, "src", 4)
	app, out, dlq := kafkatest.Name(t, "app"), kafkatest.Name(t, "out"), kafkatest.Name(t, "dlq")
	in := produceInputs(t, b, src, 0, 400, "", 0)
	p := &Pipeline{
		Name:            app,
		Source:          Source{Topic: src, Format: fatalFormat()},
		Operators:       []Operator{&countOp{Topic: out}},
		DeadLetterTopic: dlq,
	}
	g := newGate(0, 1, 2, 3)
	first := start(t, p, fatalConfig(b, t.TempDir()), func(rt *Runtime) { rt.restoreGate = g.wait })
	waitFor(t, 60*time.Second, "the first instance to hold four restores", func() bool { return g.held() == 4 })

	cfg := fatalConfig(b, t.TempDir())
	cfg.InstanceID = "i2"
	second := start(t, p, cfg)
	waitFor(t, 60*time.Second, "the second instance to take partitions from the first while they restore", func() bool {
		if err := first.stopped(); err != nil {
			t.Fatal(err)
		}
		return len(second.rt.Assigned()) > 0 && g.held() < 4
	})
	if got := testutil.ToFloat64(first.rt.m.rebalances.WithLabelValues("revoked")); got == 0 {
		t.Error("no revoked partition counted on the first instance")
	}
	if ready, why := first.rt.Readiness(); ready || !strings.Contains(why, "restoring") {
		t.Errorf("first instance's Readiness = %v %q, want restoring", ready, why)
	}
	// The first instance stops while its remaining restores are held: they are cancelled.
	if err := first.stop(t); err != nil {
		t.Fatalf("stopping during restores: %v", err)
	}
	if g.held() != 0 {
		t.Errorf("%d restores still held after the first instance stopped", g.held())
	}
	b.WaitCaughtUp(t, app, src, 90*time.Second, second.stopped)
	if err := second.stop(t); err != nil {
		t.Fatal(err)
	}
	if n := checkCommittedOutputs(t, b, app, src, out, in); n != len(in) {
		t.Errorf("%d of %d inputs committed", n, len(in))
	}
	want := map[string]int{}
	for i := range len(in) {
		want[fmt.Sprintf("k%d", i%13)]++
	}
	if got := readCounts(t, b, app); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("counts in the changelog %v, want %v", got, want)
	}
}
