package model

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"

	"github.com/streamd/streamd/online"
	"github.com/streamd/streamd/stream"
)

// DefaultMaxWaiting is LabelSpec.MaxWaiting's default: early labels a task keeps at most.
const DefaultMaxWaiting = 100_000

// labelRule is what one model accepts as a label. A label is learned only when every model of the
// operator accepts it, because they all learn the same example: a label that one model cannot
// learn would otherwise be learned by some models and not others, and the models' evaluations
// would no longer compare like with like.
type labelRule struct {
	model   string
	task    online.Task
	classes int // multiclass: labels are 0..classes-1
}

func newLabelRule(name string, l online.Learner) labelRule {
	r := labelRule{model: name, task: l.Task()}
	if cc, ok := l.Spec().(online.ClassCounter); ok {
		r.classes = cc.NumClasses()
	}
	return r
}

// accepts reports whether y is a label the model can learn. Binary: 0 or 1 (a soft label such as
// 0.5 is refused: streamd's labels are outcomes, and a value in between is almost always a
// producer's bug). Multiclass: an integer class index 0..K-1. Regression: any finite number.
// Anomaly models learn no label, so any finite number passes (they ignore it).
func (r labelRule) accepts(y float64) bool {
	if math.IsNaN(y) || math.IsInf(y, 0) {
		return false
	}
	switch r.task {
	case online.Binary:
		return y == 0 || y == 1
	case online.Multiclass:
		return y >= 0 && y < float64(r.classes) && y == math.Trunc(y)
	}
	return true
}

// allowed says in words what accepts lets through, for the dead letter's detail.
func (r labelRule) allowed() string {
	switch r.task {
	case online.Binary:
		return "0 or 1 (or a bool)"
	case online.Multiclass:
		return "an integer class from 0 to " + strconv.Itoa(r.classes-1)
	}
	return "a finite number"
}

// label reads the label field f (named field, for the dead letter). present is false when the
// record has no label (absent or null); a label that is present but not a number or a bool is a
// dead letter with reason wrong_type, and a number that some model cannot learn one with reason
// label_out_of_range that names the value, the model and what it allows.
func (o *Operator) label(f *stream.Field, field string) (y float64, present bool, err error) {
	switch f.Kind {
	case stream.Absent:
		return 0, false, nil
	case stream.Bool:
		if f.Bool {
			y = 1
		}
	case stream.Number:
		y = f.Num
	default:
		return 0, false, &stream.Rejection{Reason: stream.ReasonWrongType, Field: field,
			Detail: fmt.Sprintf("the label is a %s; want a number or a bool (string labels need labels.classes or labels.max_classes)", f.Kind)}
	}
	if err := o.checkLabel(y, field); err != nil {
		return 0, false, err
	}
	return y, true, nil
}

// checkLabel rejects a label that some model cannot learn.
func (o *Operator) checkLabel(y float64, field string) error {
	for _, r := range o.rules {
		if !r.accepts(y) {
			return &stream.Rejection{Reason: stream.ReasonLabelOutOfRange, Field: field,
				Detail: fmt.Sprintf("label %s for model %q (%s): want %s", strconv.FormatFloat(y, 'g', -1, 64), r.model, r.task, r.allowed())}
		}
	}
	return nil
}

// Early labels: a label from the labels topic whose event this task has not scored yet (a
// catch-up run reads the small labels topic faster than the events) waits under its event id until
// the event comes, and Process then joins it right after scoring. It waits at most the labels TTL
// in event time, counted from the label's own time, and there are at most LabelSpec.MaxWaiting of
// them per task; an early label that expires or is pushed out by the cap is counted as unmatched
// (and the latter as evicted too), never dropped silently.
//
// Store layout: "e/<id>" holds (expiry, label); "y/<expiry><id>" orders them by expiry, for the
// watermark and for the cap; "c/waiting" is how many wait, kept in the store so that an aborted
// cycle or a restart rewinds it with the labels themselves.
const (
	earlyPrefix    = "e/"
	earlyExpPrefix = "y/"
	earlyExpEnd    = "y0" // '/'+1
	waitingKey     = "c/waiting"
)

