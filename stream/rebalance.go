package stream

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// A partition assigned to this instance is opened off the rebalance callback: onAssigned pauses
// fetching it (and its labels partition), and a goroutine opens its task, which restores the
// task's stores from their changelogs. The poll loop adopts a task whose restore has finished
// between two cycles (adoptRestored) and resumes fetching its partition; meanwhile the other
// partitions process and commit as usual, and Ready reports false with the restore's progress.
//
// Restoring inside the callback would hold the group: franz-go calls onAssigned before it fetches
// anything, and a rebalance that comes during a long restore (another member joins, this one is
// slow) waits for the callback, past the rebalance timeout, and the member is expelled. A
// partition revoked or lost while it restores has its restore cancelled (dropTasks).

// restoring is a partition whose task is being opened.
type restoring struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when the goroutine has set task or err
	task   *Task
	err    error
	// remaining is the changelog offsets still to replay, summed over the task's stores as they
	// report progress; Readiness shows it.
	remaining atomic.Int64
	// replayed counts the changelog records the restore replayed, over the task's stores.
	replayed atomic.Int64
}

func (r *Runtime) onAssigned(_ context.Context, cl *kgo.Client, assigned map[string][]int32) {
	r.joined.Store(true)
	src := r.pipeline.Source.Topic
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pipeline.Labels != nil {
		// Range assignment and the warm balancer give both topics' partition p to the same member;
		// anything else would separate labels from their events.
		have := map[int32]bool{}
		for _, p := range assigned[r.pipeline.Labels.Topic] {
			have[p] = true
		}
		for _, p := range assigned[src] {
			if !have[p] {
				r.taskErr = errors.Join(r.taskErr, fmt.Errorf("stream: assigned %s/%d without %s/%d: the group's members do not all use the range or the warm balancer", src, p, r.pipeline.Labels.Topic, p))
			}
		}
	}
	var opening []int32
	for _, p := range assigned[src] {
		if _, have := r.tasks[p]; have {
			continue
		}
		if _, have := r.restoring[p]; have {
			continue
		}
		opening = append(opening, p)
	}
	if len(opening) > 0 {
		cl.PauseFetchPartitions(r.inputPartitions(opening))
	}
	for _, p := range opening {
		ctx, cancel := context.WithCancel(r.ctx)
		rs := &restoring{cancel: cancel, done: make(chan struct{})}
		r.restoring[p] = rs
		go func() {
			defer close(rs.done)
			if r.restoreGate != nil {
				if rs.err = r.restoreGate(ctx, p); rs.err != nil {
					return
				}
			}
			started := time.Now()
			pos, promoted := r.takeStandby(p)
			rs.task, rs.err = r.openTask(ctx, src, p, rs)
			if promoted && rs.err == nil {
				r.m.standbyPromotions.Inc()
				r.log.Info("standby promoted", "partition", p, "tail_records", rs.replayed.Load(),
					"standby_lag_offsets", pos.TotalLag(), "seconds", time.Since(started).Seconds())
			}
		}()
	}
	r.m.restoring.Set(float64(len(r.restoring)))
	r.updateReady()
	r.log.Info("partitions assigned", "assigned", assigned, "owned", len(r.tasks), "opening", opening)
	r.nudgeStandby()
}

// inputPartitions maps source partitions to themselves in every input topic: the source's and, with
// a labels topic, the same numbers there.
func (r *Runtime) inputPartitions(ps []int32) map[string][]int32 {
	m := map[string][]int32{}
	for _, topic := range r.inputTopics() {
		m[topic] = ps
	}
	return m
}

