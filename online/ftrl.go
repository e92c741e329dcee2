package online

import (
	"math"

	"github.com/streamd/streamd/online/internal/wire"
)

// FTRL is FTRL-Proximal logistic regression (McMahan et al., "Ad click
// prediction: a view from the trenches", 2013, algorithm 1) over Dim hashed
// coordinates plus an intercept.
//
// State per coordinate is z (the adjusted sum of gradients) and n (the sum
// of squared gradients); the weight is a closed form of both, computed when
// needed, so Learn touches only the coordinates present in x. The intercept
// is not penalized by L1 or L2: shrinking the base rate towards 1/2 only hurts
// calibration.
type FTRL struct {
	spec  FTRLSpec
	alpha float64
	beta  float64
	l1    float64
	l2    float64
	// zn interleaves z and n so that one cache line serves both: zn[2i] = z_i,
	// zn[2i+1] = n_i, coordinate Dim being the intercept.
	zn      []float64
	updates int64
	w       []float64 // scratch: the weights of the current example's features
}

const (
	magicFTRL   = 'F'
	versionFTRL = 1
)

// KindFTRL is FTRL-Proximal logistic regression (FTRLSpec, FTRL).
const KindFTRL = "ftrl_logistic"

var ftrlKind = &kindInfo{
	name: KindFTRL, code: 1,
	zero: func() Spec { return FTRLSpec{} },
	read: func(r *wire.Reader) Spec {
		v := readV1Spec(r)
		return FTRLSpec{Dim: v.Dim, Alpha: v.Alpha, Beta: v.Beta, L1: v.L1, L2: v.L2}
	},
}

// FTRLSpec configures FTRL-Proximal (McMahan et al. 2013). Defaults alpha 0.1, beta 1, l1 1, l2 1:
// alpha 0.1 is the paper's typical per-coordinate base rate for unscaled 0/1 features; beta 1
// makes the first step of a coordinate alpha/(beta+|g|) instead of unbounded; l1 1 drops
// coordinates whose cumulative gradient never exceeds 1, which is what keeps hashed click and
// fraud models sparse; l2 1 keeps rare coordinates from swinging. Since 0 means default, a
// negative L1 or L2 means no penalty.
type FTRLSpec struct {
	// Dim is the size of the feature space (hash buckets). Default 1<<18, at most MaxDim.
	Dim   int     `yaml:"dim"`
	Alpha float64 `yaml:"alpha"`
	Beta  float64 `yaml:"beta"`
	L1    float64 `yaml:"l1"`
	L2    float64 `yaml:"l2"`
}

func (s FTRLSpec) Kind() string              { return KindFTRL }
func (s FTRLSpec) Task() Task                { return Binary }
func (s FTRLSpec) InputDim() int             { return s.Dim }
func (s FTRLSpec) WithInputDim(dim int) Spec { s.Dim = dim; return s }
func (s FTRLSpec) newLearner() Learner       { return newFTRL(s) }
func (s FTRLSpec) appendParams(dst []byte) []byte {
	return v1Spec{Dim: s.Dim, Alpha: s.Alpha, Beta: s.Beta, L1: s.L1, L2: s.L2}.append(dst)
}

func (s FTRLSpec) WithDefaults() Spec {
	defInt(&s.Dim, DefaultDim)
	def(&s.Alpha, 0.1)
	def(&s.Beta, 1)
	def(&s.L1, 1)
	def(&s.L2, 1)
	return s
}

func (s FTRLSpec) Validate() error {
	var c specCheck
	c.dim(s.Dim)
	c.pos("alpha", s.Alpha)
	c.pos("beta", s.Beta)
	c.penalty("l1", s.L1)
	c.penalty("l2", s.L2)
	return c.err()
}

func newFTRL(s FTRLSpec) *FTRL {
	m := &FTRL{zn: make([]float64, 2*(s.Dim+1))}
	m.setSpec(s)
	return m
}

func (m *FTRL) setSpec(s FTRLSpec) {
	m.spec = s
	m.alpha, m.beta = s.Alpha, s.Beta
	m.l1, m.l2 = max(s.L1, 0), max(s.L2, 0)
}

func (m *FTRL) Spec() Spec     { return m.spec }
func (m *FTRL) Task() Task     { return Binary }
func (m *FTRL) Updates() int64 { return m.updates }

