package stream

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// orderOp logs the offset of every event it processes; on the first it tells started and waits for
// release, so that the test can queue work behind a batch in progress.
type orderOp struct {
	log              *[]string
	started, release chan struct{}
}

func (o *orderOp) Name() string                  { return "order" }
func (o *orderOp) Open(*Task) (Processor, error) { return o, nil }
func (o *orderOp) Close() error                  { return nil }
func (o *orderOp) Process(_ *Task, ev *Event) error {
	if len(*o.log) == 0 {
		close(o.started)
		<-o.release
	}
	*o.log = append(*o.log, fmt.Sprint(ev.Record.Offset))
	return nil
}

// TestLookupsGoAheadOfQueuedBatches: a look-up queued while a task works through a batch, with two
// more batches queued behind it, runs after the record in progress, not after the queued batches.
func TestLookupsGoAheadOfQueuedBatches(t *testing.T) {
	var order []string // appended on the task's goroutine only
	op := &orderOp{log: &order, started: make(chan struct{}), release: make(chan struct{})}
	task := newTestTask(t, benchFormat(), []Operator{op}, nil)
	task.in, task.lookups, task.done = make(chan taskWork, 16), make(chan func(), 64), make(chan struct{})
	go task.run()
	now := time.Now()
	batch := func(from int) []*kgo.Record {
		var recs []*kgo.Record
		for i := from; i < from+5; i++ {
			recs = append(recs, cardRecord(i, now))
		}
		return recs
	}
	task.in <- taskWork{recs: batch(0)}
	<-op.started
	task.in <- taskWork{recs: batch(5)}
	task.in <- taskWork{recs: batch(10)}
	looked := make(chan struct{})
	task.lookups <- func() { order = append(order, "lookup"); close(looked) }
	close(op.release)
	<-looked
	var wg sync.WaitGroup
	wg.Add(1)
	task.in <- taskWork{barrier: &wg}
	wg.Wait()
	close(task.in)
	<-task.done
	if got := fmt.Sprint(order); got != "[0 lookup 1 2 3 4 5 6 7 8 9 10 11 12 13 14]" {
		t.Errorf("order %s: the look-up should follow the record in progress (0)", got)
	}
}
