package window

import (
	"fmt"
	"math"
	"time"

	"github.com/streamd/streamd/stream"
	"github.com/streamd/streamd/window/agg"
)

// Sliding windows are computed as of each event: the key's events in the last Size up to and
// including the event, at a resolution of Resolution (see the package doc).
const Sliding Kind = 3

var slidingKind = &kindInfo{
	kind:     Sliding,
	name:     "sliding",
	features: true,
	validate: func(s *Spec, bad func(string, ...any)) {
		if s.Size < time.Millisecond {
			bad("size %s is under 1ms", s.Size)
		}
		if s.Resolution == 0 {
			s.Resolution = max(s.Size/60, time.Millisecond)
			for s.Size%s.Resolution != 0 && s.Resolution > time.Millisecond {
				s.Resolution -= time.Millisecond
			}
		}
		if s.Resolution < time.Millisecond || s.Resolution > s.Size || s.Size%s.Resolution != 0 {
			bad("resolution %s must divide size %s", s.Resolution, s.Size)
		} else if s.Size/s.Resolution > 10000 {
			bad("size/resolution = %d panes; at most 10000", s.Size/s.Resolution)
		}
	},
	newAssigner: func(s *Spec) assigner {
		return &slidingPanes{size: s.Size.Milliseconds(), res: s.Resolution.Milliseconds(), late: s.AllowedLateness.Milliseconds()}
	},
}

// slidingPanes keeps a key's recent panes in one value ('p' | key, in the item list format: start =
// pane start, last unused) and one cleanup timer per key ('x' | expiry | 0 | key).
type slidingPanes struct {
	size, res, late int64 // ms
}

func (a *slidingPanes) process(p *processor, t *stream.Task, ev *stream.Event, wm int64) (bool, error) {
	if ev.Time+1+a.late <= wm {
		return false, nil // the event's own window (…, ts] has closed
	}
	pane := floorDiv(ev.Time, a.res) * a.res
	if _, err := p.loadList(prefixPanes, ev.Key); err != nil {
		return false, err
	}
	oldLast := int64(math.MinInt64)
	if len(p.list) > 0 {
		oldLast = p.list[len(p.list)-1].start
	}
	// Panes that no on-time event can need any more: older than wm - lateness - size.
	keep := p.list[:0]
	found := -1
	for _, it := range p.list {
		if it.start+a.res <= wm-a.late-a.size {
			continue
		}
		if it.start == pane {
			found = len(keep)
		}
		keep = append(keep, it)
	}
	p.list = keep
	if found >= 0 {
		if err := p.acc.Decode(p.list[found].state); err != nil {
			return false, fmt.Errorf("%w: %v", errCorrupt, err)
		}
	} else {
		p.acc.Reset()
	}
	p.acc.Add(p.in)
	buf := p.acc.AppendEncoded(p.scratch(0))
	p.spare[0] = buf
	if found >= 0 {
		p.list[found].state = buf
	} else {
		p.list = append(p.list, item{start: pane, state: buf})
		sortItems(p.list)
	}
	// The result as of the event: panes [pane-size+res, pane].
	p.tmp.Reset()
	for _, it := range p.list {
		if it.start > pane-a.size && it.start <= pane {
			if err := p.acc.Decode(it.state); err != nil {
				return false, fmt.Errorf("%w: %v", errCorrupt, err)
			}
			p.tmp.Merge(p.acc)
		}
	}
	for i, slot := range p.op.spec.FeatureSlots {
		if slot >= 0 && slot < len(ev.Features) {
			if v, ok := p.tmp.Result(i); ok {
				if !finite(v) {
					p.overflowed++ // the prediction names it (overflow.go)
				}
				ev.Features[slot] = v
			}
		}
	}
	p.valBuf = p.encodeList(p.valBuf[:0])
	p.store.Set(p.keyBuf, p.valBuf)
	// One cleanup timer per key, at the time its newest pane stops mattering.
	newLast := p.list[len(p.list)-1].start
	if newLast != oldLast {
		if oldLast != math.MinInt64 {
			p.store.Delete(p.timerKey(a.expiry(oldLast), 0, ev.Key))
		} else {
			p.addOpen(1)
		}
		p.store.Set(p.timerKey(a.expiry(newLast), 0, ev.Key), nil)
		p.nextFire = min(p.nextFire, a.expiry(newLast))
	}
	p.emit(t, ev.Key, pane-a.size+a.res, pane+a.res, p.tmp, "update")
	return true, nil
}

