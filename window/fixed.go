package window

import (
	"fmt"
	"math"

	"github.com/streamd/streamd/internal/bloom"
	"github.com/streamd/streamd/stream"
	"github.com/streamd/streamd/window/agg"
)

// fixedWindows assigns events to windows of a fixed size starting every adv (tumbling: adv =
// size). Each (window, key) is one value, keyed 'w' | end | key, so the key order is the timer
// order and firing is a scan from the start of the prefix.
type fixedWindows struct {
	size, adv, late int64 // ms
}

func (a *fixedWindows) process(p *processor, t *stream.Task, ev *stream.Event, wm int64) (bool, error) {
	used := false
	hash := keyHash(ev.Key)
	// The windows holding ev.Time start at multiples of adv in (ev.Time-size, ev.Time].
	last := floorDiv(ev.Time, a.adv) * a.adv
	for start := last; start > ev.Time-a.size; start -= a.adv {
		end := start + a.size
		if end+a.late <= wm {
			continue // closed
		}
		used = true
		p.keyBuf = append(putTime(append(p.keyBuf[:0], prefixWindow), end), ev.Key...)
		var v []byte
		var ok bool
		f := p.filter(end)
		if f == nil || f.MayContain(hash) {
			var err error
			if v, ok, err = p.store.Get(p.keyBuf); err != nil {
				return false, err
			}
		}
		if !ok && f != nil {
			f.Add(hash)
		}
		if ok {
			if err := p.acc.Decode(v); err != nil {
				return false, fmt.Errorf("%w: %v", errCorrupt, err)
			}
		} else {
			p.acc.Reset()
			p.nextFire = min(p.nextFire, end+a.late)
			p.addOpen(1)
		}
		p.acc.Add(p.in)
		p.valBuf = p.acc.AppendEncoded(p.valBuf[:0])
		p.store.Set(p.keyBuf, p.valBuf)
		if p.op.spec.Emit == EmitUpdate {
			p.emit(t, ev.Key, start, end, p.acc, "update")
		}
	}
	return used, nil
}

// filter returns the key filter of a window end, nil when the end is not one a filter can know.
func (p *processor) filter(end int64) *bloom.Filter {
	if end <= p.filterFrom {
		return nil
	}
	return p.filters.get(end)
}

func (a *fixedWindows) fire(p *processor, t *stream.Task, wm int64) error {
	it, err := p.store.NewIter([]byte{prefixWindow}, []byte{prefixWindow + 1})
	if err != nil {
		return err
	}
	p.nextFire = math.MaxInt64
	for ; it.Valid(); it.Next() {
		k := it.Key()
		if len(k) < 9 {
			continue
		}
		end := getTime(k[1:9])
		if end+a.late > wm {
			p.nextFire = end + a.late
			break
		}
		if p.op.spec.Emit == EmitFinal {
			if err := p.acc.Decode(it.Value()); err != nil {
				it.Close()
				return fmt.Errorf("%w: %v", errCorrupt, err)
			}
			p.emit(t, k[9:], end-a.size, end, p.acc, "final")
		}
		p.store.Delete(k)
		p.addOpen(-1)
	}
	p.filters.closeFired(wm, a.late)
	return it.Close()
}

// rewind forgets the key filters: after an aborted cycle the store may again hold windows whose
// filters were dropped when they fired, so only window ends newer than everything stored can have
// authoritative filters. The earliest window end (plus lateness) is the next timer.
func (a *fixedWindows) rewind(p *processor) error {
	p.filters.reset()
	p.filterFrom = math.MinInt64
	it, err := p.store.NewIter([]byte{prefixWindow}, []byte{prefixWindow + 1})
	if err != nil {
		return err
	}
	if it.Last(); it.Valid() && len(it.Key()) >= 9 {
		p.filterFrom = getTime(it.Key()[1:9])
	}
	if err := it.Close(); err != nil {
		return err
	}
	return p.firstTimer(prefixWindow, a.late) // the key holds the window end
}

func (a *fixedWindows) inspect(p *processor, t *stream.Task, key []byte, add func(start, end int64, acc *agg.Acc)) error {
	wm, maxTime := t.Watermark(), t.MaxEventTime()
	if maxTime == math.MinInt64 {
		return nil
	}
	first := floorDiv(max(wm-a.late, maxTime-a.size-a.late-a.adv), a.adv)*a.adv + a.adv
	for end := first; end <= maxTime+a.size; end += a.adv {
		k := append(putTime([]byte{prefixWindow}, end), key...)
		v, ok, err := p.store.Get(k)
		if err != nil {
			return err
		}
		if ok {
			acc := p.op.layout.NewAcc()
			if err := acc.Decode(v); err != nil {
				return err
			}
			add(end-a.size, end, acc)
		}
	}
	return nil
}
