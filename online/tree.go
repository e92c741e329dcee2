package online

import (
	"fmt"
	"math"
	"slices"

	"github.com/streamd/streamd/online/internal/wire"
)

// Tree is a Hoeffding tree (VFDT, Domingos and Hulten 2000) for
// classification over numeric features, after River's
// HoeffdingTreeClassifier: each leaf keeps, per feature and class, a Gaussian
// estimate of the feature's values; every GracePeriod examples a leaf scores
// ten candidate thresholds per feature by information gain and splits on the
// best one when the Hoeffding bound says it beats the runner-up (or the
// "no split" option) with confidence 1-Delta, or when the bound falls below
// Tau. Leaves predict with the majority class or with naive Bayes, whichever
// has been right more often at that leaf (River's "nba").
//
// Vectors are sparse, so an absent feature has the value 0: a leaf tracks
// only the non-zero values of a feature and accounts for the zeros from its
// class counts. The estimates equal those of a learner that saw every zero,
// at a cost proportional to the non-zero features.
//
// Split decisions follow River's (version 0.26.1, compared in
// docs/BENCHMARKS.md): the pre-split distribution and the Hoeffding bound's
// count include the class counts a leaf inherited from its parent; a leaf
// whose majority class holds more than maxShareToSplit of them is not split;
// the "no split" option only wins when no feature has a valid split (River's
// null split has merit -Inf), and when it wins the leaf restarts its feature
// statistics — River deactivates the leaf and its memory manager at once
// reactivates it with empty observers, which is what lets an old leaf's naive
// Bayes follow a concept that changed. Ties between the majority class and
// naive Bayes go to naive Bayes, as in River. Depth is bounded (MaxDepth),
// which River leaves unbounded.
type Tree struct {
	spec    TreeSpec
	classes int
	root    *treeNode
	updates int64
	votes   []float64 // scratch, len classes
	nodes   int
	// maxFeatures > 0 makes every leaf track only that many features, drawn with rng from those
	// of the first example it learns (the adaptive random forest's trees, River's
	// BaseTreeClassifier); 0 tracks every feature. Both are set by the forest, not by the spec.
	maxFeatures int
	rng         *splitmix64
	// split scratch: candidate, feature-best and overall-best distributions
	lhs, rhs, fl, fr, bl, br []float64
}

type treeNode struct {
	// Split nodes: x[feature] <= threshold goes left.
	feature     uint32
	threshold   float64
	left, right *treeNode
	leaf        *treeLeaf // nil for split nodes
	depth       int
}

type treeLeaf struct {
	prior []float64 // class counts inherited from the split that made the leaf
	seen  []float64 // class counts of the examples learned at this leaf
	// obs are the class counts of the examples the feature statistics hold: seen, less what
	// came before the last restart of the statistics (see attemptSplit).
	obs         []float64
	lastAttempt float64 // sum of seen at the last split attempt
	mcCorrect   float64
	nbCorrect   float64
	// keys is sorted so that every sum over features runs in one order and
	// the state encodes canonically; stats[i] belongs to keys[i].
	keys  []uint32
	stats []gauss
	// subset is the sorted feature sample of a forest's leaf (nil: not drawn yet, or every feature).
	subset []uint32
}

// gauss holds, per class, the count, mean, sum of squared deviations, min
// and max of a feature's non-zero values.
type gauss []float64

const (
	gN = iota
	gMean
	gM2
	gMin
	gMax
	gFields
)

const (
	magicTree = 'T'
	// versionTree 1 had no obs (the statistics never restarted, so obs was seen); 2 writes them.
	versionTreeNoObs = 1
	versionTree      = 2
	nSplits          = 10   // candidate thresholds per feature, as River's GaussianSplitter
	minBranch        = 0.01 // a split must send more than this fraction to two branches
	maxShareToSplit  = 0.99 // River's max_share_to_split
)

// KindHoeffdingTree is a Hoeffding tree classifier (TreeSpec, Tree).
const KindHoeffdingTree = "hoeffding_tree"

