package online

import (
	"math"

	"github.com/streamd/streamd/online/internal/wire"
)

// Softmax is multinomial logistic regression trained by AdaGrad, one weight
// per (coordinate, class) plus one intercept per class.
type Softmax struct {
	spec    Spec
	lr      float64
	l2      float64
	classes int
	// wg holds, for each coordinate (Dim being the intercept), Classes
	// interleaved (weight, sum of squared gradients) pairs: a feature's
	// parameters for every class share cache lines.
	wg      []float64
	updates int64
	logits  []float64 // scratch, len Classes
}

const (
	magicSoftmax   = 'S'
	versionSoftmax = 1
)

func newSoftmax(s Spec) *Softmax {
	m := &Softmax{wg: make([]float64, 2*(s.Dim+1)*s.Classes)}
	m.setSpec(s)
	return m
}

func (m *Softmax) setSpec(s Spec) {
	m.spec = s
	m.lr = s.LearningRate
	m.l2 = max(s.L2, 0)
	m.classes = s.Classes
	if len(m.logits) != s.Classes {
		m.logits = make([]float64, s.Classes)
	}
}

func (m *Softmax) Spec() Spec     { return m.spec }
func (m *Softmax) Task() Task     { return Multiclass }
func (m *Softmax) Updates() int64 { return m.updates }

// probs fills p with the class probabilities and returns the argmax.
func (m *Softmax) probs(x Vector, p []float64) int {
	c := m.classes
	dim := uint32(m.spec.Dim)
	p = p[:c]
	base := 2 * int(dim) * c
	for k := range p {
		p[k] = m.wg[base+2*k]
	}
	for _, f := range x {
		if f.Index >= dim || !finite(f.Value) || f.Value == 0 {
			continue
		}
		o := 2 * int(f.Index) * c
		for k := range p {
			p[k] += m.wg[o+2*k] * f.Value
		}
	}
	best := 0
	for k := range p {
		if p[k] > p[best] {
			best = k
		}
	}
	mx := p[best]
	sum := 0.0
	for k := range p {
		p[k] = math.Exp(p[k] - mx)
		sum += p[k]
	}
	for k := range p {
		p[k] /= sum
	}
	return best
}

func (m *Softmax) Predict(x Vector, probs []float64) (float64, int) {
	if len(probs) < m.classes {
		probs = m.logits
	}
	best := m.probs(x, probs)
	return probs[best], best
}

func (m *Softmax) Learn(x Vector, y float64) {
	if !finite(y) || y < 0 || y >= float64(m.classes) || y != math.Trunc(y) {
		return
	}
	label := int(y)
	p := m.logits
	m.probs(x, p)
	c := m.classes
	dim := uint32(m.spec.Dim)
	// The gradient of the cross-entropy w.r.t. logit k is p_k - [k == y].
	p[label] -= 1
	m.step(2*int(dim)*c, p, 1, 0)
	for _, f := range x {
		if f.Index >= dim || !finite(f.Value) || f.Value == 0 {
			continue
		}
		m.step(2*int(f.Index)*c, p, f.Value, m.l2)
	}
	m.updates++
}

func (m *Softmax) step(o int, g []float64, v, l2 float64) {
	for k, gk := range g {
		i := o + 2*k
		adagradStep(m.wg, i, gk*v+l2*m.wg[i], m.lr)
	}
}

func (m *Softmax) Reset() {
	clear(m.wg)
	m.updates = 0
}

func (m *Softmax) AppendState(dst []byte) []byte {
	dst = wire.AppendHeader(dst, magicSoftmax, versionSoftmax)
	dst = appendSpec(dst, m.spec)
	dst = wire.AppendVarint(dst, m.updates)
	return appendSparsePairs(dst, m.wg)
}

func (m *Softmax) DecodeState(b []byte) error {
	r := wire.NewReader(b)
	r.Header(magicSoftmax, "softmax")
	s := readSpec(r)
	if r.Err() == nil && s.Kind != KindSoftmax {
		r.Fail("softmax: state of kind %q", s.Kind)
	}
	updates := r.Int("softmax updates", 0, math.MaxInt64)
	size := (s.Dim + 1) * s.Classes
	idx, vals := readSparsePairs(r, size, "softmax")
	for k := range idx {
		if vals[2*k+1] < 0 {
			r.Fail("softmax: G[%d] is negative", idx[k])
			break
		}
	}
	if err := r.End("softmax"); err != nil {
		return err
	}
	m.wg = fillPairs(m.wg, size, idx, vals)
	m.setSpec(s)
	m.updates = updates
	return nil
}

// Merge averages weights and accumulators like Linear.Merge: the merged
// logits are the weighted mean of the replicas' logits.
func (m *Softmax) Merge(replicas []Learner, weights []float64) error {
	return mergeDense(m, replicas, weights, func(x *Softmax) (*Spec, []float64, *int64) { return &x.spec, x.wg, &x.updates })
}
