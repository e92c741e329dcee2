package stream

import (
	"fmt"
	"testing"
	"time"
)

// TestCycleBudget runs the cycle budget against a model of the poll loop: a backlog that never
// runs out, tasks that process rate records per second, so that each cycle gets its whole budget at
// once and ends when the tasks have processed it. Whatever the rate, after a short warm-up no cycle's processing
// may outlast 1.5 intervals, and the budget must not starve the tasks: each cycle gets at least
// half of what they can process in an interval, or the whole CommitRecords limit.
func TestCycleBudget(t *testing.T) {
	const interval, limit = 100 * time.Millisecond, 20000
	for _, rate := range []float64{500, 5_000, 50_000, 150_000, 1_000_000, 20_000_000} {
		t.Run(fmt.Sprintf("%.0f/s", rate), func(t *testing.T) {
			b := newCycleBudget(limit)
			capacity := rate * interval.Seconds()
			for cycle := 0; cycle < 200; cycle++ {
				// The backlog fills every budget at once, so the cycle ends as soon as it is polled
				// and lasts as long as its processing.
				records := b.n
				busy := time.Duration(float64(records) / rate * float64(time.Second))
				if cycle >= 20 {
					if busy > interval*3/2 {
						t.Fatalf("cycle %d: %d records took %s to process (interval %s)", cycle, records, busy, interval)
					}
					if float64(records) < min(capacity/2, limit) && records != minCycleRecords {
						t.Fatalf("cycle %d: budget %d, but the tasks process %.0f per interval", cycle, records, capacity)
					}
				}
				b.adapt(cycleEnd{records: records, busy: busy}, interval, limit, 0)
			}
		})
	}
}

// TestCycleBudgetQuietCycles: cycles that end by the interval with records to spare leave the
// budget alone, and cycles with nothing in them are ignored.
func TestCycleBudgetQuietCycles(t *testing.T) {
	b := cycleBudget{n: 5000}
	b.adapt(cycleEnd{records: 300, busy: 100 * time.Millisecond}, 100*time.Millisecond, 20000, 0)
	b.adapt(cycleEnd{}, 100*time.Millisecond, 20000, 0)
	if b.n != 5000 {
		t.Fatalf("budget %d after quiet cycles, want 5000", b.n)
	}
}

// TestCycleBudgetMemory runs the cycle budget against a model of tasks that hold bytesPer bytes of
// every record they process until the cycle ends, with plenty of time: once the budget has
// settled, a cycle holds at most its memory share (ending on it is the loop's job; the budget
// makes the overshoot of the records already handed out small), and it still gets at least half
// of what fits.
func TestCycleBudgetMemory(t *testing.T) {
	const interval, limit, share = 100 * time.Millisecond, 20000, 16 << 20
	for _, bytesPer := range []int64{100, 3_000, 50_000, 1 << 20} {
		t.Run(fmt.Sprint(bytesPer), func(t *testing.T) {
			b := newCycleBudget(limit)
			fit := max(min(share/bytesPer, limit), minCycleRecords)
			for cycle := 0; cycle < 100; cycle++ {
				records := b.n
				held := int64(records) * bytesPer
				if cycle >= 20 {
					if held > share && records != minCycleRecords {
						t.Fatalf("cycle %d: %d records hold %d bytes, over the share %d", cycle, records, held, share)
					}
					if int64(records) < fit/2 {
						t.Fatalf("cycle %d: budget %d, but %d records fit", cycle, records, fit)
					}
				}
				b.adapt(cycleEnd{records: records, busy: interval / 10, bytes: held}, interval, limit, share)
			}
		})
	}
}
