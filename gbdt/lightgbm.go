package gbdt

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// LightGBM's decision_type bits (include/LightGBM/tree.h): categorical split, default left, and
// the missing type in bits 2-3.
const (
	lgbCategoricalMask = 1
	lgbDefaultLeftMask = 2
	lgbMissingNone     = 0
	lgbMissingZero     = 1
	lgbMissingNaN      = 2
)

// lgbZeroThreshold is LightGBM's kZeroThreshold (1e-35f, a float widened to double): values this
// close to zero are dropped from a row before prediction, so they predict as 0.
var lgbZeroThreshold = float64(float32(1e-35))

func lgbErr(format string, args ...any) error {
	return fmt.Errorf("gbdt: lightgbm model: "+format, args...)
}

// lgbBlock is a run of key=value lines: the header, or one tree.
type lgbBlock struct {
	line int // line number of the block's first line, for errors
	kv   map[string]string
	// flags are lines without '=' (the header's "average_output").
	flags map[string]bool
}

func (b *lgbBlock) get(key string) (string, bool) {
	v, ok := b.kv[key]
	return v, ok
}

// loadLightGBM reads a model in LightGBM's text format (GBDT::SaveModelToString): a header of
// key=value lines, one block per tree ("Tree=i" and its key=value lines), "end of trees", then
// feature importances, parameters and pandas_categorical, which scoring does not need.
func loadLightGBM(data []byte) (*Model, error) {
	var header lgbBlock
	var trees []lgbBlock
	cur := &header
	header.kv, header.flags = map[string]string{}, map[string]bool{}
	lineNo := 0
	ended := false
	for len(data) > 0 {
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		lineNo++
		line = bytes.TrimRight(line, "\r")
		if len(line) == 0 {
			continue
		}
		s := string(line)
		if s == "end of trees" {
			ended = true
			break
		}
		if strings.HasPrefix(s, "Tree=") {
			if len(trees) >= maxTrees {
				return nil, lgbErr("more than %d trees", maxTrees)
			}
			if want := "Tree=" + strconv.Itoa(len(trees)); s != want {
				return nil, lgbErr("line %d: %q, want %q", lineNo, s, want)
			}
			trees = append(trees, lgbBlock{line: lineNo, kv: map[string]string{}})
			cur = &trees[len(trees)-1]
			continue
		}
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			if cur != &header {
				return nil, lgbErr("line %d: %q is not key=value", lineNo, truncate(s))
			}
			header.flags[s] = true
			continue
		}
		if _, dup := cur.kv[k]; dup {
			return nil, lgbErr("line %d: %s given twice", lineNo, k)
		}
		cur.kv[k] = v
	}
	if !ended {
		return nil, lgbErr("no \"end of trees\" line: truncated file?")
	}
	if header.flags["average_output"] {
		return nil, fmt.Errorf("%w: lightgbm random forest (average_output)", ErrUnsupported)
	}
	if v, _ := header.get("version"); v != "v2" && v != "v3" && v != "v4" {
		return nil, lgbErr("version %q (want v2, v3 or v4)", v)
	}

	m := &Model{library: LightGBM, format: "lightgbm-text", best: -1}
	nclass, err := lgbInt(&header, "num_class", 1, maxOutputs)
	if err != nil {
		return nil, err
	}
	perIter, err := lgbInt(&header, "num_tree_per_iteration", 1, maxOutputs)
	if err != nil {
		return nil, err
	}
	maxFeat, err := lgbInt(&header, "max_feature_idx", 0, maxFeatures-1)
	if err != nil {
		return nil, err
	}
	nfeat := maxFeat + 1

	obj, _ := header.get("objective")
	objFields := strings.Fields(obj)
	if len(objFields) == 0 {
		return nil, lgbErr("no objective")
	}
	m.objective = objFields[0]
	sigmoid := 1.0
	for _, p := range objFields[1:] {
		k, v, _ := strings.Cut(p, ":")
		switch {
		case objFields[0] == "binary" && k == "sigmoid":
			if sigmoid, err = strconv.ParseFloat(v, 64); err != nil || !(sigmoid > 0) || math.IsInf(sigmoid, 0) {
				return nil, lgbErr("objective %q: bad sigmoid", obj)
			}
		case objFields[0] == "multiclass" && k == "num_class":
			if n, err := strconv.Atoi(v); err != nil || n != nclass {
				return nil, lgbErr("objective %q disagrees with num_class=%d", obj, nclass)
			}
		default:
			return nil, fmt.Errorf("%w: lightgbm objective option %q in %q", ErrUnsupported, p, obj)
		}
	}
	switch objFields[0] {
	case "binary":
		m.task, m.outputs = Binary, 1
	case "regression":
		m.task, m.outputs = Regression, 1
	case "multiclass":
		if nclass < 2 {
			return nil, lgbErr("multiclass with num_class=%d", nclass)
		}
		m.task, m.outputs = Multiclass, nclass
	default:
		return nil, fmt.Errorf("%w: lightgbm objective %q (binary, regression and multiclass are)", ErrUnsupported, objFields[0])
	}
	if perIter != m.outputs {
		return nil, lgbErr("num_tree_per_iteration=%d for %d outputs", perIter, m.outputs)
	}
	if len(trees)%perIter != 0 {
		return nil, lgbErr("%d trees is not a whole number of iterations of %d", len(trees), perIter)
	}

	names := strings.Fields(header.kv["feature_names"])
	if len(names) != nfeat {
		return nil, lgbErr("%d feature_names for max_feature_idx=%d", len(names), maxFeat)
	}
	infos := strings.Fields(header.kv["feature_infos"])
	if len(infos) != 0 && len(infos) != nfeat {
		return nil, lgbErr("%d feature_infos for %d features", len(infos), nfeat)
	}
	m.features = make([]Feature, nfeat)
	for i, n := range names {
		m.features[i].Name = n
		// Numeric features print their range "[lo:hi]" (or "none" when unused); categorical ones
		// the list of categories "c1:c2:...".
		if len(infos) != 0 && infos[i] != "none" && !strings.HasPrefix(infos[i], "[") {
			m.features[i].Categorical = true
		}
	}
	if err := checkFeatureNames(m.features); err != nil {
		return nil, err
	}

	f := &forest[float64]{
		base: make([]float64, m.outputs), nfeat: nfeat, outputs: m.outputs,
		zeroThreshold: lgbZeroThreshold,
		// A category is valid when static_cast<int>(x) >= 0: x > -1, and below 2^31 where the
		// cast stops being defined (x86 then gives INT_MIN, a negative, so "not in the set").
		catLo: -1, catHi: 1 << 31,
	}
	m.sigmoid = sigmoid
	b := builder[float64]{f: f}
	for t := range trees {
		if err := addLGBTree(&b, &trees[t], int32(t%perIter)); err != nil {
			return nil, lgbErr("tree %d (line %d): %w", t, trees[t].line, err)
		}
	}
	f.finish()
	m.f64 = f
	m.ntrees = len(trees)
	m.iterations = len(trees) / perIter
	return m, nil
}

