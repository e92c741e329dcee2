package stream

import (
	"time"
)

// cycleBudget bounds the records one commit cycle hands to its tasks, so that a cycle ends near
// CommitInterval whatever the load. Records are processed on the tasks' goroutines while the loop
// polls on, and the barrier at the end waits for all of them: a fixed count (CommitRecords) on a
// slow or loaded machine made cycles last seconds, long enough to outlive the transaction timeout.
// The budget is adapted to what the tasks got through: a cycle whose processing took longer than
// 1.5 intervals cuts the budget to what would have fit in one; a cycle that used its whole budget
// in less than an interval lets it grow by a quarter, up to CommitRecords. The commit itself (the
// transaction end) is not counted, so that a commit-bound pipeline keeps full cycles.
//
// Memory bounds it the same way: a cycle whose tasks held more than the memory plan's cycle share
// (it ended on that, with its last records already handed out) cuts the budget to the records that
// would have fitted, and a cycle grows only while it holds under three quarters of the share.
type cycleBudget struct{ n int }

// minCycleRecords keeps a cycle worth its commit on a machine that is badly overloaded; the first
// cycle's budget is firstCycleRecords (or CommitRecords, if smaller), from which it grows.
const minCycleRecords, firstCycleRecords = 64, 1024

func newCycleBudget(limit int) cycleBudget { return cycleBudget{n: min(limit, firstCycleRecords)} }

func (b *cycleBudget) adapt(end cycleEnd, interval time.Duration, limit int, maxBytes int64) {
	if end.records == 0 || end.busy <= 0 {
		return
	}
	if maxBytes > 0 && end.bytes > maxBytes {
		fit := int(float64(end.records) * float64(maxBytes) / float64(end.bytes))
		b.n = max(min(fit, b.n), minCycleRecords)
	}
	switch {
	case end.busy > interval*3/2:
		fit := int(float64(end.records) * float64(interval) / float64(end.busy))
		b.n = max(min(fit, b.n), minCycleRecords)
	case end.records >= b.n && end.busy < interval && (maxBytes <= 0 || end.bytes < maxBytes*3/4):
		b.n = min(b.n+max(b.n/4, 1), limit)
	}
}