var treeKind = &kindInfo{
	name: KindHoeffdingTree, code: 5,
	zero: func() Spec { return TreeSpec{} },
	read: func(r *wire.Reader) Spec {
		v := readV1Spec(r)
		return TreeSpec{Dim: v.Dim, Classes: v.Classes, GracePeriod: v.GracePeriod, Delta: v.Delta, Tau: v.Tau, MaxDepth: v.MaxDepth}
	},
}

// TreeSpec configures hoeffding_tree: GracePeriod examples at a leaf between split attempts
// (default 200), Delta the split confidence (default 1e-7), Tau the tie threshold (default 0.05),
// MaxDepth (default 20, at most 64). These are River's defaults except MaxDepth, which River leaves
// unbounded; a bound keeps state size and decode recursion bounded.
type TreeSpec struct {
	// Dim is the size of the feature space (hash buckets). Default 1<<18, at most MaxDim.
	Dim int `yaml:"dim"`
	// Classes is the number of classes (default 2, at most MaxClasses).
	Classes     int     `yaml:"classes"`
	GracePeriod int     `yaml:"grace_period"`
	Delta       float64 `yaml:"delta"`
	Tau         float64 `yaml:"tau"`
	MaxDepth    int     `yaml:"max_depth"`
}

func (s TreeSpec) Kind() string              { return KindHoeffdingTree }
func (s TreeSpec) InputDim() int             { return s.Dim }
func (s TreeSpec) WithInputDim(dim int) Spec { s.Dim = dim; return s }
func (s TreeSpec) newLearner() Learner       { return newTree(s) }
func (s TreeSpec) appendParams(dst []byte) []byte {
	return v1Spec{Dim: s.Dim, Classes: s.Classes, GracePeriod: s.GracePeriod, Delta: s.Delta, Tau: s.Tau, MaxDepth: s.MaxDepth}.append(dst)
}

func (s TreeSpec) Task() Task {
	if s.Classes > 2 {
		return Multiclass
	}
	return Binary
}

func (s TreeSpec) WithDefaults() Spec {
	defInt(&s.Dim, DefaultDim)
	defInt(&s.Classes, 2)
	defInt(&s.GracePeriod, 200)
	def(&s.Delta, 1e-7)
	def(&s.Tau, 0.05)
	defInt(&s.MaxDepth, 20)
	return s
}

func (s TreeSpec) Validate() error {
	var c specCheck
	c.dim(s.Dim)
	if s.Classes < 2 || s.Classes > MaxClasses {
		c.bad("classes", s.Classes, fmt.Sprintf("in [2, %d]", MaxClasses))
	}
	if s.GracePeriod < 1 {
		c.bad("grace_period", s.GracePeriod, ">= 1")
	}
	if !(s.Delta > 0 && s.Delta < 1) {
		c.bad("delta", s.Delta, "in (0, 1)")
	}
	if !(s.Tau >= 0 && s.Tau <= 1) {
		c.bad("tau", s.Tau, "in [0, 1]")
	}
	if s.MaxDepth < 1 || s.MaxDepth > MaxDepth {
		c.bad("max_depth", s.MaxDepth, fmt.Sprintf("in [1, %d]", MaxDepth))
	}
	return c.err()
}

func newTree(s TreeSpec) *Tree {
	m := &Tree{}
	m.setSpec(s)
	m.Reset()
	return m
}

func (m *Tree) setSpec(s TreeSpec) {
	m.spec = s
	m.classes = s.Classes
	m.votes = make([]float64, s.Classes)
	m.lhs, m.rhs = make([]float64, s.Classes), make([]float64, s.Classes)
	m.fl, m.fr = make([]float64, s.Classes), make([]float64, s.Classes)
	m.bl, m.br = make([]float64, s.Classes), make([]float64, s.Classes)
}

