package streamtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/state"
	"github.com/streamd/streamd/stream"
)

// Config configures a Driver.
type Config struct {
	// StateDir is where the task keeps its state (t.TempDir() in a test). Required when an operator
	// is stateful. The driver uses one directory under it per disk it simulates.
	StateDir string
	// MaxOutOfOrderness: see stream.Config.MaxOutOfOrderness (the same default).
	MaxOutOfOrderness time.Duration
	// Partition is the source partition the task stands for. Default 0; records given to Process
	// are moved to it.
	Partition int32
	// Partitions is the source topic's partition count (stream.Task.Partitions). Default 1.
	Partitions int32
	// Registry receives the operators' metrics (stream.Task.Registerer). Default: a new registry,
	// which Driver.Registry returns.
	Registry *prometheus.Registry
	// Discard drops produced records instead of keeping them, for benchmarks: keeping copies
	// allocates per record, which the runtime does not. Outputs then returns nothing and
	// RestartFromChangelog fails.
	Discard bool
	// Logger receives the task's logs (stream.Task.Logger). Default: discarded.
	Logger *slog.Logger
}

// ErrDiscarded is returned by RestartFromChangelog when Config.Discard dropped the changelog.
var ErrDiscarded = errors.New("streamtest: the driver discards its records (Config.Discard); there is no changelog to restore from")

// Driver runs one task of a pipeline: Process records, then Commit or Abort the cycle; Restart,
// RestartFromChangelog and CommitThenCrash simulate crashes. A Driver is not safe for concurrent
// use.
type Driver struct {
	p    *stream.Pipeline
	cfg  Config
	disk int // the simulated disk: StateDir/<disk>
	lt   *stream.LocalTask

	pending   []*kgo.Record            // the open cycle's records
	committed map[string][]*kgo.Record // committed records by topic, in offset order
	offsets   map[string]int64         // next offset by topic
}

// NewDriver opens a driver for p's operators, with state under cfg.StateDir.
func NewDriver(p *stream.Pipeline, cfg Config) (*Driver, error) {
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	d := &Driver{p: p, cfg: cfg, committed: map[string][]*kgo.Record{}, offsets: map[string]int64{}}
	return d, d.open()
}

func (d *Driver) open() error {
	lt, err := stream.OpenLocalTask(context.Background(), d.p, stream.LocalConfig{
		Partition:         d.cfg.Partition,
		Partitions:        d.cfg.Partitions,
		StateDir:          filepath.Join(d.cfg.StateDir, strconv.Itoa(d.disk)),
		MaxOutOfOrderness: d.cfg.MaxOutOfOrderness,
		Registerer:        d.cfg.Registry,
		Logger:            d.cfg.Logger,
		Send:              d.send,
		Restore:           d.restore,
	})
	if err != nil {
		return err
	}
	d.lt = lt
	return nil
}

// send is Kafka's part in producing: an offset for every record, a copy of it kept for the cycle.
func (d *Driver) send(r *kgo.Record) {
	r.Offset = d.offsets[r.Topic]
	d.offsets[r.Topic]++
	if d.cfg.Discard {
		return
	}
	// The record's buffers are reused after the cycle: keep a copy. A nil value is a tombstone and
	// must stay nil; an empty one must not become nil.
	c := *r
	c.Key = clone(r.Key)
	c.Value = clone(r.Value)
	c.Headers = make([]kgo.RecordHeader, len(r.Headers))
	for i, h := range r.Headers {
		c.Headers[i] = kgo.RecordHeader{Key: h.Key, Value: clone(h.Value)}
	}
	d.pending = append(d.pending, &c)
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}

