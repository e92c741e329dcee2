package window

import (
	"errors"
	"fmt"
	"time"

	"github.com/streamd/streamd/stream"
	"github.com/streamd/streamd/window/agg"
)

// Kind is a window assigner.
type Kind uint8

const (
	// Tumbling windows are fixed, adjacent and non-overlapping: [k·size, (k+1)·size).
	Tumbling Kind = iota + 1
	// Hopping windows have a fixed size and start every Advance; an event belongs to size/advance
	// of them.
	Hopping
	// Sliding windows are computed as of each event: the key's events in the last Size up to and
	// including the event, at a resolution of Resolution (see the package doc).
	Sliding
	// Session windows group a key's events separated by less than Gap; they grow and merge as
	// events arrive.
	Session
)

// ParseKind maps tumbling, hopping, sliding and session to a Kind.
func ParseKind(s string) (Kind, bool) {
	switch s {
	case "tumbling":
		return Tumbling, true
	case "hopping":
		return Hopping, true
	case "sliding":
		return Sliding, true
	case "session":
		return Session, true
	}
	return 0, false
}

func (k Kind) String() string {
	switch k {
	case Tumbling:
		return "tumbling"
	case Hopping:
		return "hopping"
	case Sliding:
		return "sliding"
	case Session:
		return "session"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

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
	switch s.Kind {
	case Tumbling:
		if s.Size < time.Millisecond {
			bad("size %s is under 1ms", s.Size)
		}
	case Hopping:
		if s.Size < time.Millisecond || s.Advance < time.Millisecond || s.Advance > s.Size {
			bad("hopping needs 1ms <= advance (%s) <= size (%s)", s.Advance, s.Size)
		} else if s.Size%s.Advance != 0 {
			bad("size %s is not a multiple of advance %s", s.Size, s.Advance)
		}
	case Sliding:
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
	case Session:
		if s.Gap < time.Millisecond {
			bad("gap %s is under 1ms", s.Gap)
		}
	default:
		bad("unknown kind")
	}
	if s.AllowedLateness < 0 {
		bad("allowed lateness %s is negative", s.AllowedLateness)
	}
	if len(s.Aggs) == 0 {
		bad("no aggregations")
	}
	if len(s.FeatureSlots) > 0 && s.Kind != Sliding {
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
