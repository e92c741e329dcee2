package agg

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Version is the first byte of every encoding this package writes. Decode rejects any other.
const Version = 1

// ErrCorrupt is wrapped by every error Decode returns: the bytes are not an encoding of this package's
// version for this layout (truncated, garbage, written by another layout or version).
var ErrCorrupt = errors.New("agg: corrupt aggregate state")

var (
	errTruncated = fmt.Errorf("%w: truncated", ErrCorrupt)
	errTooMany   = fmt.Errorf("%w: more values than events", ErrCorrupt)
)

// Acc is the decoded aggregate state of one window (or pane) for a Layout. It is meant to be reused:
// one per task, decoded from a window's bytes, updated and encoded back per event, so it keeps its
// buffers (sketch registers and bins) across Decode and Reset calls and the steady state allocates
// nothing. An Acc is not safe for concurrent use.
type Acc struct {
	l     *Layout
	count int64
	mom   []moments
	dis   []hll
	qua   []quant
}

// NewAcc returns an empty Acc for l.
func (l *Layout) NewAcc() *Acc {
	return &Acc{
		l:   l,
		mom: make([]moments, len(l.mom)),
		dis: make([]hll, len(l.dis)),
		qua: make([]quant, len(l.qua)),
	}
}

// Layout returns the layout a was made for.
func (a *Acc) Layout() *Layout { return a.l }

// Reset empties a (no events), keeping its buffers.
func (a *Acc) Reset() {
	a.count = 0
	for i := range a.mom {
		a.mom[i] = moments{}
	}
	for i := range a.dis {
		a.dis[i].reset()
	}
	for i := range a.qua {
		a.qua[i].reset()
	}
}

// Add adds one event. in[f] is the value of field f; fields at or beyond len(in) count as Missing.
// Count counts every event. A Missing field, a NaN or ±Inf number, or (for the numeric aggregations) a
// String is skipped by that field's aggregations. Distinct counts strings by their bytes and numbers by
// their float64 value (-0 and +0 are one value); a string and a number are different values.
func (a *Acc) Add(in []Input) {
	a.count++
	l := a.l
	for i := range a.mom {
		f := l.mom[i].field
		if f >= len(in) {
			continue
		}
		if x := &in[f]; x.Kind == Number && finite(x.Num) {
			a.mom[i].add(x.Num, l.mom[i].flags)
		}
	}
	for i := range a.dis {
		f := l.dis[i]
		if f >= len(in) {
			continue
		}
		switch x := &in[f]; x.Kind {
		case Number:
			if finite(x.Num) {
				a.dis[i].add(hashNumber(x.Num))
			}
		case String:
			a.dis[i].add(hashString(x.Str))
		}
	}
	for i := range a.qua {
		f := l.qua[i]
		if f >= len(in) {
			continue
		}
		if x := &in[f]; x.Kind == Number && finite(x.Num) {
			a.qua[i].add(x.Num)
		}
	}
}

// Merge adds b's contents to a, as if a had seen b's events too: for sliding-window panes and session
// merges. b must come from the same Layout and must not be a; it is left unchanged. Moments merge by
// Chan et al.'s pairwise formulas (exact up to float rounding, so a merged sum can differ from a
// sequential one in the last bits); distinct sets and HLL registers merge by union and per-register max,
// quantile sketches by adding bin counts — all three independent of merge order.
func (a *Acc) Merge(b *Acc) {
	if a.l != b.l {
		panic("agg: Merge of Accs of different layouts")
	}
	if a == b {
		panic("agg: Merge of an Acc with itself")
	}
	a.count += b.count
	for i := range a.mom {
		a.mom[i].merge(&b.mom[i], a.l.mom[i].flags)
	}
	for i := range a.dis {
		a.dis[i].merge(&b.dis[i])
	}
	for i := range a.qua {
		a.qua[i].merge(&b.qua[i])
	}
}

// Count returns the number of events added (and merged in).
func (a *Acc) Count() int64 { return a.count }

