package stream

import (
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"strconv"
	"time"

	"github.com/streamd/streamd/internal/units"
)

// memoryPlan is how the runtime splits Config.MemoryBudget, for a source of P partitions whose
// tasks keep S stores each (none: a stateless pipeline, without Pebble). The shares of a budget B
// are:
//
//   - fetch: at most two fetches (MaxConcurrentFetches) of FetchMaxBytes = B/96 each, at least the
//     partition fetch size and at most 16MiB. The bytes franz-go counts are compressed ones; in
//     memory a fetch takes about four times that (decompressed batches and a kgo.Record of ~200
//     bytes per record), so the share is B/12. franz-go counts a fetch until every record of it
//     has been polled, so the client holds no more than that when the poll loop stops polling.
//   - producer: B/24 of buffered record bytes (MaxBufferedBytes) and one buffered record per 64 of
//     those bytes (MaxBufferedRecords); a produce past either blocks its task until the brokers
//     acknowledge earlier batches. At least two batches, so that a record of MaxRecordBytes fits.
//   - block cache: B/12 (StateCacheBytes, unless set), off the Go heap.
//   - record cache: B/24 (RecordCacheBytes, unless set).
//   - memtables: B/6, split between the partitions: each task's database keeps at most four
//     memtables (Pebble's MemTableStopWritesThreshold) of B/6/4/P each, between 256KiB and 4MiB,
//     off the Go heap.
//   - the open cycle: B/8, for what its tasks hold (their outboxes, and their stores' write caches
//     and batches: Task.cycleBytes). A cycle ends once its tasks hold that much, whatever its record
//     count, and the next polls fewer records (cycleBudget). Between cycles the tasks keep a
//     third of it for reuse and give the rest back, so that what they keep does not grow with
//     the partition or store count.
//
// The rest (about a third) is for what the runtime does not size: the process's code (about
// 24MiB resident, nonHeapBytes), the Go runtime and the collector's headroom, the decoded records
// in flight, the operators' own state (models), and Pebble's write buffers and iterators. Two
// mechanisms hold the whole process to B (memoryGuard): the Go runtime's soft memory limit, which
// is B less the block cache, the memtables and the code, so that the collector works harder before
// the budget is crossed; and a pause of the poll loop while the live heap is above a high-water
// mark of that limit.
//
// Below 128MiB the floors (one partition's fetch, two producer batches, the code) take most of the
// Go share, and a pipeline with much state pauses often.
type memoryPlan struct {
	budget            int64
	fetchMaxBytes     int32
	concurrentFetches int
	producerBytes     int
	producerRecords   int
	memTableBytes     uint64
	// cycleBytes bounds what the open cycle holds in its tasks; cycleKeepBytes is what each of a
	// task's stores keeps of its write cache between cycles, outboxKeepBytes what its outbox keeps.
	cycleBytes      int64
	cycleKeepBytes  int
	outboxKeepBytes int
	// goLimit is the Go runtime's soft memory limit the budget leaves; heapHigh and heapLow are the
	// live-heap marks: over the high one the poll loop pauses; over the low one after a pause the
	// budget is too small for the pipeline's state.
	goLimit, heapHigh, heapLow int64
}

// maxFetchBytes caps the fetch share: franz-go's 50MB default is most of a small instance's
// memory, and 16MiB per fetch keeps a 2-core machine busy.
const maxFetchBytes = 16 << 20

// nonHeapBytes is the process's resident memory outside the Go runtime's and Pebble's manual
// memory: the binary's code and data pages (22MiB of file-backed pages measured in a running
// daemon) and the C allocator's own.
const nonHeapBytes = 24 << 20

// The live-heap marks, in parts of the Go memory limit: above the high one the poll loop pauses;
// above the low one once a pause has ended the cycle and collected, the pipeline's own state
// needs more than the budget leaves. The high one leaves the collector room: a live heap near the
// limit makes it run continuously.
const heapHighPart, heapLowPart = 0.70, 0.55

