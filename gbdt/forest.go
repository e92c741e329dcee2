package gbdt

import (
	"fmt"
	"math"
)

// float is the arithmetic a forest computes in: float32 for XGBoost, float64 for LightGBM, so
// that every sum and product rounds exactly as the library's own does.
type float interface{ ~float32 | ~float64 }

// Node kinds. The common case, kindNumeric, is the one the traversal loop tests first.
const (
	kindLeaf uint8 = iota
	kindNumeric
	kindZeroMissing // LightGBM MissingType::Zero: 0 (after the zero threshold) and NaN take the default
	kindCategorical
	// kindNumericLE and kindZeroMissingLE compare x <= thr: LightGBM's threshold +Inf, whose
	// next float up does not exist (x <= +Inf holds for x = +Inf, x < +Inf does not).
	kindNumericLE
	kindZeroMissingLE
)

// node is one node of the flattened forest, 16 bytes for float32 (four to a cache line), 24 for
// float64. Children of a node are adjacent: the right child is always left+1, so a decision is an
// add (left + goRight) instead of a second load. A leaf points at itself (left is its own index,
// rmask 0), so that a walk of a fixed number of steps ends on it: that is what lets margins walk
// four trees in lock step without a leaf test per step.
type node[F float] struct {
	// thr is the split threshold, compared as x < thr (LightGBM's x <= t is stored as the next
	// float above t); +Inf for a leaf, whose value is in forest.value.
	thr F
	// left is the index of the left child in forest.nodes; a leaf's own index.
	left int32
	// feat is the index of the feature in the scorer's feature buffer (the model's feature order).
	feat uint32
	kind uint8
	// missRight is 1 when a missing value (NaN) goes right, missLeft its complement.
	missRight, missLeft uint8
	// rmask is 1 for an internal node, 0 for a leaf: the step adds goRight&rmask. (In a simple
	// forest on a row without NaN, a leaf's thr of +Inf already keeps the walk in place.)
	rmask uint8
}

// catSet is a categorical node's set of categories: words [off, off+n) of forest.bits, bit c%32 of
// word c/32 set for each category c in the set.
type catSet struct{ off, n uint32 }

// forest is a flattened tree ensemble.
type forest[F float] struct {
	nodes []node[F]
	// value is each leaf's value (0 for internal nodes).
	value []F
	// simple: every internal node is a plain numeric comparison that cannot tell +Inf from the
	// largest finite float (see finish), so Scorer.gather reads +Inf as that float, and on a row
	// without NaN a step is a bare x < thr.
	simple bool
	// cover is each node's cover, the weight of the training data that reached it (XGBoost:
	// sum_hessian; LightGBM: the data count), used by TreeSHAP.
	cover []F
	roots []int32 // root node of each tree
	group []int32 // output (class) of each tree
	// treeBias is each tree's expected value, the bias term TreeSHAP credits it with (XGBoost: the
	// root's node mean; LightGBM: Tree::ExpectedValue, summed in LightGBM's leaf order).
	treeBias []F
	bits     []uint32
	cats     []catSet
	// catOf is each node's index in cats (-1 for a node that is not categorical); nil when the
	// model has no categorical split.
	catOf []int32
	// inSetRight is 1 when a category in the set goes right (XGBoost), 0 when it goes left
	// (LightGBM). A category not in the set, or not a valid category, goes the other way.
	inSetRight int32
	// depth is each tree's depth; blockDepth the deepest of each block of four trees.
	depth      []int32
	blockDepth []int32
	// base is the margin each output starts from (XGBoost's base_score in margin space; zeros for
	// LightGBM, whose initial score is in the first trees' leaves).
	base []F
	// catLo < x < catHi is a valid category value; others take the "not in the set" branch.
	catLo, catHi F
	// zeroThreshold: inputs with |x| <= zeroThreshold are read as 0 (LightGBM drops them from a
	// row before predicting); 0 turns it off (XGBoost).
	zeroThreshold F
	// shapZeroCheck: skip path elements with a zero fraction of zero in UnwoundPathSum
	// (XGBoost does, LightGBM divides regardless).
	shapZeroCheck bool
	maxDepth      int
	nfeat         int
	outputs       int
}

