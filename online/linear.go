package online

import (
	"math"

	"github.com/streamd/streamd/online/internal/wire"
)

// Linear is least-squares linear regression trained by AdaGrad (Duchi,
// Hazan and Singer 2011): each coordinate's step is LearningRate divided by
// the root of its own sum of squared gradients, so rare features keep
// learning fast while frequent ones settle, the same reason FTRL uses
// per-coordinate rates. L2 (if > 0) is applied lazily, only to coordinates
// present in the example, which keeps Learn O(len(x)).
type Linear struct {
	spec LinearSpec
	lr   float64
	l2   float64
	// wg interleaves weight and sum of squared gradients; index Dim is the
	// intercept, which is never penalized.
	wg      []float64
	updates int64
}

const (
	magicLinear   = 'L'
	versionLinear = 1
	adagradEps    = 1e-8
)

// KindLinear is AdaGrad linear regression (LinearSpec, Linear); "linear" is accepted as an alias.
const KindLinear = "adagrad_linear"

var linearKind = &kindInfo{
	name: KindLinear, aliases: []string{"linear"}, code: 2,
	zero: func() Spec { return LinearSpec{} },
	read: func(r *wire.Reader) Spec {
		v := readV1Spec(r)
		return LinearSpec{Dim: v.Dim, LearningRate: v.LearningRate, L2: v.L2}
	},
}

// LinearSpec configures adagrad_linear.
type LinearSpec struct {
	// Dim is the size of the feature space (hash buckets). Default 1<<18, at most MaxDim.
	Dim int `yaml:"dim"`
	// LearningRate is AdaGrad's base rate. Default 0.1.
	LearningRate float64 `yaml:"learning_rate"`
	// L2 is the penalty applied to the coordinates of each example; default (and negative) none.
	L2 float64 `yaml:"l2"`
}

func (s LinearSpec) Kind() string              { return KindLinear }
func (s LinearSpec) Task() Task                { return Regression }
func (s LinearSpec) InputDim() int             { return s.Dim }
func (s LinearSpec) WithInputDim(dim int) Spec { s.Dim = dim; return s }
func (s LinearSpec) newLearner() Learner       { return newLinear(s) }
func (s LinearSpec) appendParams(dst []byte) []byte {
	return v1Spec{Dim: s.Dim, LearningRate: s.LearningRate, L2: s.L2}.append(dst)
}

func (s LinearSpec) WithDefaults() Spec {
	defInt(&s.Dim, DefaultDim)
	def(&s.LearningRate, 0.1)
	return s
}

func (s LinearSpec) Validate() error {
	var c specCheck
	c.dim(s.Dim)
	c.pos("learning_rate", s.LearningRate)
	c.penalty("l2", s.L2)
	return c.err()
}

func newLinear(s LinearSpec) *Linear {
	m := &Linear{wg: make([]float64, 2*(s.Dim+1))}
	m.setSpec(s)
	return m
}

func (m *Linear) setSpec(s LinearSpec) {
	m.spec = s
	m.lr = s.LearningRate
	m.l2 = max(s.L2, 0)
}

func (m *Linear) Spec() Spec     { return m.spec }
func (m *Linear) Task() Task     { return Regression }
func (m *Linear) Updates() int64 { return m.updates }

func (m *Linear) predict(x Vector) float64 {
	dim := uint32(m.spec.Dim)
	s := m.wg[2*int(dim)]
	for _, f := range x {
		if f.Index >= dim || !finite(f.Value) {
			continue
		}
		s += m.wg[2*int(f.Index)] * f.Value
	}
	return s
}

func (m *Linear) Predict(x Vector, _ []float64) (float64, int) { return m.predict(x), 0 }

func (m *Linear) Learn(x Vector, y float64) {
	if !finite(y) {
		return
	}
	g := m.predict(x) - y // d (squared loss / 2) / d prediction
	if !finite(g) {
		return
	}
	dim := uint32(m.spec.Dim)
	m.step(2*int(dim), g, 0)
	for _, f := range x {
		if f.Index >= dim || !finite(f.Value) || f.Value == 0 {
			continue
		}
		m.step(2*int(f.Index), g*f.Value, m.l2)
	}
	m.updates++
}

func (m *Linear) step(i int, g, l2 float64) {
	adagradStep(m.wg, i, g+l2*m.wg[i], m.lr)
}

// adagradStep is one AdaGrad update of the weight at wg[i], whose accumulated squared gradient is
// wg[i+1] (weights and accumulators interleave, so one cache line serves both): the shared step of
// adagrad_linear and softmax.
func adagradStep(wg []float64, i int, g, lr float64) {
	G := wg[i+1] + g*g
	wg[i+1] = G
	wg[i] -= lr * g / (math.Sqrt(G) + adagradEps)
}

func (m *Linear) Reset() {
	clear(m.wg)
	m.updates = 0
}

func (m *Linear) AppendState(dst []byte) []byte {
	dst = wire.AppendHeader(dst, magicLinear, versionLinear)
	dst = appendSpec(dst, m.spec)
	dst = wire.AppendVarint(dst, m.updates)
	return appendSparsePairs(dst, m.wg)
}

func (m *Linear) DecodeState(b []byte) error {
	r := wire.NewReader(b)
	r.Header(magicLinear, "linear")
	s := readSpecOf[LinearSpec](r, "linear")
	updates := r.Int("linear updates", 0, math.MaxInt64)
	idx, vals := readSparsePairs(r, s.Dim+1, "linear")
	for k := range idx {
		if vals[2*k+1] < 0 {
			r.Fail("linear: G[%d] is negative", idx[k])
			break
		}
	}
	if err := r.End("linear"); err != nil {
		return err
	}
	m.wg = fillPairs(m.wg, s.Dim+1, idx, vals)
	m.setSpec(s)
	m.updates = updates
	return nil
}

// Merge sets every weight and every AdaGrad accumulator to the weighted mean
// of the replicas'. Predictions are linear in the weights, so the merged
// prediction is the weighted mean of the replicas' predictions.
func (m *Linear) Merge(replicas []Learner, weights []float64) error {
	return mergeDense(m, replicas, weights, func(x, y *Linear) bool { return x.spec.Dim == y.spec.Dim },
		func(x *Linear) ([]float64, *int64) { return x.wg, &x.updates })
}

// mergeDense is the Merge of the learners whose state is one dense array of interleaved weights
// and accumulators (adagrad_linear, softmax): every entry becomes the weighted mean of the
// replicas', and the update count the largest replica's.
func mergeDense[T Learner](m T, replicas []Learner, weights []float64, same func(x, y T) bool, parts func(T) ([]float64, *int64)) error {
	rs, a, err := mergeWeights(m, replicas, weights, same)
	if err != nil {
		return err
	}
	updates := maxUpdates(rs)
	srcs := make([][]float64, len(rs))
	for i, r := range rs {
		srcs[i], _ = parts(r)
	}
	dst, n := parts(m)
	averageInto(dst, srcs, a)
	*n = updates
	return nil
}

// averageInto sets dst[i] to sum_r a[r]*srcs[r][i]; dst may be one of srcs.
func averageInto(dst []float64, srcs [][]float64, a []float64) {
	for i := range dst {
		var s float64
		for r, src := range srcs {
			s += a[r] * src[i]
		}
		dst[i] = s
	}
}
