package online

import (
	"fmt"
	"math"
	"slices"

	"github.com/streamd/streamd/online/internal/wire"
)

// TreeRegressor is a Hoeffding tree regressor (Ikonomovska et al.'s FIMT without drift handling),
// after River's HoeffdingTreeRegressor at its defaults: every leaf keeps the running mean and
// variance of the target (River's stats.Var) and, per feature, the target's statistics per
// distinct feature value rounded to Digits decimals (River's TEBSTSplitter: a truncated extended
// binary search tree). Every GracePeriod examples a leaf scores a split at every distinct value of
// every feature by variance reduction (both sides need MinSamplesSplit examples) and splits on the
// best one when the runner-up's merit is below 1-ε of the best's (ε the Hoeffding bound of a
// merit range of 1 with confidence 1-Delta) or when ε falls below Tau. Leaves predict with the
// target mean or with a linear model learnt by SGD at the leaf (River's LinearRegression: squared
// loss, learning rate 0.01 for weights and intercept), whichever has the lower exponentially
// decayed squared error ("adaptive", River's default); a new leaf starts from its parent's linear
// model and errors.
//
// As in River, a leaf's target statistics include those its parent's split handed it, while its
// feature statistics hold only the examples it learnt itself, so that the right side of every
// candidate split is the leaf's statistics less the left side's. The split search is exact over
// the distinct rounded values, in ascending order (River's in-order walk of its E-BST); River's
// E-BST memory management, which prunes candidates after a failed attempt and leaves later
// candidates in a pruned range with partial statistics, is not reproduced (docs/BENCHMARKS.md
// measures the difference).
//
// Vectors are sparse and an absent feature is 0: a leaf stores the statistics of a feature's
// non-zero values only, and those of its zeros are the leaf's own statistics less them.
type TreeRegressor struct {
	spec TreeRegressorSpec
	t    regTree
}

// regTree is the regression tree shared by TreeRegressor and the adaptive random forest's trees
// (which learn weighted examples and split on a random subset of features per leaf).
type regTree struct {
	dim             uint32
	gracePeriod     float64
	delta, tau      float64
	maxDepth        int
	mode            byte // leafAdaptive, leafMean, leafModel
	lr, decay       float64
	minSamplesSplit float64
	digits          int // < 0: values are not rounded
	maxValues       int // distinct values kept per feature and leaf
	// maxFeatures > 0 makes every leaf sample that many of the features of the first example it
	// learns, with rng, and track only them (ARF); 0 tracks every feature.
	maxFeatures int
	rng         *splitmix64

	root    *regNode
	nodes   int
	updates int64
	// split scratch
	zero regBucket
}

type regNode struct {
	feature     uint32
	threshold   float64
	left, right *regNode
	leaf        *regLeaf
	depth       int
}

// varStat is River's stats.Var: a weight, a mean and the sum of squared deviations.
type varStat struct{ n, mean, s float64 }

func (v *varStat) update(x, w float64) {
	old := v.mean
	v.n += w
	v.mean += w / v.n * (x - old)
	v.s += w * (x - old) * (x - v.mean)
}

// add is River's Var.__iadd__ (Chan et al.'s pairwise combination).
func (v *varStat) add(o varStat) {
	if o.n == 0 {
		return
	}
	n := v.n + o.n
	s := v.s + o.s + (v.mean-o.mean)*(v.mean-o.mean)*v.n*o.n/n
	v.mean = (v.n*v.mean + o.n*o.mean) / n
	v.n, v.s = n, s
}

// sub is River's Var.__isub__.
func (v *varStat) sub(o varStat) {
	n := v.n - o.n
	if n > 0 {
		v.mean = (v.n*v.mean - o.n*o.mean) / n
	} else {
		n, v.mean = 0, 0
	}
	v.n = n
	v.s = v.s - o.s - (v.mean-o.mean)*(v.mean-o.mean)*n*o.n/(n+o.n)
}

// variance is the sample variance (River's Var.get, ddof 1).
func (v varStat) variance() float64 {
	if v.n > 1 {
		return v.s / (v.n - 1)
	}
	return 0
}

type regBucket struct {
	value float64
	st    varStat
}