func (c *Config) memoryPlan(partitions int32, stores int) memoryPlan {
	b := c.MemoryBudget
	p := int64(max(partitions, 1))
	partBytes := int64(c.fetchMaxPartitionBytes())
	m := memoryPlan{
		budget:            b,
		fetchMaxBytes:     int32(max(min(b/96, maxFetchBytes), partBytes)),
		concurrentFetches: 2,
		producerBytes:     int(max(b/24, 2*int64(c.producerBatchMaxBytes()))),
		memTableBytes:     uint64(min(max(b/6/4/p, 256<<10), 4<<20)),
		cycleBytes:        b / 8,
	}
	m.producerRecords = max(m.producerBytes/64, 1024)
	// What tasks keep between cycles, a third of the cycle share: all of it for the outboxes of a
	// stateless pipeline, else half for them and half for the stores' write caches. Less than a
	// cycle's worth makes every cycle allocate its slabs again (a pass-through pipeline with a
	// quarter of it ran a quarter slower).
	perTask := m.cycleBytes / 3 / p
	if stores == 0 {
		m.outboxKeepBytes = int(min(max(perTask, 256<<10), 8<<20))
	} else {
		m.outboxKeepBytes = int(min(max(perTask/2, 256<<10), 8<<20))
		m.cycleKeepBytes = int(min(max(perTask/2/int64(stores), 64<<10), 8<<20))
	}
	offHeap := int64(nonHeapBytes)
	if stores > 0 { // a stateless pipeline opens no Pebble: no block cache, no memtables
		offHeap += c.StateCacheBytes + int64(m.memTableBytes)*4*p
	}
	// A budget too small for its partitions' memtables still leaves the Go heap a quarter of it;
	// the runtime warns (Run).
	m.goLimit = max(b-offHeap, b/4)
	m.heapHigh = int64(float64(m.goLimit) * heapHighPart)
	m.heapLow = int64(float64(m.goLimit) * heapLowPart)
	return m
}

// fetchMaxPartitionBytes is the most the runtime fetches of one partition at a time: enough for
// its largest record.
func (c *Config) fetchMaxPartitionBytes() int32 {
	return int32(max(c.MaxRecordBytes+64<<10, 1<<20))
}

// producerBatchMaxBytes bounds the record batches the producer builds per partition. A broker
// refuses a batch larger than the topic's max.message.bytes (1048588 by default) with
// MESSAGE_TOO_LARGE, which fails the cycle, so at the default MaxRecordBytes batches stay at
// franz-go's default, under that limit, however many small records a busy cycle produces. A
// pipeline that raises MaxRecordBytes past 1MiB gets batches that fit its largest record; its
// topics need a max.message.bytes to match (docs/config.md says so).
func (c *Config) producerBatchMaxBytes() int32 {
	const brokerSafe = 1_000_012 // franz-go's default
	if c.MaxRecordBytes <= 1<<20 {
		return brokerSafe
	}
	return int32(c.MaxRecordBytes + 64<<10)
}

// newMemoryGuard plans the budget for the source's partitions and the pipeline's stores (known
// once the topics are), and says how it is split.
func (r *Runtime) newMemoryGuard() *memoryGuard {
	plan := r.cfg.memoryPlan(r.partitions, len(r.stores))
	b := r.cfg.MemoryBudget
	f := mib
	r.log.Info("memory budget", "budget", units.FormatBytes(b), "go_memory_limit", f(plan.goLimit), "heap_high_water", f(plan.heapHigh),
		"fetch", f(int64(plan.fetchMaxBytes)*int64(plan.concurrentFetches)), "producer", f(int64(plan.producerBytes)),
		"block_cache", f(r.cfg.StateCacheBytes), "record_cache", f(max(r.cfg.RecordCacheBytes, 0)),
		"memtables", f(int64(plan.memTableBytes)*4*int64(max(r.partitions, 1))), "cycle", f(plan.cycleBytes))
	if plan.goLimit == b/4 {
		r.log.Warn("memory: the block cache and the memtables of this many partitions take most of the budget; raise memory.budget or lower state.cache_size",
			"budget", units.FormatBytes(b), "partitions", r.partitions)
	}
	g := newMemoryGuard(plan, r.m, r.log)
	if r.memProbe != nil {
		g.probe, g.collect = r.memProbe, r.memCollect
	}
	return g
}

// cycleBytes is the memory the open cycle holds in the tasks, as each last published it.
func (r *Runtime) cycleBytes() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var n int64
	for _, t := range r.tasks {
		n += t.pub.cycleBytes.Load()
	}
	return n
}

// cycleFull reports whether the open cycle holds its share of the budget.
func (r *Runtime) cycleFull() bool { return r.cycleBytes() >= r.mem.plan.cycleBytes }