// Result returns the value of spec i of the layout. ok is false when the value is undefined: mean, min,
// max, stddev or a quantile of a field that had no usable values. Count, Sum (0 for no values) and
// Distinct (0) are always defined. Results are exact except:
//   - Distinct beyond ExactDistinct distinct values: relative standard error DistinctStdError (1.63%);
//   - Quantile beyond ExactQuantileValues values: within QuantileAccuracy (1%) relative error of the
//     value of rank ⌊q·(n−1)⌋;
//   - sums whose terms overflow float64 give ±Inf (and NaN for mean/stddev of such data).
func (a *Acc) Result(i int) (float64, bool) {
	s := a.l.specs[i]
	b := a.l.refs[i].block
	switch s.Kind {
	case Count:
		return float64(a.count), true
	case Distinct:
		return a.dis[b].estimate(), true
	case Quantile:
		return a.qua[b].result(s.Q)
	}
	return a.mom[b].result(s.Kind)
}

// AppendEncoded appends a's state to dst and returns the extended slice. The format is in the package
// doc. It does not allocate when dst has room (and, for sketches, after the first few calls on a).
func (a *Acc) AppendEncoded(dst []byte) []byte {
	l := a.l
	dst = append(dst, Version, l.tag)
	dst = binary.AppendUvarint(dst, uint64(a.count))
	for i := range a.mom {
		m := &a.mom[i]
		dst = binary.AppendUvarint(dst, uint64(m.n))
		if m.n == 0 {
			continue
		}
		f := l.mom[i].flags
		if f&momSum != 0 {
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(m.sum))
		}
		if f&momM2 != 0 {
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(m.m2))
		}
		if f&momMin != 0 {
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(m.min))
		}
		if f&momMax != 0 {
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(m.max))
		}
	}
	for i := range a.dis {
		dst = a.dis[i].appendEncoded(dst)
	}
	for i := range a.qua {
		dst = a.qua[i].appendEncoded(dst)
	}
	return dst
}

// Decode replaces a's contents with the state encoded in src (by AppendEncoded of an Acc of the same
// layout). src is not retained. On error, which wraps ErrCorrupt, a is left empty (as after Reset);
// Decode never panics, whatever src holds: state comes from disk and from Kafka changelogs.
func (a *Acc) Decode(src []byte) error {
	if err := a.decode(src); err != nil {
		a.Reset()
		return err
	}
	return nil
}

func (a *Acc) decode(src []byte) error {
	l := a.l
	if len(src) < 3 {
		return errTruncated
	}
	if src[0] != Version {
		return fmt.Errorf("%w: version %d, want %d", ErrCorrupt, src[0], Version)
	}
	if src[1] != l.tag {
		return fmt.Errorf("%w: written for another layout (shape tag %#02x, want %#02x)", ErrCorrupt, src[1], l.tag)
	}
	src = src[2:]
	c, w := binary.Uvarint(src)
	if w <= 0 || c > math.MaxInt64 {
		return fmt.Errorf("%w: event count", ErrCorrupt)
	}
	src = src[w:]
	a.count = int64(c)
	for i := range a.mom {
		m := &a.mom[i]
		n, w := binary.Uvarint(src)
		if w <= 0 {
			return errTruncated
		}
		src = src[w:]
		if n > c {
			return errTooMany
		}
		*m = moments{n: int64(n)}
		if n == 0 {
			continue
		}
		f := l.mom[i].flags
		need := 8 * (int(f&momSum) + int(f&momM2>>1) + int(f&momMin>>2) + int(f&momMax>>3))
		if len(src) < need {
			return errTruncated
		}
		if f&momSum != 0 {
			m.sum = math.Float64frombits(binary.LittleEndian.Uint64(src))
			src = src[8:]
		}
		if f&momM2 != 0 {
			m.m2 = math.Float64frombits(binary.LittleEndian.Uint64(src))
			src = src[8:]
			if m.m2 < 0 {
				return fmt.Errorf("%w: negative M2", ErrCorrupt)
			}
		}
		if f&momMin != 0 {
			m.min = math.Float64frombits(binary.LittleEndian.Uint64(src))
			src = src[8:]
			if !finite(m.min) {
				return fmt.Errorf("%w: min not finite", ErrCorrupt)
			}
		}
		if f&momMax != 0 {
			m.max = math.Float64frombits(binary.LittleEndian.Uint64(src))
			src = src[8:]
			if !finite(m.max) || (f&momMin != 0 && m.max < m.min) {
				return fmt.Errorf("%w: max not finite or below min", ErrCorrupt)
			}
		}
	}
	var err error
	for i := range a.dis {
		if src, err = a.dis[i].decode(src, a.count); err != nil {
			return err
		}
	}
	for i := range a.qua {
		if src, err = a.qua[i].decode(src, a.count); err != nil {
			return err
		}
	}
	if len(src) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(src))
	}
	return nil
}