type regLeaf struct {
	stats     varStat // inherited and own: what the leaf predicts and splits
	own       varStat // the examples learnt here: what the feature statistics hold
	last      float64 // stats.n at the last split attempt
	fmseMean  float64
	fmseModel float64
	// the leaf's linear model: sorted keys, weights beside them, intercept
	wKeys     []uint32
	wVals     []float64
	intercept float64
	// subset is the sorted feature sample of an ARF leaf (nil: not drawn yet, or every feature)
	subset []uint32
	// keys is sorted; obs[i] holds the non-zero values of feature keys[i], ascending.
	keys []uint32
	obs  [][]regBucket
}

const (
	leafAdaptive byte = iota
	leafMean
	leafModel
)

var leafModes = []string{"adaptive", "mean", "model"}

const (
	magicTreeReg   = 'R'
	versionTreeReg = 1
	clipGradient   = 1e12 // River's LinearRegression clip_gradient
)

// KindTreeRegressor is a Hoeffding tree regressor (TreeRegressorSpec, TreeRegressor).
const KindTreeRegressor = "hoeffding_tree_regressor"

var treeRegKind = &kindInfo{
	name: KindTreeRegressor, code: 20,
	zero: func() Spec { return TreeRegressorSpec{} },
	read: func(r *wire.Reader) Spec { return readTreeRegressorSpec(r) },
}

// TreeRegressorSpec configures hoeffding_tree_regressor. The defaults are River's
// HoeffdingTreeRegressor's, except MaxDepth (River's is unbounded).
type TreeRegressorSpec struct {
	// Dim is the size of the feature space. Default 1<<18, at most MaxDim.
	Dim int `yaml:"dim"`
	// GracePeriod is the examples a leaf learns between split attempts (default 200).
	GracePeriod int `yaml:"grace_period"`
	// Delta is the split confidence (default 1e-7); Tau the tie threshold (default 0.05).
	Delta float64 `yaml:"delta"`
	Tau   float64 `yaml:"tau"`
	// MaxDepth bounds the depth (default 20, at most 64).
	MaxDepth int `yaml:"max_depth"`
	// LeafPrediction is "adaptive" (default), "mean" or "model".
	LeafPrediction string `yaml:"leaf_prediction"`
	// LearningRate is the SGD rate of the leaves' linear models (default 0.01).
	LearningRate float64 `yaml:"learning_rate"`
	// ModelSelectorDecay weighs the past squared errors of "adaptive" (default 0.95).
	ModelSelectorDecay float64 `yaml:"model_selector_decay"`
	// MinSamplesSplit is the examples each side of a split needs (default 5).
	MinSamplesSplit int `yaml:"min_samples_split"`
	// SplitDigits rounds feature values to that many decimals before they become candidate
	// thresholds (default 1, River's TEBSTSplitter); a negative value keeps them exact.
	SplitDigits int `yaml:"split_digits"`
	// MaxValues bounds the distinct values a leaf keeps per feature (default 1000, at most
	// MaxTreeValues): past it a new value joins the statistics of its nearest kept value, so a
	// leaf's memory stays bounded whatever the features' scale. River's bound is its tree's
	// memory budget instead.
	MaxValues int `yaml:"max_values"`
}

// MaxTreeValues bounds TreeRegressorSpec.MaxValues.
const MaxTreeValues = 1 << 16

func (s TreeRegressorSpec) Kind() string              { return KindTreeRegressor }
func (s TreeRegressorSpec) Task() Task                { return Regression }
func (s TreeRegressorSpec) InputDim() int             { return s.Dim }
func (s TreeRegressorSpec) WithInputDim(dim int) Spec { s.Dim = dim; return s }
func (s TreeRegressorSpec) newLearner() Learner       { return newTreeRegressor(s) }

func (s TreeRegressorSpec) appendParams(dst []byte) []byte {
	for _, v := range [...]int{s.Dim, s.GracePeriod, s.MaxDepth, s.MinSamplesSplit, s.SplitDigits, s.MaxValues} {
		dst = wire.AppendVarint(dst, int64(v))
	}
	dst = wire.AppendUvarint(dst, uint64(leafModeCode(s.LeafPrediction)))
	for _, f := range [...]float64{s.Delta, s.Tau, s.LearningRate, s.ModelSelectorDecay} {
		dst = wire.AppendFloat(dst, f)
	}
	return dst
}

