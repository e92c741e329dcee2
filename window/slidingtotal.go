package window

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/streamd/streamd/stream"
	"github.com/streamd/streamd/window/agg"
)

// Sliding windows over invertible aggregations (count, sum, mean: agg.Layout.Invertible) keep each
// pane under its own key and a running total of the key's window beside the list of its panes:
//
//	'P' | key          → pane starts (the first in full, then steps in resolutions), then the total
//	                     of the panes in (newest − size, newest], newest = the last pane start
//	'q' | key | start  → one pane's aggregate, its sums compensated like the total's
//
// An event changes its own pane and the total, so a commit cycle writes a few dozen bytes per key
// it touched, where the pane list (sliding.go) rewrites every pane of the key: with a 10-minute
// window at 10 s that list is 60 panes, ~1.7 KB per key per cycle, and its compactions were a third
// of the ML pipeline's CPU. The feature of an event whose pane is the newest is the total itself; an
// event of an older pane (out of order) takes the total, removes the panes newer than its window
// and adds those older than the total's, which reads only the panes between the two windows. Panes
// stay stored until the watermark says no on-time event can need them, as in the list form.
//
// Each step that changes a total is a compensated sum (agg.Acc.MergeTotal), and every replay of the
// same events in the same order makes the same steps: a restored or re-run task computes the same
// features bit for bit, and a feature look-up (lookup) makes the same steps without writing.
//
// State written in the list form by an earlier version is converted key by key when the key is
// next touched (legacy).

const (
	prefixTotal = 'P' // sliding, invertible: 'P' | key → pane starts and the running total
	prefixPane  = 'q' // sliding, invertible: 'q' | key | start → one pane
)

// slide is the decoded state of one key while it is worked on, with its scratch.
type slide struct {
	starts     []int64  // the key's stored panes, ascending
	total      *agg.Acc // of the panes in (newest − size, newest]
	own        *agg.Acc // the event's pane
	other, out *agg.Acc
	ownIn      bool // own holds the pane at ownAt (read or built), valid for this event
	ownAt      int64
	key        []byte // the entity key
	paneKey    []byte
	buf        []byte
}

func newSlide(l *agg.Layout) *slide {
	return &slide{total: l.NewAcc(), own: l.NewAcc(), other: l.NewAcc(), out: l.NewAcc()}
}

func (s *slide) newest() int64 {
	if len(s.starts) == 0 {
		return math.MinInt64
	}
	return s.starts[len(s.starts)-1]
}

func (s *slide) paneKeyOf(start int64) []byte {
	s.paneKey = putTime(append(append(s.paneKey[:0], prefixPane), s.key...), start)
	return s.paneKey
}

func (p *processor) totalKey(key []byte) []byte {
	p.keyBuf = append(append(p.keyBuf[:0], prefixTotal), key...)
	return p.keyBuf
}

// loadSlide reads key's starts and total into s (empty when the key has none). A key still in the
// list form is converted: into s, and into the store when write.
func (a *slidingPanes) loadSlide(p *processor, s *slide, key []byte, write bool) error {
	s.key, s.starts, s.ownIn = key, s.starts[:0], false
	s.total.Reset()
	v, ok, err := p.store.Get(p.totalKey(key))
	if err != nil {
		return err
	}
	if ok {
		return a.decodeSlide(s, v)
	}
	if !p.legacy {
		return nil
	}
	return a.convertLegacy(p, s, key, write)
}

func (a *slidingPanes) decodeSlide(s *slide, v []byte) error {
	n, k := binary.Uvarint(v)
	if k <= 0 || n > 1<<20 {
		return errCorrupt
	}
	v = v[k:]
	if n > 0 {
		if len(v) < 8 {
			return errCorrupt
		}
		at := getTime(v)
		v = v[8:]
		s.starts = append(s.starts, at)
		for range n - 1 {
			d, k := binary.Uvarint(v)
			if k <= 0 || d == 0 || d > math.MaxInt64/uint64(a.res) {
				return errCorrupt
			}
			v = v[k:]
			at += int64(d) * a.res
			s.starts = append(s.starts, at)
		}
	}
	if err := s.total.DecodeTotal(v); err != nil {
		return fmt.Errorf("%w: %v", errCorrupt, err)
	}
	return nil
}

func (a *slidingPanes) encodeSlide(dst []byte, s *slide) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s.starts)))
	for i, at := range s.starts {
		if i == 0 {
			dst = putTime(dst, at)
		} else {
			dst = binary.AppendUvarint(dst, uint64((at-s.starts[i-1])/a.res))
		}
	}
	return s.total.AppendEncodedTotal(dst)
}

