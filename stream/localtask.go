package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// LocalConfig configures a LocalTask. The zero value of a field means the default of the Config
// field of the same name (Config.EnsureDefaults is the one place defaults are written).
type LocalConfig struct {
	// Partition is the source partition the task stands for. Default 0.
	Partition int32
	// Partitions is the source topic's partition count the task reports (Task.Partitions).
	// Default 1.
	Partitions int32
	// StateDir holds the task's Pebble state, as the runtime's does:
	// <StateDir>/<pipeline>/<topic>-<partition>. Required when an operator is stateful.
	StateDir string
	// MaxOutOfOrderness: see Config.MaxOutOfOrderness.
	MaxOutOfOrderness time.Duration
	// DeadLetterMaxBytes: see Config.DeadLetterMaxBytes.
	DeadLetterMaxBytes int
	// Registerer is what Task.Registerer returns, for the operators' own metrics. Default: a
	// private registry.
	Registerer prometheus.Registerer
	// Logger is the task's logger. Default: one that discards.
	Logger *slog.Logger
	// Send receives every record the task produces: outputs, dead letters, late records and, when
	// the cycle ends, changelog records. The record and its buffers belong to the task until
	// Settle returns; a Send that keeps them must copy them. To stand for Kafka, Send must set
	// the Offset of changelog records (a per-topic counter): the state commit records it. Required.
	Send func(*kgo.Record)
	// Restore brings each store up to date with its changelog when the task opens. Default: none;
	// the task starts from what its state directory holds.
	Restore RestoreFunc
}

// LocalTask is one task of a pipeline run on the caller's goroutine, without Kafka: the same task
// the Runtime runs (one constructor builds both), with the broker replaced by LocalConfig's Send
// and Restore. It exists for test drivers (stream/streamtest builds on it; use that to test
// operators) and tools that replay records offline. A LocalTask is not safe for concurrent use.
//
// A cycle goes as in the runtime: Process (and AdvanceIdle) any number of times; Flush, which
// produces the changelog; then Settle(true) once the cycle's records count as committed, or
// Settle(false) to abort it.
type LocalTask struct {
	t      *Task
	p      *Pipeline
	closed bool
}

// ErrLocalTaskClosed is returned by a LocalTask's methods after Close.
var ErrLocalTaskClosed = errors.New("stream: local task closed")

// OpenLocalTask opens p's task for cfg.Partition: its state restored (cfg.Restore) and its operators
// opened.
func OpenLocalTask(ctx context.Context, p *Pipeline, cfg LocalConfig) (*LocalTask, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if err := initFormats(p); err != nil {
		return nil, err
	}
	if cfg.Send == nil {
		return nil, errors.New("stream: LocalConfig.Send is required")
	}
	// The runtime's defaults and bounds, through the runtime's Config; its brokers and instance id
	// are placeholders, as a local task connects to nothing.
	rc := Config{Brokers: []string{"local"}, InstanceID: "local", MaxOutOfOrderness: cfg.MaxOutOfOrderness,
		DeadLetterMaxBytes: cfg.DeadLetterMaxBytes, Registerer: cfg.Registerer, Logger: cfg.Logger}
	if rc.Logger == nil {
		rc.Logger = slog.New(slog.DiscardHandler)
	}
	rc.EnsureDefaults()
	if err := rc.Validate(); err != nil {
		return nil, err
	}
	env := taskEnv{
		topic:              p.Source.Topic,
		partition:          cfg.Partition,
		partitions:         max(cfg.Partitions, 1),
		log:                rc.Logger.With("app", p.Name, "topic", p.Source.Topic, "partition", cfg.Partition),
		reg:                rc.Registerer,
		send:               cfg.Send,
		deadLetterMaxBytes: rc.DeadLetterMaxBytes,
		maxOutOfOrderness:  rc.MaxOutOfOrderness,
	}
	if names := p.storeNames(); len(names) > 0 {
		if cfg.StateDir == "" {
			return nil, fmt.Errorf("stream: the pipeline keeps state (stores %v) but LocalConfig.StateDir is empty", names)
		}
		env.stores = withTaskStore(names)
		env.dir = filepath.Join(cfg.StateDir, p.Name, fmt.Sprintf("%s-%d", env.topic, env.partition))
		env.restore = cfg.Restore
	}
	t, err := openTask(ctx, p, env)
	if err != nil {
		return nil, err
	}
	return &LocalTask{t: t, p: p}, nil
}

// Task returns the task, as its operators see it.
func (l *LocalTask) Task() *Task { return l.t }

// Process runs one record through the task, in the open cycle. A record of the labels topic goes
// to the processors that learn. An error is fatal to the task, as in the runtime: end the cycle
// with Settle(false) or close the task.
func (l *LocalTask) Process(rec *kgo.Record) error {
	if l.closed {
		return ErrLocalTaskClosed
	}
	return l.t.process(rec)
}

// AdvanceIdle moves the watermark forward (never back) as the runtime does for an idle partition,
// and lets the operators fire what is due.
func (l *LocalTask) AdvanceIdle(watermark int64) error {
	if l.closed {
		return ErrLocalTaskClosed
	}
	return l.t.advanceIdle(watermark)
}

// Flush is the commit barrier: it produces the cycle's changelog records (one per changed key,
// through Send). The runtime flushes before it ends the transaction; call Flush before
// Settle(true), once per cycle.
func (l *LocalTask) Flush() error {
	if l.closed {
		return ErrLocalTaskClosed
	}
	l.t.flushChangelogs()
	return nil
}

// Settle ends the cycle for the task, as the runtime does once the transaction ended. With
// committed, the state becomes durable with the changelog offsets Send gave the flushed records;
// without, the state, the watermark and the processors go back to the last commit. Either way the
// records Send received stop being valid.
func (l *LocalTask) Settle(committed bool) error {
	if l.closed {
		return ErrLocalTaskClosed
	}
	t := l.t
	err := t.settleState(committed)
	t.arrivalLatency.reset()
	t.eventLatency.reset()
	t.cycle.reset()
	t.out.reset()
	return err
}

// Close closes the task's processors and its state, discarding an open cycle (a crash, for the
// state: what the last Settle(true) made durable is what a reopened task finds). It is
// idempotent.
func (l *LocalTask) Close() error {
	if l.closed {
		return nil
	}
	l.closed = true
	return l.t.release()
}