// restore is the task's stream.RestoreFunc: it replays the committed records of the changelog
// topic from the store's offset on, as state.RestoreFromKafka replays a changelog partition.
func (d *Driver) restore(_ context.Context, topic string, partition int32, s *state.Store) (state.RestoreStats, error) {
	start := time.Now()
	from, end := s.ChangelogOffset(), d.offsets[topic]
	st := state.RestoreStats{Store: s.Name(), Partition: partition, From: from, To: end, Full: from < 0}
	if from > end {
		return st, fmt.Errorf("%w: %s/%d ends at offset %d, the state reflects offset %d", state.ErrChangelogBehind, topic, partition, end, from)
	}
	r := s.NewRestorer()
	for _, rec := range d.committed[topic] {
		if rec.Partition != partition || rec.Offset < from {
			continue
		}
		if err := r.Apply(rec.Key, rec.Value, rec.Value == nil, rec.Offset+1); err != nil {
			return st, err
		}
	}
	if err := r.Finish(max(end, from, 0)); err != nil {
		return st, err
	}
	st.Records, st.Bytes = r.Counts()
	st.Duration = time.Since(start)
	return st, nil
}

// Task returns the driven task. It changes with every restart.
func (d *Driver) Task() *stream.Task { return d.lt.Task() }

// Registry returns the registry the operators' metrics go to.
func (d *Driver) Registry() *prometheus.Registry { return d.cfg.Registry }

// Process runs records through the task, in the open cycle. Records are moved to the driver's
// partition.
func (d *Driver) Process(recs ...*kgo.Record) error {
	for _, r := range recs {
		r.Partition = d.cfg.Partition
		if err := d.lt.Process(r); err != nil {
			return err
		}
	}
	return nil
}

// AdvanceIdle moves the watermark forward as the runtime does for an idle partition.
func (d *Driver) AdvanceIdle(watermark int64) error { return d.lt.AdvanceIdle(watermark) }

// Commit ends the cycle as committed: the changelog is flushed, the cycle's records become
// visible, the state is committed.
func (d *Driver) Commit() error {
	if err := d.lt.Flush(); err != nil {
		return err
	}
	d.publish()
	return d.lt.Settle(true)
}

// publish makes the open cycle's records committed, as a committed transaction does.
func (d *Driver) publish() {
	for _, r := range d.pending {
		d.committed[r.Topic] = append(d.committed[r.Topic], r)
	}
	d.pending = d.pending[:0]
}

// Abort ends the cycle as aborted: its records vanish and the state rewinds.
func (d *Driver) Abort() error {
	d.pending = d.pending[:0]
	return d.lt.Settle(false)
}

// Restart simulates a crash and a restart on the same disk: the open cycle is lost; the task
// reopens from its state directory and replays the changelog's tail, if the state is behind it.
func (d *Driver) Restart() error { return d.restart(false) }

// RestartFromChangelog simulates a crash and a restart on a new, empty disk: the open cycle is
// lost; every store is restored from the committed changelog.
func (d *Driver) RestartFromChangelog() error {
	if d.cfg.Discard {
		return ErrDiscarded
	}
	return d.restart(true)
}

// CommitThenCrash simulates a crash between the commit of the cycle's transaction and the commit
// of the local state: the cycle's records, its changelog included, are committed, the local state
// is not. It then restarts on the same disk, so the reopened task replays the changelog's tail.
func (d *Driver) CommitThenCrash() error {
	if err := d.lt.Flush(); err != nil {
		return err
	}
	d.publish()
	return d.restart(false)
}

func (d *Driver) restart(newDisk bool) error {
	d.pending = d.pending[:0]
	if err := d.lt.Close(); err != nil {
		return err
	}
	if newDisk {
		d.disk++
	}
	return d.open()
}

// Outputs returns the committed records produced to topic, in order. Changelog topics
// (state.ChangelogTopic) are topics too.
func (d *Driver) Outputs(topic string) []*kgo.Record { return d.committed[topic] }

// Features computes key's features as the admin API's /v1/features/{key} does (stream.Runtime's
// Features), with event (a source record's value) counted when not nil.
func (d *Driver) Features(key, event []byte, at int64) (*stream.KeyFeatures, error) {
	return d.lt.Features(key, event, at)
}

// Close closes the task and its state.
func (d *Driver) Close() error { return d.lt.Close() }