func (m *Tree) newLeaf(depth int, prior []float64) *treeNode {
	l := &treeLeaf{prior: make([]float64, m.classes), seen: make([]float64, m.classes), obs: make([]float64, m.classes)}
	copy(l.prior, prior)
	m.nodes++
	return &treeNode{leaf: l, depth: depth}
}

func (m *Tree) Spec() Spec     { return m.spec }
func (m *Tree) Updates() int64 { return m.updates }
func (m *Tree) Task() Task {
	if m.classes > 2 {
		return Multiclass
	}
	return Binary
}

func (m *Tree) Reset() {
	m.nodes = 0
	m.root = m.newLeaf(0, nil)
	m.updates = 0
}

// Nodes returns the number of nodes (splits and leaves).
func (m *Tree) Nodes() int { return m.nodes }

func (m *Tree) sort(x Vector) *treeNode {
	n := m.root
	for n.leaf == nil {
		v := 0.0
		for _, f := range x {
			if f.Index == n.feature && finite(f.Value) {
				v = f.Value
				break
			}
		}
		if v <= n.threshold {
			n = n.left
		} else {
			n = n.right
		}
	}
	return n
}

func (m *Tree) Predict(x Vector, probs []float64) (float64, int) {
	if len(probs) < m.classes {
		probs = m.votes
	}
	probs = probs[:m.classes]
	l := m.sort(x).leaf
	if l.mcCorrect > l.nbCorrect {
		m.majority(l, probs)
	} else {
		m.naiveBayes(l, x, probs)
	}
	return decide(probs)
}

// decide turns class probabilities into a classifier's prediction: P(1) and whether it reaches
// 0.5 for two classes, the most probable class (the first on ties) and its probability otherwise.
func decide(probs []float64) (float64, int) {
	if len(probs) == 2 {
		if probs[1] >= 0.5 {
			return probs[1], 1
		}
		return probs[1], 0
	}
	best := 0
	for k := range probs {
		if probs[k] > probs[best] {
			best = k
		}
	}
	return probs[best], best
}

func (m *Tree) majority(l *treeLeaf, p []float64) int {
	sum := 0.0
	for k := range p {
		p[k] = l.prior[k] + l.seen[k]
		sum += p[k]
	}
	best := 0
	for k := range p {
		if sum > 0 {
			p[k] /= sum
		} else {
			p[k] = 1 / float64(len(p))
		}
		if p[k] > p[best] {
			best = k
		}
	}
	return best
}

// value returns x's value for feature key (0 if absent).
func value(x Vector, key uint32, dim uint32) float64 {
	for _, f := range x {
		if f.Index == key && finite(f.Value) {
			return f.Value
		}
	}
	return 0
}

// full returns class c's count, mean and sample variance of a feature,
// counting the implicit zeros: the examples the leaf saw without it.
func full(g gauss, c int, seen float64) (n, mean, variance float64) {
	o := c * gFields
	np := g[o+gN]
	if seen < np {
		seen = np
	}
	if seen == 0 {
		return 0, 0, 0
	}
	zeros := seen - np
	mean = g[o+gMean] * np / seen
	// Chan et al.'s pairwise update with a group of zeros (mean 0, M2 0).
	m2 := g[o+gM2] + g[o+gMean]*g[o+gMean]*np*zeros/seen
	if seen > 1 {
		variance = m2 / (seen - 1)
	}
	return seen, mean, variance
}

func (m *Tree) naiveBayes(l *treeLeaf, x Vector, p []float64) int {
	total := 0.0
	for k := range p {
		total += l.prior[k] + l.seen[k]
	}
	if total == 0 {
		return m.majority(l, p)
	}
	dim := uint32(m.spec.Dim)
	for c := range p {
		w := l.prior[c] + l.seen[c]
		if w <= 0 {
			p[c] = math.Inf(-1)
			continue
		}
		v := math.Log(w / total)
		for i, key := range l.keys {
			n, mean, variance := full(l.stats[i], c, l.obs[c])
			if n <= 1 || variance <= 0 {
				continue // River's Gaussian has no density here and skips it
			}
			d := value(x, key, dim) - mean
			v += d*d/(-2*variance) - 0.5*math.Log(2*math.Pi*variance)
		}
		p[c] = v
	}
	best := 0
	for c := range p {
		if p[c] > p[best] {
			best = c
		}
	}
	mx := p[best]
	sum := 0.0
	for c := range p {
		p[c] = math.Exp(p[c] - mx)
		sum += p[c]
	}
	for c := range p {
		p[c] /= sum
	}
	return best
}

