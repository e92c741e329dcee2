package stream

import (
	"bytes"
	"io"
	"log/slog"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestMemoryPlanFitsTheBudget: the Go memory limit and the off-heap parts add up to the budget, for
// small and large budgets and partition counts; from 128MiB on, the parts the runtime sizes on the
// heap, counted as the memory they take (a fetch about four times its compressed bytes), take at
// most three quarters of the high-water mark, leaving the rest to the operators; what tasks keep
// between cycles is a third of the cycle share at most; the default budget gives the figures
// docs/config.md states.
func TestMemoryPlanFitsTheBudget(t *testing.T) {
	for _, tc := range []struct {
		name       string
		budget     int64
		partitions int32
		stores     int
	}{
		{"minimum, one partition", 64 << 20, 1, 2},
		{"small, four partitions", 128 << 20, 4, 8},
		{"default, four partitions", DefaultMemoryBudget, 4, 8},
		{"default, 16 partitions", DefaultMemoryBudget, 16, 8},
		{"large, 16 partitions", 4 << 30, 16, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{Brokers: []string{"b:9092"}, MemoryBudget: tc.budget}
			c.EnsureDefaults()
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			m := c.memoryPlan(tc.partitions, tc.stores)
			p := int64(tc.partitions)
			offHeap := c.StateCacheBytes + int64(m.memTableBytes)*4*p + nonHeapBytes
			if stateless := c.memoryPlan(tc.partitions, 0); stateless.goLimit != tc.budget-nonHeapBytes {
				t.Errorf("stateless: Go limit %d, want the budget less the code, %d", stateless.goLimit, tc.budget-nonHeapBytes)
			}
			if m.goLimit+offHeap != tc.budget {
				t.Errorf("Go limit %d + off-heap %d = %d, want the budget %d", m.goLimit, offHeap, m.goLimit+offHeap, tc.budget)
			}
			sized := 4*int64(m.fetchMaxBytes)*int64(m.concurrentFetches) + int64(m.producerBytes) + c.RecordCacheBytes + m.cycleBytes
			if tc.budget >= 128<<20 && sized > m.heapHigh*3/4 {
				t.Errorf("the sized heap parts take %d bytes, over the high-water mark %d: %+v", sized, m.heapHigh, m)
			}
			if !(m.heapLow < m.heapHigh && m.heapHigh < m.goLimit) {
				t.Errorf("marks low %d, high %d, limit %d are out of order", m.heapLow, m.heapHigh, m.goLimit)
			}
			kept := (int64(m.outboxKeepBytes) + int64(m.cycleKeepBytes)*int64(tc.stores)) * p
			if m.cycleKeepBytes > 64<<10 && m.outboxKeepBytes > 256<<10 && kept > m.cycleBytes/3 {
				t.Errorf("tasks keep %d bytes between cycles, over a third of the cycle share %d", kept, m.cycleBytes)
			}
			if int64(m.producerBytes) < 2*int64(c.producerBatchMaxBytes()) || m.fetchMaxBytes < c.fetchMaxPartitionBytes() || m.producerRecords < 1024 {
				t.Errorf("buffers smaller than one batch or one partition's fetch: %+v", m)
			}
		})
	}
	c := Config{}
	c.EnsureDefaults()
	m := c.memoryPlan(4, 8)
	if m.fetchMaxBytes != 4<<20 || m.memTableBytes != 4<<20 || c.StateCacheBytes != 32<<20 || c.RecordCacheBytes != 16<<20 ||
		m.cycleBytes != 48<<20 || m.goLimit != 264<<20 || m.producerBytes != 16<<20 {
		t.Errorf("default budget: fetch %d, memtable %d, block cache %d, record cache %d, cycle %d, Go limit %d, producer %d; want 4MiB, 4MiB, 32MiB, 16MiB, 48MiB, 264MiB, 16MiB",
			m.fetchMaxBytes, m.memTableBytes, c.StateCacheBytes, c.RecordCacheBytes, m.cycleBytes, m.goLimit, m.producerBytes)
	}
}

// TestValidateCachesWithinBudget: caches set larger than half of the budget are refused, naming
// the budget.
func TestValidateCachesWithinBudget(t *testing.T) {
	c := Config{Brokers: []string{"b:9092"}, MemoryBudget: 128 << 20, StateCacheBytes: 96 << 20}
	c.EnsureDefaults()
	err := c.Validate()
	if err == nil {
		t.Fatal("a 96MiB block cache in a 128MiB budget was accepted")
	}
	c = Config{Brokers: []string{"b:9092"}, MemoryBudget: 32 << 20}
	c.EnsureDefaults()
	if err := c.Validate(); err == nil {
		t.Fatal("a 32MiB budget was accepted")
	}
}

