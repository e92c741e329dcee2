package window

import (
	"math"

	"github.com/streamd/streamd/stream"
	"github.com/streamd/streamd/window/agg"
)

// WindowState is one open window of a key, for the admin API.
type WindowState struct {
	Start int64               `json:"start"`
	End   int64               `json:"end"`
	Count int64               `json:"count"`
	Aggs  map[string]*float64 `json:"aggs"`
}

// Inspect implements stream.KeyInspector: the key's open windows (sliding: its window as of its
// newest pane, which is what its next event's features will build on).
func (p *processor) Inspect(t *stream.Task, key []byte) (any, error) {
	o := p.op
	out := []WindowState{}
	add := func(start, end int64, acc *agg.Acc) {
		w := WindowState{Start: start, End: end, Count: acc.Count(), Aggs: map[string]*float64{}}
		for i, a := range o.spec.Aggs {
			if v, ok := acc.Result(i); ok && !math.IsNaN(v) && !math.IsInf(v, 0) {
				w.Aggs[a.Name] = &v
			} else {
				w.Aggs[a.Name] = nil
			}
		}
		out = append(out, w)
	}
	switch o.spec.Kind {
	case Tumbling, Hopping:
		wm, maxTime := t.Watermark(), t.MaxEventTime()
		if maxTime == math.MinInt64 {
			return out, nil
		}
		adv := o.adv
		if o.spec.Kind == Tumbling {
			adv = o.size
		}
		first := floorDiv(max(wm-o.late, maxTime-o.size-o.late-adv), adv)*adv + adv
		for end := first; end <= maxTime+o.size; end += adv {
			k := append(putTime([]byte{prefixWindow}, end), key...)
			v, ok, err := p.store.Get(k)
			if err != nil {
				return nil, err
			}
			if ok {
				acc := o.layout.NewAcc()
				if err := acc.Decode(v); err != nil {
					return nil, err
				}
				add(end-o.size, end, acc)
			}
		}
	case Session:
		v, ok, err := p.store.Get(append([]byte{prefixSession}, key...))
		if err != nil || !ok {
			return out, err
		}
		list, err := decodeItems(v)
		if err != nil {
			return nil, err
		}
		for _, s := range list {
			acc := o.layout.NewAcc()
			if err := acc.Decode(s.state); err != nil {
				return nil, err
			}
			add(s.start, s.last+o.gap, acc)
		}
	case Sliding:
		v, ok, err := p.store.Get(append([]byte{prefixPanes}, key...))
		if err != nil || !ok {
			return out, err
		}
		list, err := decodeItems(v)
		if err != nil || len(list) == 0 {
			return out, err
		}
		pane := list[len(list)-1].start
		total, acc := o.layout.NewAcc(), o.layout.NewAcc()
		for _, it := range list {
			if it.start > pane-o.size && it.start <= pane {
				if err := acc.Decode(it.state); err != nil {
					return nil, err
				}
				total.Merge(acc)
			}
		}
		add(pane-o.size+o.res, pane+o.res, total)
	}
	return out, nil
}

// decodeItems decodes a session or pane list into fresh memory (for inspection off the hot path).
func decodeItems(v []byte) ([]item, error) {
	var p processor
	if err := p.decodeList(v); err != nil {
		return nil, err
	}
	out := make([]item, len(p.list))
	for i, it := range p.list {
		out[i] = item{start: it.start, last: it.last, state: append([]byte(nil), it.state...)}
	}
	return out, nil
}
