package stream

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

func (r *Runtime) onAssigned(ctx context.Context, _ *kgo.Client, assigned map[string][]int32) {
	r.joined.Store(true)
	r.ready.Store(false) // not ready while new partitions restore
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		opened = map[int32]*Task{}
		errs   []error
	)
	src := r.pipeline.Source.Topic
	if r.pipeline.Labels != nil {
		// Range assignment gives both topics' partition p to the same member; anything else would
		// separate labels from their events.
		have := map[int32]bool{}
		for _, p := range assigned[r.pipeline.Labels.Topic] {
			have[p] = true
		}
		for _, p := range assigned[src] {
			if !have[p] {
				errs = append(errs, fmt.Errorf("stream: assigned %s/%d without %s/%d: the group's members do not all use the range balancer", src, p, r.pipeline.Labels.Topic, p))
			}
		}
	}
	for topic, parts := range assigned {
		if topic != src {
			continue // labels partitions belong to the task of the same number
		}
		for _, p := range parts {
			r.mu.Lock()
			_, have := r.tasks[p]
			r.mu.Unlock()
			if have {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				t, err := r.openTask(ctx, topic, p)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				opened[p] = t
			}()
		}
	}
	wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	for p, t := range opened {
		r.tasks[p] = t
		r.m.rebalances.WithLabelValues("assigned").Inc()
	}
	r.taskErr = errors.Join(append([]error{r.taskErr}, errs...)...)
	r.m.assigned.Set(float64(len(r.tasks)))
	r.ready.Store(r.taskErr == nil)
	r.log.Info("partitions assigned", "assigned", assigned, "owned", len(r.tasks))
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
			t, ok := r.tasks[p]
			if !ok {
				continue
			}
			delete(r.tasks, p)
			if err := t.close(); err != nil {
				r.log.Warn("closing a task failed", "partition", p, "err", err)
			}
			r.m.dropLag(t.topic, p)
			r.m.rebalances.WithLabelValues(change).Inc()
		}
	}
	r.m.assigned.Set(float64(len(r.tasks)))
	if len(parts) > 0 {
		r.log.Info("partitions "+change, change, parts, "owned", len(r.tasks))
	}
}

func (r *Runtime) closeTasks() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for p, t := range r.tasks {
		errs = append(errs, t.close())
		r.m.dropLag(t.topic, p)
		delete(r.tasks, p)
	}
	r.m.assigned.Set(0)
	return errors.Join(errs...)
}