func readTreeRegressorSpec(r *wire.Reader) TreeRegressorSpec {
	var s TreeRegressorSpec
	s.Dim = int(r.Int("spec dim", 1, MaxDim))
	s.GracePeriod = int(r.Int("spec grace_period", 1, math.MaxInt32))
	s.MaxDepth = int(r.Int("spec max_depth", 1, MaxDepth))
	s.MinSamplesSplit = int(r.Int("spec min_samples_split", 1, math.MaxInt32))
	s.SplitDigits = int(r.Int("spec split_digits", -1, maxSplitDigits))
	s.MaxValues = int(r.Int("spec max_values", 1, MaxTreeValues))
	m := r.Int("spec leaf_prediction", 0, int64(len(leafModes)-1))
	if r.Err() == nil {
		s.LeafPrediction = leafModes[m]
	}
	for _, f := range [...]*float64{&s.Delta, &s.Tau, &s.LearningRate, &s.ModelSelectorDecay} {
		*f = r.Float()
	}
	return s
}

const maxSplitDigits = 15

func leafModeCode(m string) byte {
	for i, n := range leafModes {
		if n == m {
			return byte(i)
		}
	}
	return 0
}

func (s TreeRegressorSpec) WithDefaults() Spec {
	defInt(&s.Dim, DefaultDim)
	defInt(&s.GracePeriod, 200)
	def(&s.Delta, 1e-7)
	def(&s.Tau, 0.05)
	defInt(&s.MaxDepth, 20)
	if s.LeafPrediction == "" {
		s.LeafPrediction = "adaptive"
	}
	def(&s.LearningRate, 0.01)
	def(&s.ModelSelectorDecay, 0.95)
	defInt(&s.MinSamplesSplit, 5)
	if s.SplitDigits == 0 {
		s.SplitDigits = 1
	} else if s.SplitDigits < 0 {
		s.SplitDigits = -1
	}
	defInt(&s.MaxValues, 1000)
	return s
}

func (s TreeRegressorSpec) Validate() error {
	var c specCheck
	c.dim(s.Dim)
	checkRegTree(&c, s.GracePeriod, s.Delta, s.Tau, s.MaxDepth, s.LeafPrediction, s.LearningRate, s.ModelSelectorDecay, s.MinSamplesSplit, s.SplitDigits)
	if s.MaxValues < 1 || s.MaxValues > MaxTreeValues {
		c.bad("max_values", s.MaxValues, fmt.Sprintf("in [1, %d]", MaxTreeValues))
	}
	return c.err()
}

func checkRegTree(c *specCheck, grace int, delta, tau float64, depth int, mode string, lr, decay float64, mss, digits int) {
	if grace < 1 {
		c.bad("grace_period", grace, ">= 1")
	}
	if !(delta > 0 && delta < 1) {
		c.bad("delta", delta, "in (0, 1)")
	}
	if !(tau >= 0 && tau <= 1) {
		c.bad("tau", tau, "in [0, 1]")
	}
	if depth < 1 || depth > MaxDepth {
		c.bad("max_depth", depth, fmt.Sprintf("in [1, %d]", MaxDepth))
	}
	if !slices.Contains(leafModes, mode) {
		c.bad("leaf_prediction", mode, `"adaptive", "mean" or "model"`)
	}
	c.pos("learning_rate", lr)
	if !(decay > 0 && decay <= 1) {
		c.bad("model_selector_decay", decay, "in (0, 1]")
	}
	if mss < 1 {
		c.bad("min_samples_split", mss, ">= 1")
	}
	if digits < -1 || digits > maxSplitDigits {
		c.bad("split_digits", digits, fmt.Sprintf("in [1, %d], or negative for none", maxSplitDigits))
	}
}

func newTreeRegressor(s TreeRegressorSpec) *TreeRegressor {
	m := &TreeRegressor{spec: s}
	m.t.configure(s.Dim, s.GracePeriod, s.Delta, s.Tau, s.MaxDepth, s.LeafPrediction, s.LearningRate, s.ModelSelectorDecay, s.MinSamplesSplit, s.SplitDigits)
	m.t.maxValues = s.MaxValues
	m.t.reset()
	return m
}

