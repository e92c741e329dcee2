package stream

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/state"
)

// Stateful is implemented by operators that keep state: the runtime creates a changelog topic for
// each store name (<app>-<store>-changelog) and restores the stores before the task processes.
type Stateful interface {
	Stores() []string
}

// WatermarkListener is implemented by processors that act when event time advances (window
// operators fire their timers). OnWatermark is called on the task's goroutine each time the task's
// watermark moves forward, right after the event that moved it, or when an idle partition's
// watermark is advanced.
type WatermarkListener interface {
	OnWatermark(t *Task, watermark int64) error
}

// Rewinder is implemented by processors that keep in-memory derivatives of their state (caches,
// the time of their next timer). Rewind is called after a cycle aborted, once the task's stores are
// back at their last committed state.
type Rewinder interface {
	Rewind(t *Task) error
}

// Committer is implemented by processors that publish figures when a cycle commits (metrics that
// must count only committed work). Committed is called on the task's goroutine after the state commit.
type Committer interface {
	Committed(t *Task)
}

// ErrNoState is returned by Task.Store when the pipeline declared no such store.
var ErrNoState = errors.New("stream: no such state store (declare it in the operator's Stores)")

// taskStore is the runtime's own store in every stateful task: it keeps the watermark, so that
// after a restart windows neither fire twice nor wait for event time that has already passed.
const taskStore = "task"

var watermarkKey = []byte("watermark")

// Store returns one of the task's state stores, declared by an operator's Stores method. Reads see
// the open cycle's writes; writes become durable, and reach the changelog, when the cycle commits.
func (t *Task) Store(name string) (*state.Store, error) {
	s, ok := t.stores[name]
	if !ok || name == taskStore {
		return nil, fmt.Errorf("%w: %q", ErrNoState, name)
	}
	return s, nil
}

// Watermark returns the task's event-time watermark in Unix milliseconds: no event older than it is
// expected any more. math.MinInt64 before the first event.
func (t *Task) Watermark() int64 { return t.wm.value() }

// MaxEventTime returns the largest event time the task has seen (Unix ms), math.MinInt64 before the
// first event.
func (t *Task) MaxEventTime() int64 { return t.wm.maxEventTime }

// LateTopic returns the pipeline's topic for late records ("" when it has none).
func (t *Task) LateTopic() string { return t.lateTopic }

// EmitRecord produces a record in the current transaction, with the given event time (its timestamp
// only on a topic whose TopicSettings ask for event time, else processing time; always in
// HeaderEventTime) and extra headers, for window results and other outputs that are not Emit-shaped. Key, value and header
// values are copied into the task's outbox, so the caller may reuse them. Called while an event is
// processed, or on the watermark advance it made, the record carries that event's lineage headers;
// called on an idle partition's watermark advance, it carries the partition's position then (the
// last record processed), and none only if the task has processed nothing.
func (t *Task) EmitRecord(topic string, key, value []byte, timestamp int64, headers ...kgo.RecordHeader) {
	value, ok := t.encode(topic, value)
	if !ok {
		return
	}
	r := t.out.record()
	r.Topic = topic
	r.Key = t.out.copy(key)
	r.Value = t.out.copy(value)
	t.stamp(r, timestamp)
	h := t.out.stamped(t.cur, t.tableHeaders(), timestamp, len(headers))
	for i, x := range headers {
		h[len(h)-len(headers)+i] = kgo.RecordHeader{Key: x.Key, Value: t.out.copy(x.Value)}
	}
	r.Headers = h
	t.produce(r)
}

// watermark tracks a task's event time. Its committed copy is what an aborted cycle rewinds to.
type watermark struct {
	maxOOO       int64 // max out-of-orderness, ms
	maxEventTime int64
	idle         int64 // the watermark an idle period advanced to
	committed    [2]int64
	dirty        bool
}

func newWatermark(maxOOO int64) watermark {
	w := watermark{maxOOO: maxOOO, maxEventTime: math.MinInt64, idle: math.MinInt64}
	w.committed = [2]int64{w.maxEventTime, w.idle}
	return w
}

