package window

import "time"

// Hopping windows have a fixed size and start every Advance; an event belongs to size/advance of
// them.
const Hopping Kind = 2

var hoppingKind = &kindInfo{
	kind: Hopping,
	name: "hopping",
	validate: func(s *Spec, bad func(string, ...any)) {
		if s.Size < time.Millisecond || s.Advance < time.Millisecond || s.Advance > s.Size {
			bad("hopping needs 1ms <= advance (%s) <= size (%s)", s.Advance, s.Size)
		} else if s.Size%s.Advance != 0 {
			bad("size %s is not a multiple of advance %s", s.Size, s.Advance)
		}
	},
	newAssigner: func(s *Spec) assigner {
		return &fixedWindows{size: s.Size.Milliseconds(), adv: s.Advance.Milliseconds(), late: s.AllowedLateness.Milliseconds()}
	},
}
