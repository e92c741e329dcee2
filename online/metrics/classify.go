package metrics

import (
	"fmt"
	"math"

	"github.com/streamd/streamd/online/internal/wire"
)

// PrecisionRecall counts a binary classifier's outcomes at a threshold:
// score >= Threshold is a positive prediction.
type PrecisionRecall struct {
	threshold float64
	tp, fp    int64 // cumulative
	fn, tn    int64
	// ring holds each windowed example's outcome (outcome* below).
	ring     []byte
	pos, wn  int
	wtp, wfp int64
	wfn, wtn int64
}

const (
	outTN = iota
	outFP
	outFN
	outTP
)

// NewPrecisionRecall returns precision and recall at threshold over all
// examples and over the last window ones (0: no window).
func NewPrecisionRecall(threshold float64, window int) (*PrecisionRecall, error) {
	if err := checkWindow(window); err != nil {
		return nil, err
	}
	if math.IsNaN(threshold) || math.IsInf(threshold, 0) {
		return nil, fmt.Errorf("metrics: threshold %v, want finite", threshold)
	}
	return &PrecisionRecall{threshold: threshold, ring: make([]byte, window)}, nil
}

func (p *PrecisionRecall) count(o byte, d int64, win bool) {
	tp, fp, fn, tn := &p.tp, &p.fp, &p.fn, &p.tn
	if win {
		tp, fp, fn, tn = &p.wtp, &p.wfp, &p.wfn, &p.wtn
	}
	switch o {
	case outTP:
		*tp += d
	case outFP:
		*fp += d
	case outFN:
		*fn += d
	default:
		*tn += d
	}
}

// Update adds a score (P(y=1)) and the true label (y >= 0.5 is positive).
func (p *PrecisionRecall) Update(score, y float64) {
	var o byte
	pred, pos := score >= p.threshold, y >= 0.5
	switch {
	case pred && pos:
		o = outTP
	case pred:
		o = outFP
	case pos:
		o = outFN
	default:
		o = outTN
	}
	p.count(o, 1, false)
	if len(p.ring) == 0 {
		return
	}
	if p.wn == len(p.ring) {
		p.count(p.ring[p.pos], -1, true)
	} else {
		p.wn++
	}
	p.ring[p.pos] = o
	p.count(o, 1, true)
	if p.pos++; p.pos == len(p.ring) {
		p.pos = 0
	}
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
}

// Precision is TP/(TP+FP) over all examples; NaN before any positive prediction.
func (p *PrecisionRecall) Precision() float64 { return ratio(p.tp, p.tp+p.fp) }

// Recall is TP/(TP+FN) over all examples; NaN before any positive example.
func (p *PrecisionRecall) Recall() float64 { return ratio(p.tp, p.tp+p.fn) }

// WindowPrecision and WindowRecall are the same over the rolling window (or
// cumulative without one).
func (p *PrecisionRecall) WindowPrecision() float64 {
	if len(p.ring) == 0 {
		return p.Precision()
	}
	return ratio(p.wtp, p.wtp+p.wfp)
}

func (p *PrecisionRecall) WindowRecall() float64 {
	if len(p.ring) == 0 {
		return p.Recall()
	}
	return ratio(p.wtp, p.wtp+p.wfn)
}

func (p *PrecisionRecall) Count() int64 { return p.tp + p.fp + p.fn + p.tn }

func (p *PrecisionRecall) Reset() {
	clear(p.ring)
	*p = PrecisionRecall{threshold: p.threshold, ring: p.ring}
}

func (p *PrecisionRecall) AppendState(dst []byte) []byte {
	dst = wire.AppendHeader(dst, 'p', 1)
	dst = wire.AppendFloat(dst, p.threshold)
	for _, v := range [...]int64{p.tp, p.fp, p.fn, p.tn} {
		dst = wire.AppendVarint(dst, v)
	}
	dst = wire.AppendUvarint(dst, uint64(len(p.ring)))
	dst = wire.AppendUvarint(dst, uint64(p.pos))
	dst = wire.AppendUvarint(dst, uint64(p.wn))
	return append(dst, p.ring[:p.wn]...)
}

func (p *PrecisionRecall) DecodeState(b []byte) error {
	var d PrecisionRecall
	err := decode(b, 'p', "precision_recall", func(r *wire.Reader) {
		d.threshold = r.Finite("threshold")
		for _, v := range [...]*int64{&d.tp, &d.fp, &d.fn, &d.tn} {
			*v = r.Int("count", 0, math.MaxInt64/4)
		}
		size := r.Count("window", MaxWindow, 0)
		d.pos = r.Count("pos", max(size-1, 0), 0)
		d.wn = r.Count("filled", size, 1)
		if r.Err() != nil {
			return
		}
		if d.wn < size && d.pos != d.wn {
			r.Fail("ring position %d with %d of %d filled", d.pos, d.wn, size)
			return
		}
		if int64(d.wn) > d.tp+d.fp+d.fn+d.tn {
			r.Fail("window holds more examples than seen")
			return
		}
		d.ring = make([]byte, size)
		copy(d.ring, r.Raw(d.wn))
		for _, o := range d.ring[:d.wn] {
			if o > outTP {
				r.Fail("outcome %d", o)
				return
			}
			d.count(o, 1, true)
		}
	})
	if err != nil {
		return err
	}
	*p = d
	return nil
}
