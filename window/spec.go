package window

import (
	"errors"
	"fmt"
	"time"

	"github.com/streamd/streamd/stream"
	"github.com/streamd/streamd/window/agg"
)

// EmitMode says when results are produced.
type EmitMode uint8

const (
	// EmitFinal: one result per window, when the watermark passes its end plus the allowed
	// lateness. Sliding windows always emit per event.
	EmitFinal EmitMode = iota
	// EmitUpdate: a result each time an event changes a window.
	EmitUpdate
)

// Agg is one aggregation of a window, with the name its result has in outputs.
type Agg struct {
	Name  string   // e.g. "sum_amount"; unique within the window
	Kind  agg.Kind // count, sum, ...
	Field string   // source field; empty for count
	Q     float64  // quantile, for agg.Quantile
}

// Spec configures a window operator.
type Spec struct {
	// Name names the operator, its state store and the "window" field of its results.
	Name            string
	Kind            Kind
	Size            time.Duration // tumbling, hopping, sliding
	Advance         time.Duration // hopping
	Gap             time.Duration // session
	Resolution      time.Duration // sliding; default Size/60 (and at least 1ms); must divide Size
	AllowedLateness time.Duration
	Emit            EmitMode
	Aggs            []Agg
	// Output is the topic results go to; empty means none (a sliding window used only as features).
	Output string
	// FeatureSlots, for a sliding window, maps each aggregation (by index) to the index in
	// stream.Event.Features where its value as of the event is written for later operators; -1 or a
	// shorter slice means none.
	FeatureSlots []int
}

// ErrBadSpec wraps every Spec problem.
var ErrBadSpec = errors.New("window: bad spec")

func (s *Spec) validate(format stream.Format) (fields []int, specs []agg.Spec, err error) {
	var errs []error
	bad := func(f string, a ...any) {
		errs = append(errs, fmt.Errorf("%w: window %q: %s", ErrBadSpec, s.Name, fmt.Sprintf(f, a...)))
	}
	if s.Name == "" {
		bad("no name")
	}
	ki := lookupKind(s.Kind)
	if ki == nil {
		bad("unknown kind")
	} else {
		ki.validate(s, bad)
	}
	if s.AllowedLateness < 0 {
		bad("allowed lateness %s is negative", s.AllowedLateness)
	}
	if len(s.Aggs) == 0 {
		bad("no aggregations")
	}
	if len(s.FeatureSlots) > 0 && (ki == nil || !ki.features) {
		bad("only sliding windows give features (the key's aggregates as of each event)")
	}
	names := map[string]bool{}
	fieldIdx := map[string]int{}
	for _, a := range s.Aggs {
		if names[a.Name] || a.Name == "" {
			bad("aggregation name %q is empty or repeated", a.Name)
		}
		names[a.Name] = true
		sp := agg.Spec{Kind: a.Kind, Q: a.Q}
		if a.Kind != agg.Count {
			fi, ok := format.FieldIndex(a.Field)
			if !ok {
				bad("aggregation %s reads field %q, which the source does not declare", a.Name, a.Field)
				continue
			}
			idx, seen := fieldIdx[a.Field]
			if !seen {
				idx = len(fields)
				fields = append(fields, fi)
				fieldIdx[a.Field] = idx
			}
			sp.Field = idx
		}
		specs = append(specs, sp)
	}
	return fields, specs, errors.Join(errs...)
}