func (p *processor) earlyKey(id []byte) []byte {
	p.earlyBuf = append(append(p.earlyBuf[:0], earlyPrefix...), id...)
	return p.earlyBuf
}

func (p *processor) earlyExpiryKey(exp int64, id []byte) []byte {
	p.earlyBuf = append(putTime(append(p.earlyBuf[:0], earlyExpPrefix...), exp), id...)
	return p.earlyBuf
}

// decodeEarly reads an early label: its expiry, the label, and the label record's event time
// (written since training rows; an early label written before holds none, and its time is taken
// as its expiry less the TTL).
func (p *processor) decodeEarly(v []byte) (exp int64, y float64, ts int64, err error) {
	if len(v) != 16 && len(v) != 24 {
		return 0, 0, 0, fmt.Errorf("%w: early label of %d bytes", errCorrupt, len(v))
	}
	exp, y = int64(binary.BigEndian.Uint64(v)), math.Float64frombits(binary.LittleEndian.Uint64(v[8:]))
	ts = exp - p.op.ttl
	if len(v) == 24 {
		ts = int64(binary.BigEndian.Uint64(v[16:]))
	}
	return exp, y, ts, nil
}

// setWaiting records how many early labels wait, in counts (for the gauge) and in the store.
func (p *processor) setWaiting(n int64) {
	p.counts.waiting = n
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(n))
	p.store.Set([]byte(waitingKey), b[:])
}

// loadWaiting reads the number of waiting early labels and the earliest expiry among them.
func (p *processor) loadWaiting() error {
	p.counts.waiting, p.nextEarly = 0, math.MaxInt64
	p.evict.reset()
	v, ok, err := p.store.Get([]byte(waitingKey))
	if err != nil {
		return err
	}
	if ok {
		if len(v) != 8 {
			return fmt.Errorf("%w: waiting count of %d bytes", errCorrupt, len(v))
		}
		p.counts.waiting = int64(binary.BigEndian.Uint64(v))
	}
	it, err := p.store.NewIter([]byte(earlyExpPrefix), []byte(earlyExpEnd))
	if err != nil {
		return err
	}
	if it.Valid() && len(it.Key()) >= len(earlyExpPrefix)+8 {
		p.nextEarly = getTime(it.Key()[len(earlyExpPrefix):])
	}
	return it.Close()
}

// waitEarly keeps label y of the event id, whose label record has event time ts, until the event
// comes. A label whose wait would already be over by the watermark is unmatched at once: its event
// was scored and its prediction expired, or it will never come. A second early label for the same
// event replaces the first (the latest word on the event), which counts as unmatched.
func (p *processor) waitEarly(t *stream.Task, id []byte, y float64, ts int64) error {
	exp := ts + p.op.ttl
	if exp <= t.Watermark() {
		p.counts.unmatched++
		return nil
	}
	v, found, err := p.store.Get(p.earlyKey(id))
	if err != nil {
		return err
	}
	n := p.counts.waiting
	if found {
		old, _, _, err := p.decodeEarly(v)
		if err != nil {
			return err
		}
		p.store.Delete(p.earlyExpiryKey(old, id))
		p.evict.removed(p.earlyBuf)
		p.counts.unmatched++
	} else {
		n++
	}
	var b [24]byte
	binary.BigEndian.PutUint64(b[:], uint64(exp))
	binary.LittleEndian.PutUint64(b[8:], math.Float64bits(y))
	binary.BigEndian.PutUint64(b[16:], uint64(ts))
	p.store.Set(p.earlyKey(id), b[:])
	p.store.Set(p.earlyExpiryKey(exp, id), nil)
	p.evict.inserted(p.earlyBuf)
	p.nextEarly = min(p.nextEarly, exp)
	p.counts.early++
	if n > int64(p.op.spec.Labels.MaxWaiting) {
		if err := p.evictEarly(); err != nil {
			return err
		}
		n--
	}
	p.setWaiting(n)
	return nil
}