func addLGBTree(b *builder[float64], blk *lgbBlock, group int32) error {
	numLeaves, err := lgbInt(blk, "num_leaves", 1, maxNodes/2)
	if err != nil {
		return err
	}
	if v, ok := blk.get("is_linear"); ok && v != "0" {
		return fmt.Errorf("%w: lightgbm linear trees", ErrUnsupported)
	}
	leafValue, err := lgbFloats(blk, "leaf_value", numLeaves)
	if err != nil {
		return err
	}
	f := b.f
	if numLeaves == 1 {
		// A constant tree: LightGBM predicts leaf_value[0] and credits it all to the bias.
		f.treeBias = append(f.treeBias, leafValue[0])
		return b.add(srcTree[float64]{
			n: 1, root: 0,
			isLeaf:   func(int32) bool { return true },
			children: func(int32) (int32, int32) { return 0, 0 },
			cover:    func(int32) float64 { return 0 },
			fill:     func(_ int32, dst *node[float64], _ *int32) error { dst.thr = leafValue[0]; return nil },
		}, group, maxNodes)
	}
	ni := numLeaves - 1
	splitFeature, err := lgbInts(blk, "split_feature", ni)
	if err != nil {
		return err
	}
	threshold, err := lgbFloats(blk, "threshold", ni)
	if err != nil {
		return err
	}
	decisionType, err := lgbInts(blk, "decision_type", ni)
	if err != nil {
		return err
	}
	left, err := lgbInts(blk, "left_child", ni)
	if err != nil {
		return err
	}
	right, err := lgbInts(blk, "right_child", ni)
	if err != nil {
		return err
	}
	leafCount, err := lgbInts(blk, "leaf_count", numLeaves)
	if err != nil {
		return err
	}
	internalCount, err := lgbInts(blk, "internal_count", ni)
	if err != nil {
		return err
	}
	numCat, err := lgbInt(blk, "num_cat", 0, ni)
	if err != nil {
		return err
	}
	var catBoundaries, catThreshold []int64
	if numCat > 0 {
		if catBoundaries, err = lgbInts(blk, "cat_boundaries", numCat+1); err != nil {
			return err
		}
		if catThreshold, err = lgbInts(blk, "cat_threshold", -1); err != nil {
			return err
		}
		if catBoundaries[0] != 0 || catBoundaries[numCat] != int64(len(catThreshold)) {
			return fmt.Errorf("cat_boundaries do not span cat_threshold")
		}
	}
	// The category sets, in LightGBM's cat_idx order.
	catIdx := make([]int32, numCat)
	for c := 0; c < numCat; c++ {
		lo, hi := catBoundaries[c], catBoundaries[c+1]
		if lo > hi {
			return fmt.Errorf("cat_boundaries decrease at %d", c)
		}
		words := make([]uint32, hi-lo)
		for k, w := range catThreshold[lo:hi] {
			if w < 0 || w > math.MaxUint32 {
				return fmt.Errorf("cat_threshold word %d is not a uint32", w)
			}
			words[k] = uint32(w)
		}
		if catIdx[c], err = f.addBits(words); err != nil {
			return err
		}
	}

	// ExpectedValue, summed in LightGBM's leaf order (Tree::ExpectedValue).
	total := float64(internalCount[0])
	var ev float64
	for i := 0; i < numLeaves; i++ {
		ev += (float64(leafCount[i]) / total) * leafValue[i]
	}
	f.treeBias = append(f.treeBias, ev)

	// Node ids: internal nodes 0..ni-1 keep theirs, leaf ~c becomes ni+l, in one index space.
	id := func(c int64) (int32, error) {
		if c >= 0 {
			if c >= int64(ni) {
				return 0, fmt.Errorf("child %d out of range", c)
			}
			return int32(c), nil
		}
		l := ^c
		if l >= int64(numLeaves) {
			return 0, fmt.Errorf("leaf child %d out of range", c)
		}
		return int32(int64(ni) + l), nil
	}
	// Validate children up front; the builder checks they form a tree.
	for i := 0; i < ni; i++ {
		if _, err := id(left[i]); err != nil {
			return fmt.Errorf("node %d: %w", i, err)
		}
		if _, err := id(right[i]); err != nil {
			return fmt.Errorf("node %d: %w", i, err)
		}
	}
	return b.add(srcTree[float64]{
		n: ni + numLeaves, root: 0,
		isLeaf: func(i int32) bool { return int(i) >= ni },
		children: func(i int32) (int32, int32) {
			l, _ := id(left[i])
			r, _ := id(right[i])
			return l, r
		},
		cover: func(i int32) float64 {
			if int(i) >= ni {
				return float64(leafCount[int(i)-ni])
			}
			return float64(internalCount[i])
		},
		fill: func(i int32, dst *node[float64], cat *int32) error {
			if int(i) >= ni {
				dst.thr = leafValue[int(i)-ni]
				return nil
			}
			sf := splitFeature[i]
			if sf < 0 || sf >= int64(f.nfeat) {
				return fmt.Errorf("split on feature %d, the model has %d", sf, f.nfeat)
			}
			dst.feat = uint32(sf)
			dt := decisionType[i]
			if dt < 0 || dt > 0x0f {
				return fmt.Errorf("decision_type %d", dt)
			}
			if dt&lgbCategoricalMask != 0 {
				// threshold is the index of the category set; in the set goes left, anything
				// else (NaN, negative, unseen) right.
				ci := threshold[i]
				if ci != math.Trunc(ci) || ci < 0 || ci >= float64(numCat) {
					return fmt.Errorf("categorical split with category set %v of %d", ci, numCat)
				}
				dst.kind, *cat, dst.missRight = kindCategorical, catIdx[int(ci)], 1
				return nil
			}
			t := threshold[i]
			if math.IsNaN(t) {
				return fmt.Errorf("threshold NaN")
			}
			dst.thr = nextUp64(t) // x <= t  <=>  x < nextUp(t), but for t = +Inf
			le := math.IsInf(t, 1)
			if le {
				dst.thr = t
			}
			defaultRight := uint8(1)
			if dt&lgbDefaultLeftMask != 0 {
				defaultRight = 0
			}
			switch (dt >> 2) & 3 {
			case lgbMissingNaN:
				dst.kind, dst.missRight = pick(le, kindNumericLE, kindNumeric), defaultRight
			case lgbMissingZero:
				dst.kind, dst.missRight = pick(le, kindZeroMissingLE, kindZeroMissing), defaultRight
			case lgbMissingNone:
				// NaN is read as 0, so it goes where 0 goes.
				dst.kind, dst.missRight = pick(le, kindNumericLE, kindNumeric), 1
				if 0 <= t {
					dst.missRight = 0
				}
			default:
				return fmt.Errorf("decision_type %d has missing type 3", dt)
			}
			return nil
		},
	}, group, maxNodes)
}

