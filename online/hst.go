package online

import (
	"fmt"
	"math"

	"github.com/streamd/streamd/online/internal/wire"
)

// HST is Half-Space Trees (Tan, Ting and Liu, "Fast anomaly detection for streaming data", IJCAI
// 2011), after River's anomaly.HalfSpaceTrees: an unsupervised anomaly scorer. Trees random
// half-space trees of depth Height split the box [Low, High]^Dim at random (each split on a
// feature drawn with probability proportional to its current width, at a point drawn uniformly
// in the middle 70% of it). Each node counts the examples that reach it in the current window
// of WindowSize examples (l) and in the previous one (r, the reference). The score of x sums, in
// every tree, r·2^depth along x's path, stopping at the first node with r < WindowSize/10, and is
// normalized to [0, 1] and flipped: examples in regions the last window rarely visited score
// high. During the first window there is no reference and every score is 0.
//
// The trees are fixed by the spec (Seed): they are rebuilt from it, with this package's own
// generator (splitmix64, so that a Go release cannot change them), and the state holds only the
// masses. Inputs should be scaled into [Low, High]; as everywhere in this package an absent
// feature is 0. Learn ignores its label.
type HST struct {
	spec     HSTSpec
	internal int // internal nodes per tree, 2^Height - 1
	nodes    int // nodes per tree, 2^(Height+1) - 1
	// feature and threshold of the internal nodes, tree after tree in heap order (node i's
	// children are 2i+1 and 2i+2).
	feature   []uint32
	threshold []float64
	// mass interleaves r (reference window) and l (current window) per node, tree after tree.
	mass        []float64
	counter     int // examples in the current window
	firstWindow bool
	updates     int64
}

const (
	magicHST   = 'H'
	versionHST = 1
	hstPadding = 0.15 // River's: split points avoid the outer 15% of a feature's range
)

// KindHST is Half-Space Trees anomaly scoring (HSTSpec, HST).
const KindHST = "half_space_trees"

var hstKind = &kindInfo{
	name: KindHST, aliases: []string{"hst"}, code: 7,
	zero: func() Spec { return HSTSpec{} },
	read: func(r *wire.Reader) Spec {
		var s HSTSpec
		s.Dim = int(r.Int("spec dim", 1, MaxDim))
		s.Trees = int(r.Int("spec trees", 1, MaxHSTTrees))
		s.Height = int(r.Int("spec height", 1, MaxHSTHeight))
		s.WindowSize = int(r.Int("spec window_size", 1, math.MaxInt32))
		s.Seed = r.Varint()
		s.Low, s.High = r.Float(), r.Float()
		return s
	},
}

// Bounds of HSTSpec: Trees*(2^(Height+1)-1) nodes at most MaxParams.
const (
	MaxHSTTrees  = 1024
	MaxHSTHeight = 20
)

// HSTSpec configures half_space_trees. The defaults are River's: 10 trees of height 8, windows of
// 250 examples, features in [0, 1].
type HSTSpec struct {
	// Dim is the size of the feature space. Default 1<<18, at most MaxDim.
	Dim int `yaml:"dim"`
	// Trees is the number of trees (default 10, at most MaxHSTTrees).
	Trees int `yaml:"trees"`
	// Height is every tree's depth (default 8, at most MaxHSTHeight).
	Height int `yaml:"height"`
	// WindowSize is the number of examples of a window (default 250).
	WindowSize int `yaml:"window_size"`
	// Seed draws the trees (0 is a seed like any other).
	Seed int64 `yaml:"seed"`
	// Low and High bound every feature's range (defaults 0 and 1; a High of 0 means 1).
	Low  float64 `yaml:"low"`
	High float64 `yaml:"high"`
}

func (s HSTSpec) Kind() string              { return KindHST }
func (s HSTSpec) Task() Task                { return Anomaly }
func (s HSTSpec) InputDim() int             { return s.Dim }
func (s HSTSpec) WithInputDim(dim int) Spec { s.Dim = dim; return s }
func (s HSTSpec) newLearner() Learner       { return newHST(s) }
func (s HSTSpec) appendParams(dst []byte) []byte {
	for _, v := range [...]int{s.Dim, s.Trees, s.Height, s.WindowSize} {
		dst = wire.AppendVarint(dst, int64(v))
	}
	dst = wire.AppendVarint(dst, s.Seed)
	dst = wire.AppendFloat(dst, s.Low)
	return wire.AppendFloat(dst, s.High)
}

func (s HSTSpec) WithDefaults() Spec {
	defInt(&s.Dim, DefaultDim)
	defInt(&s.Trees, 10)
	defInt(&s.Height, 8)
	defInt(&s.WindowSize, 250)
	def(&s.High, 1)
	return s
}

