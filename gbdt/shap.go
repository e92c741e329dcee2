package gbdt

// TreeSHAP, the path-dependent algorithm of Lundberg, Erion and Lee ("Consistent Individualized
// Feature Attribution for Tree Ensembles", 2018, Algorithm 2), the one behind XGBoost's
// pred_contribs and LightGBM's pred_contrib. Both libraries implement the same recursion; the
// code below follows it step for step, in the forest's float type and with every product and
// quotient in the libraries' order, so that float32 (XGBoost) results round the same way. The one
// difference between the two, the zero_fraction check in UnwoundPathSum, is forest.shapZeroCheck.

// pathElement is one feature on the current root-to-node path: the fractions of the path's
// weight that flow through when the feature is unknown (zero) and known (one), and the
// permutation weight of paths with this many ones.
type pathElement[F float] struct {
	feature int32
	zero    F
	one     F
	pweight F
}

// shapScratch is the per-scorer memory TreeSHAP needs: a triangular stack of paths, one copy per
// depth, sized once for the model's deepest tree.
type shapScratch[F float] struct {
	path []pathElement[F]
	tree []F // one tree's contributions, before they are added (XGBoost sums per tree)
}

func newShapScratch[F float](f *forest[F]) shapScratch[F] {
	d := f.maxDepth + 2
	return shapScratch[F]{path: make([]pathElement[F], d*(d+1)/2+d+1), tree: make([]F, f.nfeat+1)}
}

func extendPath[F float](p []pathElement[F], depth int, zero, one F, feature int32) {
	p[depth] = pathElement[F]{feature: feature, zero: zero, one: one}
	if depth == 0 {
		p[depth].pweight = 1
	}
	for i := depth - 1; i >= 0; i-- {
		p[i+1].pweight += F(F(one*p[i].pweight)*F(i+1)) / F(depth+1)
		p[i].pweight = F(F(zero*p[i].pweight)*F(depth-i)) / F(depth+1)
	}
}

func unwindPath[F float](p []pathElement[F], depth, index int) {
	one, zero := p[index].one, p[index].zero
	next := p[depth].pweight
	for i := depth - 1; i >= 0; i-- {
		if one != 0 {
			tmp := p[i].pweight
			p[i].pweight = F(next*F(depth+1)) / F(F(i+1)*one)
			next = tmp - F(F(F(p[i].pweight*zero)*F(depth-i))/F(depth+1))
		} else {
			p[i].pweight = F(p[i].pweight*F(depth+1)) / F(zero*F(depth-i))
		}
	}
	for i := index; i < depth; i++ {
		p[i].feature, p[i].zero, p[i].one = p[i+1].feature, p[i+1].zero, p[i+1].one
	}
}

func unwoundPathSum[F float](p []pathElement[F], depth, index int, zeroCheck bool) F {
	one, zero := p[index].one, p[index].zero
	next := p[depth].pweight
	var total F
	for i := depth - 1; i >= 0; i-- {
		if one != 0 {
			tmp := F(next*F(depth+1)) / F(F(i+1)*one)
			total += tmp
			next = p[i].pweight - F(F(tmp*zero)*F(F(depth-i)/F(depth+1)))
		} else if !zeroCheck || zero != 0 {
			total += F(p[i].pweight/zero) / F(F(depth-i)/F(depth+1))
		}
	}
	return total
}

// treeShap adds the contributions of the subtree at node i to phi. parent is the path so far
// (depth+1 elements at parent[0:]); this call's copy lives right after it.
func (f *forest[F]) treeShap(fv []F, phi []F, i int32, depth int, parent []pathElement[F],
	parentZero, parentOne F, parentFeature int32) {
	path := parent[depth+1:]
	copy(path[:depth+1], parent[:depth+1])
	extendPath(path, depth, parentZero, parentOne, parentFeature)

	n := &f.nodes[i]
	if n.kind == kindLeaf {
		for k := 1; k <= depth; k++ {
			w := unwoundPathSum(path, depth, k, f.shapZeroCheck)
			el := &path[k]
			phi[el.feature] += F(F(w*F(el.one-el.zero))*f.value[i]) * 1
		}
		return
	}
	hot := f.next(i, fv[n.feat])
	cold := n.left
	if hot == n.left {
		cold = n.left + 1
	}
	w := f.cover[i]
	hotZero := f.cover[hot] / w
	coldZero := f.cover[cold] / w
	incomingZero, incomingOne := F(1), F(1)

	// A feature already on the path is unwound, so that this split redoes it.
	k := 0
	for ; k <= depth; k++ {
		if path[k].feature == int32(n.feat) {
			break
		}
	}
	if k != depth+1 {
		incomingZero, incomingOne = path[k].zero, path[k].one
		unwindPath(path, depth, k)
		depth--
	}
	f.treeShap(fv, phi, hot, depth+1, path, F(hotZero*incomingZero), incomingOne, int32(n.feat))
	f.treeShap(fv, phi, cold, depth+1, path, F(coldZero*incomingZero), 0, int32(n.feat))
}

// contributions writes the TreeSHAP values of fv into out: for each output k, nfeat+1 values at
// out[k*(nfeat+1):], the features' contributions then the bias. They sum to the margin.
//
// XGBoost computes each tree into a zeroed buffer and adds it to the row's total, then adds the
// base score to the bias last; LightGBM adds each tree straight into the total, bias first. Both
// orders are kept, since they round differently in float32.
func (f *forest[F]) contributions(fv []F, out []F, s *shapScratch[F], perTree bool) {
	clear(out)
	cols := f.nfeat + 1
	for t, r := range f.roots {
		phi := out[int(f.group[t])*cols:][:cols]
		if perTree {
			clear(s.tree)
			s.tree[f.nfeat] += f.treeBias[t]
			if f.nodes[r].kind != kindLeaf {
				f.treeShap(fv, s.tree, r, 0, s.path, 1, 1, -1)
			}
			for c, v := range s.tree {
				phi[c] += v * 1
			}
			continue
		}
		phi[f.nfeat] += f.treeBias[t]
		if f.nodes[r].kind != kindLeaf {
			f.treeShap(fv, phi, r, 0, s.path, 1, 1, -1)
		}
	}
	for k, b := range f.base {
		out[k*cols+f.nfeat] += b
	}
}