// convertLegacy turns a key's pane list ('p' | key, sliding.go's form) into panes and a total.
func (a *slidingPanes) convertLegacy(p *processor, s *slide, key []byte, write bool) error {
	found, err := p.loadList(prefixPanes, key)
	if err != nil || !found {
		return err
	}
	for _, it := range p.list {
		s.starts = append(s.starts, it.start)
	}
	newest := s.newest()
	for _, it := range p.list {
		if err := s.other.Decode(it.state); err != nil {
			return fmt.Errorf("%w: %v", errCorrupt, err)
		}
		if it.start > newest-a.size {
			s.total.MergeTotal(s.other, 1)
		}
		if write {
			s.buf = s.other.AppendEncodedTotal(s.buf[:0])
			p.store.Set(s.paneKeyOf(it.start), s.buf)
		}
	}
	if write {
		p.store.Delete(append([]byte{prefixPanes}, key...))
	}
	return nil
}

// pane returns the aggregate of the stored pane at start: s.own when it holds that pane, else the
// pane read into s.other.
func (a *slidingPanes) pane(p *processor, s *slide, start int64) (*agg.Acc, error) {
	if s.ownIn && s.ownAt == start {
		return s.own, nil
	}
	v, ok, err := p.store.Get(s.paneKeyOf(start))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: pane %d of a sliding window's key is missing", errCorrupt, start)
	}
	if err := s.other.DecodeTotal(v); err != nil {
		return nil, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	return s.other, nil
}

// step moves the key's state in s to the event of pane at watermark wm: panes no on-time event can
// need are dropped (and taken out of the total), and, when add, the event (p.in) joins its pane and,
// if the pane is in the total's window, the total. It returns the window as of pane: the panes in
// (pane − size, pane]. When write, the store gets the dropped panes' deletions and the own pane.
func (a *slidingPanes) step(p *processor, s *slide, pane, wm int64, add, write bool) (*agg.Acc, error) {
	newest := s.newest()
	drop := 0
	for _, at := range s.starts {
		if at+a.res > wm-a.late-a.size {
			break
		}
		if at > newest-a.size {
			acc, err := a.pane(p, s, at)
			if err != nil {
				return nil, err
			}
			s.total.MergeTotal(acc, -1)
		}
		if write {
			p.store.Delete(s.paneKeyOf(at))
		}
		drop++
	}
	s.starts = s.starts[:copy(s.starts, s.starts[drop:])]
	if len(s.starts) == 0 {
		s.total.Reset() // every pane has left; already empty, made exact
		newest = math.MinInt64
	}
	removed := drop > 0
	if add && pane > newest {
		// The total's window moves to end at pane: the panes it leaves behind go out of it.
		for _, at := range s.starts {
			if at > pane-a.size {
				break
			}
			if at > newest-a.size {
				acc, err := a.pane(p, s, at)
				if err != nil {
					return nil, err
				}
				s.total.MergeTotal(acc, -1)
				removed = true
			}
		}
		newest = pane
	}
	if removed && !s.total.Finite() {
		// An overflowed sum does not come back by subtraction: add up what is left instead.
		s.total.Reset()
		for _, at := range s.starts {
			if at > newest-a.size && at <= newest {
				acc, err := a.pane(p, s, at)
				if err != nil {
					return nil, err
				}
				s.total.MergeTotal(acc, 1)
			}
		}
	}
	if add {
		i, found := slices.BinarySearch(s.starts, pane)
		if found {
			acc, err := a.pane(p, s, pane)
			if err != nil {
				return nil, err
			}
			s.own.CopyFrom(acc)
		} else {
			s.own.Reset()
			s.starts = slices.Insert(s.starts, i, pane)
		}
		s.own.AddTotal(p.in)
		s.ownIn, s.ownAt = true, pane
		if write {
			s.buf = s.own.AppendEncodedTotal(s.buf[:0])
			p.store.Set(s.paneKeyOf(pane), s.buf)
		}
		if pane > newest-a.size {
			s.total.AddTotal(p.in)
		}
	}
	if pane == newest {
		return s.total, nil
	}
	if !s.total.Finite() {
		// Overflowed: nothing can be taken out of it; add up the event's window itself.
		s.out.Reset()
		for _, at := range s.starts {
			if at > pane-a.size && at <= pane {
				acc, err := a.pane(p, s, at)
				if err != nil {
					return nil, err
				}
				s.out.MergeTotal(acc, 1)
			}
		}
		return s.out, nil
	}
	// Another window than the total's: (pane − size, pane] against (newest − size, newest].
	s.out.CopyFrom(s.total)
	for _, at := range s.starts {
		inTotal := at > newest-a.size && at <= newest
		inEvent := at > pane-a.size && at <= pane
		if inTotal == inEvent {
			continue
		}
		acc, err := a.pane(p, s, at)
		if err != nil {
			return nil, err
		}
		if inTotal {
			s.out.MergeTotal(acc, -1)
		} else {
			s.out.MergeTotal(acc, 1)
		}
	}
	return s.out, nil
}

