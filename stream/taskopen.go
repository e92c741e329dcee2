package stream

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/state"
	"github.com/streamd/streamd/state/table"
)

// RestoreFunc brings a store up to date with its changelog before its task processes: it replays
// the changelog partition from s.ChangelogOffset() (from the start when that is negative: no local
// state) to the changelog's end, through s.NewRestorer, and returns what it replayed. The runtime's
// restores read Kafka (state.RestoreFromKafka); stream/streamtest replays the changelog it captured.
type RestoreFunc func(ctx context.Context, topic string, partition int32, s *state.Store) (state.RestoreStats, error)

// taskEnv is everything a task is built from that is not in the pipeline: what differs between the
// runtime's tasks and local ones (OpenLocalTask) is where the produced records go (send), where the
// metrics go, and how stores are restored. openTask is the one constructor of both.
type taskEnv struct {
	topic      string
	partition  int32
	partitions int32
	log        *slog.Logger
	lag        prometheus.Gauge
	reg        prometheus.Registerer
	clientOpts []kgo.Opt
	send       func(*kgo.Record)

	deadLetterMaxBytes int
	maxOutOfOrderness  time.Duration

	// State, for a stateful pipeline: the stores (sorted, with taskStore), the directory the stores'
	// database lives in, its share of the block cache (nil: Pebble's own) and record cache, and the
	// restore of each store.
	stores           []string
	dir              string
	cache            *pebble.Cache
	recordCacheBytes int
	memTableBytes    uint64 // 0: state's default
	restore          RestoreFunc
	// Tables: the runtime's global tables by name, where a co-partitioned table of this partition
	// lives, and the tables' metrics and restore progress (nil: none).
	globals       map[string]*table.Table
	tableDir      func(name string) string
	tableProgress func(remaining int64)
	tableLag      *prometheus.GaugeVec
	tableApplied  *prometheus.CounterVec
	// cycleKeepBytes and outboxKeepBytes bound what a store's write cache and the task's outbox
	// keep between cycles (memoryPlan); 0: their defaults.
	cycleKeepBytes, outboxKeepBytes int
}

// openTask builds a task for p: its decoders, its state restored from the changelogs, its operators
// opened. It does not start the task's goroutine.
func openTask(ctx context.Context, p *Pipeline, env taskEnv) (*Task, error) {
	t := &Task{
		topic:     env.topic,
		partition: env.partition,
		log:       env.log,
		dec:       p.Source.Format.NewDecoder(),
		ops:       p.Operators,
		cycle: cycleCounts{
			deadLetters: map[Reason]int{},
			produced:    map[string]int{},
			late:        map[string]int{},
		},
		lag:                env.lag,
		reg:                env.reg,
		clientOpts:         env.clientOpts,
		partitions:         env.partitions,
		send:               env.send,
		deadLetterTopic:    p.DeadLetterTopic,
		encoders:           p.OutputEncoders,
		eventTime:          p.eventTimeTopics(),
		deadLetterMaxBytes: env.deadLetterMaxBytes,
		lateTopic:          p.LateTopic,
		app:                p.Name,
		wm:                 newWatermark(env.maxOutOfOrderness.Milliseconds()),
		out:                outbox{keep: env.outboxKeepBytes},
	}
	t.ev.Features = make([]float64, len(p.Features))
	if l := p.Labels; l != nil {
		t.labelDec, t.labels = l.Format.NewDecoder(), l.Topic
	}
	if err := t.openState(ctx, env); err != nil {
		return nil, err
	}
	if err := t.openTables(ctx, p, env); err != nil {
		_ = t.release()
		return nil, err
	}
	for _, op := range p.Operators {
		pr, err := op.Open(t)
		if err != nil {
			_ = t.release()
			return nil, fmt.Errorf("stream: open operator %s for partition %d: %w", op.Name(), t.partition, err)
		}
		t.procs = append(t.procs, pr)
	}
	return t, nil
}

// openState opens the task's Pebble database and restores every store from its changelog: the
// tail after the offset the local state reflects, or all of it when there is no local state.
func (t *Task) openState(ctx context.Context, env taskEnv) error {
	if len(env.stores) == 0 {
		return nil
	}
	db, err := state.OpenOrRebuild(state.Options{Dir: env.dir, Cache: env.cache, Logger: t.log, RecordCacheBytes: env.recordCacheBytes,
		MemTableSize: env.memTableBytes, CycleCacheMaxBytes: env.cycleKeepBytes})
	if err != nil {
		return err
	}
	t.db = db
	t.stores = map[string]*state.Store{}
	t.changelogs = map[string]string{}
	t.lastChangelog = map[string]*kgo.Record{}
	for _, name := range env.stores {
		topic := state.ChangelogTopic(t.app, name)
		s, err := db.Store(name)
		if err == nil && env.restore != nil {
			var st state.RestoreStats
			st, err = env.restore(ctx, topic, t.partition, s)
			if err == nil && st.Records > 0 {
				t.log.Info("state restored", "store", name, "full", st.Full, "from", st.From, "to", st.To,
					"records", st.Records, "bytes", st.Bytes, "seconds", st.Duration.Seconds())
			}
		}
		if err != nil {
			_ = db.Close()
			t.db = nil
			return fmt.Errorf("stream: restore store %s of partition %d: %w", name, t.partition, err)
		}
		if name == taskStore {
			s.SetRecordCacheBytes(0) // one key
		}
		t.stores[name] = s
		t.storeOrder = append(t.storeOrder, s)
		t.changelogs[name] = topic
	}
	v, ok, err := t.stores[taskStore].Get(watermarkKey)
	if err == nil && ok {
		err = t.wm.decode(v)
	}
	if err != nil {
		_ = db.Close()
		t.db = nil
		return err
	}
	return nil
}