func lgbInt(b *lgbBlock, key string, lo, hi int) (int, error) {
	s, ok := b.get(key)
	if !ok {
		return 0, lgbErr("no %s", key)
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < lo || v > hi {
		return 0, lgbErr("%s=%s is not an integer in [%d, %d]", key, truncate(s), lo, hi)
	}
	return v, nil
}

// lgbFloats parses a space-separated list of n numbers (want < 0: any count).
func lgbFloats(b *lgbBlock, key string, want int) ([]float64, error) {
	s, ok := b.get(key)
	if !ok {
		return nil, fmt.Errorf("no %s", key)
	}
	fields := strings.Fields(s)
	if want >= 0 && len(fields) != want {
		return nil, fmt.Errorf("%s has %d values, want %d", key, len(fields), want)
	}
	out := make([]float64, len(fields))
	for i, p := range fields {
		v, err := strconv.ParseFloat(p, 64)
		if err != nil {
			return nil, fmt.Errorf("%s value %d: %q is not a number", key, i, truncate(p))
		}
		out[i] = v
	}
	return out, nil
}

func lgbInts(b *lgbBlock, key string, want int) ([]int64, error) {
	s, ok := b.get(key)
	if !ok {
		return nil, fmt.Errorf("no %s", key)
	}
	fields := strings.Fields(s)
	if want >= 0 && len(fields) != want {
		return nil, fmt.Errorf("%s has %d values, want %d", key, len(fields), want)
	}
	out := make([]int64, len(fields))
	for i, p := range fields {
		v, err := strconv.ParseInt(p, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s value %d: %q is not an integer", key, i, truncate(p))
		}
		out[i] = v
	}
	return out, nil
}

func pick[T any](cond bool, a, b T) T {
	if cond {
		return a
	}
	return b
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
