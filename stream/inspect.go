package stream

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// KeyInspector is implemented by processors that can show what they hold for an entity key (the
// admin API's /v1/state/{key}). Inspect runs on the task's goroutine; the result must be
// JSON-encodable and must not alias task memory.
type KeyInspector interface {
	Inspect(t *Task, key []byte) (any, error)
}

// ErrNotOwned is returned by Inspect for a key whose partition another instance owns.
var ErrNotOwned = errors.New("stream: the key's partition is not owned by this instance")

// ErrNotStarted is returned by Inspect before Run has learnt the source topic's partition count,
// without which a key's partition is unknown.
var ErrNotStarted = errors.New("stream: not started")

// KeyState is what the operators of the task owning a key hold for it.
type KeyState struct {
	Key       string         `json:"key"`
	Partition int32          `json:"partition"`
	Watermark string         `json:"watermark,omitempty"`
	Operators map[string]any `json:"operators"`
}

// Found reports whether any operator holds something for the key.
func (ks *KeyState) Found() bool { return len(ks.Operators) > 0 }

// Inspect returns what the operators hold for key, asking the task that owns the key's partition
// (found with the default key partitioner, murmur2, as Kafka's producers use) on its own goroutine.
// It is safe to call from any goroutine, concurrently with Run and its rebalances. It returns
// ErrNotStarted before Run has looked up the source topic, ErrNotOwned (wrapped, with the
// partition) when another instance owns the key, and ctx's error when ctx ends first.
func (r *Runtime) Inspect(ctx context.Context, key []byte) (*KeyState, error) {
	ks := &KeyState{Key: string(key), Operators: map[string]any{}}
	done := make(chan error, 1)
	part, err := r.runOnOwner(ctx, key, func(t *Task) {
		if wm := t.wm.value(); wm != math.MinInt64 {
			ks.Watermark = time.UnixMilli(wm).UTC().Format(time.RFC3339Nano)
		}
		for i, p := range t.procs {
			if in, ok := p.(KeyInspector); ok {
				v, err := in.Inspect(t, key)
				if err != nil {
					done <- err
					return
				}
				if v != nil {
					ks.Operators[t.ops[i].Name()] = v
				}
			}
		}
		done <- nil
	})
	if err != nil {
		return nil, err
	}
	ks.Partition = part
	select {
	case err := <-done:
		if err != nil {
			return nil, err
		}
		return ks, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// ErrLookupsBusy is returned by Inspect and Features when the key's task has more look-ups queued
// than it has served: the caller may retry.
var ErrLookupsBusy = errors.New("stream: too many look-ups queued on the key's task")

// lookupQueue is the number of look-ups a task holds before ErrLookupsBusy.
const lookupQueue = 256

// runOnOwner queues f on the goroutine of the task that owns key's partition and returns the
// partition; it does not wait for f to run, nor for the task: when the task's queue is full it
// returns ErrLookupsBusy.
//
// f goes to the task's look-up queue, which the task serves between two records of a batch and
// while it waits for work, ahead of the batches queued before it: a look-up waits for the record
// being processed, not for every queued batch (docs/BENCHMARKS.md, "Feature look-ups").
//
// It holds r.lookupMu, not r.mu (which a barrier holds until every task has processed its cycle),
// from the look-up of the task through the send. A revoke removes the task from r.tasks under
// r.lookupMu before it closes the task's input, and a task whose input is closed serves the
// look-ups queued before it ends: once queued, f runs.
func (r *Runtime) runOnOwner(_ context.Context, key []byte, f func(*Task)) (int32, error) {
	r.lookupMu.Lock()
	defer r.lookupMu.Unlock()
	if r.partitions == 0 {
		return 0, ErrNotStarted
	}
	part := int32(kgo.StickyKeyPartitioner(nil).ForTopic(r.pipeline.Source.Topic).Partition(&kgo.Record{Key: key}, int(r.partitions)))
	t := r.tasks[part]
	if t == nil {
		return part, fmt.Errorf("%w (partition %d)", ErrNotOwned, part)
	}
	select {
	case t.lookups <- func() { f(t) }:
		return part, nil
	default:
		return part, fmt.Errorf("%w (partition %d)", ErrLookupsBusy, part)
	}
}

// WatermarkInfo is one partition's event-time progress, for the admin API's /v1/watermarks.
type WatermarkInfo struct {
	Topic        string  `json:"topic"`
	Partition    int32   `json:"partition"`
	Watermark    string  `json:"watermark,omitempty"`
	WatermarkMs  int64   `json:"watermark_ms"`
	MaxEventTime string  `json:"max_event_time,omitempty"`
	LagSeconds   float64 `json:"watermark_lag_seconds"`
	Idle         bool    `json:"idle"`
	LastRecord   string  `json:"last_record,omitempty"`
	NextOffset   int64   `json:"next_offset"`
	StableOffset int64   `json:"last_stable_offset"`
	Why          string  `json:"why"`
}

// Watermarks reports every owned partition's watermark as of its last committed cycle, and why
// windows ending after it have not fired.
func (r *Runtime) Watermarks() []WatermarkInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	var out []WatermarkInfo
	for _, t := range r.tasks {
		p := &t.pub
		wi := WatermarkInfo{Topic: t.topic, Partition: t.partition, WatermarkMs: p.watermark.Load(), Idle: p.idle.Load(),
			NextOffset: p.next.Load(), StableOffset: p.lso.Load()}
		if lr := p.lastRecord.Load(); lr > 0 {
			wi.LastRecord = time.UnixMilli(lr).UTC().Format(time.RFC3339Nano)
		}
		if met := p.maxEventTime.Load(); met != math.MinInt64 {
			wi.MaxEventTime = time.UnixMilli(met).UTC().Format(time.RFC3339Nano)
		}
		switch {
		case wi.WatermarkMs == math.MinInt64:
			wi.WatermarkMs = 0
			wi.Why = "no event yet: no window of this partition can fire"
		default:
			wi.Watermark = time.UnixMilli(wi.WatermarkMs).UTC().Format(time.RFC3339Nano)
			wi.LagSeconds = float64(now.UnixMilli()-wi.WatermarkMs) / 1000
			silent := now.Sub(time.UnixMilli(p.lastRecord.Load())).Round(time.Second)
			switch {
			case wi.Idle:
				wi.Why = fmt.Sprintf("idle (caught up, silent for %s): the watermark follows the wall clock minus max_out_of_orderness", silent)
			case r.cfg.IdleTimeout > 0 && silent >= r.cfg.IdleTimeout:
				wi.Why = fmt.Sprintf("silent for %s but not caught up with the broker (next offset %d, last stable offset %d): the watermark waits for the records in between", silent, wi.NextOffset, wi.StableOffset)
			default:
				wi.Why = fmt.Sprintf("event time: the newest event time seen minus max_out_of_orderness (%s); windows fire when the watermark passes their end plus allowed lateness", r.cfg.MaxOutOfOrderness)
			}
		}
		out = append(out, wi)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Partition < out[j].Partition })
	return out
}