func (s HSTSpec) Validate() error {
	var c specCheck
	c.dim(s.Dim)
	if s.Trees < 1 || s.Trees > MaxHSTTrees {
		c.bad("trees", s.Trees, fmt.Sprintf("in [1, %d]", MaxHSTTrees))
	}
	if s.Height < 1 || s.Height > MaxHSTHeight {
		c.bad("height", s.Height, fmt.Sprintf("in [1, %d]", MaxHSTHeight))
	} else if s.Trees >= 1 && s.Trees*(1<<(s.Height+1)-1) > MaxParams {
		c.bad("trees", s.Trees, fmt.Sprintf("trees*(2^(height+1)-1) <= %d", MaxParams))
	}
	if s.WindowSize < 1 {
		c.bad("window_size", s.WindowSize, ">= 1")
	}
	if !finite(s.Low) || !finite(s.High) || !(s.Low < s.High) {
		c.bad("low/high", fmt.Sprintf("%v/%v", s.Low, s.High), "finite, low < high")
	}
	return c.err()
}

func newHST(s HSTSpec) *HST {
	m := &HST{}
	m.setSpec(s)
	m.Reset()
	return m
}

func (m *HST) setSpec(s HSTSpec) {
	m.spec = s
	m.internal = 1<<s.Height - 1
	m.nodes = 1<<(s.Height+1) - 1
	m.feature = make([]uint32, s.Trees*m.internal)
	m.threshold = make([]float64, s.Trees*m.internal)
	m.mass = make([]float64, 2*s.Trees*m.nodes)
	b := hstBuilder{rng: splitmix64(uint64(s.Seed)), dim: s.Dim, lo: s.Low, hi: s.High}
	for t := 0; t < s.Trees; t++ {
		b.build(m.feature[t*m.internal:(t+1)*m.internal], m.threshold[t*m.internal:(t+1)*m.internal], 0)
	}
}

// hstBuilder draws the splits of one tree. Only the features split on along the current path
// have a range other than [lo, hi]; they are kept in a short list, so drawing a feature costs
// O(Height), not O(Dim).
type hstBuilder struct {
	rng    splitmix64
	dim    int
	lo, hi float64
	path   []hstRange
}

type hstRange struct {
	feature uint32
	lo, hi  float64
}

func (b *hstBuilder) rangeOf(f uint32) (lo, hi float64, at int) {
	for i := len(b.path) - 1; i >= 0; i-- {
		if b.path[i].feature == f {
			return b.path[i].lo, b.path[i].hi, i
		}
	}
	return b.lo, b.hi, -1
}

func (b *hstBuilder) build(feature []uint32, threshold []float64, i int) {
	if i >= len(feature) {
		return
	}
	f := b.draw()
	lo, hi, _ := b.rangeOf(f)
	t := lo + hstPadding*(hi-lo) + b.rng.float64()*(1-2*hstPadding)*(hi-lo)
	feature[i], threshold[i] = f, t
	b.path = append(b.path, hstRange{f, lo, t})
	b.build(feature, threshold, 2*i+1)
	b.path[len(b.path)-1] = hstRange{f, t, hi}
	b.build(feature, threshold, 2*i+2)
	b.path = b.path[:len(b.path)-1]
}

// draw picks a feature with probability proportional to its current width, as River does.
func (b *hstBuilder) draw() uint32 {
	full := b.hi - b.lo
	// The distinct features on the path, each with its current (innermost) width.
	total, narrowed := 0.0, 0
	for i := range b.path {
		if _, _, at := b.rangeOf(b.path[i].feature); at == i {
			total += b.path[i].hi - b.path[i].lo
			narrowed++
		}
	}
	total += float64(b.dim-narrowed) * full
	u := b.rng.float64() * total
	for i := range b.path {
		if _, _, at := b.rangeOf(b.path[i].feature); at == i {
			u -= b.path[i].hi - b.path[i].lo
			if u < 0 {
				return b.path[i].feature
			}
		}
	}
	if narrowed >= b.dim {
		return b.path[len(b.path)-1].feature // rounding left u at the very end
	}
	for {
		f := uint32(b.rng.next() % uint64(b.dim))
		if _, _, at := b.rangeOf(f); at < 0 {
			return f
		}
	}
}

// splitmix64 is Steele, Lea and Flood's generator: small, fast, and fixed by this package.
type splitmix64 uint64