func (m *Tree) Learn(x Vector, y float64) {
	if !finite(y) || y < 0 || y >= float64(m.classes) || y != math.Trunc(y) {
		return
	}
	m.learnW(x, int(y), 1)
}

// learnW learns x, of class c, with weight w (the forest's Poisson draws; 1 otherwise). With w 1
// every sum is what unweighted counting gives, bit for bit.
func (m *Tree) learnW(x Vector, c int, w float64) {
	node := m.sort(x)
	l := node.leaf
	p := m.votes
	total := sumAll(l)
	if total == 0 || m.majority(l, p) == c {
		l.mcCorrect += w
	}
	if total > 0 && m.naiveBayes(l, x, p) == c {
		l.nbCorrect += w
	}
	l.seen[c] += w
	l.obs[c] += w
	dim := uint32(m.spec.Dim)
	if m.maxFeatures > 0 && len(l.subset) == 0 {
		l.subset = sampleFeatures(m.rng, x, dim, m.maxFeatures)
	}
	for _, f := range x {
		if f.Index >= dim || !finite(f.Value) || f.Value == 0 {
			continue
		}
		if len(l.subset) > 0 {
			if _, ok := slices.BinarySearch(l.subset, f.Index); !ok {
				continue
			}
		}
		i, ok := slices.BinarySearch(l.keys, f.Index)
		if !ok {
			l.keys = slices.Insert(l.keys, i, f.Index)
			// A leaf that restarted its statistics reuses the arrays it dropped.
			var g gauss
			if n := len(l.stats); n < cap(l.stats) {
				g = l.stats[:n+1][n]
			}
			if g == nil {
				g = make(gauss, gFields*m.classes)
			} else {
				clear(g)
			}
			for k := 0; k < m.classes; k++ {
				g[k*gFields+gMin] = math.Inf(1)
				g[k*gFields+gMax] = math.Inf(-1)
			}
			l.stats = slices.Insert(l.stats, i, g)
		}
		g := l.stats[i][c*gFields : (c+1)*gFields]
		g[gN] += w
		d := f.Value - g[gMean]
		if w == 1 {
			g[gMean] += d / g[gN]
		} else {
			// River's (w/n)*d: the first value (w == n) lands exactly on x, so M2 stays >= 0.
			g[gMean] += w / g[gN] * d
		}
		g[gM2] += w * d * (f.Value - g[gMean])
		g[gMin] = min(g[gMin], f.Value)
		g[gMax] = max(g[gMax], f.Value)
	}
	m.updates++
	seen := 0.0
	for _, s := range l.seen {
		seen += s
	}
	if seen-l.lastAttempt >= float64(m.spec.GracePeriod) && node.depth < m.spec.MaxDepth {
		l.lastAttempt = seen
		m.attemptSplit(node)
	}
}

func sumAll(l *treeLeaf) float64 {
	s := 0.0
	for k := range l.seen {
		s += l.prior[k] + l.seen[k]
	}
	return s
}

func entropy(d []float64) float64 {
	sum, h := 0.0, 0.0
	for _, v := range d {
		if v > 0 {
			h -= v * math.Log2(v)
			sum += v
		}
	}
	if sum <= 0 {
		return 0
	}
	return (h + sum*math.Log2(sum)) / sum
}

type splitCand struct {
	merit     float64
	feature   uint32
	threshold float64
}