// adoptRestored moves the tasks whose restore has finished into the running set and resumes
// fetching their partitions. The poll loop calls it between cycles, so that a task joins at the
// start of a cycle. A restore that failed is the runtime's error, as a failed open was before.
func (r *Runtime) adoptRestored() {
	r.mu.Lock()
	defer r.mu.Unlock()
	var adopted []int32
	for p, rs := range r.restoring {
		select {
		case <-rs.done:
		default:
			continue
		}
		delete(r.restoring, p)
		if rs.err != nil {
			r.taskErr = errors.Join(r.taskErr, rs.err)
			continue
		}
		r.lookupMu.Lock()
		r.tasks[p] = rs.task
		r.lookupMu.Unlock()
		adopted = append(adopted, p)
		r.m.rebalances.WithLabelValues("assigned").Inc()
	}
	if len(adopted) == 0 {
		return
	}
	r.sess.Client().ResumeFetchPartitions(r.inputPartitions(adopted))
	r.m.assigned.Set(float64(len(r.tasks)))
	r.m.restoring.Set(float64(len(r.restoring)))
	r.updateReady()
	r.log.Info("partitions processing", "partitions", adopted, "owned", len(r.tasks), "restoring", len(r.restoring))
}

// updateReady sets ready: joined, nothing restoring, no task error. r.mu is held.
func (r *Runtime) updateReady() {
	r.ready.Store(r.joined.Load() && len(r.restoring) == 0 && r.taskErr == nil)
}

func (r *Runtime) onRevoked(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
	r.dropTasks(revoked, "revoked")
}

func (r *Runtime) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	r.dropTasks(lost, "lost")
}

func (r *Runtime) dropTasks(parts map[string][]int32, change string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for topic, ps := range parts {
		if topic != r.pipeline.Source.Topic {
			continue // a task goes with its source partition
		}
		for _, p := range ps {
			if rs, ok := r.restoring[p]; ok {
				delete(r.restoring, p)
				r.abandonRestore(p, rs)
				r.m.rebalances.WithLabelValues(change).Inc()
				continue
			}
			t, ok := r.tasks[p]
			if !ok {
				continue
			}
			r.lookupMu.Lock()
			delete(r.tasks, p) // before close: no look-up is queued to a closed task
			r.lookupMu.Unlock()
			if err := t.close(); err != nil {
				r.log.Warn("closing a task failed", "partition", p, "err", err)
			}
			r.m.dropLag(t.topic, p)
			r.m.rebalances.WithLabelValues(change).Inc()
		}
	}
	r.m.assigned.Set(float64(len(r.tasks)))
	// Ready is left as it is: a revoke does not make the instance ready (it comes at shutdown too),
	// and franz-go calls onAssigned after every rebalance, which sets it.
	r.m.restoring.Set(float64(len(r.restoring)))
	if len(parts) > 0 {
		r.log.Info("partitions "+change, change, parts, "owned", len(r.tasks))
		r.nudgeStandby()
	}
}

// abandonRestore cancels the restore of a partition this instance no longer owns, waits for it and
// closes what it opened, and lifts the partition's pause (onAssigned pauses it again if it comes
// back). r.mu is held; the restore's goroutine does not take it.
func (r *Runtime) abandonRestore(p int32, rs *restoring) {
	rs.cancel()
	<-rs.done
	r.sess.Client().ResumeFetchPartitions(r.inputPartitions([]int32{p}))
	if rs.task != nil {
		if err := rs.task.close(); err != nil {
			r.log.Warn("closing a task failed", "partition", p, "err", err)
		}
	}
	r.m.dropLag(r.pipeline.Source.Topic, p)
}

func (r *Runtime) closeTasks() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for p, rs := range r.restoring {
		delete(r.restoring, p)
		r.abandonRestore(p, rs)
	}
	r.m.restoring.Set(0)
	var errs []error
	for p, t := range r.tasks {
		r.lookupMu.Lock()
		delete(r.tasks, p) // before close: no look-up is queued to a closed task
		r.lookupMu.Unlock()
		errs = append(errs, t.close())
		r.m.dropLag(t.topic, p)
	}
	r.m.assigned.Set(0)
	return errors.Join(errs...)
}