// memoryGuard keeps the process within the budget where sizing the buffers cannot: the operators'
// state, a burst of outputs, garbage the collector has not reached. It reads the live heap (what
// the last collection marked, from runtime/metrics, which costs a few hundred nanoseconds) before
// every poll. Above the high-water mark it pauses: the loop polls no more records and ends the
// open cycle at once (its tasks have then processed everything, and the cycle's memory is
// garbage); then, with no cycle open, the guard collects and looks again, and fetching resumes.
// A heap still over the low-water mark after that is the pipeline's own state, which pausing
// cannot shrink: the loop goes on, in the short cycles the pauses make, and says that the budget
// is too small.
//
// A pause stops polling only; franz-go keeps at most its buffered fetches (the fetch share), and
// heartbeats go on in the background, so the group does not notice.
//
// Pauses come in episodes (a run of pauses less than a minute apart), and the logs have one
// warning when an episode starts, at most one that the budget is too small, and one line when it
// ends, with its counts; the metrics have every pause.
//
// Used from the poll loop's goroutine only.
type memoryGuard struct {
	plan   memoryPlan
	m      *metrics
	log    *slog.Logger
	paused bool
	since  time.Time // of the pause
	ep     episode
	// probe reads the live heap and collect runs a collection: liveHeap and runtime.GC, which
	// tests replace.
	probe   func() int64
	collect func()
}

// episode is a run of pauses less than episodeGap apart.
type episode struct {
	on           bool
	start, last  time.Time // of its first and its latest pause
	pauses       int
	paused       time.Duration // in all
	warnedTooBig bool
}

const episodeGap = time.Minute

func newMemoryGuard(plan memoryPlan, m *metrics, log *slog.Logger) *memoryGuard {
	m.heapHighWater.Set(float64(plan.heapHigh))
	return &memoryGuard{plan: plan, m: m, log: log, probe: liveHeap(), collect: runtime.GC}
}

// liveHeap returns a reader of the heap the last collection found live.
func liveHeap() func() int64 {
	sample := []rtmetrics.Sample{{Name: "/gc/heap/live:bytes"}}
	return func() int64 {
		rtmetrics.Read(sample)
		if sample[0].Value.Kind() != rtmetrics.KindUint64 {
			return 0
		}
		return int64(sample[0].Value.Uint64())
	}
}

func (g *memoryGuard) live() int64 {
	n := g.probe()
	g.m.heapLive.Set(float64(n))
	return n
}

// mib formats a byte count for the logs, which need no exactness.
func mib(n int64) string { return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + "MiB" }

// hold is called before every poll: it reports whether the loop must not poll now. With a cycle
// open, a pause makes the loop end it (the cycle-end check reads paused). With none open it
// collects and resumes.
func (g *memoryGuard) hold(cycleOpen bool) bool {
	if !g.paused {
		live := g.live()
		if live <= g.plan.heapHigh {
			if g.ep.on && time.Since(g.ep.last) > episodeGap {
				g.log.Info("memory: pressure over", "pauses", g.ep.pauses, "paused_for", g.ep.paused.Round(time.Millisecond),
					"over", g.ep.last.Sub(g.ep.start).Round(time.Second), "heap_live", mib(live))
				g.ep = episode{}
			}
			return false
		}
		now := time.Now()
		g.paused, g.since = true, now
		g.m.memoryPaused.Set(1)
		g.m.memoryPauses.Inc()
		if !g.ep.on {
			g.ep = episode{on: true, start: now}
			g.log.Warn("memory: the live heap is over the high-water mark of the budget; fetching pauses until the open cycle is done, as often as needed",
				"heap_live", mib(live), "high_water", mib(g.plan.heapHigh), "budget", units.FormatBytes(g.plan.budget))
		}
		g.ep.pauses++
		g.ep.last = now
	}
	if cycleOpen {
		return true
	}
	// The cycle ended: its memory is garbage now. A collection says what is left.
	g.collect()
	live := g.live()
	if live >= g.plan.heapLow && !g.ep.warnedTooBig {
		g.ep.warnedTooBig = true
		g.log.Warn("memory: with no cycle open the live heap is still over the low-water mark: the pipeline's state needs most of the budget, and it goes on in short cycles; raise memory.budget",
			"heap_live", mib(live), "low_water", mib(g.plan.heapLow), "go_memory_limit", mib(g.plan.goLimit))
	}
	g.ep.paused += time.Since(g.since)
	g.paused = false
	g.m.memoryPaused.Set(0)
	return false
}

// setMemoryLimit sets the Go runtime's soft memory limit to the budget's Go share, unless the
// GOMEMLIMIT environment variable sets one (GOMEMLIMIT=off keeps the runtime without a limit). It
// returns a function that puts the previous limit back. The limit is the process's: a process that
// runs several runtimes, or runs one beside other work, sets GOMEMLIMIT itself.
func setMemoryLimit(plan memoryPlan, log *slog.Logger) (restore func()) {
	if v := os.Getenv("GOMEMLIMIT"); v != "" {
		log.Info("memory: GOMEMLIMIT is set; the budget does not change it", "GOMEMLIMIT", v,
			"budget_go_share", mib(plan.goLimit))
		return func() {}
	}
	prev := debug.SetMemoryLimit(plan.goLimit)
	return func() { debug.SetMemoryLimit(prev) }
}