func (t *regTree) configure(dim, grace int, delta, tau float64, depth int, mode string, lr, decay float64, mss, digits int) {
	t.dim = uint32(dim)
	t.gracePeriod = float64(grace)
	t.delta, t.tau = delta, tau
	t.maxDepth = depth
	t.mode = leafModeCode(mode)
	t.lr, t.decay = lr, decay
	t.minSamplesSplit = float64(mss)
	t.digits = digits
}

func (t *regTree) reset() {
	t.nodes = 1
	t.root = &regNode{leaf: &regLeaf{}}
	t.updates = 0
}

func (m *TreeRegressor) Spec() Spec     { return m.spec }
func (m *TreeRegressor) Task() Task     { return Regression }
func (m *TreeRegressor) Updates() int64 { return m.t.updates }
func (m *TreeRegressor) Reset()         { m.t.reset() }

// Nodes returns the number of nodes (splits and leaves).
func (m *TreeRegressor) Nodes() int { return m.t.nodes }

func (m *TreeRegressor) Predict(x Vector, _ []float64) (float64, int) {
	return m.t.predict(x), 0
}

func (m *TreeRegressor) Learn(x Vector, y float64) {
	if !finite(y) {
		return
	}
	m.t.learn(x, y, 1)
}

func (t *regTree) sort(x Vector) *regNode {
	n := t.root
	for n.leaf == nil {
		if value(x, n.feature, t.dim) <= n.threshold {
			n = n.left
		} else {
			n = n.right
		}
	}
	return n
}

func (t *regTree) predict(x Vector) float64 {
	return t.leafPredict(t.sort(x).leaf, x)
}

func (t *regTree) leafPredict(l *regLeaf, x Vector) float64 {
	switch t.mode {
	case leafMean:
		return l.stats.mean
	case leafAdaptive:
		if l.fmseMean < l.fmseModel {
			return l.stats.mean
		}
	}
	return t.linear(l, x)
}

func (t *regTree) linear(l *regLeaf, x Vector) float64 {
	p := l.intercept
	for _, f := range x {
		if f.Index >= t.dim || !finite(f.Value) {
			continue
		}
		if i, ok := slices.BinarySearch(l.wKeys, f.Index); ok {
			p += l.wVals[i] * f.Value
		}
	}
	return p
}

// learn learns x with weight w (ARF's Poisson draws; 1 otherwise).
func (t *regTree) learn(x Vector, y, w float64) {
	node := t.sort(x)
	l := node.leaf
	if t.mode != leafMean {
		pm := t.linear(l, x)
		if t.mode == leafAdaptive {
			dm, dl := y-l.stats.mean, y-pm
			l.fmseMean = t.decay*l.fmseMean + dm*dm
			l.fmseModel = t.decay*l.fmseModel + dl*dl
		}
		t.learnLinear(l, x, y, w, pm) // the linear model reads nothing the rest changes
	}
	l.stats.update(y, w)
	l.own.update(y, w)
	t.updates++
	if node.depth >= t.maxDepth {
		return // such a leaf never splits: no feature statistics
	}
	if t.maxFeatures > 0 && len(l.subset) == 0 {
		l.subset = sampleFeatures(t.rng, x, t.dim, t.maxFeatures)
	}
	for _, f := range x {
		if f.Index >= t.dim || !finite(f.Value) || f.Value == 0 {
			continue
		}
		if len(l.subset) > 0 {
			if _, ok := slices.BinarySearch(l.subset, f.Index); !ok {
				continue
			}
		}
		v := f.Value
		if t.digits >= 0 {
			v = roundDecimal(v, t.digits)
			if v == 0 {
				continue // it joins the zeros
			}
		}
		i, ok := slices.BinarySearch(l.keys, f.Index)
		if !ok {
			l.keys = slices.Insert(l.keys, i, f.Index)
			l.obs = slices.Insert(l.obs, i, nil)
		}
		b := l.obs[i]
		j, ok := slices.BinarySearchFunc(b, v, func(e regBucket, v float64) int {
			switch {
			case e.value < v:
				return -1
			case e.value > v:
				return 1
			}
			return 0
		})
		if !ok {
			if len(b) < t.maxValues {
				b = slices.Insert(b, j, regBucket{value: v})
				l.obs[i] = b
			} else if j == len(b) || j > 0 && v-b[j-1].value < b[j].value-v {
				j-- // full: the nearest kept value takes it
			}
		}
		b[j].st.update(y, w)
	}
	if l.stats.n-l.last >= t.gracePeriod {
		l.last = l.stats.n
		t.attemptSplit(node)
	}
}

