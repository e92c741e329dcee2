package stream

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// cycle is the state of the open commit cycle.
type cycle struct {
	open    bool
	started time.Time
	records int
}

func (r *Runtime) loop(ctx context.Context) error {
	var (
		c      cycle
		o      missingTopics
		budget = newCycleBudget(r.cfg.CommitRecords)
	)
	for {
		if !c.open {
			r.adoptRestored()
		}
		wait := r.cfg.CommitInterval
		if c.open {
			wait = max(time.Until(c.started.Add(r.cfg.CommitInterval)), 0)
		}
		var fetches kgo.Fetches
		if !r.mem.hold(c.open) { // over the memory budget: no more records until the cycle ends
			pollCtx, cancel := context.WithTimeout(ctx, wait)
			fetches = r.sess.PollRecords(pollCtx, budget.n-c.records)
			cancel()
		}

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
				r.openCycle(&c)
			}
			c.records += r.dispatch(fetches)
		}
		if !c.open && len(r.stores) > 0 && r.cfg.IdleTimeout > 0 && time.Since(r.lastIdleCheck) >= r.cfg.IdleTimeout/4 {
			if err := r.advanceIdle(ctx, &c); err != nil {
				return r.fail(&c, err)
			}
		}
		if c.open && (time.Since(c.started) >= r.cfg.CommitInterval || c.records >= budget.n || r.mem.paused || r.cycleFull()) {
			end, err := r.endCycle(&c, kgo.TryCommit)
			if err != nil {
				return err
			}
			budget.adapt(end, r.cfg.CommitInterval, r.cfg.CommitRecords, r.mem.plan.cycleBytes)
			r.sess.AllowRebalance()
			if err := r.afterEnd(ctx, end, &o); err != nil {
				return err
			}
		}
		if !c.open {
			r.sess.AllowRebalance()
		}
	}
}

// openCycle marks the start of a commit cycle; the transaction has begun.
func (r *Runtime) openCycle(c *cycle) {
	*c = cycle{open: true, started: time.Now()}
	r.cycleSince.Store(c.started.UnixNano())
}

// fetchError returns the first fetch error that ends the session. Poll timeouts are not errors; errors a
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
		// Most often the group session could not heartbeat or rejoin (a broker that is down or
		// stalled); Run decides whether a new session can get further (outage.go).
		op := fmt.Sprintf("fetch %s/%d", topic, partition)
		if topic == "" {
			op = "group session"
		}
		fatal = &brokerError{op: op, err: err}
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

// cycleEnd is how a cycle ended.
type cycleEnd struct {
	committed bool
	// records is how many records the cycle handed to its tasks, and busy how long from its start
	// until they had all been processed (the barrier), before the transaction ended.
	records int
	busy    time.Duration
	// bytes is the memory the cycle held in its tasks at the barrier (Runtime.cycleBytes).
	bytes int64
	// missing are the output topics that did not exist, which made the cycle abort; the runtime
	// waits for them (creating them when it may) and processes the cycle's input again.
	missing []string
	// recreated says that an output topic was deleted and created again during the cycle, which
	// made it abort; the producer has forgotten the old topic, and the input is processed again.
	recreated bool
}