func (a *slidingPanes) processTotal(p *processor, t *stream.Task, ev *stream.Event, wm int64) (bool, error) {
	if ev.Time+1+a.late <= wm {
		return false, nil // the event's own window (…, ts] has closed
	}
	pane := floorDiv(ev.Time, a.res) * a.res
	s := p.slide
	if err := a.loadSlide(p, s, ev.Key, true); err != nil {
		return false, err
	}
	oldLast := s.newest()
	res, err := a.step(p, s, pane, wm, true, true)
	if err != nil {
		return false, err
	}
	p.setFeatures(ev, res)
	p.valBuf = a.encodeSlide(p.valBuf[:0], s)
	p.store.Set(p.totalKey(ev.Key), p.valBuf)
	a.moveTimer(p, ev.Key, oldLast, s.newest())
	p.emit(t, ev.Key, pane-a.size+a.res, pane+a.res, res, "update")
	return true, nil
}

// setFeatures writes the window's results into the event's feature slots.
func (p *processor) setFeatures(ev *stream.Event, acc *agg.Acc) {
	for i, slot := range p.op.spec.FeatureSlots {
		if slot >= 0 && slot < len(ev.Features) {
			if v, ok := acc.Result(i); ok {
				if !finite(v) {
					p.overflowed++ // the prediction names it (overflow.go)
				}
				ev.Features[slot] = v
			}
		}
	}
}

// moveTimer keeps one cleanup timer per key, at the time its newest pane stops mattering.
func (a *slidingPanes) moveTimer(p *processor, key []byte, oldLast, newLast int64) {
	if newLast == oldLast {
		return
	}
	if oldLast != math.MinInt64 {
		p.store.Delete(p.timerKey(a.expiry(oldLast), 0, key))
	} else {
		p.addOpen(1)
	}
	p.store.Set(p.timerKey(a.expiry(newLast), 0, key), nil)
	p.nextFire = min(p.nextFire, a.expiry(newLast))
}

// fireTotal removes each key whose panes have all expired.
func (a *slidingPanes) fireTotal(p *processor, wm int64) error {
	s := p.slide
	return p.fireTimers(wm, func(key []byte, _ int64) error {
		if err := a.loadSlide(p, s, key, false); err != nil {
			return err
		}
		for _, at := range s.starts {
			p.store.Delete(s.paneKeyOf(at))
		}
		p.store.Delete(p.totalKey(key))
		if p.legacy {
			p.store.Delete(append([]byte{prefixPanes}, key...))
		}
		p.addOpen(-1)
		return nil
	})
}

// rewindTotal finds the earliest timer and whether any key is still in the list form.
func (a *slidingPanes) rewindTotal(p *processor) error {
	it, err := p.store.NewIter([]byte{prefixPanes}, []byte{prefixPanes + 1})
	if err != nil {
		return err
	}
	p.legacy = it.Valid()
	if err := it.Close(); err != nil {
		return err
	}
	return p.firstTimer(prefixTimer, 0)
}

func (a *slidingPanes) inspectTotal(p *processor, key []byte, add func(start, end int64, acc *agg.Acc)) error {
	s := newSlide(p.op.layout)
	if err := a.loadSlide(p, s, key, false); err != nil || len(s.starts) == 0 {
		return err
	}
	newest := s.newest()
	add(newest-a.size+a.res, newest+a.res, s.total)
	return nil
}

func (a *slidingPanes) lookupTotal(p *processor, t *stream.Task, ev *stream.Event, withEvent bool) (bool, error) {
	s := newSlide(p.op.layout)
	if err := a.loadSlide(p, s, ev.Key, false); err != nil {
		return false, err
	}
	found := len(s.starts) > 0
	wm := t.Watermark()
	if ev.Time+1+a.late <= wm {
		return found, nil // late: Process computes no features for such an event
	}
	if withEvent {
		p.inputs(ev)
	}
	res, err := a.step(p, s, floorDiv(ev.Time, a.res)*a.res, wm, withEvent, false)
	if err != nil {
		return false, err
	}
	for i, slot := range p.op.spec.FeatureSlots {
		if slot >= 0 && slot < len(ev.Features) {
			if v, ok := res.Result(i); ok {
				ev.Features[slot] = v
			}
		}
	}
	return found, nil
}