func (t *regTree) learnLinear(l *regLeaf, x Vector, y, w, p float64) {
	g := min(max(2*(p-y)*w, -clipGradient), clipGradient)
	l.intercept -= t.lr * g
	for _, f := range x {
		if f.Index >= t.dim || !finite(f.Value) || f.Value == 0 {
			continue
		}
		i, ok := slices.BinarySearch(l.wKeys, f.Index)
		if !ok {
			l.wKeys = slices.Insert(l.wKeys, i, f.Index)
			l.wVals = slices.Insert(l.wVals, i, 0)
		}
		l.wVals[i] -= t.lr * g * f.Value
	}
}

// roundDecimal rounds x to d decimals as Python's round(x, d) does: the decimal nearest to the
// exact binary value of x (ties to even), then the double nearest to that decimal.
func roundDecimal(x float64, d int) float64 {
	if !finite(x) || math.Abs(x) >= 1<<52/math.Pow10(d) {
		return x
	}
	s := math.Pow10(d)
	p := x * s
	e := math.FMA(x, s, -p) // x*s == p + e exactly
	f := math.Floor(p)
	switch c := (p - f - 0.5) + e; {
	case c > 0:
		f++
	case c == 0 && math.Mod(f, 2) != 0:
		f++
	}
	return f / s
}

// splitMerit is River's variance reduction: 0 unless both sides hold mss examples.
func splitMerit(pre, left, right varStat, mss float64) float64 {
	if left.n < mss || right.n < mss {
		return 0
	}
	return pre.variance() - left.n/pre.n*left.variance() - right.n/pre.n*right.variance()
}

func (t *regTree) attemptSplit(node *regNode) {
	l := node.leaf
	pre := l.stats
	// River's suggestions: the null split at -Inf, then the best of each feature; sorted stably,
	// the last maximum wins and the runner-up is the next.
	best, second := math.Inf(-1), math.Inf(-1)
	var bestFeature uint32
	var bestThreshold float64
	var bestLeft varStat
	found, suggestions := false, 1
	for i, key := range l.keys {
		b := l.obs[i]
		// The zeros: the leaf's own statistics less the feature's non-zero values.
		var nz varStat
		for _, e := range b {
			nz.add(e.st)
		}
		t.zero = regBucket{st: l.own}
		t.zero.st.sub(nz)
		if t.zero.st.n <= 0 {
			t.zero.st = varStat{}
		} else if t.zero.st.s < 0 {
			t.zero.st.s = 0
		}
		fm, ft := math.Inf(-1), 0.0
		var fl, left varStat
		zeroDone := t.zero.st.n == 0
		try := func(e regBucket) {
			left.add(e.st)
			right := pre
			right.sub(left)
			if m := splitMerit(pre, left, right, t.minSamplesSplit); m > fm {
				fm, ft, fl = m, e.value, left
			}
		}
		for _, e := range b {
			if !zeroDone && e.value > 0 {
				try(t.zero)
				zeroDone = true
			}
			try(e)
		}
		if !zeroDone {
			try(t.zero)
		}
		if fm == math.Inf(-1) {
			continue
		}
		suggestions++
		if fm >= best {
			second, best = best, fm
			bestFeature, bestThreshold, bestLeft, found = key, ft, fl, true
		} else if fm > second {
			second = fm
		}
	}
	if suggestions < 2 || !found || !(best > 0) {
		return
	}
	eps := math.Sqrt(math.Log(1/t.delta) / (2 * pre.n))
	if !(second/best < 1-eps || eps < t.tau) {
		return
	}
	right := pre
	right.sub(bestLeft)
	node.leaf = nil
	node.feature, node.threshold = bestFeature, bestThreshold
	node.left = t.child(l, bestLeft, node.depth+1)
	node.right = t.child(l, right, node.depth+1)
	t.nodes += 2
}

// child is a new leaf under parent's split with the statistics st: it starts from the parent's
// linear model and errors, as River's do.
func (t *regTree) child(parent *regLeaf, st varStat, depth int) *regNode {
	l := &regLeaf{stats: st, last: st.n, fmseMean: parent.fmseMean, fmseModel: parent.fmseModel, intercept: parent.intercept}
	l.wKeys = slices.Clone(parent.wKeys)
	l.wVals = slices.Clone(parent.wVals)
	return &regNode{leaf: l, depth: depth}
}