// expiry is the watermark at which a key whose newest pane starts at last has nothing left that an
// on-time event could need.
func (a *slidingPanes) expiry(last int64) int64 { return last + a.res + a.late + a.size }

// fire removes each key whose panes have all expired.
func (a *slidingPanes) fire(p *processor, _ *stream.Task, wm int64) error {
	return p.fireTimers(wm, func(key []byte, _ int64) error {
		p.keyBuf = append(append(p.keyBuf[:0], prefixPanes), key...)
		p.store.Delete(p.keyBuf)
		p.addOpen(-1)
		return nil
	})
}

func (a *slidingPanes) rewind(p *processor) error { return p.firstTimer(prefixTimer, 0) }

// inspect gives the key's window as of its newest pane, which is what its next event's features
// will build on.
func (a *slidingPanes) inspect(p *processor, _ *stream.Task, key []byte, add func(start, end int64, acc *agg.Acc)) error {
	v, ok, err := p.store.Get(append([]byte{prefixPanes}, key...))
	if err != nil || !ok {
		return err
	}
	list, err := decodeItems(v)
	if err != nil || len(list) == 0 {
		return err
	}
	pane := list[len(list)-1].start
	total, acc := p.op.layout.NewAcc(), p.op.layout.NewAcc()
	for _, it := range list {
		if it.start > pane-a.size && it.start <= pane {
			if err := acc.Decode(it.state); err != nil {
				return err
			}
			total.Merge(acc)
		}
	}
	add(pane-a.size+a.res, pane+a.res, total)
	return nil
}

// lookup sets ev's features as Process would compute them for ev now (see stream.FeatureSource),
// with ev's own inputs only when withEvent, and without writing the store: the same panes, the same
// dropping of expired ones and the same merge order, so that the values are bit for bit those of the
// next event's prediction.
func (a *slidingPanes) lookup(p *processor, t *stream.Task, ev *stream.Event, withEvent bool) (bool, error) {
	v, ok, err := p.store.Get(append([]byte{prefixPanes}, ev.Key...))
	if err != nil {
		return false, err
	}
	var list []item
	if ok {
		if list, err = decodeItems(v); err != nil {
			return false, fmt.Errorf("%w: %v", errCorrupt, err)
		}
	}
	found := len(list) > 0
	wm := t.Watermark()
	if ev.Time+1+a.late <= wm {
		return found, nil // late: Process computes no features for such an event
	}
	pane := floorDiv(ev.Time, a.res) * a.res
	keep := list[:0]
	own := -1
	for _, it := range list {
		if it.start+a.res <= wm-a.late-a.size {
			continue
		}
		if it.start == pane {
			own = len(keep)
		}
		keep = append(keep, it)
	}
	list = keep
	acc, total := p.op.layout.NewAcc(), p.op.layout.NewAcc()
	if withEvent {
		p.inputs(ev)
		if own >= 0 {
			if err := acc.Decode(list[own].state); err != nil {
				return false, fmt.Errorf("%w: %v", errCorrupt, err)
			}
		}
		acc.Add(p.in)
		state := acc.AppendEncoded(nil)
		if own >= 0 {
			list[own].state = state
		} else {
			list = append(list, item{start: pane, state: state})
			sortItems(list)
		}
	}
	for _, it := range list {
		if it.start > pane-a.size && it.start <= pane {
			if err := acc.Decode(it.state); err != nil {
				return false, fmt.Errorf("%w: %v", errCorrupt, err)
			}
			total.Merge(acc)
		}
	}
	for i, slot := range p.op.spec.FeatureSlots {
		if slot >= 0 && slot < len(ev.Features) {
			if v, ok := total.Result(i); ok {
				ev.Features[slot] = v
			}
		}
	}
	return found, nil
}