func (m *Tree) attemptSplit(node *treeNode) {
	l := node.leaf
	C := m.classes
	// River's pre-split distribution: inherited and own counts together.
	pre := m.votes
	total, top, present := 0.0, 0.0, 0
	for c := range pre {
		pre[c] = l.prior[c] + l.seen[c]
		total += pre[c]
		top = max(top, pre[c])
		if pre[c] > 0 {
			present++
		}
	}
	if present < 2 {
		return // pure
	}
	if top/total > maxShareToSplit {
		l.restartStats()
		return
	}
	preH := entropy(pre)
	best, second := splitCand{merit: math.Inf(-1), feature: math.MaxUint32}, math.Inf(-1)
	lhs, rhs := m.lhs, m.rhs
	for i, key := range l.keys {
		g := l.stats[i]
		lo, hi := math.Inf(1), math.Inf(-1)
		for c := 0; c < C; c++ {
			if l.obs[c] == 0 {
				continue
			}
			o := c * gFields
			cmin, cmax := g[o+gMin], g[o+gMax]
			if g[o+gN] < l.obs[c] { // implicit zeros
				cmin, cmax = min(cmin, 0), max(cmax, 0)
			}
			lo, hi = min(lo, cmin), max(hi, cmax)
		}
		if !(lo < hi) {
			continue
		}
		featBest := splitCand{merit: math.Inf(-1)}
		step := (hi - lo) / (nSplits + 1)
		for s := 1; s <= nSplits; s++ {
			t := lo + step*float64(s)
			if !(lo < t && t < hi) {
				continue
			}
			for c := 0; c < C; c++ {
				lhs[c], rhs[c] = 0, 0
				if l.obs[c] == 0 {
					continue
				}
				o := c * gFields
				cmin, cmax := g[o+gMin], g[o+gMax]
				if g[o+gN] < l.obs[c] {
					cmin, cmax = min(cmin, 0), max(cmax, 0)
				}
				n, mean, variance := full(g, c, l.obs[c])
				switch {
				case t < cmin:
					rhs[c] = n
				case t >= cmax:
					lhs[c] = n
				default:
					lhs[c] = n * normCDF(t, mean, math.Sqrt(variance))
					rhs[c] = n - lhs[c]
				}
			}
			merit := math.Inf(-1)
			if branches(lhs, rhs) >= 2 {
				nl, nr := sum(lhs), sum(rhs)
				merit = preH - (nl*entropy(lhs)+nr*entropy(rhs))/(nl+nr)
			}
			if merit > featBest.merit {
				featBest = splitCand{merit, key, t}
				copy(m.fl, lhs)
				copy(m.fr, rhs)
			}
		}
		if featBest.merit == math.Inf(-1) {
			continue
		}
		if featBest.merit > best.merit {
			second = best.merit
			best = featBest
			copy(m.bl, m.fl)
			copy(m.br, m.fr)
		} else {
			second = max(second, featBest.merit)
		}
	}
	if best.feature == math.MaxUint32 {
		// Only "no split" is left: River deactivates the leaf and reactivates it with empty
		// observers.
		l.restartStats()
		return
	}
	// With a single candidate the runner-up is "no split" at -Inf, and River splits.
	r := math.Log2(float64(max(present, 2)))
	eps := math.Sqrt(r * r * math.Log(1/m.spec.Delta) / (2 * total))
	if !(best.merit-second > eps || eps < m.spec.Tau) {
		return
	}
	node.leaf = nil
	node.feature, node.threshold = best.feature, best.threshold
	node.left = m.newLeaf(node.depth+1, m.bl)
	node.right = m.newLeaf(node.depth+1, m.br)
}

// restartStats forgets the leaf's feature statistics, keeping its class counts and the record of
// its two predictors.
func (l *treeLeaf) restartStats() {
	l.keys, l.stats = l.keys[:0], l.stats[:0]
	clear(l.obs)
}

func branches(lhs, rhs []float64) int {
	nl, nr := sum(lhs), sum(rhs)
	t := nl + nr
	k := 0
	if t > 0 && nl/t > minBranch {
		k++
	}
	if t > 0 && nr/t > minBranch {
		k++
	}
	return k
}

