package window

import (
	"math"

	"github.com/streamd/streamd/stream"
	"github.com/streamd/streamd/window/agg"
)

// WindowState is one open window of a key, for the admin API.
type WindowState struct {
	Start int64 `json:"start"`
	End   int64 `json:"end"`
	Count int64 `json:"count"`
	// Aggs holds the defined aggregates; one that is undefined so far (the mean of no values,
	// the deviation of one) is left out.
	Aggs map[string]float64 `json:"aggs"`
}

// Inspect implements stream.KeyInspector: the key's open windows (sliding: its window as of its
// newest pane, which is what its next event's features will build on).
func (p *processor) Inspect(t *stream.Task, key []byte) (any, error) {
	o := p.op
	out := []WindowState{}
	add := func(start, end int64, acc *agg.Acc) {
		w := WindowState{Start: start, End: end, Count: acc.Count(), Aggs: map[string]float64{}}
		for i, a := range o.spec.Aggs {
			if v, ok := acc.Result(i); ok && !math.IsNaN(v) && !math.IsInf(v, 0) {
				w.Aggs[a.Name] = v
			}
		}
		out = append(out, w)
	}
	if err := o.asg.inspect(p, t, key, add); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, nil // nothing for the key: the admin API answers 404
	}
	return out, nil
}

// featureLookup is implemented by the assigners of kinds that write per-event features (sliding).
type featureLookup interface {
	lookup(p *processor, t *stream.Task, ev *stream.Event, withEvent bool) (bool, error)
}

// LookupFeatures implements stream.FeatureSource for a window that computes features.
func (p *processor) LookupFeatures(t *stream.Task, ev *stream.Event, withEvent bool) (bool, error) {
	fl, ok := p.op.asg.(featureLookup)
	if !ok || len(p.op.spec.FeatureSlots) == 0 {
		return false, nil
	}
	return fl.lookup(p, t, ev, withEvent)
}
