package online

import (
	"fmt"
	"math"

	"github.com/streamd/streamd/online/internal/wire"
)

// Linear is least-squares linear regression trained by AdaGrad (Duchi,
// Hazan and Singer 2011): each coordinate's step is LearningRate divided by
// the root of its own sum of squared gradients, so rare features keep
// learning fast while frequent ones settle, the same reason FTRL uses
// per-coordinate rates. L2 (if > 0) is applied lazily, only to coordinates
// present in the example, which keeps Learn O(len(x)).
//
// By default the target is standardized online (TargetScaling
// "standardize", as River's TargetStandardScaler): the learner keeps the
// running mean and population deviation of the targets it learned, fits the
// weights to (y-mean)/deviation, and predicts mean + deviation·(w·x). AdaGrad's
// steps are of the order of LearningRate whatever the target's scale, so a
// raw target of 300 would take thousands of examples to reach from 0 (the
// intercept's step shrinks as 1/sqrt(t)); in standard units every target is
// of order 1 and the default rate fits from the first examples.
type Linear struct {
	spec LinearSpec
	lr   float64
	l2   float64
	// wg interleaves weight and sum of squared gradients; index Dim is the
	// intercept, which is never penalized.
	wg      []float64
	updates int64
	// target holds the count, mean and sum of squared deviations of the
	// learned targets (Welford) when the target is standardized.
	target welford
}

// welford is a running count, mean and sum of squared deviations.
type welford struct{ n, mean, m2 float64 }

func (w *welford) add(x float64) {
	w.n++
	d := x - w.mean
	w.mean += d / w.n
	w.m2 += d * (x - w.mean)
}

// scale returns the population deviation, or 1 while it is below
// minTargetStd (the first example, or a constant target so far): the
// targets are then all the mean, and a unit scale keeps the weights'
// updates what they would be unscaled.
func (w *welford) scale() float64 {
	if w.n == 0 {
		return 1
	}
	sd := math.Sqrt(w.m2 / w.n)
	if !(sd >= minTargetStd) {
		return 1
	}
	return sd
}

const (
	magicLinear = 'L'
	// versionLinear is the state without target statistics; versionLinearScaled has them after the
	// update count. A spec with TargetScaling "none" writes the first, byte for byte the format of
	// before target scaling, so older changelogs restore to the same learner.
	versionLinear       = 1
	versionLinearScaled = 2
	adagradEps          = 1e-8
	minTargetStd        = 1e-12
)

// Target scalings of adagrad_linear.
const (
	TargetStandardize = "standardize"
	TargetNone        = "none"
)

// KindLinear is AdaGrad linear regression (LinearSpec, Linear); "linear" is accepted as an alias.
const KindLinear = "adagrad_linear"

var linearKind = &kindInfo{
	name: KindLinear, aliases: []string{"linear"}, code: codeLinear,
	zero: func() Spec { return LinearSpec{} },
	// Code 2 is the spec of before target scaling (the v1 layout), which means TargetScaling "none".
	read: func(r *wire.Reader) Spec {
		v := readV1Spec(r)
		return LinearSpec{Dim: v.Dim, LearningRate: v.LearningRate, L2: v.L2, TargetScaling: TargetNone}
	},
	layouts: []specLayout{{code: codeLinearScaled, read: func(r *wire.Reader) Spec {
		v := readV1Spec(r)
		return LinearSpec{Dim: v.Dim, LearningRate: v.LearningRate, L2: v.L2, TargetScaling: TargetStandardize}
	}}},
}

// codeLinearScaled is the spec code of adagrad_linear with TargetScaling "standardize": the v1
// layout under its own code, so that the spec of code 2 keeps meaning what it meant.
const (
	codeLinear       = 2
	codeLinearScaled = 6
)

// LinearSpec configures adagrad_linear.
type LinearSpec struct {
	// Dim is the size of the feature space (hash buckets). Default 1<<18, at most MaxDim.
	Dim int `yaml:"dim"`
	// LearningRate is AdaGrad's base rate. Default 0.1.
	LearningRate float64 `yaml:"learning_rate"`
	// L2 is the penalty applied to the coordinates of each example; default (and negative) none.
	L2 float64 `yaml:"l2"`
	// TargetScaling is "standardize" (default: fit the target in standard units, see Linear) or
	// "none" (fit the raw target).
	TargetScaling string `yaml:"target_scaling"`
}

func (s LinearSpec) Kind() string              { return KindLinear }
func (s LinearSpec) Task() Task                { return Regression }
func (s LinearSpec) InputDim() int             { return s.Dim }
func (s LinearSpec) WithInputDim(dim int) Spec { s.Dim = dim; return s }
func (s LinearSpec) newLearner() Learner       { return newLinear(s) }
func (s LinearSpec) appendParams(dst []byte) []byte {
	return v1Spec{Dim: s.Dim, LearningRate: s.LearningRate, L2: s.L2}.append(dst)
}