// withTaskStore returns the operators' stores and the task's own, sorted: the stores of every
// stateful task.
func withTaskStore(names []string) []string {
	names = append(names, taskStore)
	sort.Strings(names)
	return names
}

// release closes the task's processors and its state, and returns the first error. The task's
// goroutine, if it has one, must have stopped.
func (t *Task) release() error {
	var first error
	for i, p := range t.procs {
		if err := p.Close(); err != nil && first == nil {
			first = fmt.Errorf("stream: close operator %s of partition %d: %w", t.ops[i].Name(), t.partition, err)
		}
	}
	t.procs = nil
	if t.tables != nil {
		if err := t.tables.close(); err != nil && first == nil {
			first = fmt.Errorf("stream: close the tables of partition %d: %w", t.partition, err)
		}
	}
	if t.db != nil {
		if err := t.db.Close(); err != nil && first == nil {
			first = fmt.Errorf("stream: close state of partition %d: %w", t.partition, err)
		}
	}
	return first
}

// openTask opens the task of one assigned source partition and starts its goroutine; rs gets the
// restore's progress.
func (r *Runtime) openTask(ctx context.Context, topic string, partition int32, rs *restoring) (*Task, error) {
	env := taskEnv{
		topic:              topic,
		partition:          partition,
		partitions:         r.partitions,
		log:                r.log.With("topic", topic, "partition", partition),
		lag:                r.m.lagGauge(topic, partition),
		reg:                r.cfg.Registerer,
		clientOpts:         r.restoreOpts(),
		send:               func(rec *kgo.Record) { r.sess.Produce(r.ctx, rec, r.promise) },
		deadLetterMaxBytes: r.cfg.DeadLetterMaxBytes,
		maxOutOfOrderness:  r.cfg.MaxOutOfOrderness,
		outboxKeepBytes:    r.mem.plan.outboxKeepBytes,
	}
	if len(r.stores) > 0 {
		env.stores = r.stores
		env.dir = r.taskDir(topic, partition)
		env.cache = r.cache
		env.memTableBytes, env.cycleKeepBytes = r.mem.plan.memTableBytes, r.mem.plan.cycleKeepBytes
		if r.cfg.RecordCacheBytes > 0 {
			// The operators' stores share the task's part of the budget; the task store holds one key.
			env.recordCacheBytes = int(max(r.cfg.RecordCacheBytes/int64(max(r.partitions, 1))/int64(max(len(r.stores)-1, 1)), 256<<10))
		}
		env.restore = func(ctx context.Context, changelog string, partition int32, s *state.Store) (state.RestoreStats, error) {
			return r.restoreFromKafka(ctx, changelog, partition, s, rs)
		}
		env.globals = r.globals
		env.tableDir = func(name string) string {
			return filepath.Join(r.cfg.StateDir, r.pipeline.Name, "tables", fmt.Sprintf("%s-%d", name, partition))
		}
		env.tableProgress = func(remaining int64) { rs.remaining.Store(remaining) }
		env.tableLag, env.tableApplied = r.m.tableLag, r.m.tableApplied
	}
	opened := time.Now() // a partition is silent from its assignment on, restore included
	t, err := openTask(ctx, r.pipeline, env)
	if err != nil {
		return nil, err
	}
	t.in = make(chan taskWork, 16)
	t.lookups = make(chan func(), lookupQueue)
	t.done = make(chan struct{})
	t.lastRecord = opened
	t.pub.store(t)
	go t.run()
	return t, nil
}

// restoreFromKafka replays a store's changelog from the brokers, with its progress in the metrics
// (streamd_restore_remaining_offsets) and in rs, for Readiness.
func (r *Runtime) restoreFromKafka(ctx context.Context, topic string, partition int32, s *state.Store, rs *restoring) (state.RestoreStats, error) {
	start := time.Now()
	remaining := r.m.restoreRemaining.WithLabelValues(s.Name(), strconv.Itoa(int(partition)))
	st, err := state.RestoreFromKafka(ctx, r.restoreOpts(), topic, partition, s, func(next, end int64) {
		remaining.Set(float64(end - next))
		rs.remaining.Store(end - next)
	})
	remaining.Set(0) // the series stays, at 0, while the partition is owned (dropLag deletes it)
	rs.remaining.Store(0)
	r.m.restoreDuration.Observe(time.Since(start).Seconds())
	r.m.restoredRecords.Add(float64(st.Records))
	rs.replayed.Add(st.Records)
	r.m.restoredBytes.Add(float64(st.Bytes))
	return st, err
}

// restoreOpts are the client options of the consumers that replay changelogs.
func (r *Runtime) restoreOpts() []kgo.Opt {
	return append([]kgo.Opt{
		kgo.SeedBrokers(r.cfg.Brokers...),
		kgo.ClientID("streamd-restore"),
		kgo.WithLogger(kgoLogger{r.log.With("component", "kafka-restore")}),
	}, r.cfg.ClientOpts...)
}
