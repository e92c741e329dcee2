package window

import (
	"fmt"
	"time"

	"github.com/streamd/streamd/stream"
	"github.com/streamd/streamd/window/agg"
)

// Session windows group a key's events separated by less than Gap; they grow and merge as events
// arrive.
const Session Kind = 4

var sessionKind = &kindInfo{
	kind: Session,
	name: "session",
	validate: func(s *Spec, bad func(string, ...any)) {
		if s.Gap < time.Millisecond {
			bad("gap %s is under 1ms", s.Gap)
		}
	},
	newAssigner: func(s *Spec) assigner {
		return &sessions{gap: s.Gap.Milliseconds(), late: s.AllowedLateness.Milliseconds()}
	},
}

// sessions keeps a key's open sessions in one value ('s' | key, in the item list format) and one
// timer per session ('x' | end + lateness | start | key).
type sessions struct {
	gap, late int64 // ms
}

func (a *sessions) process(p *processor, t *stream.Task, ev *stream.Event, wm int64) (bool, error) {
	if _, err := p.loadList(prefixSession, ev.Key); err != nil {
		return false, err
	}
	// The event's own session is [ts, ts+gap); it merges with every session it overlaps.
	start, last := ev.Time, ev.Time
	p.acc.Reset()
	p.acc.Add(p.in)
	keep := p.list[:0]
	dropped := p.dropped[:0]
	for _, s := range p.list {
		if s.start < ev.Time+a.gap && ev.Time < s.last+a.gap {
			dropped = append(dropped, s)
			continue
		}
		keep = append(keep, s)
	}
	p.dropped = dropped
	for _, s := range dropped {
		start, last = min(start, s.start), max(last, s.last)
	}
	if last+a.gap+a.late <= wm {
		return false, nil // the merged session has closed already: late
	}
	for _, s := range dropped {
		if err := p.tmp.Decode(s.state); err != nil {
			return false, fmt.Errorf("%w: %v", errCorrupt, err)
		}
		p.acc.Merge(p.tmp)
		p.store.Delete(p.timerKey(s.last+a.gap+a.late, s.start, ev.Key))
	}
	p.addOpen(1 - int64(len(dropped)))
	newState := p.acc.AppendEncoded(p.scratch(0))
	p.spare[0] = newState
	// Rebuild the list: sessions kept (their states still alias v, which is intact until the Set
	// below copies everything), plus the merged one, in start order.
	p.list = append(keep, item{start: start, last: last, state: newState})
	sortItems(p.list)
	p.valBuf = p.encodeList(p.valBuf[:0])
	p.keyBuf = append(append(p.keyBuf[:0], prefixSession), ev.Key...)
	p.store.Set(p.keyBuf, p.valBuf)
	fire := last + a.gap + a.late
	p.store.Set(p.timerKey(fire, start, ev.Key), nil)
	p.nextFire = min(p.nextFire, fire)
	if p.op.spec.Emit == EmitUpdate {
		p.emit(t, ev.Key, start, last+a.gap, p.acc, "update")
	}
	return true, nil
}

// fire closes each session whose timer is due: it emits the session (emit final) and removes it.
func (a *sessions) fire(p *processor, t *stream.Task, wm int64) error {
	return p.fireTimers(wm, func(key []byte, start int64) error { return a.close(p, t, key, start) })
}

func (a *sessions) close(p *processor, t *stream.Task, key []byte, start int64) error {
	if ok, err := p.loadList(prefixSession, key); err != nil || !ok {
		return err
	}
	keep := p.list[:0]
	for _, s := range p.list {
		if s.start == start {
			if p.op.spec.Emit == EmitFinal {
				if err := p.acc.Decode(s.state); err != nil {
					return fmt.Errorf("%w: %v", errCorrupt, err)
				}
				p.emit(t, key, s.start, s.last+a.gap, p.acc, "final")
			}
			p.addOpen(-1)
			continue
		}
		keep = append(keep, s)
	}
	p.list = keep
	p.keyBuf = append(append(p.keyBuf[:0], prefixSession), key...)
	if len(p.list) == 0 {
		p.store.Delete(p.keyBuf)
		return nil
	}
	p.valBuf = p.encodeList(p.valBuf[:0])
	p.store.Set(p.keyBuf, p.valBuf)
	return nil
}

func (a *sessions) rewind(p *processor) error { return p.firstTimer(prefixTimer, 0) }

func (a *sessions) inspect(p *processor, _ *stream.Task, key []byte, add func(start, end int64, acc *agg.Acc)) error {
	v, ok, err := p.store.Get(append([]byte{prefixSession}, key...))
	if err != nil || !ok {
		return err
	}
	list, err := decodeItems(v)
	if err != nil {
		return err
	}
	for _, s := range list {
		acc := p.op.layout.NewAcc()
		if err := acc.Decode(s.state); err != nil {
			return err
		}
		add(s.start, s.last+a.gap, acc)
	}
	return nil
}