// evictEarly removes the early label that would expire first (it may be the one just added). The
// cursor (evictCursor) finds it without stepping over the front's tombstones every time.
func (p *processor) evictEarly() error {
	k, ok, err := p.evict.first(p.firstEarly)
	if err != nil {
		return err
	}
	if !ok || len(k) < len(earlyExpPrefix)+8 {
		return fmt.Errorf("%w: %d early labels counted, none indexed", errCorrupt, p.counts.waiting)
	}
	p.store.Delete(k)
	p.store.Delete(p.earlyKey(k[len(earlyExpPrefix)+8:]))
	p.evict.evicted(k)
	p.counts.evicted++
	p.counts.unmatched++
	return nil
}

// firstEarly returns a copy of the first key of the early labels' expiry index at or after from
// (nil: from nextEarly, below which none waits).
func (p *processor) firstEarly(from []byte) ([]byte, bool, error) {
	if from == nil {
		from = putTime([]byte(earlyExpPrefix), p.nextEarly)
	}
	it, err := p.store.NewIter(from, []byte(earlyExpEnd))
	if err != nil {
		return nil, false, err
	}
	var k []byte
	if it.Valid() {
		k = append(k, it.Key()...)
	}
	return k, k != nil, it.Close()
}

// takeEarly returns and removes the early label of event id, if one waits, with its label record's
// event time.
func (p *processor) takeEarly(id []byte) (float64, int64, bool, error) {
	if p.counts.waiting == 0 {
		return 0, 0, false, nil // the common case costs no read
	}
	v, found, err := p.store.Get(p.earlyKey(id))
	if err != nil || !found {
		return 0, 0, false, err
	}
	exp, y, ts, err := p.decodeEarly(v)
	if err != nil {
		return 0, 0, false, err
	}
	p.store.Delete(p.earlyKey(id))
	p.store.Delete(p.earlyExpiryKey(exp, id))
	p.evict.removed(p.earlyBuf)
	p.setWaiting(p.counts.waiting - 1)
	return y, ts, true, nil
}

// expireEarly drops the early labels whose wait is over by watermark wm, counting them as
// unmatched.
func (p *processor) expireEarly(wm int64) error {
	if wm < p.nextEarly {
		return nil
	}
	due, next, err := p.due(earlyExpPrefix, earlyExpEnd, p.nextEarly, wm)
	if err != nil {
		return err
	}
	p.nextEarly = next
	for _, k := range due {
		p.store.Delete(k)
		p.evict.removed(k)
		p.store.Delete(p.earlyKey(k[len(earlyExpPrefix)+8:]))
		p.counts.unmatched++
	}
	if len(due) > 0 {
		p.setWaiting(p.counts.waiting - int64(len(due)))
	}
	return nil
}

// due returns the keys of the expiry index [prefix, end) whose time is at most wm, and the first
// time after wm (math.MaxInt64 when there is none). from is a lower bound of the index's times:
// the scan starts there, past the tombstones of what expired before (see evictCursor).
func (p *processor) due(prefix, end string, from, wm int64) ([][]byte, int64, error) {
	it, err := p.store.NewIter(putTime([]byte(prefix), from), []byte(end))
	if err != nil {
		return nil, 0, err
	}
	next := int64(math.MaxInt64)
	var due [][]byte
	for ; it.Valid(); it.Next() {
		k := it.Key()
		if len(k) < len(prefix)+8 {
			it.Close()
			return nil, 0, fmt.Errorf("%w: expiry key of %d bytes", errCorrupt, len(k))
		}
		if exp := getTime(k[len(prefix):]); exp > wm {
			next = exp
			break
		}
		due = append(due, append([]byte(nil), k...))
	}
	return due, next, it.Close()
}
