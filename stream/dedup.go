package stream

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamd/streamd/internal/bloom"
	"github.com/streamd/streamd/state"
)

// Dedup drops the events whose id (Event.ID, the source's event id field) was already accepted
// within TTL of event time, so that a producer's retries are neither counted in windows nor
// scored nor learned from. It must be the pipeline's first operator.
//
// # Semantics
//
// An event with id X and event time t is a duplicate when an earlier accepted event with id X and
// event time t0 is remembered, and an id is remembered while the task's watermark (as the event
// finds it: the watermark of the events before) is below t0 + TTL. Event time and the watermark,
// not the wall clock, decide, so that replaying the same input after a crash or on another
// instance drops exactly the same events: the watermark is task state, restored with the rest.
// This is Kafka Streams' choice for its windowed deduplication (stream time, not wall-clock time)
// and Flink's for event-time state TTL. Consequences a user sees:
//
//   - a duplicate of an event is dropped as long as event time has not moved on by TTL since the
//     first copy, however long the duplicate took to arrive in wall-clock time (a backlog
//     replayed a week later is deduplicated the same way);
//   - an event that is already more than TTL behind the watermark when it arrives is not
//     remembered, so its duplicates are not dropped: nothing can be said about it any more (with
//     a TTL above the windows' allowed lateness such an event is late for every window anyway);
//   - the first copy wins: the duplicate's fields, even when they differ, are never looked at.
//
// A duplicate is counted in streamd_duplicate_events_total{topic} and, with DeadLetter, produced to
// the dead-letter topic with reason duplicate_event_id; otherwise it is dropped (ErrDrop). Both
// happen in the cycle's transaction, so they are exactly once.
//
// # State
//
// The ids live in the task's store named after the operator ("dedup", changelog
// <app>-dedup-changelog), keyed by bucket then id: bucket = floor(t0 / (TTL/8)), so that ids expire
// a bucket at a time, in key order. The value is t0, which decides expiry exactly, whatever the
// bucket. Being task state, an accepted id is remembered exactly when the predictions of its event
// are committed, across crashes and rebalances.
//
// In front of the store each bucket has a Bloom filter of its ids (internal/bloom), so that the
// common case, a new id, costs a hash and a few memory reads per live bucket and no disk read. The
// filters are memory derived from the store: Open rebuilds them by scanning it (sized to the counts
// it finds), and an aborted cycle leaves ids in them that the store forgot, which costs a Pebble
// read on a false positive, never a wrong answer.
//
// Once the watermark passes a bucket's end + TTL, every id in it has expired: lookups skip it and
// its keys are deleted (tombstones in the changelog, so the compacted changelog and the disk stay
// bounded by the ids of about TTL + TTL/8 of event time), a few hundred at a time so that no cycle
// holds a whole bucket of deletions. Its filter is freed when the deletions have committed.
type Dedup struct {
	// OpName names the operator and its store. Default "dedup".
	OpName string
	// TTL is how long, in event time, an accepted id is remembered. Required, positive.
	TTL time.Duration
	// DeadLetter sends duplicates to the dead-letter topic (reason duplicate_event_id) instead of
	// dropping them.
	DeadLetter bool

	regOnce sync.Once
	regErr  error
	dups    *prometheus.CounterVec
}

// dedupBuckets is how many buckets one TTL spans.
const dedupBuckets = 8

// Sweeping expired ids: at most dedupSweepKeys deletions per sweep, a sweep on the first event of
// each cycle and every dedupSweepEvery events after while a bucket waits. That deletes up to 8 ids per event, well ahead of
// the at most one id an event adds, and opens a Pebble iterator (microseconds and tens of
// allocations: it flushes the cycle's writes into the indexed batch) only once per
// dedupSweepEvery events. A sweep's tombstones (~1 MiB at most) wait in the cycle's write cache.
const (
	dedupSweepKeys  = 16384
	dedupSweepEvery = 2048
)

// Name implements Operator.
func (d *Dedup) Name() string {
	if d.OpName == "" {
		return "dedup"
	}
	return d.OpName
}

// Stores implements Stateful.
func (d *Dedup) Stores() []string { return []string{d.Name()} }

// Validate checks the operator's settings.
func (d *Dedup) Validate() error {
	if d.TTL < time.Millisecond {
		return fmt.Errorf("%w: dedup ttl %s: must be at least 1ms", ErrBadPipeline, d.TTL)
	}
	return nil
}