// weight is the FTRL-Proximal closed form: the minimizer of the
// per-coordinate objective, 0 while |z| <= l1 (which is what makes the model
// sparse).
func (m *FTRL) weight(z, n, l1, l2 float64) float64 {
	if z <= l1 && z >= -l1 {
		return 0
	}
	if z > 0 {
		z -= l1
	} else {
		z += l1
	}
	return -z / ((m.beta+math.Sqrt(n))/m.alpha + l2)
}

func (m *FTRL) margin(x Vector) float64 {
	dim := uint32(m.spec.Dim)
	zn := m.zn
	b := 2 * int(dim)
	s := m.weight(zn[b], zn[b+1], 0, 0)
	for _, f := range x {
		if f.Index >= dim || !finite(f.Value) || f.Value == 0 {
			continue
		}
		i := 2 * int(f.Index)
		s += m.weight(zn[i], zn[i+1], m.l1, m.l2) * f.Value
	}
	return s
}

// Margin returns the linear score w·x + b (the log-odds).
func (m *FTRL) Margin(x Vector) float64 { return m.margin(x) }

func (m *FTRL) Predict(x Vector, _ []float64) (float64, int) {
	p := sigmoid(m.margin(x))
	if p >= 0.5 {
		return p, 1
	}
	return p, 0
}

func (m *FTRL) Learn(x Vector, y float64) { m.LearnWeighted(x, y, 1) }

// LearnWeighted implements WeightedLearner: the log loss's gradient scaled by wt.
func (m *FTRL) LearnWeighted(x Vector, y, wt float64) {
	y, ok := validBinaryLabel(y)
	if !ok || !finite(wt) || wt <= 0 {
		return
	}
	dim := uint32(m.spec.Dim)
	zn := m.zn
	if cap(m.w) < len(x) {
		m.w = make([]float64, len(x), 2*len(x))
	}
	w := m.w[:len(x)]
	b := 2 * int(dim)
	wb := m.weight(zn[b], zn[b+1], 0, 0)
	s := wb
	for k, f := range x {
		if f.Index >= dim || !finite(f.Value) || f.Value == 0 {
			continue
		}
		i := 2 * int(f.Index)
		w[k] = m.weight(zn[i], zn[i+1], m.l1, m.l2)
		s += w[k] * f.Value
	}
	g := (sigmoid(s) - y) * wt // d logloss / d margin, weighted
	m.step(b, g, wb)
	for k, f := range x {
		if f.Index >= dim || !finite(f.Value) || f.Value == 0 {
			continue
		}
		m.step(2*int(f.Index), g*f.Value, w[k])
	}
	m.updates++
}

func (m *FTRL) step(i int, g, w float64) {
	n := m.zn[i+1]
	n2 := n + g*g
	sigma := (math.Sqrt(n2) - math.Sqrt(n)) / m.alpha
	m.zn[i] += g - sigma*w
	m.zn[i+1] = n2
}

func (m *FTRL) Reset() {
	clear(m.zn)
	m.updates = 0
}

// Weights calls fn for every non-zero weight in index order, the intercept
// last with index Dim. It exists for inspection and tests.
func (m *FTRL) Weights(fn func(i int, w float64)) {
	for i := 0; i <= m.spec.Dim; i++ {
		l1, l2 := m.l1, m.l2
		if i == m.spec.Dim {
			l1, l2 = 0, 0
		}
		if w := m.weight(m.zn[2*i], m.zn[2*i+1], l1, l2); w != 0 {
			fn(i, w)
		}
	}
}

// AppendState writes the spec, the update count and every coordinate that
// has seen a gradient (n > 0), in index order: the state is as sparse as
// the data, and deterministic.
func (m *FTRL) AppendState(dst []byte) []byte {
	dst = wire.AppendHeader(dst, magicFTRL, versionFTRL)
	dst = appendSpec(dst, m.spec)
	dst = wire.AppendVarint(dst, m.updates)
	return appendSparsePairs(dst, m.zn)
}

func (m *FTRL) DecodeState(b []byte) error {
	r := wire.NewReader(b)
	r.Header(magicFTRL, "ftrl")
	s := readSpecOf[FTRLSpec](r, "ftrl")
	updates := r.Int("ftrl updates", 0, math.MaxInt64)
	idx, vals := readSparsePairs(r, s.Dim+1, "ftrl")
	for k := range idx {
		if vals[2*k+1] < 0 {
			r.Fail("ftrl: n[%d] = %v is negative", idx[k], vals[2*k+1])
			break
		}
	}
	if err := r.End("ftrl"); err != nil {
		return err
	}
	m.zn = fillPairs(m.zn, s.Dim+1, idx, vals)
	m.setSpec(s)
	m.updates = updates
	return nil
}