// fakeHeap is a live heap the test sets, and counts the collections the guard asks for.
type fakeHeap struct {
	live        int64
	afterGC     int64 // what a collection leaves
	collections int
}

func (h *fakeHeap) probe() int64 { return h.live }
func (h *fakeHeap) collect()     { h.collections++; h.live = h.afterGC }

func testGuard(t *testing.T) (*memoryGuard, *fakeHeap, *metrics, *bytes.Buffer) {
	t.Helper()
	c := Config{Brokers: []string{"b:9092"}, MemoryBudget: 128 << 20}
	c.EnsureDefaults()
	m, err := newMetrics(prometheus.NewRegistry(), DefaultTransactionTimeout)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	g := newMemoryGuard(c.memoryPlan(4, 4), m, slog.New(slog.NewTextHandler(&logs, nil)))
	h := &fakeHeap{}
	g.probe, g.collect = h.probe, h.collect
	return g, h, m, &logs
}

// TestMemoryGuard: under the high-water mark the loop polls; over it, with a cycle open, it does
// not (and the cycle ends); with no cycle open the guard collects and the loop polls again, with
// one warning for the episode and one more if the heap stays over the low-water mark; the metrics
// count every pause.
func TestMemoryGuard(t *testing.T) {
	g, h, m, logs := testGuard(t)
	h.live = g.plan.heapHigh
	if g.hold(true) || g.hold(false) || h.collections != 0 {
		t.Fatal("held at the high-water mark")
	}
	if got := testutil.ToFloat64(m.heapLive); got != float64(g.plan.heapHigh) {
		t.Errorf("streamd_memory_heap_bytes = %v, want %d", got, g.plan.heapHigh)
	}

	for i := 1; i <= 3; i++ {
		h.live, h.afterGC = g.plan.heapHigh+1, g.plan.heapLow/2
		if !g.hold(true) || !g.hold(true) {
			t.Fatalf("pause %d: polled with a cycle open over the high-water mark", i)
		}
		if !g.paused || testutil.ToFloat64(m.memoryPaused) != 1 {
			t.Fatalf("pause %d: not paused", i)
		}
		if g.hold(false) {
			t.Fatalf("pause %d: still held after the cycle ended and the heap was collected", i)
		}
		if h.collections != i || g.paused || testutil.ToFloat64(m.memoryPaused) != 0 {
			t.Fatalf("pause %d: %d collections, paused %v", i, h.collections, g.paused)
		}
	}
	if got := testutil.ToFloat64(m.memoryPauses); got != 3 {
		t.Errorf("streamd_memory_pauses_total = %v, want 3", got)
	}
	if n := strings.Count(logs.String(), "over the high-water mark"); n != 1 {
		t.Errorf("%d warnings for one episode of pauses, want 1:\n%s", n, logs)
	}

	// A heap the cycle's end does not bring under the low-water mark: processing goes on, with a
	// warning, once.
	for range 2 {
		h.live, h.afterGC = g.plan.heapHigh+1, g.plan.heapLow+1
		g.hold(true)
		if g.hold(false) {
			t.Fatal("held with no cycle open: nothing would ever be processed again")
		}
	}
	if n := strings.Count(logs.String(), "still over the low-water mark"); n != 1 {
		t.Errorf("%d warnings that the budget is too small, want 1:\n%s", n, logs)
	}
	// An episode ends a minute after its last pause.
	g.ep.last = g.ep.last.Add(-2 * episodeGap)
	h.live = 0
	g.hold(false)
	if g.ep.on || !strings.Contains(logs.String(), "pressure over") {
		t.Errorf("the episode did not end:\n%s", logs)
	}
}

// TestSetMemoryLimit: the runtime sets the Go memory limit from the budget and puts the previous
// one back, unless GOMEMLIMIT is set, which it leaves alone.
func TestSetMemoryLimit(t *testing.T) {
	plan := memoryPlan{goLimit: 123 << 20}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	before := debug.SetMemoryLimit(-1)

	t.Setenv("GOMEMLIMIT", "1GiB") // restored by the test's end
	restore := setMemoryLimit(plan, log)
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Errorf("with GOMEMLIMIT set the limit became %d", got)
	}
	restore()

	t.Setenv("GOMEMLIMIT", "")
	restore = setMemoryLimit(plan, log)
	if got := debug.SetMemoryLimit(-1); got != plan.goLimit {
		t.Errorf("limit %d, want the plan's %d", got, plan.goLimit)
	}
	restore()
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Errorf("limit %d after restore, want %d", got, before)
	}
}