func (s *splitmix64) next() uint64 {
	*s += 0x9e3779b97f4a7c15
	z := uint64(*s)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func (s *splitmix64) float64() float64 { return float64(s.next()>>11) / (1 << 53) }

func (m *HST) Spec() Spec     { return m.spec }
func (m *HST) Task() Task     { return Anomaly }
func (m *HST) Updates() int64 { return m.updates }

func (m *HST) Reset() {
	clear(m.mass)
	m.counter = 0
	m.firstWindow = true
	m.updates = 0
}

// child returns the child of internal node i of tree t (base offset) that x goes to.
func (m *HST) child(base, i int, x Vector) int {
	f, t := m.feature[base+i], m.threshold[base+i]
	v := 0.0
	for _, e := range x {
		if e.Index == f && finite(e.Value) {
			v = e.Value
			break
		}
	}
	if v < t {
		return 2*i + 1
	}
	return 2*i + 2
}

// Predict returns the anomaly score in [0, 1] (higher: more anomalous) and class 0; (0, -1)
// during the first window.
func (m *HST) Predict(x Vector, _ []float64) (float64, int) {
	if m.firstWindow {
		return 0, -1
	}
	limit := 0.1 * float64(m.spec.WindowSize)
	score := 0.0
	for t := 0; t < m.spec.Trees; t++ {
		base, mb := t*m.internal, 2*t*m.nodes
		i, pow := 0, 1.0
		for d := 0; ; d++ {
			r := m.mass[mb+2*i]
			score += r * pow
			if r < limit || d == m.spec.Height {
				break
			}
			i = m.child(base, i, x)
			pow *= 2
		}
	}
	top := float64(m.spec.Trees) * float64(m.spec.WindowSize) * float64(m.nodes)
	return 1 - score/top, 0
}

// Learn counts x along its path in every tree; y is ignored. Every WindowSize examples the
// current window becomes the reference.
func (m *HST) Learn(x Vector, _ float64) {
	for t := 0; t < m.spec.Trees; t++ {
		base, mb := t*m.internal, 2*t*m.nodes
		i := 0
		for d := 0; ; d++ {
			m.mass[mb+2*i+1]++
			if d == m.spec.Height {
				break
			}
			i = m.child(base, i, x)
		}
	}
	m.updates++
	m.counter++
	if m.counter == m.spec.WindowSize {
		for k := 0; k < len(m.mass); k += 2 {
			m.mass[k], m.mass[k+1] = m.mass[k+1], 0
		}
		m.firstWindow = false
		m.counter = 0
	}
}

func (m *HST) AppendState(dst []byte) []byte {
	dst = wire.AppendHeader(dst, magicHST, versionHST)
	dst = appendSpec(dst, m.spec)
	dst = wire.AppendVarint(dst, m.updates)
	dst = wire.AppendVarint(dst, int64(m.counter))
	dst = wire.AppendBool(dst, m.firstWindow)
	return appendSparsePairs(dst, m.mass)
}

func (m *HST) DecodeState(b []byte) error {
	r := wire.NewReader(b)
	r.Header(magicHST, "hst")
	s := readSpecOf[HSTSpec](r, "hst")
	updates := r.Int("hst updates", 0, math.MaxInt64)
	if r.Err() != nil {
		return r.Err()
	}
	counter := int(r.Int("hst counter", 0, int64(s.WindowSize-1)))
	first := r.Bool()
	size := s.Trees * (1<<(s.Height+1) - 1)
	idx, vals := readSparsePairs(r, size, "hst")
	for _, v := range vals {
		if r.Err() == nil && !(v >= 0 && v <= float64(s.WindowSize)) {
			r.Fail("hst: mass %v outside [0, %d]", v, s.WindowSize)
		}
	}
	if err := r.End("hst"); err != nil {
		return err
	}
	d := &HST{}
	if m.spec == s {
		*d = *m // the same trees: keep them rather than draw them again
	} else {
		d.setSpec(s)
	}
	d.mass = fillPairs(d.mass, size, idx, vals)
	d.counter, d.firstWindow, d.updates = counter, first, updates
	*m = *d
	return nil
}

// Merge sets every mass to the weighted mean of the replicas' (their trees are the same, since
// the spec fixes them); the window position is the heaviest replica's.
func (m *HST) Merge(replicas []Learner, weights []float64) error {
	rs, a, err := mergeWeights(m, replicas, weights, func(x, y *HST) bool { return x.spec == y.spec })
	if err != nil {
		return err
	}
	best := 0
	for i := range a {
		if a[i] > a[best] {
			best = i
		}
	}
	counter, first := rs[best].counter, rs[best].firstWindow
	srcs := make([][]float64, len(rs))
	for i, r := range rs {
		srcs[i] = r.mass
	}
	averageInto(m.mass, srcs, a)
	m.counter, m.firstWindow, m.updates = counter, first, maxUpdates(rs)
	return nil
}