func (m *TreeRegressor) AppendState(dst []byte) []byte {
	dst = wire.AppendHeader(dst, magicTreeReg, versionTreeReg)
	dst = appendSpec(dst, m.spec)
	return m.t.appendState(dst)
}

func (t *regTree) appendState(dst []byte) []byte {
	dst = wire.AppendVarint(dst, t.updates)
	return t.appendNode(dst, t.root)
}

func appendVar(dst []byte, v varStat) []byte {
	dst = wire.AppendFloat(dst, v.n)
	dst = wire.AppendFloat(dst, v.mean)
	return wire.AppendFloat(dst, v.s)
}

func appendKeys(dst []byte, keys []uint32) []byte {
	dst = wire.AppendUvarint(dst, uint64(len(keys)))
	prev := -1
	for _, k := range keys {
		dst = wire.AppendUvarint(dst, uint64(int(k)-prev-1))
		prev = int(k)
	}
	return dst
}

func (t *regTree) appendNode(dst []byte, n *regNode) []byte {
	if n.leaf == nil {
		dst = append(dst, 0)
		dst = wire.AppendUvarint(dst, uint64(n.feature))
		dst = wire.AppendFloat(dst, n.threshold)
		dst = t.appendNode(dst, n.left)
		return t.appendNode(dst, n.right)
	}
	l := n.leaf
	dst = append(dst, 1)
	dst = appendVar(dst, l.stats)
	dst = appendVar(dst, l.own)
	for _, f := range [...]float64{l.last, l.fmseMean, l.fmseModel, l.intercept} {
		dst = wire.AppendFloat(dst, f)
	}
	dst = appendKeys(dst, l.wKeys)
	for _, v := range l.wVals {
		dst = wire.AppendFloat(dst, v)
	}
	dst = wire.AppendBool(dst, len(l.subset) > 0)
	if len(l.subset) > 0 {
		dst = appendKeys(dst, l.subset)
	}
	dst = appendKeys(dst, l.keys)
	for _, b := range l.obs {
		dst = wire.AppendUvarint(dst, uint64(len(b)))
		for _, e := range b {
			dst = wire.AppendFloat(dst, e.value)
			dst = appendVar(dst, e.st)
		}
	}
	return dst
}

func (m *TreeRegressor) DecodeState(b []byte) error {
	r := wire.NewReader(b)
	if v := r.Header(magicTreeReg, "tree regressor"); r.Err() == nil && v != versionTreeReg {
		r.Fail("tree regressor: version %d", v)
	}
	s := readSpecOf[TreeRegressorSpec](r, "tree regressor")
	if r.Err() != nil {
		return r.Err()
	}
	d := newTreeRegressor(s)
	d.t.readState(r)
	if err := r.End("tree regressor"); err != nil {
		return err
	}
	*m = *d
	return nil
}

func (t *regTree) readState(r *wire.Reader) {
	t.updates = r.Int("tree updates", 0, math.MaxInt64)
	t.nodes = 0
	t.root = t.readNode(r, 0)
}

// readVar reads a varStat. Its s may be slightly negative: a split's right side is the leaf's
// statistics less the left side's, and rounding leaves -1e-15 where the exact sum is 0 (River's
// too); it is kept as it is, so that a restored tree computes what the original does.
func readVar(r *wire.Reader, name string) varStat {
	return varStat{n: r.NonNeg(name + " n"), mean: r.Finite(name + " mean"), s: r.Finite(name + " s")}
}

// readKeys reads ascending keys below dim, each followed by at least minBytes bytes.
func readKeys(r *wire.Reader, dim uint32, name string, minBytes int) []uint32 {
	n := r.Count(name, int(dim), max(1, minBytes))
	if r.Err() != nil {
		return nil
	}
	keys := make([]uint32, n)
	prev := -1
	for i := range keys {
		d := r.Uvarint()
		if r.Err() != nil {
			return nil
		}
		if d >= uint64(int(dim)-prev-1) {
			r.Fail("%s: key past dim", name)
			return nil
		}
		prev += int(d) + 1
		keys[i] = uint32(prev)
	}
	return keys
}