// next returns the child of internal node i that x takes.
func (f *forest[F]) next(i int32, x F) int32 {
	n := &f.nodes[i]
	switch n.kind {
	case kindNumeric:
		if x != x {
			return n.left + int32(n.missRight)
		}
		if x < n.thr {
			return n.left
		}
		return n.left + 1
	case kindZeroMissing:
		if x != x || x == 0 {
			return n.left + int32(n.missRight)
		}
		if x < n.thr {
			return n.left
		}
		return n.left + 1
	case kindCategorical:
		return f.nextCategorical(i, x)
	default:
		if x != x || (n.kind == kindZeroMissingLE && x == 0) {
			return n.left + int32(n.missRight)
		}
		if x <= n.thr {
			return n.left
		}
		return n.left + 1
	}
}

func (f *forest[F]) nextCategorical(i int32, x F) int32 {
	n := &f.nodes[i]
	if x != x {
		return n.left + int32(n.missRight)
	}
	notIn := n.left + 1 - f.inSetRight
	if !(x > f.catLo && x < f.catHi) {
		return notIn
	}
	c := uint64(int64(x)) // truncation toward zero, as the libraries' casts; x > -1 here
	s := f.cats[f.catOf[i]]
	if w := c >> 5; w < uint64(s.n) && f.bits[uint64(s.off)+w]>>(c&31)&1 != 0 {
		return n.left + f.inSetRight
	}
	return notIn
}

// step moves one level down from node i (staying put on a leaf). The numeric case is written to
// compile without branches on the data: the comparison is a data-dependent coin flip, and a
// mispredicted branch per node would cost more than the rest of the step.
func (f *forest[F]) step(fv []F, i int32) int32 {
	n := &f.nodes[i]
	if n.kind > kindNumeric {
		return f.next(i, fv[n.feat])
	}
	x := fv[n.feat]
	// NaN compares false, so it goes right unless its default is left.
	goRight := (b2u(!(x < n.thr)) &^ (b2u(x != x) & n.missLeft)) & n.rmask
	return n.left + int32(goRight)
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// leaf returns the value of the leaf that fv reaches from the root of tree t.
func (f *forest[F]) leaf(fv []F, t int) F {
	i := f.roots[t]
	for d := f.depth[t]; d > 0; d-- {
		i = f.step(fv, i)
	}
	return f.value[i]
}

// margins adds every tree's leaf to acc, which starts at base, in tree order: the libraries sum
// the same way, so float32 sums round identically. Trees are walked four at a time in lock step,
// which gives the processor four independent chains of loads to overlap; a row without a missing
// value (the common case, which the caller knows) skips the NaN arithmetic of every step. The
// step is written out by hand: the compiler does not inline a generic method into generic code.
func (f *forest[F]) margins(fv []F, acc []F, hasNaN bool) {
	copy(acc, f.base)
	roots, nodes, value := f.roots, f.nodes, f.value
	fast := f.simple && !hasNaN
	b0 := 0
	if fast && f.outputs == 1 {
		// Eight trees at a time: on a simple forest the step is short enough that more chains
		// in flight pay.
		for ; b0+2 <= len(f.blockDepth); b0 += 2 {
			r := roots[4*b0 : 4*b0+8 : 4*b0+8]
			i0, i1, i2, i3, i4, i5, i6, i7 := r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]
			for d := max(f.blockDepth[b0], f.blockDepth[b0+1]); d > 0; d-- {
				n0, n1, n2, n3 := &nodes[i0], &nodes[i1], &nodes[i2], &nodes[i3]
				n4, n5, n6, n7 := &nodes[i4], &nodes[i5], &nodes[i6], &nodes[i7]
				i0 = n0.left + int32(b2u(!(fv[n0.feat] < n0.thr)))
				i1 = n1.left + int32(b2u(!(fv[n1.feat] < n1.thr)))
				i2 = n2.left + int32(b2u(!(fv[n2.feat] < n2.thr)))
				i3 = n3.left + int32(b2u(!(fv[n3.feat] < n3.thr)))
				i4 = n4.left + int32(b2u(!(fv[n4.feat] < n4.thr)))
				i5 = n5.left + int32(b2u(!(fv[n5.feat] < n5.thr)))
				i6 = n6.left + int32(b2u(!(fv[n6.feat] < n6.thr)))
				i7 = n7.left + int32(b2u(!(fv[n7.feat] < n7.thr)))
			}
			a := acc[0]
			a += value[i0]
			a += value[i1]
			a += value[i2]
			a += value[i3]
			a += value[i4]
			a += value[i5]
			a += value[i6]
			a += value[i7]
			acc[0] = a
		}
	}
	t := 0
	for b := b0; b < len(f.blockDepth); b++ {
		d := f.blockDepth[b]
		t = 4 * b
		r := roots[t : t+4 : t+4]
		i0, i1, i2, i3 := r[0], r[1], r[2], r[3]
		if fast {
			for ; d > 0; d-- {
				n0, n1, n2, n3 := &nodes[i0], &nodes[i1], &nodes[i2], &nodes[i3]
				x0, x1, x2, x3 := fv[n0.feat], fv[n1.feat], fv[n2.feat], fv[n3.feat]
				i0 = n0.left + int32(b2u(!(x0 < n0.thr)))
				i1 = n1.left + int32(b2u(!(x1 < n1.thr)))
				i2 = n2.left + int32(b2u(!(x2 < n2.thr)))
				i3 = n3.left + int32(b2u(!(x3 < n3.thr)))
			}
		}
		for ; d > 0; d-- {
			n0, n1, n2, n3 := &nodes[i0], &nodes[i1], &nodes[i2], &nodes[i3]
			if n0.kind|n1.kind|n2.kind|n3.kind > kindNumeric {
				i0, i1, i2, i3 = f.step(fv, i0), f.step(fv, i1), f.step(fv, i2), f.step(fv, i3)
				continue
			}
			x0, x1, x2, x3 := fv[n0.feat], fv[n1.feat], fv[n2.feat], fv[n3.feat]
			if hasNaN {
				i0 = n0.left + int32((b2u(!(x0 < n0.thr))&^(b2u(x0 != x0)&n0.missLeft))&n0.rmask)
				i1 = n1.left + int32((b2u(!(x1 < n1.thr))&^(b2u(x1 != x1)&n1.missLeft))&n1.rmask)
				i2 = n2.left + int32((b2u(!(x2 < n2.thr))&^(b2u(x2 != x2)&n2.missLeft))&n2.rmask)
				i3 = n3.left + int32((b2u(!(x3 < n3.thr))&^(b2u(x3 != x3)&n3.missLeft))&n3.rmask)
			} else {
				i0 = n0.left + int32(b2u(!(x0 < n0.thr))&n0.rmask)
				i1 = n1.left + int32(b2u(!(x1 < n1.thr))&n1.rmask)
				i2 = n2.left + int32(b2u(!(x2 < n2.thr))&n2.rmask)
				i3 = n3.left + int32(b2u(!(x3 < n3.thr))&n3.rmask)
			}
		}
		if f.outputs == 1 {
			acc[0] += value[i0]
			acc[0] += value[i1]
			acc[0] += value[i2]
			acc[0] += value[i3]
			continue
		}
		g := f.group[t : t+4 : t+4]
		acc[g[0]] += value[i0]
		acc[g[1]] += value[i1]
		acc[g[2]] += value[i2]
		acc[g[3]] += value[i3]
	}
	for t = 4 * len(f.blockDepth); t < len(roots); t++ {
		acc[f.group[t]] += f.leaf(fv, t)
	}
}