// Merge sets n_i to the weighted mean of the replicas' n_i and then solves
// for the z_i whose closed-form weight is the weighted mean of the replicas'
// weights. The merged model's margin w·x is therefore exactly the weighted
// mean of the replicas' margins for every x (its probability is the sigmoid
// of the mean log-odds, not the mean probability), and a coordinate that is
// 0 in every replica stays 0, so merging keeps the model sparse. Averaging z
// directly would not have that property: the weight is not linear in (z, n).
func (m *FTRL) Merge(replicas []Learner, weights []float64) error {
	rs, a, err := mergeWeights(m, replicas, weights, func(x, y *FTRL) bool { return x.spec.Dim == y.spec.Dim })
	if err != nil {
		return err
	}
	updates := maxUpdates(rs)
	dim := m.spec.Dim
	for i := 0; i <= dim; i++ {
		l1, l2 := m.l1, m.l2
		if i == dim {
			l1, l2 = 0, 0
		}
		var n, w, z float64
		for r, rep := range rs {
			rl1, rl2 := rep.l1, rep.l2
			if i == dim {
				rl1, rl2 = 0, 0
			}
			zr, nr := rep.zn[2*i], rep.zn[2*i+1]
			n += a[r] * nr
			z += a[r] * zr
			w += a[r] * rep.weight(zr, nr, rl1, rl2)
		}
		if w != 0 {
			// Invert weight(): w = -(z - sgn(z) l1) / ((beta + sqrt(n))/alpha + l2).
			z = -w * ((m.beta+math.Sqrt(n))/m.alpha + l2)
			if z > 0 {
				z += l1
			} else {
				z -= l1
			}
		} else {
			// Keep |z| <= l1 so the weight stays exactly 0.
			z = min(max(z, -l1), l1)
		}
		m.zn[2*i], m.zn[2*i+1] = z, n
	}
	m.updates = updates
	return nil
}

// appendSparsePairs writes the (a, b) pairs of ab whose b (a count or a sum
// of squares, never negative) is non-zero, or whose a is non-zero, with
// delta-encoded indexes.
func appendSparsePairs(dst []byte, ab []float64) []byte {
	n := 0
	for i := 0; i < len(ab); i += 2 {
		if ab[i] != 0 || ab[i+1] != 0 {
			n++
		}
	}
	dst = wire.AppendUvarint(dst, uint64(n))
	prev := -1
	for i := 0; i < len(ab); i += 2 {
		if ab[i] != 0 || ab[i+1] != 0 {
			dst = wire.AppendUvarint(dst, uint64(i/2-prev-1))
			dst = wire.AppendFloat(dst, ab[i])
			dst = wire.AppendFloat(dst, ab[i+1])
			prev = i / 2
		}
	}
	return dst
}

// readSparsePairs reads what appendSparsePairs wrote for size coordinates.
func readSparsePairs(r *wire.Reader, size int, name string) ([]int, []float64) {
	n := r.Count(name+" entries", size, 17)
	if r.Err() != nil {
		return nil, nil
	}
	idx := make([]int, n)
	vals := make([]float64, 2*n)
	prev := -1
	for k := 0; k < n; k++ {
		d := r.Uvarint()
		if r.Err() != nil {
			return nil, nil
		}
		if d >= uint64(size-prev-1) {
			r.Fail("%s: index past %d", name, size)
			return nil, nil
		}
		prev += int(d) + 1
		idx[k] = prev
		vals[2*k] = r.Finite(name + " value")
		vals[2*k+1] = r.Finite(name + " value")
	}
	return idx, vals
}

// fillPairs returns a zeroed slice of 2*size (reusing dst when it fits)
// holding the decoded pairs.
func fillPairs(dst []float64, size int, idx []int, vals []float64) []float64 {
	if len(dst) == 2*size {
		clear(dst)
	} else {
		dst = make([]float64, 2*size)
	}
	for k, i := range idx {
		dst[2*i], dst[2*i+1] = vals[2*k], vals[2*k+1]
	}
	return dst
}
