package window

import (
	"fmt"

	"github.com/streamd/streamd/stream"
	"github.com/streamd/streamd/window/agg"
)

// Kind is a window assigner. Each kind is declared, with its assigner, in a file of its own
// (tumbling.go, hopping.go, sliding.go, session.go) and listed once in kinds.
type Kind uint8

// kinds is the registry of window kinds, in the order messages list them. Adding a kind is a file
// declaring its Kind constant and a kindInfo, plus its line here.
var kinds = []*kindInfo{tumblingKind, hoppingKind, slidingKind, sessionKind}

// kindInfo describes one window kind: its name in configs, how its Spec is checked, and the
// assigner that does its work.
type kindInfo struct {
	kind Kind
	name string
	// validate checks (and defaults) the spec's kind-specific fields, reporting each problem to bad.
	validate func(s *Spec, bad func(format string, args ...any))
	// features says whether the kind can write per-event features (Spec.FeatureSlots).
	features bool
	// newAssigner returns the assigner of a validated spec.
	newAssigner func(s *Spec) assigner
}

// assigner is what a window kind does to the operator's store: which windows an event belongs to,
// how their state is keyed, when their timers fire and what firing emits. The processor holds the
// buffers and the state store; an assigner is immutable and shared by every task of the operator.
//
// The per-event path (process) must not allocate in steady state: the benchmarks and their
// allocation counts cover every kind.
type assigner interface {
	// process adds the event, whose aggregation inputs are in p.in, to its windows, emitting
	// updates if the spec asks for them. It returns false when every window the event belongs to
	// has closed at watermark wm: the event is late.
	process(p *processor, t *stream.Task, ev *stream.Event, wm int64) (bool, error)
	// fire handles every timer due at watermark wm (wm >= p.nextFire) and sets p.nextFire to the
	// earliest timer left.
	fire(p *processor, t *stream.Task, wm int64) error
	// rewind resets what the processor keeps in memory about the kind's state after an abort or at
	// open, and sets p.nextFire from the store.
	rewind(p *processor) error
	// inspect calls add with each open window of key, for the admin API (off the hot path).
	inspect(p *processor, t *stream.Task, key []byte, add func(start, end int64, acc *agg.Acc)) error
}

func lookupKind(k Kind) *kindInfo {
	for _, ki := range kinds {
		if ki.kind == k {
			return ki
		}
	}
	return nil
}

// ParseKind maps a kind's name (tumbling, hopping, sliding, session) to its Kind.
func ParseKind(s string) (Kind, bool) {
	for _, ki := range kinds {
		if ki.name == s {
			return ki.kind, true
		}
	}
	return 0, false
}

// KindNames returns the names of the window kinds, in the registry's order.
func KindNames() []string {
	names := make([]string, len(kinds))
	for i, ki := range kinds {
		names[i] = ki.name
	}
	return names
}

func (k Kind) String() string {
	if ki := lookupKind(k); ki != nil {
		return ki.name
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}
