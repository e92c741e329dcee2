package model

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/online"
	"github.com/streamd/streamd/stream"
)

// Merging replicas.
//
// Every partition's task trains its own replica of each model. Every MergeInterval each task
// publishes its replica — parameters, scaler, the merge version it started from and how many
// examples it learned since — to the compacted models topic <app>-models, in its transaction. The
// task of partition 0 is the coordinator: it combines the replicas that start from the current
// version (weighted parameter averaging, each replica weighted by its examples since that version)
// into version+1 and publishes it under "<operator>/merged". Each task adopts a merged version newer
// than its own when it next ticks, and writes a snapshot at once: adopting is a state change like any
// other, committed with the cycle, so that after a crash a task's models are exactly those behind its
// committed predictions. Evaluation metrics stay per replica.

// CompactedTopics implements stream.CompactedTopics: the models topic.
func (o *Operator) CompactedTopics(app string) []string {
	var out []string
	if o.spec.MergeInterval > 0 {
		out = append(out, ModelsTopic(app))
	}
	if t := o.VersionsTopic(); t != "" {
		out = append(out, t)
	}
	return out
}

// ModelsTopic is the compacted topic holding an application's model replicas and merged versions.
func ModelsTopic(app string) string { return app + "-models" }

// modelsReader follows the models topic on the side and keeps the latest value of every key.
type modelsReader struct {
	mu     sync.Mutex
	latest map[string][]byte
	refs   int
	cancel context.CancelFunc
	done   chan struct{}
	log    *slog.Logger
}

func (o *Operator) acquireReader(t *stream.Task) *modelsReader {
	o.readerMu.Lock()
	defer o.readerMu.Unlock()
	if o.reader == nil {
		r := &modelsReader{latest: map[string][]byte{}, done: make(chan struct{}), log: t.Logger()}
		cl, err := kgo.NewClient(append(t.ClientOpts(),
			kgo.ConsumeTopics(ModelsTopic(t.App())),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		)...)
		if err != nil {
			t.Logger().Warn("models topic reader", "err", err)
			close(r.done)
		} else {
			ctx, cancel := context.WithCancel(context.Background())
			r.cancel = cancel
			go r.run(ctx, cl)
		}
		o.reader = r
	}
	o.reader.refs++
	return o.reader
}

func (o *Operator) releaseReader() {
	o.readerMu.Lock()
	defer o.readerMu.Unlock()
	if o.reader == nil {
		return
	}
	if o.reader.refs--; o.reader.refs == 0 {
		if o.reader.cancel != nil {
			o.reader.cancel()
		}
		<-o.reader.done
		o.reader = nil
	}
}

func (r *modelsReader) run(ctx context.Context, cl *kgo.Client) {
	defer close(r.done)
	defer cl.Close()
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				r.log.Warn("reading the models topic", "topic", topic, "err", err)
			}
		})
		r.mu.Lock()
		fs.EachRecord(func(rec *kgo.Record) {
			if rec.Value == nil {
				delete(r.latest, string(rec.Key))
			} else {
				r.latest[string(rec.Key)] = rec.Value
			}
		})
		r.mu.Unlock()
	}
}

func (r *modelsReader) get(key string) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.latest[key]
}

// A published model set: version, weight (examples since that version), the scaler, each learner.
func (m *models) appendPublished(dst []byte, weight int64) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(m.version))
	dst = binary.BigEndian.AppendUint64(dst, uint64(weight))
	dst = appendScaler(dst, m.scaler)
	dst = binary.AppendUvarint(dst, uint64(len(m.learners)))
	for _, l := range m.learners {
		dst = appendBlob(dst, l.AppendState(nil))
	}
	return dst
}

type published struct {
	version, weight int64
	scaler          *scaler
	learners        []online.Learner
}

