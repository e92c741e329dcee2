package window

import "time"

// Tumbling windows are fixed, adjacent and non-overlapping: [k·size, (k+1)·size).
const Tumbling Kind = 1

var tumblingKind = &kindInfo{
	kind: Tumbling,
	name: "tumbling",
	validate: func(s *Spec, bad func(string, ...any)) {
		if s.Size < time.Millisecond {
			bad("size %s is under 1ms", s.Size)
		}
	},
	newAssigner: func(s *Spec) assigner {
		size := s.Size.Milliseconds()
		return &fixedWindows{size: size, adv: size, late: s.AllowedLateness.Milliseconds()}
	},
}