// layoutCode is the spec's code in encoded state (see codeLinearScaled).
func (s LinearSpec) layoutCode() uint64 {
	if s.TargetScaling == TargetNone {
		return codeLinear
	}
	return codeLinearScaled
}

func (s LinearSpec) WithDefaults() Spec {
	defInt(&s.Dim, DefaultDim)
	def(&s.LearningRate, 0.1)
	if s.TargetScaling == "" {
		s.TargetScaling = TargetStandardize
	}
	return s
}

func (s LinearSpec) Validate() error {
	var c specCheck
	c.dim(s.Dim)
	c.pos("learning_rate", s.LearningRate)
	c.penalty("l2", s.L2)
	if s.TargetScaling != TargetStandardize && s.TargetScaling != TargetNone {
		c.bad("target_scaling", fmt.Sprintf("%q", s.TargetScaling), fmt.Sprintf("%q or %q", TargetStandardize, TargetNone))
	}
	return c.err()
}

func (s LinearSpec) scaled() bool { return s.TargetScaling != TargetNone }

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

func (m *Linear) Predict(x Vector, _ []float64) (float64, int) {
	if !m.spec.scaled() {
		return m.predict(x), 0
	}
	return m.target.mean + m.target.scale()*m.predict(x), 0
}

func (m *Linear) Learn(x Vector, y float64) {
	if !finite(y) {
		return
	}
	if m.spec.scaled() {
		// Statistics first, then the standardized target, as River's TargetStandardScaler.
		t := m.target
		t.add(y)
		z := (y - t.mean) / t.scale()
		if !finite(t.m2) || !finite(z) {
			return // a target so large its square overflows: ignored, as a non-finite one
		}
		m.target = t
		y = z
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
	m.target = welford{}
}

func (m *Linear) AppendState(dst []byte) []byte {
	if !m.spec.scaled() {
		dst = wire.AppendHeader(dst, magicLinear, versionLinear)
		dst = appendSpec(dst, m.spec)
		dst = wire.AppendVarint(dst, m.updates)
		return appendSparsePairs(dst, m.wg)
	}
	dst = wire.AppendHeader(dst, magicLinear, versionLinearScaled)
	dst = appendSpec(dst, m.spec)
	dst = wire.AppendVarint(dst, m.updates)
	dst = wire.AppendFloat(dst, m.target.n)
	dst = wire.AppendFloat(dst, m.target.mean)
	dst = wire.AppendFloat(dst, m.target.m2)
	return appendSparsePairs(dst, m.wg)
}

func (m *Linear) DecodeState(b []byte) error {
	r := wire.NewReader(b)
	version := r.Header(magicLinear, "linear")
	s := readSpecOf[LinearSpec](r, "linear")
	if r.Err() == nil && version != versionLinear && version != versionLinearScaled {
		r.Fail("linear: version %d", version)
	}
	if r.Err() == nil && (version == versionLinearScaled) != s.scaled() {
		r.Fail("linear: state version %d with target_scaling %q", version, s.TargetScaling)
	}
	updates := r.Int("linear updates", 0, math.MaxInt64)
	var target welford
	if r.Err() == nil && s.scaled() {
		target.n = r.NonNeg("linear target count")
		target.mean = r.Finite("linear target mean")
		target.m2 = r.NonNeg("linear target m2")
	}
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
	m.target = target
	return nil
}

// Merge sets every weight and every AdaGrad accumulator to the weighted mean
// of the replicas'. Predictions are linear in the weights, so without target
// scaling the merged prediction is the weighted mean of the replicas'
// predictions. With it, the target's mean and variance become the weighted
// means of the replicas' and its count the largest (replicas share their
// history before the last merge, as for Updates); predictions are then close
// to, not exactly, the mean of the replicas'.
func (m *Linear) Merge(replicas []Learner, weights []float64) error {
	same := func(x, y *Linear) bool { return x.spec.Dim == y.spec.Dim && x.spec.scaled() == y.spec.scaled() }
	rs, a, err := mergeWeights(m, replicas, weights, same)
	if err != nil {
		return err
	}
	var t welford
	for i, r := range rs {
		if r.target.n > 0 {
			t.mean += a[i] * r.target.mean
			t.m2 += a[i] * r.target.m2 / r.target.n // the variance
		}
		t.n = max(t.n, r.target.n)
	}
	t.m2 *= t.n
	if err := mergeDense(m, replicas, weights, same, func(x *Linear) ([]float64, *int64) { return x.wg, &x.updates }); err != nil {
		return err
	}
	m.target = t
	return nil
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
