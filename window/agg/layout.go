package agg

import (
	"errors"
	"fmt"
	"hash/fnv"
)

// Moment flags: which parts of a moments block a layout keeps. The field's value count n is always kept
// (mean, min, max and stddev are undefined without it).
const (
	momSum uint8 = 1 << iota // sum, for Sum, Mean and StdDev
	momM2                    // sum of squared deviations from the mean, for StdDev
	momMin
	momMax
)

type momLayout struct {
	field int
	flags uint8
}

// specRef locates the state a spec's result is read from.
type specRef struct {
	block int // index into the moments, distinct or quantile blocks, by the spec's kind; -1 for Count
}

// Layout is a compiled, immutable list of Specs. All windows of an operator share one; it is safe for
// concurrent use. It works out the state blocks the specs need, one per (field, kind of state), so that
// e.g. sum, mean and stddev of one field share one moments block and p50 and p99 of one field share one
// quantile sketch.
//
// Encoded state is only meaningful with the layout that wrote it; see the package doc's format section
// for the shape tag that catches most mismatches.
type Layout struct {
	specs     []Spec
	refs      []specRef
	numFields int
	mom       []momLayout
	dis       []int // field of each distinct block
	qua       []int // field of each quantile block
	tag       byte  // shape tag written after the version byte
}

// NewLayout compiles specs for events of numFields fields. The error names every bad spec (a Field out of
// [0,numFields) for a non-Count kind, a Quantile's Q outside (0,1), an unknown Kind).
func NewLayout(specs []Spec, numFields int) (*Layout, error) {
	if numFields < 0 {
		return nil, fmt.Errorf("agg: numFields %d < 0", numFields)
	}
	l := &Layout{
		specs:     append([]Spec(nil), specs...),
		refs:      make([]specRef, len(specs)),
		numFields: numFields,
	}
	var errs []error
	momIdx := map[int]int{}
	disIdx := map[int]int{}
	quaIdx := map[int]int{}
	block := func(m map[int]int, list *[]int, field int) int {
		if i, ok := m[field]; ok {
			return i
		}
		m[field] = len(*list)
		*list = append(*list, field)
		return m[field]
	}
	for i, s := range specs {
		if s.Kind >= numKinds {
			errs = append(errs, fmt.Errorf("agg: spec %d: unknown kind %d", i, uint8(s.Kind)))
			continue
		}
		if s.Kind != Count && (s.Field < 0 || s.Field >= numFields) {
			errs = append(errs, fmt.Errorf("agg: spec %d (%v): field %d out of range [0,%d)", i, s.Kind, s.Field, numFields))
			continue
		}
		if s.Kind == Quantile && !(s.Q > 0 && s.Q < 1) { // also rejects NaN
			errs = append(errs, fmt.Errorf("agg: spec %d (%v): q %v not in (0,1)", i, s, s.Q))
			continue
		}
		switch s.Kind {
		case Count:
			l.refs[i].block = -1
			l.specs[i].Field, l.specs[i].Q = 0, 0
		case Distinct:
			l.refs[i].block = block(disIdx, &l.dis, s.Field)
			l.specs[i].Q = 0
		case Quantile:
			l.refs[i].block = block(quaIdx, &l.qua, s.Field)
		default:
			l.specs[i].Q = 0
			b, ok := momIdx[s.Field]
			if !ok {
				b = len(l.mom)
				momIdx[s.Field] = b
				l.mom = append(l.mom, momLayout{field: s.Field})
			}
			l.refs[i].block = b
			switch s.Kind {
			case Sum, Mean:
				l.mom[b].flags |= momSum
			case StdDev:
				l.mom[b].flags |= momSum | momM2
			case Min:
				l.mom[b].flags |= momMin
			case Max:
				l.mom[b].flags |= momMax
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	l.tag = l.shapeTag()
	return l, nil
}

// shapeTag hashes the state blocks (not the specs: changing p90 to p99, or adding a mean next to a sum,
// keeps the state readable) into one byte.
func (l *Layout) shapeTag() byte {
	h := fnv.New32a()
	var b []byte
	b = fmt.Appendf(b, "m%d:", len(l.mom))
	for _, m := range l.mom {
		b = fmt.Appendf(b, "%d/%d,", m.field, m.flags)
	}
	b = fmt.Appendf(b, "d%v:q%v", l.dis, l.qua)
	h.Write(b)
	s := h.Sum32()
	return byte(s ^ s>>8 ^ s>>16 ^ s>>24)
}

// Specs returns a copy of the layout's specs (Field and Q zeroed where the kind ignores them).
func (l *Layout) Specs() []Spec { return append([]Spec(nil), l.specs...) }

// NumFields returns the number of input fields the layout was compiled for.
func (l *Layout) NumFields() int { return l.numFields }

// HasSketches reports whether the layout keeps a distinct or quantile block, whose encoded size grows
// with the window's values; without them the state has a fixed small size.
func (l *Layout) HasSketches() bool { return len(l.dis)+len(l.qua) > 0 }
