package stream

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// fact: the group's committed offset has reached it) and silent for IdleTimeout — and moves their
// watermark to the wall clock minus MaxOutOfOrderness, inside a transaction, since firing windows
// produces outputs.
func (r *Runtime) advanceIdle(ctx context.Context, c *cycle) error {
	r.lastIdleCheck = time.Now()
	now := time.Now()
	r.mu.Lock()
	var silent []*Task
	for _, t := range r.tasks {
		quiet := now.Sub(time.UnixMilli(t.pub.lastRecord.Load())) >= r.cfg.IdleTimeout
		t.pub.idle.Store(false)
		if quiet && now.UnixMilli()-r.cfg.MaxOutOfOrderness.Milliseconds() > t.pub.watermark.Load() {
			silent = append(silent, t)
		}
	}
	r.mu.Unlock()
	if len(silent) == 0 {
		return nil
	}
	caughtUp, err := r.caughtUp(ctx)
	if err != nil {
		r.log.Warn("idle check: cannot read offsets; windows wait", "err", err)
		return nil
	}
	var idle []*Task
	for _, t := range silent {
		if caughtUp[t.partition] {
			t.pub.idle.Store(true)
			idle = append(idle, t)
		}
	}
	if len(idle) == 0 {
		return nil
	}
	if err := r.sess.Begin(); err != nil {
		return fmt.Errorf("stream: begin transaction: %w", err)
	}
	r.openCycle(c)
	to := now.UnixMilli() - r.cfg.MaxOutOfOrderness.Milliseconds()
	var wg sync.WaitGroup
	wg.Add(len(idle))
	for _, t := range idle {
		t.in <- taskWork{idle: &idleWork{watermark: to, wg: &wg}}
	}
	wg.Wait()
	return nil
}

// caughtUp reports, per source partition, whether the group's committed offset has reached the
// partition's last stable offset. Called between cycles, when everything processed is committed.
func (r *Runtime) caughtUp(ctx context.Context) (map[int32]bool, error) {
	adm := kadm.NewClient(r.sess.Client())
	reqCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	lso, err := adm.ListCommittedOffsets(reqCtx, r.pipeline.Source.Topic)
	if err != nil {
		return nil, err
	}
	committed, err := adm.FetchOffsetsForTopics(reqCtx, r.pipeline.Name, r.pipeline.Source.Topic)
	if err != nil {
		return nil, err
	}
	out := map[int32]bool{}
	lso.Each(func(o kadm.ListedOffset) {
		c, ok := committed.Lookup(o.Topic, o.Partition)
		out[o.Partition] = o.Offset == 0 || (ok && c.At >= o.Offset)
	})
	return out, nil
}
