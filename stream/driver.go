package stream

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/state"
)

// Driver runs a pipeline's operators on one task in-process, without Kafka: records in, outputs out,
// with real Pebble state on disk. Tests use it to check operators against reference models, to
// replay the same input under different commit sizes, and to simulate aborted cycles and crashes.
// Like goka's tester, it is the runtime minus the broker: the same Task, decoder and processors.
//
// A cycle's outputs are pending until Commit, and Abort drops them, as a read_committed consumer
// would see. Changelog records get offsets from a per-store counter. Restart closes the task and
// opens it again from its state directory (a crash: the open cycle is lost; restoring from the
// changelog is the runtime's job and is tested against Kafka).
type Driver struct {
	p         *Pipeline
	dir       string
	maxOOO    time.Duration
	partition int32
	t         *Task
	pending   []*kgo.Record
	committed map[string][]*kgo.Record
	offsets   map[string]int64
	// Discard drops outputs instead of keeping them (for benchmarks: keeping copies would allocate
	// per record, which the runtime does not).
	Discard bool
	// Registry receives operators' metrics.
	Registry *prometheus.Registry
}

// NewDriver opens a driver for p's operators on partition 0 with state under dir.
func NewDriver(p *Pipeline, dir string, maxOutOfOrderness time.Duration) (*Driver, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if err := initFormats(p); err != nil {
		return nil, err
	}
	d := &Driver{p: p, dir: dir, maxOOO: maxOutOfOrderness, committed: map[string][]*kgo.Record{}, offsets: map[string]int64{},
		Registry: prometheus.NewRegistry()}
	return d, d.open()
}

func (d *Driver) open() error {
	p := d.p
	t := &Task{
		topic: p.Source.Topic, partition: d.partition,
		log:             slog.New(slog.DiscardHandler),
		dec:             p.Source.Format.NewDecoder(),
		ops:             p.Operators,
		cycle:           cycleCounts{deadLetters: map[Reason]int{}, produced: map[string]int{}, late: map[string]int{}},
		lag:             prometheus.NewGauge(prometheus.GaugeOpts{Name: "lag"}),
		deadLetterTopic: p.DeadLetterTopic, deadLetterMaxBytes: 256 << 10,
		lateTopic: p.LateTopic, app: p.Name,
		wm: newWatermark(d.maxOOO.Milliseconds()),
	}
	t.ev.Features = make([]float64, len(p.Features))
	if p.Labels != nil {
		t.labelDec, t.labels = p.Labels.Format.NewDecoder(), p.Labels.Topic
	}
	t.send = func(r *kgo.Record) {
		if _, ok := t.changelogs[storeOfChangelog(t, r.Topic)]; ok {
			r.Offset = d.offsets[r.Topic]
			d.offsets[r.Topic]++
		}
		if d.Discard {
			return
		}
		// Records leave the outbox, whose slabs are reused after the cycle: keep copies.
		c := *r
		c.Key, c.Value = append([]byte(nil), r.Key...), append([]byte(nil), r.Value...)
		c.Headers = make([]kgo.RecordHeader, len(r.Headers))
		for i, h := range r.Headers {
			c.Headers[i] = kgo.RecordHeader{Key: h.Key, Value: append([]byte(nil), h.Value...)}
		}
		d.pending = append(d.pending, &c)
	}
	if names := p.storeNames(); len(names) > 0 {
		names = append(names, taskStore)
		sort.Strings(names)
		db, err := state.Open(state.Options{Dir: filepath.Join(d.dir, fmt.Sprintf("%s-%d", t.topic, t.partition))})
		if err != nil {
			return err
		}
		t.db, t.stores, t.changelogs, t.lastChangelog = db, map[string]*state.Store{}, map[string]string{}, map[string]*kgo.Record{}
		for _, n := range names {
			s, err := db.Store(n)
			if err != nil {
				return err
			}
			t.stores[n] = s
			t.storeOrder = append(t.storeOrder, s)
			t.changelogs[n] = state.ChangelogTopic(p.Name, n)
		}
		if v, ok, err := t.stores[taskStore].Get(watermarkKey); err != nil {
			return err
		} else if ok {
			if err := t.wm.decode(v); err != nil {
				return err
			}
		}
	}
	for _, op := range p.Operators {
		pr, err := op.Open(t)
		if err != nil {
			return err
		}
		t.procs = append(t.procs, pr)
	}
	d.t = t
	return nil
}

func storeOfChangelog(t *Task, topic string) string {
	for name, tp := range t.changelogs {
		if tp == topic {
			return name
		}
	}
	return ""
}

// Task returns the driven task.
func (d *Driver) Task() *Task { return d.t }

// Process runs records through the task, in the open cycle.
func (d *Driver) Process(recs ...*kgo.Record) error {
	for _, r := range recs {
		if r.Partition != d.partition {
			r.Partition = d.partition
		}
		if err := d.t.process(r); err != nil {
			return err
		}
	}
	return nil
}

// AdvanceIdle moves the watermark forward as the runtime does for an idle partition.
func (d *Driver) AdvanceIdle(watermark int64) error { return d.t.advanceIdle(watermark) }

// Commit ends the cycle as committed: the changelog is flushed, the outputs become visible, the
// state is committed.
func (d *Driver) Commit() error {
	d.t.flushChangelogs()
	for _, r := range d.pending {
		d.committed[r.Topic] = append(d.committed[r.Topic], r)
	}
	d.pending = d.pending[:0]
	err := d.t.settleState(true)
	d.t.cycle.reset()
	d.t.out.reset()
	return err
}

// Abort ends the cycle as aborted: its outputs vanish and the state rewinds.
func (d *Driver) Abort() error {
	d.pending = d.pending[:0]
	err := d.t.settleState(false)
	d.t.cycle.reset()
	d.t.out.reset()
	return err
}

// Restart simulates a crash: the open cycle is lost, the task is reopened from its state.
func (d *Driver) Restart() error {
	d.pending = d.pending[:0]
	for _, p := range d.t.procs {
		_ = p.Close()
	}
	if d.t.db != nil {
		if err := d.t.db.Close(); err != nil {
			return err
		}
	}
	return d.open()
}

// Outputs returns the committed records produced to topic, in order.
func (d *Driver) Outputs(topic string) []*kgo.Record { return d.committed[topic] }

// Close closes the task and its state.
func (d *Driver) Close() error {
	for _, p := range d.t.procs {
		_ = p.Close()
	}
	if d.t.db != nil {
		return d.t.db.Close()
	}
	return nil
}
