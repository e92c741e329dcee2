package online

import (
	"fmt"
	"math"

	"github.com/streamd/streamd/online/internal/wire"
)

// Softmax is multinomial logistic regression trained by AdaGrad, one weight
// per (coordinate, class) plus one intercept per class.
type Softmax struct {
	spec    SoftmaxSpec
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

// KindSoftmax is multinomial logistic regression trained by AdaGrad (SoftmaxSpec, Softmax).
const KindSoftmax = "softmax"

var softmaxKind = &kindInfo{
	name: KindSoftmax, code: 3,
	zero: func() Spec { return SoftmaxSpec{} },
	read: func(r *wire.Reader) Spec {
		v := readV1Spec(r)
		return SoftmaxSpec{Dim: v.Dim, Classes: v.Classes, LearningRate: v.LearningRate, L2: v.L2}
	},
}

// SoftmaxSpec configures softmax.
type SoftmaxSpec struct {
	// Dim is the size of the feature space (hash buckets). Default 1<<18, at most MaxDim;
	// Dim*Classes at most MaxParams.
	Dim int `yaml:"dim"`
	// Classes is the number of classes: required, in [2, MaxClasses].
	Classes int `yaml:"classes"`
	// LearningRate is AdaGrad's base rate. Default 0.1.
	LearningRate float64 `yaml:"learning_rate"`
	// L2 is the penalty applied to the coordinates of each example; default (and negative) none.
	L2 float64 `yaml:"l2"`
}

func (s SoftmaxSpec) Kind() string              { return KindSoftmax }
func (s SoftmaxSpec) Task() Task                { return Multiclass }
func (s SoftmaxSpec) InputDim() int             { return s.Dim }
func (s SoftmaxSpec) WithInputDim(dim int) Spec { s.Dim = dim; return s }
func (s SoftmaxSpec) newLearner() Learner       { return newSoftmax(s) }
func (s SoftmaxSpec) appendParams(dst []byte) []byte {
	return v1Spec{Dim: s.Dim, Classes: s.Classes, LearningRate: s.LearningRate, L2: s.L2}.append(dst)
}

func (s SoftmaxSpec) WithDefaults() Spec {
	defInt(&s.Dim, DefaultDim)
	def(&s.LearningRate, 0.1)
	return s
}

func (s SoftmaxSpec) Validate() error {
	var c specCheck
	c.dim(s.Dim)
	c.pos("learning_rate", s.LearningRate)
	c.penalty("l2", s.L2)
	if s.Classes < 2 || s.Classes > MaxClasses {
		c.bad("classes", s.Classes, fmt.Sprintf("in [2, %d]", MaxClasses))
	} else if s.Dim >= 1 && s.Dim*s.Classes > MaxParams {
		c.bad("dim*classes", s.Dim*s.Classes, fmt.Sprintf("<= %d", MaxParams))
	}
	return c.err()
}

func newSoftmax(s SoftmaxSpec) *Softmax {
	m := &Softmax{wg: make([]float64, 2*(s.Dim+1)*s.Classes)}
	m.setSpec(s)
	return m
}

func (m *Softmax) setSpec(s SoftmaxSpec) {
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

func (m *Softmax) Learn(x Vector, y float64) { m.LearnWeighted(x, y, 1) }

// LearnWeighted implements WeightedLearner: the cross-entropy's gradient scaled by wt.
func (m *Softmax) LearnWeighted(x Vector, y, wt float64) {
	if !finite(y) || y < 0 || y >= float64(m.classes) || y != math.Trunc(y) || !finite(wt) || wt <= 0 {
		return
	}
	label := int(y)
	p := m.logits
	m.probs(x, p)
	c := m.classes
	dim := uint32(m.spec.Dim)
	// The gradient of the cross-entropy w.r.t. logit k is p_k - [k == y].
	p[label] -= 1
	if wt != 1 {
		for k := range p {
			p[k] *= wt
		}
	}
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
	s := readSpecOf[SoftmaxSpec](r, "softmax")
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
	return mergeDense(m, replicas, weights, func(x, y *Softmax) bool { return x.spec.Dim == y.spec.Dim && x.spec.Classes == y.spec.Classes },
		func(x *Softmax) ([]float64, *int64) { return x.wg, &x.updates })
}