func decodePublished(o *Operator, b []byte) (*published, error) {
	if len(b) < 16 {
		return nil, errCorrupt
	}
	p := &published{version: int64(binary.BigEndian.Uint64(b)), weight: int64(binary.BigEndian.Uint64(b[8:])),
		scaler: newScaler(len(o.layout.numeric))}
	b, err := decodeScaler(b[16:], p.scaler)
	if err != nil {
		return nil, err
	}
	n, k := binary.Uvarint(b)
	if k <= 0 || n != uint64(len(o.spec.Models)) {
		return nil, errCorrupt
	}
	b = b[k:]
	for i := range n {
		var blob []byte
		if blob, b, err = readBlob(b); err != nil {
			return nil, err
		}
		if o.catalogs[i] != nil {
			// An offline model is not merged: its versions come from the versions topic.
			p.learners = append(p.learners, nil)
			continue
		}
		l, err := online.Decode(blob)
		if err != nil {
			return nil, err
		}
		p.learners = append(p.learners, l)
	}
	return p, nil
}

// tick runs every MergeInterval on each task: adopt a newer merged version, publish this replica,
// and, on partition 0, merge.
func (p *processor) tick(t *stream.Task) error {
	o := p.op
	if p.reader == nil {
		return nil
	}
	prefix := o.spec.Name + "/"
	// Adopt.
	if b := p.reader.get(prefix + "merged"); b != nil {
		pub, err := decodePublished(o, b)
		if err != nil {
			t.Logger().Warn("ignoring a merged model that does not decode", "err", err)
		} else if pub.version > p.m.version {
			for i, l := range pub.learners {
				if l == nil {
					continue
				}
				if err := p.m.learners[i].DecodeState(l.AppendState(nil)); err != nil {
					return fmt.Errorf("model: adopt version %d: %w", pub.version, err)
				}
			}
			p.m.scaler = pub.scaler
			p.m.version = pub.version
			p.m.mergeBase = p.m.seq
			p.m.snapshot(p.store, &p.buf)
			p.counts.adopted++
		}
	}
	// Publish this replica.
	weight := p.m.seq - p.m.mergeBase
	p.buf = p.m.appendPublished(p.buf[:0], weight)
	t.EmitRecord(ModelsTopic(t.App()), []byte(prefix+"replica/"+strconv.Itoa(int(p.partition))), p.buf, time.Now().UnixMilli())
	if p.partition != 0 {
		return nil
	}
	// Coordinate: merge the replicas that start from the current version.
	var reps []*published
	for part := int32(0); part < p.partitions; part++ {
		var b []byte
		if part == p.partition {
			b = p.buf
		} else {
			b = p.reader.get(prefix + "replica/" + strconv.Itoa(int(part)))
		}
		if b == nil {
			continue
		}
		pub, err := decodePublished(o, b)
		if err != nil || pub.version != p.m.version || pub.weight <= 0 {
			continue
		}
		reps = append(reps, pub)
	}
	if len(reps) < 2 {
		return nil // nothing to combine yet
	}
	merged := &models{version: p.m.version + 1, scaler: newScaler(len(o.layout.numeric))}
	var scalers []*scaler
	weights := make([]float64, len(reps))
	for i, r := range reps {
		scalers = append(scalers, r.scaler)
		weights[i] = float64(r.weight)
	}
	if merged.scaler != nil {
		if err := merged.scaler.Merge(scalers); err != nil {
			return err
		}
	}
	for mi, ms := range o.spec.Models {
		if o.catalogs[mi] != nil {
			merged.learners = append(merged.learners, p.m.learners[mi])
			continue
		}
		l, err := online.New(ms.Learner)
		if err != nil {
			return err
		}
		replicas := make([]online.Learner, len(reps))
		for i, r := range reps {
			replicas[i] = r.learners[mi]
		}
		if err := l.Merge(replicas, weights); err != nil {
			t.Logger().Warn("cannot merge model replicas", "model", ms.Name, "err", err)
			return nil
		}
		merged.learners = append(merged.learners, l)
	}
	p.buf = merged.appendPublished(p.buf[:0], 0)
	t.EmitRecord(ModelsTopic(t.App()), []byte(prefix+"merged"), p.buf, time.Now().UnixMilli())
	p.counts.merges++
	t.Logger().Info("merged model replicas", "version", merged.version, "replicas", len(reps))
	return nil
}