// Open implements Operator: it rebuilds the filters of the restored ids.
func (d *Dedup) Open(t *Task) (Processor, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	d.regOnce.Do(func() {
		d.dups = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "streamd_duplicate_events_total",
			Help: "Events dropped (or dead-lettered) by source.dedup because their event id was already accepted within the ttl.",
		}, []string{"topic"})
		if reg := t.Registerer(); reg != nil {
			d.regErr = reg.Register(d.dups)
			var are prometheus.AlreadyRegisteredError
			if errors.As(d.regErr, &are) {
				d.dups, d.regErr = are.ExistingCollector.(*prometheus.CounterVec), nil
			}
		}
	})
	if d.regErr != nil {
		return nil, fmt.Errorf("stream: dedup: register metrics: %w", d.regErr)
	}
	s, err := t.Store(d.Name())
	if err != nil {
		return nil, err
	}
	ttl := d.TTL.Milliseconds()
	p := &dedupProc{op: d, store: s, ttl: ttl, width: max(ttl/dedupBuckets, 1), dups: d.dups.WithLabelValues(t.Topic())}
	if err := p.rebuild(t); err != nil {
		return nil, err
	}
	return p, nil
}

// dedupBucket is one bucket of ids: those whose first event time falls in [id*width, (id+1)*width).
type dedupBucket struct {
	id     int64
	filter *bloom.Filter
	// expired: the watermark has passed the bucket's end + TTL; swept: and its keys are deleted
	// (in the open cycle, until it commits).
	expired, swept bool
	// resume is where the bucket's sweep goes on: after the last key it deleted, so that a sweep
	// does not step over the tombstones of the ones before (nil: from the bucket's start).
	resume []byte
}

type dedupProc struct {
	op         *Dedup
	store      *state.Store
	ttl, width int64
	buckets    []dedupBucket // by id, ascending
	key        []byte
	lo, hi     []byte // the bounds of a sweep
	dups       prometheus.Counter
	cycleDups  int
	sinceSweep int
}

var dedupSeed = maphash.MakeSeed()

// dedupKey is the store key of id in bucket b: the bucket in 8 big-endian bytes with the sign bit
// flipped (so that key order is bucket order, negative buckets included), then the id.
func dedupKey(dst []byte, b int64, id []byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst[:0], uint64(b)^1<<63)
	return append(dst, id...)
}

func (p *dedupProc) bucketOf(ts int64) int64 {
	b := ts / p.width
	if ts%p.width < 0 {
		b-- // floor, for event times before 1970
	}
	return b
}

// expired reports whether an id first accepted at event time t0 is forgotten at watermark wm.
func (p *dedupProc) expired(t0, wm int64) bool {
	return wm != math.MinInt64 && t0 <= wm-p.ttl && wm-p.ttl < wm // the last test: no overflow
}

// bucketExpired reports whether every id of bucket b is forgotten at watermark wm.
func (p *dedupProc) bucketExpired(b, wm int64) bool {
	end := (b + 1) * p.width // the bucket's ids are all before end
	return p.expired(end-1, wm)
}

// Process implements Processor.
func (p *dedupProc) Process(t *Task, ev *Event) error {
	wm := t.Watermark()
	h := maphash.Bytes(dedupSeed, ev.ID)
	for i := range p.buckets {
		b := &p.buckets[i]
		if b.expired || !b.filter.MayContain(h) {
			continue
		}
		p.key = dedupKey(p.key, b.id, ev.ID)
		v, ok, err := p.store.Get(p.key)
		if err != nil {
			return fmt.Errorf("stream: dedup: %w", err)
		}
		if !ok || len(v) != 8 {
			continue // a false positive of the filter
		}
		if t0 := int64(binary.BigEndian.Uint64(v)); !p.expired(t0, wm) {
			return p.duplicate(ev, t0)
		}
	}
	if !p.expired(ev.Time, wm) {
		b := p.bucket(p.bucketOf(ev.Time))
		p.key = dedupKey(p.key, b.id, ev.ID)
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], uint64(ev.Time))
		p.store.Set(p.key, v[:])
		b.filter.Add(h)
	}
	if p.sinceSweep++; p.sinceSweep > dedupSweepEvery {
		return p.sweep()
	}
	return nil
}

func (p *dedupProc) duplicate(ev *Event, t0 int64) error {
	p.cycleDups++
	if !p.op.DeadLetter {
		return ErrDrop
	}
	id := ev.ID
	if len(id) > 64 {
		id = id[:64]
	}
	return &Rejection{Reason: ReasonDuplicateEventID, Detail: fmt.Sprintf("event id %q was already accepted at event time %s, within the dedup ttl %s",
		id, fmtMillis(t0), p.op.TTL)}
}

// bucket returns bucket id, adding it (with an empty filter) if it is new.
func (p *dedupProc) bucket(id int64) *dedupBucket {
	i := sort.Search(len(p.buckets), func(i int) bool { return p.buckets[i].id >= id })
	if i < len(p.buckets) && p.buckets[i].id == id {
		return &p.buckets[i]
	}
	// Size the new bucket's filter for as many ids as the largest bucket so far holds: the rate of
	// events changes slowly, so the filter usually needs one layer (the fastest to probe).
	expected := 0
	for j := range p.buckets {
		expected = max(expected, p.buckets[j].filter.Len())
	}
	p.buckets = append(p.buckets, dedupBucket{})
	copy(p.buckets[i+1:], p.buckets[i:])
	p.buckets[i] = dedupBucket{id: id, filter: bloom.New(expected + expected/4)}
	return &p.buckets[i]
}