// finish computes what margins needs once every tree is in: the blocks' depths, and whether the
// forest is simple.
func (f *forest[F]) finish() {
	// With +Inf read as the largest float, x < thr decides a kindNumeric node with a finite
	// threshold and LightGBM's x <= +Inf (kindNumericLE, always left) alike; a kindNumeric
	// threshold of +Inf (XGBoost's x < +Inf, or LightGBM's x <= MaxFloat64) would tell +Inf from
	// the largest float, so it keeps the forest off the bare-comparison path.
	f.simple = true
	for _, n := range f.nodes {
		inf := math.IsInf(float64(n.thr), 1)
		switch {
		case n.kind == kindLeaf:
		case n.kind == kindNumeric && !inf:
		case n.kind == kindNumericLE && inf:
		default:
			f.simple = false
		}
	}
	f.blockDepth = f.blockDepth[:0]
	for t := 0; t+4 <= len(f.roots); t += 4 {
		f.blockDepth = append(f.blockDepth, max(f.depth[t], f.depth[t+1], f.depth[t+2], f.depth[t+3]))
	}
}

// builder assembles a forest tree by tree from a library's own node numbering.
type builder[F float] struct {
	f *forest[F]
	// per tree, reused: the source node of each new slot
	queue []int32
}

// srcTree is a tree in a library's numbering, as the loaders hand it over.
type srcTree[F float] struct {
	n int // number of nodes
	// root is the root's index; isLeaf, children, etc. describe node i.
	root     int32
	isLeaf   func(i int32) bool
	children func(i int32) (left, right int32)
	// fill writes node i's split fields (all but left) into dst, or a leaf's value into dst.thr,
	// and its category set's
	// index into cat when it is categorical; cover gives its cover.
	fill  func(i int32, dst *node[F], cat *int32) error
	cover func(i int32) F
}

