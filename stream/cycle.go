package stream

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// cycle is the state of the open commit cycle.
type cycle struct {
	open    bool
	started time.Time
	records int
}

func (r *Runtime) loop(ctx context.Context) error {
	var c cycle
	for {
		wait := r.cfg.CommitInterval
		if c.open {
			wait = max(time.Until(c.started.Add(r.cfg.CommitInterval)), 0)
		}
		pollCtx, cancel := context.WithTimeout(ctx, wait)
		fetches := r.sess.PollRecords(pollCtx, r.cfg.CommitRecords-c.records)
		cancel()

		if ctx.Err() != nil {
			return r.shutdown(&c)
		}
		if err := r.checkTaskErr(); err != nil {
			return r.fail(&c, err)
		}
		if err := fetchError(fetches); err != nil {
			return r.fail(&c, err)
		}
		if !fetches.Empty() {
			if !c.open {
				if err := r.sess.Begin(); err != nil {
					return r.fail(&c, fmt.Errorf("stream: begin transaction: %w", err))
				}
				c = cycle{open: true, started: time.Now()}
			}
			c.records += r.dispatch(fetches)
		}
		if !c.open && len(r.stores) > 0 && r.cfg.IdleTimeout > 0 && time.Since(r.lastIdleCheck) >= r.cfg.IdleTimeout/4 {
			if err := r.advanceIdle(ctx, &c); err != nil {
				return r.fail(&c, err)
			}
		}
		if c.open && (time.Since(c.started) >= r.cfg.CommitInterval || c.records >= r.cfg.CommitRecords) {
			if err := r.endCycle(ctx, &c, kgo.TryCommit); err != nil {
				return err
			}
		}
		if !c.open {
			r.sess.AllowRebalance()
		}
	}
}

// fetchError returns the first fetch error that is fatal. Poll timeouts are not errors; errors a
// retry fixes are handled inside franz-go and not returned.
func fetchError(fs kgo.Fetches) error {
	var fatal error
	fs.EachError(func(topic string, partition int32, err error) {
		if fatal != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return
		}
		if errors.Is(err, kgo.ErrClientClosed) {
			fatal = err
			return
		}
		fatal = fmt.Errorf("stream: fetch %s/%d: %w", topic, partition, err)
	})
	return fatal
}

// dispatch hands each partition's records to its task and returns how many it handed out.
func (r *Runtime) dispatch(fs kgo.Fetches) int {
	n := 0
	r.mu.Lock()
	defer r.mu.Unlock()
	fs.EachPartition(func(p kgo.FetchTopicPartition) {
		if len(p.Records) == 0 {
			return
		}
		t := r.tasks[p.Partition]
		if t == nil {
			// Cannot happen while callbacks and polls are serialized; if it does, processing the
			// records anyway would commit offsets for a partition without a task, so fail loudly.
			r.taskErr = fmt.Errorf("stream: records for %s/%d, which has no task", p.Topic, p.Partition)
			return
		}
		last := p.Records[len(p.Records)-1]
		lag := t.lag
		if p.Topic != t.topic {
			lag = r.m.lagGauge(p.Topic, p.Partition)
		}
		lag.Set(float64(max(p.LastStableOffset-(last.Offset+1), 0)))
		t.in <- taskWork{recs: p.Records, lso: p.LastStableOffset}
		n += len(p.Records)
	})
	return n
}

// barrier waits until every task has processed everything it was handed.
func (r *Runtime) barrier() {
	r.mu.Lock()
	defer r.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(len(r.tasks))
	for _, t := range r.tasks {
		t.in <- taskWork{barrier: &wg}
	}
	wg.Wait()
}

// endCycle ends the open cycle: barrier, then commit (or abort) the transaction, then settle the
// tasks. It returns an error only when the runtime must stop.
func (r *Runtime) endCycle(ctx context.Context, c *cycle, want kgo.TransactionEndTry) error {
	start := time.Now()
	r.barrier()
	if err := r.checkTaskErr(); err != nil {
		return r.fail(c, err)
	}
	if perr := r.prodErr.Load(); perr != nil && want == kgo.TryCommit {
		r.log.Warn("a produce failed in this cycle; aborting it so that it is processed again", "err", *perr)
		want = kgo.TryAbort
	}
	endCtx, cancel := context.WithTimeout(r.ctx, r.cfg.TransactionTimeout)
	committed, err := r.sess.End(endCtx, want)
	cancel()
	r.prodErr.Store(nil)
	*c = cycle{}
	r.settle(committed)
	if serr := r.checkTaskErr(); serr != nil && err == nil {
		err = serr
	}
	if committed {
		r.m.committed.Inc()
		r.m.commitDuration.Observe(time.Since(start).Seconds())
	} else {
		r.m.aborted.Inc()
		if err == nil && want == kgo.TryCommit {
			r.log.Info("transaction aborted by a rebalance; its records will be processed again")
		}
	}
	if err != nil {
		return fmt.Errorf("stream: end transaction: %w", err)
	}
	return nil
}