func sum(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s
}

func normCDF(x, mean, sd float64) float64 {
	if sd <= 0 {
		if x >= mean {
			return 1
		}
		return 0
	}
	return 0.5 * math.Erfc(-(x-mean)/(sd*math.Sqrt2))
}

func (m *Tree) AppendState(dst []byte) []byte {
	dst = wire.AppendHeader(dst, magicTree, versionTree)
	dst = appendSpec(dst, m.spec)
	return m.appendBody(dst)
}

// appendBody is the state after the header and spec, what a forest writes of each of its trees.
func (m *Tree) appendBody(dst []byte) []byte {
	dst = wire.AppendVarint(dst, m.updates)
	return m.appendNode(dst, m.root)
}

func (m *Tree) appendNode(dst []byte, n *treeNode) []byte {
	if n.leaf == nil {
		dst = append(dst, 0)
		dst = wire.AppendUvarint(dst, uint64(n.feature))
		dst = wire.AppendFloat(dst, n.threshold)
		dst = m.appendNode(dst, n.left)
		return m.appendNode(dst, n.right)
	}
	l := n.leaf
	dst = append(dst, 1)
	for _, v := range l.prior {
		dst = wire.AppendFloat(dst, v)
	}
	for _, v := range l.seen {
		dst = wire.AppendFloat(dst, v)
	}
	for _, v := range l.obs {
		dst = wire.AppendFloat(dst, v)
	}
	dst = wire.AppendFloat(dst, l.lastAttempt)
	dst = wire.AppendFloat(dst, l.mcCorrect)
	dst = wire.AppendFloat(dst, l.nbCorrect)
	if m.maxFeatures > 0 { // only a forest's trees have subsets
		dst = wire.AppendBool(dst, len(l.subset) > 0)
		if len(l.subset) > 0 {
			dst = appendKeys(dst, l.subset)
		}
	}
	dst = wire.AppendUvarint(dst, uint64(len(l.keys)))
	prev := -1
	for i, k := range l.keys {
		dst = wire.AppendUvarint(dst, uint64(int(k)-prev-1))
		prev = int(k)
		for _, v := range l.stats[i] {
			dst = wire.AppendFloat(dst, v)
		}
	}
	return dst
}

func (m *Tree) DecodeState(b []byte) error {
	r := wire.NewReader(b)
	version := r.Header(magicTree, "tree")
	if r.Err() == nil && version != versionTree && version != versionTreeNoObs {
		r.Fail("tree: version %d", version)
	}
	s := readSpecOf[TreeSpec](r, "tree")
	if r.Err() != nil {
		return r.Err()
	}
	d := &Tree{}
	d.setSpec(s)
	d.readBody(r, version)
	if err := r.End("tree"); err != nil {
		return err
	}
	*m = *d
	return nil
}

// readBody reads what appendBody wrote into a tree whose spec (and forest fields) are set.
func (m *Tree) readBody(r *wire.Reader, version byte) {
	m.updates = r.Int("tree updates", 0, math.MaxInt64)
	if r.Err() != nil {
		return
	}
	m.nodes = 0
	m.root = m.readNode(r, 0, version)
}