// endCycle ends the open cycle: barrier, flush, then commit (or abort) the transaction, then settle
// the tasks. It returns an error only when the runtime must stop; the transaction is then already
// aborted. It never calls fail: it is what fail calls.
//
// The cycle commits only if every record it produced is written. GroupTransactSession.End flushes
// too, but only once it has decided to commit, and it does not look at promises: a record that
// failed in that flush (its topic deleted, too large for the topic, not authorized) would be missing
// from a committed transaction whose source offsets moved past its input, lost for good. So the
// records are flushed here, every promise has run when Flush returns, and any failure turns the
// commit into an abort.
func (r *Runtime) endCycle(c *cycle, want kgo.TransactionEndTry) (cycleEnd, error) {
	start := time.Now()
	r.barrier()
	records, busy, bytes := c.records, time.Since(c.started), r.cycleBytes()
	r.m.cycleBytes.Set(float64(bytes))
	taskErr := r.checkTaskErr()
	if taskErr != nil {
		want = kgo.TryAbort
	}
	var flushErr, prodErr error
	var missing []string
	barrierAt := time.Now()
	if want == kgo.TryCommit {
		flushCtx, cancel := context.WithTimeout(r.ctx, r.cfg.TransactionTimeout)
		if err := r.sess.Client().Flush(flushCtx); err != nil {
			flushErr = fmt.Errorf("stream: flush the cycle's records: %w", err)
		}
		cancel()
		prodErr, missing = r.produce.failures()
		if flushErr != nil || prodErr != nil || len(missing) > 0 {
			want = kgo.TryAbort
		}
	}
	flushedAt := time.Now()
	endCtx, cancel := context.WithTimeout(r.ctx, r.cfg.TransactionTimeout)
	committed, endErr := r.sess.End(endCtx, want)
	cancel()
	endedAt := time.Now()
	took := time.Since(c.started)
	r.m.txnDuration.Observe(took.Seconds())
	if took > r.cfg.TransactionTimeout/3 {
		// Ready reports false past this too; the broker aborts the transaction at the timeout.
		r.log.Warn("a commit cycle took over a third of the transaction timeout", "took", took.Round(time.Millisecond),
			"transaction_timeout", r.cfg.TransactionTimeout, "records", records, "processing", busy.Round(time.Millisecond),
			"ending", (took - busy).Round(time.Millisecond), "cycle_bytes", bytes)
	}
	r.produce.reset()
	*c = cycle{}
	r.cycleSince.Store(0)
	r.settle(committed)
	r.log.Debug("cycle ended", "committed", committed, "records", records, "processing", busy, "barrier", barrierAt.Sub(start),
		"flush", flushedAt.Sub(barrierAt), "end", endedAt.Sub(flushedAt), "settle", time.Since(endedAt), "cycle_bytes", bytes)
	if taskErr == nil {
		taskErr = r.checkTaskErr() // a state commit that failed
	}
	if committed {
		r.m.committed.Inc()
		r.m.commitDuration.Observe(time.Since(start).Seconds())
	} else {
		r.m.aborted.Inc()
	}
	switch {
	case taskErr != nil:
		if endErr != nil {
			r.log.Warn("ending the transaction failed too", "err", endErr)
		}
		return cycleEnd{}, taskErr
	case flushErr != nil || prodErr != nil:
		if endErr != nil {
			r.log.Warn("aborting the transaction after a failed produce failed too", "err", endErr)
		}
		return cycleEnd{}, &brokerError{op: "flush", err: errors.Join(flushErr, prodErr)}
	case errors.Is(endErr, kerr.UnknownTopicID):
		// A topic the transaction produced to was deleted and created again: the records the
		// old topic acknowledged are gone, and franz-go aborted. A changelog cannot come back
		// that way; an output can, once the producer forgets the old topic.
		if err := r.changelogsIntact(r.ctx, kadm.NewClient(r.sess.Client())); err != nil {
			return cycleEnd{}, errors.Join(err, endErr)
		}
		r.log.Warn("an output topic was deleted and created again during the transaction; it was aborted and is processed again", "err", endErr)
		r.sess.Client().PurgeTopicsFromProducing(r.pipeline.outputTopics()...)
		return cycleEnd{recreated: true}, nil
	case endErr != nil:
		return cycleEnd{}, &brokerError{op: "end transaction", err: endErr}
	case len(missing) > 0:
		return cycleEnd{missing: missing}, nil
	}
	if !committed && want == kgo.TryCommit {
		r.log.Info("transaction aborted by a rebalance; its records will be processed again")
	}
	return cycleEnd{committed: committed, records: records, busy: busy, bytes: bytes}, nil
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
	now := time.Now()
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
			r.deadRing.add(t.cycle.recentDead, now)
			r.m.changelogRecords.Add(float64(t.cycle.changelog))
			for op, n := range t.cycle.late {
				r.m.late.WithLabelValues(op).Add(float64(n))
			}
			for i, n := range t.cycle.tableMisses {
				if n > 0 {
					r.m.tableMisses.WithLabelValues(t.tables.specs[i].Name).Add(float64(n))
				}
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
		t.pub.cycleBytes.Store(t.cycleBytes()) // what the task keeps for the next cycle
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
	type result struct {
		end cycleEnd
		err error
	}
	done := make(chan result, 1)
	go func() {
		end, err := r.endCycle(c, kgo.TryCommit)
		done <- result{end, err}
	}()
	select {
	case res := <-done:
		if res.err == nil && len(res.end.missing) > 0 {
			r.log.Warn("the final transaction aborted: output topics are missing; its records are processed again at the next start",
				"topics", strings.Join(res.end.missing, ","))
		}
		return res.err
	case <-time.After(r.cfg.ShutdownTimeout):
		r.cancel() // abandon: the broker aborts the transaction after its timeout
		<-done
		return fmt.Errorf("stream: the final commit did not finish within %s; the broker will abort it", r.cfg.ShutdownTimeout)
	}
}

// fail aborts the open cycle and returns err, or the tasks' error when ending the cycle found one
// (a task error is the cause; err may be its consequence).
func (r *Runtime) fail(c *cycle, err error) error {
	if !c.open {
		return err
	}
	if _, aerr := r.endCycle(c, kgo.TryAbort); aerr != nil {
		if errors.Is(aerr, err) {
			return aerr
		}
		r.log.Warn("aborting after a fatal error failed too", "err", aerr)
	}
	return err
}

// checkTaskErr returns the error of a rebalance callback or of a task, if any. It may be called
// at any time: a task publishes its error atomically.
func (r *Runtime) checkTaskErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.taskErr != nil {
		return r.taskErr
	}
	for _, t := range r.tasks {
		if err := t.failed.Load(); err != nil {
			return *err
		}
	}
	return nil
}