func (w *watermark) value() int64 {
	v := w.idle
	if w.maxEventTime != math.MinInt64 && w.maxEventTime-w.maxOOO > v {
		v = w.maxEventTime - w.maxOOO
	}
	return v
}

// observe records an event time and reports whether the watermark moved forward.
func (w *watermark) observe(ts int64) bool {
	if ts <= w.maxEventTime {
		return false
	}
	before := w.value()
	w.maxEventTime = ts
	w.dirty = true
	return w.value() > before
}

func (w *watermark) encode(dst []byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(w.maxEventTime))
	return binary.BigEndian.AppendUint64(dst, uint64(w.idle))
}

func (w *watermark) decode(b []byte) error {
	if len(b) != 16 {
		return fmt.Errorf("stream: stored watermark is %d bytes, want 16", len(b))
	}
	w.maxEventTime = int64(binary.BigEndian.Uint64(b))
	w.idle = int64(binary.BigEndian.Uint64(b[8:]))
	w.committed = [2]int64{w.maxEventTime, w.idle}
	return nil
}

func (t *Task) onWatermark() error {
	wm := t.wm.value()
	for i, p := range t.procs {
		if l, ok := p.(WatermarkListener); ok {
			if err := l.OnWatermark(t, wm); err != nil {
				return fmt.Errorf("stream: operator %s on watermark %d: %w", t.ops[i].Name(), wm, err)
			}
		}
	}
	return nil
}

// advanceIdle moves the watermark of an idle partition forward (never back) and lets the operators
// fire what is due.
func (t *Task) advanceIdle(to int64) error {
	before := t.wm.value()
	if to <= t.wm.idle {
		return nil
	}
	t.wm.idle = to
	t.wm.dirty = true
	if t.wm.value() > before {
		// What fires now has no record of its own; it carries the partition's position, so
		// that every output has lineage headers.
		t.cur = nil
		if t.next > 0 {
			t.position = kgo.Record{Topic: t.topic, Partition: t.partition, Offset: t.next - 1}
			t.cur = &t.position
		}
		defer func() { t.cur = nil }()
		return t.onWatermark()
	}
	return nil
}

// flushChangelogs produces the cycle's coalesced state changes to the changelog topics: one record
// per changed key, with the key's latest value (a tombstone for a deletion), to the task's partition.
func (t *Task) flushChangelogs() {
	if t.db == nil {
		return
	}
	if t.wm.dirty {
		var buf [16]byte
		t.stores[taskStore].Set(watermarkKey, t.wm.encode(buf[:0]))
		t.wm.dirty = false
	}
	for _, s := range t.storeOrder {
		if s.ChangeCount() == 0 {
			continue
		}
		topic := t.changelogs[s.Name()]
		var last *kgo.Record
		s.Changes(func(key, value []byte, deleted bool) {
			r := t.out.record()
			r.Topic = topic
			r.Partition = t.partition
			r.Key = t.out.copy(key)
			if !deleted {
				r.Value = t.out.copy(value)
				if r.Value == nil {
					r.Value = []byte{} // an empty value is not a tombstone
				}
			}
			t.send(r)
			last = r
		})
		t.lastChangelog[s.Name()] = last
		t.cycle.changelog += s.ChangeCount()
	}
}

