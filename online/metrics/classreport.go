package metrics

import (
	"fmt"
	"math"

	"github.com/streamd/streamd/online/internal/wire"
)

// MaxClasses bounds the classes of a ClassReport.
const MaxClasses = 1 << 16

// ClassReport counts a multiclass classifier's outcomes per class, over all examples and over the
// last window ones: per-class recall (TP/(TP+FN)) and precision, and their macro-F1 (the mean over
// the classes that occurred, as predictions or labels, of 2PR/(P+R), scikit-learn's
// f1_score(average="macro") over the labels present).
type ClassReport struct {
	k int
	// tp, fp, fn per class: cumulative, and over the window.
	tp, fp, fn    []int64
	wtp, wfp, wfn []int64
	n             int64
	// ring holds each windowed example as (pred, y) pairs.
	ring    []int32
	pos, wn int
}

// NewClassReport returns a report for k classes (0..k-1) with a rolling window (0: none).
func NewClassReport(k, window int) (*ClassReport, error) {
	if err := checkWindow(window); err != nil {
		return nil, err
	}
	if k < 2 || k > MaxClasses {
		return nil, fmt.Errorf("metrics: %d classes, want 2 to %d", k, MaxClasses)
	}
	c := &ClassReport{k: k, ring: make([]int32, 2*window)}
	c.alloc()
	return c, nil
}

func (c *ClassReport) alloc() {
	all := make([]int64, 6*c.k)
	c.tp, c.fp, c.fn = all[:c.k], all[c.k:2*c.k], all[2*c.k:3*c.k]
	c.wtp, c.wfp, c.wfn = all[3*c.k:4*c.k], all[4*c.k:5*c.k], all[5*c.k:]
}

// Classes is k.
func (c *ClassReport) Classes() int { return c.k }

func (c *ClassReport) count(pred, y int, d int64, win bool) {
	tp, fp, fn := c.tp, c.fp, c.fn
	if win {
		tp, fp, fn = c.wtp, c.wfp, c.wfn
	}
	if pred == y {
		tp[y] += d
		return
	}
	fp[pred] += d
	fn[y] += d
}

// Update adds a prediction and its true class. An example with a class outside 0..k-1 is ignored.
func (c *ClassReport) Update(pred, y int) {
	if uint(pred) >= uint(c.k) || uint(y) >= uint(c.k) {
		return
	}
	c.n++
	c.count(pred, y, 1, false)
	if len(c.ring) == 0 {
		return
	}
	if c.wn == len(c.ring)/2 {
		c.count(int(c.ring[2*c.pos]), int(c.ring[2*c.pos+1]), -1, true)
	} else {
		c.wn++
	}
	c.ring[2*c.pos], c.ring[2*c.pos+1] = int32(pred), int32(y)
	c.count(pred, y, 1, true)
	if c.pos++; 2*c.pos == len(c.ring) {
		c.pos = 0
	}
}

// Count is the examples counted.
func (c *ClassReport) Count() int64 { return c.n }

func (c *ClassReport) pick(window bool) (tp, fp, fn []int64) {
	if window && len(c.ring) > 0 {
		return c.wtp, c.wfp, c.wfn
	}
	return c.tp, c.fp, c.fn
}

// Recall is class i's recall, cumulative or over the window; NaN before an example of class i.
func (c *ClassReport) Recall(i int, window bool) float64 {
	tp, _, fn := c.pick(window)
	return ratio(tp[i], tp[i]+fn[i])
}

// Support is the examples of class i, cumulative or over the window.
func (c *ClassReport) Support(i int, window bool) int64 {
	tp, _, fn := c.pick(window)
	return tp[i] + fn[i]
}

// MacroF1 is the mean F1 over the classes present (predicted or true), cumulative or over the
// window; NaN before any example.
func (c *ClassReport) MacroF1(window bool) float64 {
	tp, fp, fn := c.pick(window)
	sum, n := 0.0, 0
	for i := range c.k {
		if tp[i]+fp[i]+fn[i] == 0 {
			continue
		}
		n++
		// F1 = 2TP / (2TP + FP + FN): 0 for a class never right, without the 0/0 of P and R.
		sum += 2 * float64(tp[i]) / float64(2*tp[i]+fp[i]+fn[i])
	}
	if n == 0 {
		return math.NaN()
	}
	return sum / float64(n)
}

func (c *ClassReport) Reset() {
	clear(c.tp)
	clear(c.fp)
	clear(c.fn)
	clear(c.wtp)
	clear(c.wfp)
	clear(c.wfn)
	clear(c.ring)
	c.n, c.pos, c.wn = 0, 0, 0
}

func (c *ClassReport) AppendState(dst []byte) []byte {
	dst = wire.AppendHeader(dst, 'c', 1)
	dst = wire.AppendUvarint(dst, uint64(c.k))
	dst = wire.AppendVarint(dst, c.n)
	for i := range c.k {
		dst = wire.AppendVarint(dst, c.tp[i])
		dst = wire.AppendVarint(dst, c.fp[i])
		dst = wire.AppendVarint(dst, c.fn[i])
	}
	dst = wire.AppendUvarint(dst, uint64(len(c.ring)/2))
	dst = wire.AppendUvarint(dst, uint64(c.pos))
	dst = wire.AppendUvarint(dst, uint64(c.wn))
	for _, v := range c.ring[:2*c.wn] {
		dst = wire.AppendUvarint(dst, uint64(v))
	}
	return dst
}

func (c *ClassReport) DecodeState(b []byte) error {
	var d ClassReport
	err := decode(b, 'c', "class_report", func(r *wire.Reader) {
		d.k = r.Count("classes", MaxClasses, 3)
		if r.Err() == nil && d.k < 2 {
			r.Fail("class_report: %d classes", d.k)
			return
		}
		d.alloc()
		d.n = r.Int("count", 0, math.MaxInt64/4)
		var sum int64
		for i := 0; i < d.k && r.Err() == nil; i++ {
			d.tp[i] = r.Int("tp", 0, math.MaxInt64/4)
			d.fp[i] = r.Int("fp", 0, math.MaxInt64/4)
			d.fn[i] = r.Int("fn", 0, math.MaxInt64/4)
			sum += d.tp[i] + d.fn[i]
		}
		if r.Err() == nil && sum != d.n {
			r.Fail("class_report: %d examples, %d counted", d.n, sum)
			return
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
		if int64(d.wn) > d.n {
			r.Fail("window holds more examples than seen")
			return
		}
		d.ring = make([]int32, 2*size)
		for i := 0; i < 2*d.wn && r.Err() == nil; i++ {
			d.ring[i] = int32(r.Count("class", d.k-1, 0))
		}
		for i := 0; i < d.wn && r.Err() == nil; i++ {
			d.count(int(d.ring[2*i]), int(d.ring[2*i+1]), 1, true)
		}
	})
	if err != nil {
		return err
	}
	*c = d
	return nil
}