// readNode recurses at most maxDepth deep, which bounds the stack whatever the input.
func (t *regTree) readNode(r *wire.Reader, depth int) *regNode {
	if r.Err() != nil {
		return nil
	}
	isLeaf := r.Bool()
	if r.Err() != nil {
		return nil
	}
	t.nodes++
	if !isLeaf {
		if depth >= t.maxDepth {
			r.Fail("tree: split below max depth %d", t.maxDepth)
			return nil
		}
		f := r.Uvarint()
		if r.Err() == nil && f >= uint64(t.dim) {
			r.Fail("tree: split feature %d >= dim", f)
		}
		th := r.Finite("tree threshold")
		left := t.readNode(r, depth+1)
		right := t.readNode(r, depth+1)
		return &regNode{feature: uint32(f), threshold: th, left: left, right: right, depth: depth}
	}
	l := &regLeaf{}
	l.stats = readVar(r, "tree stats")
	l.own = readVar(r, "tree own")
	if r.Err() == nil && l.own.n > l.stats.n {
		r.Fail("tree: own weight %v above %v", l.own.n, l.stats.n)
	}
	l.last = r.NonNeg("tree last attempt")
	l.fmseMean = r.NonNeg("tree fmse mean")
	l.fmseModel = r.NonNeg("tree fmse model")
	l.intercept = r.Finite("tree intercept")
	l.wKeys = readKeys(r, t.dim, "tree weights", 8)
	if r.Err() != nil {
		return nil
	}
	l.wVals = make([]float64, len(l.wKeys))
	for i := range l.wVals {
		l.wVals[i] = r.Finite("tree weight")
	}
	if r.Bool() {
		l.subset = readKeys(r, t.dim, "tree subset", 1)
		if r.Err() == nil && (t.maxFeatures == 0 || len(l.subset) == 0 || len(l.subset) > t.maxFeatures) {
			r.Fail("tree: subset of %d features", len(l.subset))
		}
	}
	l.keys = readKeys(r, t.dim, "tree features", 1)
	if r.Err() != nil {
		return nil
	}
	if depth >= t.maxDepth && len(l.keys) > 0 {
		r.Fail("tree: statistics at max depth")
		return nil
	}
	l.obs = make([][]regBucket, len(l.keys))
	for i := range l.obs {
		n := r.Count("tree values", t.maxValues, 32)
		if r.Err() != nil {
			return nil
		}
		b := make([]regBucket, n)
		for j := range b {
			b[j].value = r.Finite("tree value")
			b[j].st = readVar(r, "tree bucket")
			if r.Err() == nil && (b[j].value == 0 || j > 0 && !(b[j].value > b[j-1].value)) {
				r.Fail("tree: values not ascending and non-zero")
			}
		}
		if r.Err() == nil && n == 0 {
			r.Fail("tree: feature without values")
		}
		l.obs[i] = b
	}
	return &regNode{leaf: l, depth: depth}
}

// Merge keeps the replica with the largest merge weight (the first on ties), as Tree's does: two
// trees' partitions of the feature space differ, and averaging their leaves would describe
// neither.
func (m *TreeRegressor) Merge(replicas []Learner, weights []float64) error {
	return mergeKeepHeaviest(m, replicas, weights, func(x, y *TreeRegressor) bool { return x.spec == y.spec })
}

// sampleFeatures draws the feature subset of a new forest leaf: k of x's valid features without
// replacement (all of them when x has at most k), sorted, as River's BaseRandomLeaf draws from the
// first example's keys. The draw is a partial Fisher-Yates shuffle of the sorted keys with rng, so
// it depends on nothing but rng's state and x.
func sampleFeatures(rng *splitmix64, x Vector, dim uint32, k int) []uint32 {
	keys := make([]uint32, 0, len(x))
	for _, f := range x {
		if f.Index < dim && finite(f.Value) {
			keys = append(keys, f.Index)
		}
	}
	slices.Sort(keys)
	if len(keys) <= k {
		return keys
	}
	for i := 0; i < k; i++ {
		j := i + int(rng.next()%uint64(len(keys)-i))
		keys[i], keys[j] = keys[j], keys[i]
	}
	keys = keys[:k]
	slices.Sort(keys)
	return keys
}