// readNode recurses at most MaxDepth deep: the depth bound is what keeps
// garbage from exhausting the stack.
func (m *Tree) readNode(r *wire.Reader, depth int, version byte) *treeNode {
	if r.Err() != nil {
		return nil
	}
	isLeaf := r.Bool()
	if r.Err() != nil {
		return nil
	}
	m.nodes++
	if !isLeaf {
		if depth >= m.spec.MaxDepth {
			r.Fail("tree: split below max depth %d", m.spec.MaxDepth)
			return nil
		}
		f := r.Uvarint()
		if r.Err() == nil && f >= uint64(m.spec.Dim) {
			r.Fail("tree: split feature %d >= dim", f)
		}
		t := r.Finite("tree threshold")
		left := m.readNode(r, depth+1, version)
		right := m.readNode(r, depth+1, version)
		return &treeNode{feature: uint32(f), threshold: t, left: left, right: right, depth: depth}
	}
	C := m.classes
	l := &treeLeaf{}
	l.prior = readNonNegs(r, C, "tree prior")
	l.seen = readNonNegs(r, C, "tree seen")
	if version == versionTreeNoObs {
		l.obs = append([]float64(nil), l.seen...)
	} else {
		l.obs = readNonNegs(r, C, "tree obs")
		for c := range l.obs {
			if r.Err() == nil && l.obs[c] > l.seen[c] {
				r.Fail("tree: obs[%d] %v above seen %v", c, l.obs[c], l.seen[c])
			}
		}
	}
	l.lastAttempt = r.NonNeg("tree last attempt")
	l.mcCorrect = r.NonNeg("tree mc correct")
	l.nbCorrect = r.NonNeg("tree nb correct")
	if m.maxFeatures > 0 && r.Bool() {
		l.subset = readKeys(r, uint32(m.spec.Dim), "tree subset", 1)
		if r.Err() == nil && (len(l.subset) == 0 || len(l.subset) > m.maxFeatures) {
			r.Fail("tree: subset of %d features", len(l.subset))
		}
	}
	nk := r.Count("tree features", m.spec.Dim, 1+8*gFields*C)
	if r.Err() != nil {
		return nil
	}
	l.keys = make([]uint32, nk)
	l.stats = make([]gauss, nk)
	prev := -1
	for i := 0; i < nk && r.Err() == nil; i++ {
		dd := r.Uvarint()
		if r.Err() == nil && dd >= uint64(m.spec.Dim-prev-1) {
			r.Fail("tree: feature past dim")
		}
		prev += int(dd) + 1
		l.keys[i] = uint32(prev)
		g := make(gauss, gFields*C)
		for c := 0; c < C; c++ {
			o := c * gFields
			g[o+gN] = r.NonNeg("tree n")
			g[o+gMean] = r.Finite("tree mean")
			g[o+gM2] = r.NonNeg("tree m2")
			// min and max are ±Inf while a class has no value yet.
			g[o+gMin], g[o+gMax] = r.Float(), r.Float()
			if r.Err() == nil && (math.IsNaN(g[o+gMin]) || math.IsNaN(g[o+gMax])) {
				r.Fail("tree: NaN bound")
			}
		}
		l.stats[i] = g
	}
	return &treeNode{leaf: l, depth: depth}
}

func readNonNegs(r *wire.Reader, n int, name string) []float64 {
	if r.Err() != nil {
		return nil
	}
	if r.Len() < 8*n {
		r.Fail("%s: truncated", name)
		return nil
	}
	v := make([]float64, n)
	for i := range v {
		v[i] = r.NonNeg(name)
	}
	return v
}

// Merge keeps the replica with the largest merge weight (the first on
// ties): two trees' structures differ, and averaging their leaf statistics
// would describe neither tree's partition of the feature space. Merging
// therefore only spreads the best-informed replica to the others.
func (m *Tree) Merge(replicas []Learner, weights []float64) error {
	return mergeKeepHeaviest(m, replicas, weights, func(x, y *Tree) bool { return x.spec.Dim == y.spec.Dim && x.spec.Classes == y.spec.Classes })
}

// mergeKeepHeaviest is the merge of the learners whose state cannot be averaged (trees, forests):
// the receiver becomes the replica with the largest merge weight (the first on ties), byte for
// byte.
func mergeKeepHeaviest[T Learner](m T, replicas []Learner, weights []float64, same func(a, b T) bool) error {
	rs, a, err := mergeWeights(m, replicas, weights, same)
	if err != nil {
		return err
	}
	best := 0
	for i := range a {
		if a[i] > a[best] {
			best = i
		}
	}
	if any(rs[best]) == any(m) {
		return nil
	}
	return m.DecodeState(rs[best].AppendState(nil))
}