// add appends a tree, renumbering its nodes breadth-first so that siblings are adjacent and every
// child comes after its parent, which is also what makes traversal terminate: a child index in
// the source that points backwards or twice at one node is an error here, not a loop later.
func (b *builder[F]) add(t srcTree[F], group int32, maxNodes int) error {
	f := b.f
	if t.n <= 0 {
		return fmt.Errorf("tree has no nodes")
	}
	if len(f.nodes)+t.n > maxNodes {
		return fmt.Errorf("the model has more than %d nodes", maxNodes)
	}
	seen := make([]bool, t.n)
	depth := make([]int32, 0, t.n)
	b.queue = append(b.queue[:0], t.root)
	depth = append(depth, 0)
	start := len(f.nodes)
	f.roots = append(f.roots, int32(start))
	f.group = append(f.group, group)
	seen[t.root] = true
	treeDepth := int32(0)
	for q := 0; q < len(b.queue); q++ {
		src := b.queue[q]
		var n node[F]
		var value F
		cat := int32(-1)
		if err := t.fill(src, &n, &cat); err != nil {
			return fmt.Errorf("node %d: %w", src, err)
		}
		if d := int(depth[q]); d > f.maxDepth {
			f.maxDepth = d
		}
		treeDepth = max(treeDepth, depth[q])
		if int(depth[q]) > maxTreeDepth {
			return fmt.Errorf("deeper than %d levels", maxTreeDepth)
		}
		if !t.isLeaf(src) {
			l, r := t.children(src)
			for _, c := range [2]int32{l, r} {
				if c < 0 || int(c) >= t.n {
					return fmt.Errorf("node %d: child %d out of range [0, %d)", src, c, t.n)
				}
				if seen[c] {
					return fmt.Errorf("node %d: child %d is reached twice (not a tree)", src, c)
				}
				seen[c] = true
			}
			n.left = int32(start + len(b.queue))
			n.rmask = 1
			n.missLeft = 1 - n.missRight
			b.queue = append(b.queue, l, r)
			depth = append(depth, depth[q]+1, depth[q]+1)
		} else {
			value = n.thr
			n = node[F]{thr: F(math.Inf(1)), kind: kindLeaf, left: int32(start + q), missLeft: 1}
		}
		if n.kind != kindLeaf && n.feat >= uint32(f.nfeat) {
			return fmt.Errorf("node %d: feature %d out of range (the model has %d)", src, n.feat, f.nfeat)
		}
		if n.kind == kindCategorical && (cat < 0 || int(cat) >= len(f.cats)) {
			return fmt.Errorf("node %d: categorical without a category set", src)
		}
		if cat >= 0 && f.catOf == nil {
			f.catOf = make([]int32, len(f.nodes), cap(f.nodes))
			for i := range f.catOf {
				f.catOf[i] = -1
			}
		}
		if f.catOf != nil {
			f.catOf = append(f.catOf, cat)
		}
		f.nodes = append(f.nodes, n)
		f.value = append(f.value, value)
		f.cover = append(f.cover, t.cover(src))
	}
	f.depth = append(f.depth, treeDepth)
	return nil
}

// addBits appends a category set and returns its index, keeping the model's total under a cap
// (a category value costs a few bytes of model file but up to 4 MiB of bitset).
func (f *forest[F]) addBits(words []uint32) (int32, error) {
	if len(f.bits)+len(words) > maxBitsetWords {
		return 0, fmt.Errorf("categorical splits need more than %d bitset words", maxBitsetWords)
	}
	f.cats = append(f.cats, catSet{off: uint32(len(f.bits)), n: uint32(len(words))})
	f.bits = append(f.bits, words...)
	return int32(len(f.cats) - 1), nil
}

// nextUp64 turns LightGBM's x <= t into x < nextUp64(t) for every non-NaN x.
func nextUp64(t float64) float64 { return math.Nextafter(t, math.Inf(1)) }