// OnWatermark implements WatermarkListener: buckets whose ids have all expired stop being looked
// up; Process sweeps their keys.
func (p *dedupProc) OnWatermark(_ *Task, wm int64) error {
	p.markExpired(wm)
	return nil
}

func (p *dedupProc) markExpired(wm int64) {
	for i := range p.buckets {
		b := &p.buckets[i]
		if !p.bucketExpired(b.id, wm) {
			break // buckets are in order: the later ones end later
		}
		b.expired = true
	}
}

// sweep deletes up to dedupSweepKeys keys of the oldest expired buckets not yet swept.
func (p *dedupProc) sweep() error {
	p.sinceSweep = 0
	budget := dedupSweepKeys
	for i := range p.buckets {
		b := &p.buckets[i]
		if !b.expired {
			return nil
		}
		if b.swept {
			continue
		}
		lo := b.resume
		if lo == nil {
			p.lo = dedupKey(p.lo, b.id, nil)
			lo = p.lo
		}
		p.hi = dedupKey(p.hi, b.id+1, nil)
		it, err := p.store.NewIter(lo, p.hi)
		if err != nil {
			return fmt.Errorf("stream: dedup: sweep: %w", err)
		}
		for ; it.Valid() && budget > 0; it.Next() {
			p.store.Delete(it.Key())
			b.resume = append(b.resume[:0], it.Key()...)
			budget--
		}
		done := !it.Valid()
		if err := it.Close(); err != nil {
			return fmt.Errorf("stream: dedup: sweep: %w", err)
		}
		if !done {
			return nil
		}
		b.swept = true
	}
	return nil
}

// Committed implements Committer: the cycle's duplicates reach the metric, and the buckets whose
// deletions are now durable free their filters.
func (p *dedupProc) Committed(*Task) {
	p.sinceSweep = dedupSweepEvery // the next cycle starts with a sweep
	if p.cycleDups > 0 {
		p.dups.Add(float64(p.cycleDups))
		p.cycleDups = 0
	}
	kept := p.buckets[:0]
	for _, b := range p.buckets {
		if !b.swept {
			kept = append(kept, b)
		}
	}
	clear(p.buckets[len(kept):])
	p.buckets = kept
}

// Rewind implements Rewinder: after an abort the store and the watermark are back at the last
// commit, and so must be which buckets count as expired and swept. The filters keep the aborted
// cycle's ids, which only costs reads.
func (p *dedupProc) Rewind(t *Task) error {
	p.cycleDups, p.sinceSweep = 0, dedupSweepEvery
	for i := range p.buckets {
		b := &p.buckets[i]
		b.expired, b.swept, b.resume = false, false, nil
	}
	p.markExpired(t.Watermark())
	return nil
}

// rebuild builds the filters from the store: a first scan counts each bucket's ids, so that each
// filter is sized to hold them in one layer, the second adds them.
func (p *dedupProc) rebuild(t *Task) error {
	counts := map[int64]int{}
	scan := func(fn func(b int64, id []byte)) error {
		it, err := p.store.NewIter(nil, nil)
		if err != nil {
			return err
		}
		for ; it.Valid(); it.Next() {
			k := it.Key()
			if len(k) < 8 {
				continue
			}
			fn(int64(binary.BigEndian.Uint64(k)^1<<63), k[8:])
		}
		return it.Close()
	}
	if err := scan(func(b int64, _ []byte) { counts[b]++ }); err != nil {
		return fmt.Errorf("stream: dedup: rebuild filters: %w", err)
	}
	p.buckets = p.buckets[:0]
	for b, n := range counts {
		p.buckets = append(p.buckets, dedupBucket{id: b, filter: bloom.New(n)})
	}
	sort.Slice(p.buckets, func(i, j int) bool { return p.buckets[i].id < p.buckets[j].id })
	last := -1
	err := scan(func(b int64, id []byte) {
		if last < 0 || p.buckets[last].id != b {
			last = sort.Search(len(p.buckets), func(i int) bool { return p.buckets[i].id >= b })
		}
		p.buckets[last].filter.Add(maphash.Bytes(dedupSeed, id))
	})
	if err != nil {
		return fmt.Errorf("stream: dedup: rebuild filters: %w", err)
	}
	p.markExpired(t.Watermark())
	p.sinceSweep = dedupSweepEvery
	return nil
}

// Close implements Processor.
func (p *dedupProc) Close() error {
	p.buckets = nil
	return nil
}
