package agg

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Running totals: for layouts whose every aggregation can be taken back out (Invertible), a sliding
// window keeps the aggregate of its current panes as one Acc that gains each event and loses each
// pane that leaves the window, instead of merging every pane for every event. A running sum that
// both adds and subtracts accumulates rounding error where a fresh merge would not, so a total keeps
// the sums compensated (Neumaier's variant of Kahan summation): the error stays within a few ulps of
// the result rather than growing with the number of panes that went through it, and a total whose
// values have all left is exactly zero again.

// Invertible reports whether every aggregation of l can be removed from a total by SubtractTotal:
// count, sum and mean, with no min, max, stddev, distinct count or quantile.
func (l *Layout) Invertible() bool {
	if len(l.dis) > 0 || len(l.qua) > 0 {
		return false
	}
	for _, m := range l.mom {
		if m.flags&^momSum != 0 {
			return false
		}
	}
	return true
}

// compensatedAdd adds x to the compensated sum (*sum, *comp). A sum that overflows is ±Inf with
// its compensation left as it was (finite), so that the total reads ±Inf, as a plain sum would,
// rather than Inf − Inf; taking values back out cannot make it finite again (Finite says so, and the
// caller rebuilds such a total from its parts).
func compensatedAdd(sum, comp *float64, x float64) {
	t := *sum + x
	if math.IsInf(t, 0) || math.IsNaN(t) {
		*sum = t
		return
	}
	if math.Abs(*sum) >= math.Abs(x) {
		*comp += (*sum - t) + x
	} else {
		*comp += (x - t) + *sum
	}
	*sum = t
}

// AddTotal adds one event to a running total (see Invertible): Add with compensated sums.
func (a *Acc) AddTotal(in []Input) {
	a.count++
	l := a.l
	for i := range a.mom {
		f := l.mom[i].field
		if f >= len(in) {
			continue
		}
		if x := &in[f]; x.Kind == Number && finite(x.Num) {
			v := x.Num
			if v == 0 {
				v = 0
			}
			m := &a.mom[i]
			m.n++
			compensatedAdd(&m.sum, &m.comp, v)
		}
	}
}

// MergeTotal adds (sign +1) or removes (sign −1) the events of b, a pane's plain Acc or another
// total, to or from the running total a. Removing what was never added is the caller's error: the
// counts would no longer be those of any set of events. A block whose values have all gone is
// exactly empty again, so the total of an emptied window is the empty total whatever went through it.
func (a *Acc) MergeTotal(b *Acc, sign int64) {
	if a.l != b.l || a == b {
		panic("agg: MergeTotal of different layouts or of an Acc with itself")
	}
	a.count += sign * b.count
	for i := range a.mom {
		m, o := &a.mom[i], &b.mom[i]
		if o.n == 0 {
			continue
		}
		m.n += sign * o.n
		if m.n == 0 {
			*m = moments{}
			continue
		}
		s := float64(sign)
		compensatedAdd(&m.sum, &m.comp, s*o.sum)
		if o.comp != 0 {
			compensatedAdd(&m.sum, &m.comp, s*o.comp)
		}
	}
	if a.count == 0 {
		a.Reset()
	}
}

// Finite reports whether every sum of the total is finite: a total through which an overflowing
// sum went stays ±Inf however many values leave it, and must be rebuilt from what is left in it.
func (a *Acc) Finite() bool {
	for i := range a.mom {
		if !finite(a.mom[i].sum) {
			return false
		}
	}
	return true
}

// CopyFrom makes a a copy of b (same layout).
func (a *Acc) CopyFrom(b *Acc) {
	if a.l != b.l {
		panic("agg: CopyFrom of Accs of different layouts")
	}
	a.count = b.count
	copy(a.mom, b.mom)
	for i := range a.dis {
		a.dis[i].reset()
		a.dis[i].merge(&b.dis[i])
	}
	for i := range a.qua {
		a.qua[i].reset()
		a.qua[i].merge(&b.qua[i])
	}
}

// AppendEncodedTotal appends a running total: AppendEncoded, then the compensation of each moments
// block that holds values and a sum.
func (a *Acc) AppendEncodedTotal(dst []byte) []byte {
	dst = a.AppendEncoded(dst)
	for i := range a.mom {
		if m := &a.mom[i]; m.n > 0 && a.l.mom[i].flags&momSum != 0 {
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(m.comp))
		}
	}
	return dst
}

// DecodeTotal replaces a's contents with a total written by AppendEncodedTotal. Like Decode it never
// panics and leaves a empty on error.
func (a *Acc) DecodeTotal(src []byte) error {
	if err := a.decodeTotal(src); err != nil {
		a.Reset()
		return err
	}
	return nil
}

func (a *Acc) decodeTotal(src []byte) error {
	rest, err := a.decodePrefix(src)
	if err != nil {
		return err
	}
	for i := range a.mom {
		if m := &a.mom[i]; m.n > 0 && a.l.mom[i].flags&momSum != 0 {
			if len(rest) < 8 {
				return errTruncated
			}
			m.comp = math.Float64frombits(binary.LittleEndian.Uint64(rest))
			rest = rest[8:]
			if !finite(m.comp) {
				return fmt.Errorf("%w: compensation not finite", ErrCorrupt)
			}
		}
	}
	if len(rest) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(rest))
	}
	return nil
}