// settleState ends the cycle for the task's state: on commit, the stores' writes become durable with
// the changelog offsets their records got; on abort, the stores and the watermark go back to the
// last commit and the processors rewind.
func (t *Task) settleState(committed bool) error {
	if t.tables != nil {
		t.tables.settle(committed)
	}
	if committed {
		t.wm.committed = [2]int64{t.wm.maxEventTime, t.wm.idle}
		t.settleLatencies(time.Now())
		t.pub.store(t)
		defer func() {
			for _, p := range t.procs {
				if c, ok := p.(Committer); ok {
					c.Committed(t)
				}
			}
		}()
	} else {
		t.times.reset()
	}
	if t.db == nil {
		return nil
	}
	if committed {
		t.pub.stateBytes.Store(int64(t.db.DiskUsage()))
		offsets := make(map[string]int64, len(t.lastChangelog))
		for name, r := range t.lastChangelog {
			if r.Offset >= 0 {
				offsets[name] = r.Offset + 1
			}
		}
		clear(t.lastChangelog)
		if err := t.db.Commit(offsets); err != nil {
			return fmt.Errorf("stream: partition %d: %w", t.partition, err)
		}
		return nil
	}
	clear(t.lastChangelog)
	t.db.Abort()
	t.wm.maxEventTime, t.wm.idle = t.wm.committed[0], t.wm.committed[1]
	t.wm.dirty = false
	for i, p := range t.procs {
		if rw, ok := p.(Rewinder); ok {
			if err := rw.Rewind(t); err != nil {
				return fmt.Errorf("stream: operator %s rewind: %w", t.ops[i].Name(), err)
			}
		}
	}
	return nil
}

// published are a task's figures for other goroutines (the admin server), updated when a cycle
// commits.
type published struct {
	watermark    atomic.Int64
	maxEventTime atomic.Int64
	idle         atomic.Bool
	lastRecord   atomic.Int64 // Unix ms, wall clock
	next, lso    atomic.Int64
	stateBytes   atomic.Int64
	openWindows  atomic.Int64
	// cycleBytes is the memory the open cycle holds in the task (cycleBytes), which the poll loop
	// bounds (memory.go).
	cycleBytes atomic.Int64
}

func (p *published) store(t *Task) {
	p.watermark.Store(t.wm.value())
	p.maxEventTime.Store(t.wm.maxEventTime)
	if !t.lastRecord.IsZero() {
		p.lastRecord.Store(t.lastRecord.UnixMilli())
	}
	p.next.Store(t.next)
	p.lso.Store(t.lso)
	var open int64
	for _, pr := range t.procs {
		if c, ok := pr.(OpenWindowCounter); ok {
			open += c.OpenWindows()
		}
	}
	p.openWindows.Store(open)
}

// OpenWindowCounter is implemented by window processors: it reports the windows they hold open, for
// the streamd_open_windows gauge.
type OpenWindowCounter interface {
	OpenWindows() int64
}

// Header names on late records.
const (
	HeaderLateWindow    = "streamd-window"    // the operator whose windows had closed
	HeaderLateWatermark = "streamd-watermark" // the watermark when the record arrived, Unix ms
)

// Late routes an event that arrived after every window it belongs to had closed: to the pipeline's
// late topic (its original key and value, with lineage, the operator and the watermark in headers),
// or, when the pipeline has none, to the dead-letter topic with reason late_record. It is counted in
// streamd_late_records_total{operator}. Late records are never dropped silently.
func (t *Task) Late(ev *Event, operator string) {
	t.cycle.late[operator]++
	if t.lateTopic == "" {
		t.deadLetter(ev.Record, &Rejection{Reason: ReasonLate, Detail: fmt.Sprintf("event time %s is behind the watermark %s plus allowed lateness", fmtMillis(ev.Time), fmtMillis(t.wm.value()))}, operator)
		return
	}
	r := t.out.record()
	r.Topic = t.lateTopic
	r.Key = ev.Record.Key
	r.Value = ev.Record.Value
	h := t.out.lineage(ev.Record)
	var num [20]byte
	h = append(h, kgo.RecordHeader{Key: HeaderLateWindow, Value: t.out.copyString(operator)},
		kgo.RecordHeader{Key: HeaderLateWatermark, Value: t.out.copy(strconv.AppendInt(num[:0], t.wm.value(), 10))})
	r.Headers = t.stampRejected(r, ev.Record, h)
	t.produce(r)
}

// cycleBytes is the memory the task's open cycle holds on the heap: its outbox (outputs and
// changelog records, until the producer is done with them) and its state's write caches and batch.
// It runs on the task's goroutine, or on the runtime's while the task is idle.
func (t *Task) cycleBytes() int64 {
	n := t.out.held
	if t.db != nil {
		n += t.db.CycleBytes()
	}
	return int64(n)
}