// settle moves the tasks past the ended cycle: each task commits (or rewinds) its state on its own
// goroutine, in parallel; then, on commit, their counts reach the metrics; either way their outboxes
// are reused.
func (r *Runtime) settle(committed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(len(r.tasks))
	for _, t := range r.tasks {
		t.in <- taskWork{settle: &settleWork{committed: committed, wg: &wg}}
	}
	wg.Wait()
	for _, t := range r.tasks {
		if committed {
			r.m.consumed.WithLabelValues(t.topic).Add(float64(t.cycle.consumed))
			if t.cycle.labels > 0 {
				r.m.consumed.WithLabelValues(t.labels).Add(float64(t.cycle.labels))
			}
			for topic, n := range t.cycle.produced {
				r.counter(topic).Add(float64(n))
			}
			for reason, n := range t.cycle.deadLetters {
				r.m.deadLetters.WithLabelValues(string(reason)).Add(float64(n))
			}
			r.m.changelogRecords.Add(float64(t.cycle.changelog))
			for op, n := range t.cycle.late {
				r.m.late.WithLabelValues(op).Add(float64(n))
			}
			r.m.arrivalLatency.add(&t.arrivalLatency)
			r.m.eventLatency.add(&t.eventLatency)
			p := strconv.Itoa(int(t.partition))
			if wm := t.pub.watermark.Load(); wm != math.MinInt64 {
				r.m.watermarkLag.WithLabelValues(t.topic, p).Set(float64(time.Now().UnixMilli()-wm) / 1000)
			}
			if t.db != nil {
				r.m.openWindows.WithLabelValues(t.topic, p).Set(float64(t.pub.openWindows.Load()))
				r.m.stateBytes.WithLabelValues(t.topic, p).Set(float64(t.pub.stateBytes.Load()))
			}
		}
		t.arrivalLatency.reset()
		t.eventLatency.reset()
		t.cycle.reset()
		t.out.reset()
	}
}

func (r *Runtime) counter(topic string) prometheus.Counter {
	c, ok := r.counters[topic]
	if !ok {
		c = r.m.produced.WithLabelValues(topic)
		r.counters[topic] = c
	}
	return c
}

// shutdown ends the open cycle with a commit, bounded by ShutdownTimeout.
func (r *Runtime) shutdown(c *cycle) error {
	if !c.open {
		return nil
	}
	r.log.Info("shutting down: committing the open transaction", "records", c.records)
	done := make(chan error, 1)
	go func() { done <- r.endCycle(r.ctx, c, kgo.TryCommit) }()
	select {
	case err := <-done:
		return err
	case <-time.After(r.cfg.ShutdownTimeout):
		r.cancel() // abandon: the broker aborts the transaction after its timeout
		<-done
		return fmt.Errorf("stream: the final commit did not finish within %s; the broker will abort it", r.cfg.ShutdownTimeout)
	}
}

// fail aborts the open cycle and returns err.
func (r *Runtime) fail(c *cycle, err error) error {
	if c.open {
		if aerr := r.endCycle(r.ctx, c, kgo.TryAbort); aerr != nil {
			r.log.Warn("aborting after a fatal error failed too", "err", aerr)
		}
	}
	return err
}

func (r *Runtime) checkTaskErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.taskErr != nil {
		return r.taskErr
	}
	for _, t := range r.tasks {
		if t.fatalErr != nil {
			return t.fatalErr
		}
	}
	return nil
}

// onProduced is the promise of every produced record. A failure fails the cycle: the transaction is
// aborted and its input processed again, so nothing is lost.
func (r *Runtime) onProduced(rec *kgo.Record, err error) {
	if err != nil {
		e := fmt.Errorf("stream: produce to %s: %w", rec.Topic, err)
		r.prodErr.CompareAndSwap(nil, &e)
	}
}
