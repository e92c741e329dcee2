package stream

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/state"
)

func (r *Runtime) openTask(ctx context.Context, topic string, partition int32) (*Task, error) {
	t := &Task{
		topic:     topic,
		partition: partition,
		log:       r.log.With("topic", topic, "partition", partition),
		dec:       r.pipeline.Source.Format.NewDecoder(),
		ops:       r.pipeline.Operators,
		in:        make(chan taskWork, 16),
		done:      make(chan struct{}),
		cycle: cycleCounts{
			deadLetters: map[Reason]int{},
			produced:    map[string]int{},
			late:        map[string]int{},
		},
		lag:                r.m.lagGauge(topic, partition),
		reg:                r.cfg.Registerer,
		clientOpts:         r.restoreOpts(),
		partitions:         r.partitions,
		deadLetterTopic:    r.pipeline.DeadLetterTopic,
		deadLetterMaxBytes: r.cfg.DeadLetterMaxBytes,
		lateTopic:          r.pipeline.LateTopic,
		app:                r.pipeline.Name,
		wm:                 newWatermark(r.cfg.MaxOutOfOrderness.Milliseconds()),
		lastRecord:         time.Now(),
	}
	t.ev.Features = make([]float64, len(r.pipeline.Features))
	if l := r.pipeline.Labels; l != nil {
		t.labelDec, t.labels = l.Format.NewDecoder(), l.Topic
	}
	t.send = func(rec *kgo.Record) { r.sess.Produce(r.ctx, rec, r.promise) }
	if err := r.openState(ctx, t); err != nil {
		return nil, err
	}
	for _, op := range r.pipeline.Operators {
		p, err := op.Open(t)
		if err != nil {
			for _, opened := range t.procs {
				_ = opened.Close()
			}
			if t.db != nil {
				_ = t.db.Close()
			}
			return nil, fmt.Errorf("stream: open operator %s for partition %d: %w", op.Name(), partition, err)
		}
		t.procs = append(t.procs, p)
	}
	t.pub.store(t)
	go t.run()
	return t, nil
}

// openState opens the task's Pebble database and restores every store from its changelog: the
// tail after the offset the local state reflects, or all of it when there is no local state.
func (r *Runtime) openState(ctx context.Context, t *Task) error {
	if len(r.stores) == 0 {
		return nil
	}
	dir := filepath.Join(r.cfg.StateDir, r.pipeline.Name, fmt.Sprintf("%s-%d", t.topic, t.partition))
	recordCache := 0
	if r.cfg.RecordCacheBytes > 0 {
		// The operators' stores share the task's part of the budget; the task store holds one key.
		recordCache = int(max(r.cfg.RecordCacheBytes/int64(max(r.partitions, 1))/int64(max(len(r.stores)-1, 1)), 256<<10))
	}
	db, err := state.OpenOrRebuild(state.Options{Dir: dir, Cache: r.cache, Logger: t.log, RecordCacheBytes: recordCache})
	if err != nil {
		return err
	}
	t.db = db
	t.stores = map[string]*state.Store{}
	t.changelogs = map[string]string{}
	t.lastChangelog = map[string]*kgo.Record{}
	for _, name := range r.stores {
		s, err := db.Store(name)
		if err == nil {
			start := time.Now()
			var st state.RestoreStats
			st, err = state.RestoreFromKafka(ctx, r.restoreOpts(), state.ChangelogTopic(r.pipeline.Name, name), t.partition, s)
			r.m.restoreDuration.Observe(time.Since(start).Seconds())
			r.m.restoredRecords.Add(float64(st.Records))
			r.m.restoredBytes.Add(float64(st.Bytes))
			if err == nil && st.Records > 0 {
				t.log.Info("state restored", "store", name, "full", st.Full, "from", st.From, "to", st.To,
					"records", st.Records, "bytes", st.Bytes, "seconds", st.Duration.Seconds())
			}
		}
		if err != nil {
			_ = db.Close()
			return fmt.Errorf("stream: restore store %s of partition %d: %w", name, t.partition, err)
		}
		if name == taskStore {
			s.SetRecordCacheBytes(0) // one key
		}
		t.stores[name] = s
		t.storeOrder = append(t.storeOrder, s)
		t.changelogs[name] = state.ChangelogTopic(r.pipeline.Name, name)
	}
	v, ok, err := t.stores[taskStore].Get(watermarkKey)
	if err != nil {
		_ = db.Close()
		return err
	}
	if ok {
		if err := t.wm.decode(v); err != nil {
			_ = db.Close()
			return err
		}
	}
	return nil
}

// restoreOpts are the client options of the consumers that replay changelogs.
func (r *Runtime) restoreOpts() []kgo.Opt {
	return append([]kgo.Opt{
		kgo.SeedBrokers(r.cfg.Brokers...),
		kgo.ClientID("streamd-restore"),
		kgo.WithLogger(kgoLogger{r.log.With("component", "kafka-restore")}),
	}, r.cfg.ClientOpts...)
}
