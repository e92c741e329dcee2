package gbdt

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/streamd/streamd/internal/ubjson"
)

// The subset of XGBoost's model schema (doc/model.schema in the XGBoost sources) that scoring
// needs. Numbers that XGBoost keeps as float32 are decoded as float32, which encoding/json parses
// at 32-bit precision: the shortest decimal XGBoost prints reads back to the same bits.
type xgbFile struct {
	Version []int `json:"version"`
	Learner struct {
		Attributes      map[string]string `json:"attributes"`
		FeatureNames    []string          `json:"feature_names"`
		FeatureTypes    []string          `json:"feature_types"`
		GradientBooster struct {
			Name  string    `json:"name"`
			Model xgbGBTree `json:"model"`
		} `json:"gradient_booster"`
		LearnerModelParam struct {
			BaseScore  string `json:"base_score"`
			NumClass   string `json:"num_class"`
			NumFeature string `json:"num_feature"`
			NumTarget  string `json:"num_target"`
		} `json:"learner_model_param"`
		Objective struct {
			Name string `json:"name"`
		} `json:"objective"`
	} `json:"learner"`
}

type xgbGBTree struct {
	Param struct {
		NumParallelTree string `json:"num_parallel_tree"`
		NumTrees        string `json:"num_trees"`
	} `json:"gbtree_model_param"`
	IterationIndptr []int64   `json:"iteration_indptr"`
	TreeInfo        []int64   `json:"tree_info"`
	Trees           []xgbTree `json:"trees"`
}

type xgbTree struct {
	Param struct {
		NumNodes       string `json:"num_nodes"`
		SizeLeafVector string `json:"size_leaf_vector"`
	} `json:"tree_param"`
	Left               []int32   `json:"left_children"`
	Right              []int32   `json:"right_children"`
	SplitIndices       []int64   `json:"split_indices"`
	SplitConditions    []float32 `json:"split_conditions"`
	DefaultLeft        []int32   `json:"default_left"`
	SumHessian         []float32 `json:"sum_hessian"`
	SplitType          []int32   `json:"split_type"`
	Categories         []int32   `json:"categories"`
	CategoriesNodes    []int32   `json:"categories_nodes"`
	CategoriesSegments []int64   `json:"categories_segments"`
	CategoriesSizes    []int64   `json:"categories_sizes"`
}

// xgbMaxCategory: XGBoost reads a category as invalid from 2^24 on (common::InvalidCat), where
// float32 stops representing every integer.
const xgbMaxCategory = 1 << 24

func xgbErr(format string, args ...any) error {
	return fmt.Errorf("gbdt: xgboost model: "+format, args...)
}

func loadXGBoost(data []byte, binary bool) (*Model, error) {
	format := "xgboost-json"
	if binary {
		format = "xgboost-ubjson"
		// Every UBJSON byte turns into at most 16 bytes of JSON but for typed containers of
		// nulls and booleans, which XGBoost never writes; the cap keeps those bounded.
		js, err := ubjson.ToJSON(nil, data, ubjson.Limits{MaxOutput: 16*len(data) + 4096})
		if err != nil {
			return nil, xgbErr("%w", err)
		}
		data = js
	}
	var file xgbFile
	if err := json.Unmarshal(data, &file); err != nil {
		return nil, xgbErr("%w", err)
	}
	l := &file.Learner
	if len(file.Version) == 0 || file.Version[0] < 1 {
		return nil, xgbErr("no version: not an XGBoost model file")
	}
	switch l.GradientBooster.Name {
	case "gbtree":
	case "":
		return nil, xgbErr("no gradient_booster: not an XGBoost model file")
	default:
		return nil, fmt.Errorf("%w: xgboost booster %q (gbtree is)", ErrUnsupported, l.GradientBooster.Name)
	}

	m := &Model{library: XGBoost, format: format, objective: l.Objective.Name, best: -1}
	nfeat, err := atoiField("num_feature", l.LearnerModelParam.NumFeature, 1, maxFeatures)
	if err != nil {
		return nil, err
	}
	if t := l.LearnerModelParam.NumTarget; t != "" && t != "1" {
		return nil, fmt.Errorf("%w: xgboost multi-target model (num_target %s)", ErrUnsupported, t)
	}
	nclass, err := atoiField("num_class", l.LearnerModelParam.NumClass, 0, maxOutputs)
	if err != nil {
		return nil, err
	}
	switch m.objective {
	case "binary:logistic":
		m.task, m.outputs = Binary, 1
	case "reg:squarederror":
		m.task, m.outputs = Regression, 1
	case "multi:softprob":
		if nclass < 2 {
			return nil, xgbErr("multi:softprob with num_class %d", nclass)
		}
		m.task, m.outputs = Multiclass, nclass
	default:
		return nil, fmt.Errorf("%w: xgboost objective %q (binary:logistic, reg:squarederror and multi:softprob are)", ErrUnsupported, m.objective)
	}
	if m.task != Multiclass && nclass > 1 {
		return nil, xgbErr("objective %s with num_class %d", m.objective, nclass)
	}

	// Features: names as saved, or XGBoost's own f0, f1, ... for a model trained without names.
	if n := len(l.FeatureNames); n != 0 && n != nfeat {
		return nil, xgbErr("%d feature names for num_feature %d", n, nfeat)
	}
	if n := len(l.FeatureTypes); n != 0 && n != nfeat {
		return nil, xgbErr("%d feature types for num_feature %d", n, nfeat)
	}
	m.features = make([]Feature, nfeat)
	for i := range m.features {
		m.features[i].Name = "f" + strconv.Itoa(i)
		if len(l.FeatureNames) != 0 {
			m.features[i].Name = l.FeatureNames[i]
		}
		if len(l.FeatureTypes) != 0 {
			switch ft := l.FeatureTypes[i]; ft {
			case "c":
				m.features[i].Categorical = true
			case "float", "int", "i", "q":
			default:
				return nil, xgbErr("feature %q has type %q (want float, int, i, q or c)", m.features[i].Name, ft)
			}
		}
	}
	if err := checkFeatureNames(m.features); err != nil {
		return nil, err
	}

	base, err := xgbBaseScore(l.LearnerModelParam.BaseScore, m.outputs, m.objective)
	if err != nil {
		return nil, err
	}

	gb := &l.GradientBooster.Model
	ntrees := len(gb.Trees)
	if ntrees > maxTrees {
		return nil, xgbErr("%d trees, more than %d", ntrees, maxTrees)
	}
	if n, err := atoiField("num_trees", gb.Param.NumTrees, 0, maxTrees); err != nil {
		return nil, err
	} else if n != ntrees {
		return nil, xgbErr("num_trees %d but %d trees", n, ntrees)
	}
	if len(gb.TreeInfo) != ntrees {
		return nil, xgbErr("tree_info has %d entries for %d trees", len(gb.TreeInfo), ntrees)
	}
	// iteration_indptr[i] is the first tree of iteration i; older files lack it, and then every
	// iteration has num_parallel_tree trees per output.
	indptr := gb.IterationIndptr
	if len(indptr) == 0 {
		per := 1
		if s := gb.Param.NumParallelTree; s != "" {
			if per, err = atoiField("num_parallel_tree", s, 1, maxTrees); err != nil {
				return nil, err
			}
		}
		per *= m.outputs
		if ntrees%per != 0 {
			return nil, xgbErr("%d trees is not a whole number of iterations of %d", ntrees, per)
		}
		for i := 0; i <= ntrees; i += per {
			indptr = append(indptr, int64(i))
		}
	}
	if indptr[0] != 0 || indptr[len(indptr)-1] != int64(ntrees) {
		return nil, xgbErr("iteration_indptr %v does not span the %d trees", shortInts(indptr), ntrees)
	}
	for i := 1; i < len(indptr); i++ {
		if indptr[i] < indptr[i-1] {
			return nil, xgbErr("iteration_indptr decreases at %d", i)
		}
	}
	m.iterations = len(indptr) - 1
	// best_iteration (set by early stopping) keeps the iterations up to it, as the scikit-learn
	// wrapper predicts and iteration_range=(0, best_iteration+1) does.
	if s, ok := l.Attributes["best_iteration"]; ok {
		best, err := strconv.Atoi(s)
		if err != nil || best < 0 || best >= m.iterations {
			return nil, xgbErr("best_iteration %q is not an iteration in [0, %d)", s, m.iterations)
		}
		m.best, m.iterations = best, best+1
		ntrees = int(indptr[best+1])
	}
	m.ntrees = ntrees

	f := &forest[float32]{
		base: base, nfeat: nfeat, outputs: m.outputs, shapZeroCheck: true,
		// Valid categories are 0 <= x < 2^24; x > -smallest-denormal is x >= 0 for float32.
		catLo: -math.SmallestNonzeroFloat32, catHi: xgbMaxCategory, inSetRight: 1,
	}
	b := builder[float32]{f: f}
	for t := 0; t < ntrees; t++ {
		group := gb.TreeInfo[t]
		if group < 0 || group >= int64(m.outputs) {
			return nil, xgbErr("tree %d: tree_info %d is not an output in [0, %d)", t, group, m.outputs)
		}
		if err := addXGBTree(&b, &gb.Trees[t], int32(group), m.features); err != nil {
			return nil, xgbErr("tree %d: %w", t, err)
		}
	}
	f.finish()
	m.f32 = f
	return m, nil
}

func addXGBTree(b *builder[float32], t *xgbTree, group int32, features []Feature) error {
	if s := t.Param.SizeLeafVector; s != "" && s != "0" && s != "1" {
		return fmt.Errorf("%w: xgboost vector-leaf trees (size_leaf_vector %s)", ErrUnsupported, s)
	}
	n, err := atoiField("num_nodes", t.Param.NumNodes, 1, maxNodes)
	if err != nil {
		return err
	}
	for _, a := range []struct {
		name string
		len  int
	}{
		{"left_children", len(t.Left)}, {"right_children", len(t.Right)},
		{"split_indices", len(t.SplitIndices)}, {"split_conditions", len(t.SplitConditions)},
		{"default_left", len(t.DefaultLeft)}, {"sum_hessian", len(t.SumHessian)},
	} {
		if a.len != n {
			return fmt.Errorf("%s has %d entries for %d nodes", a.name, a.len, n)
		}
	}
	if len(t.SplitType) != 0 && len(t.SplitType) != n {
		return fmt.Errorf("split_type has %d entries for %d nodes", len(t.SplitType), n)
	}
	// Category sets by node: categories[segments[k] : segments[k]+sizes[k]] for node nodes[k].
	catOf := map[int32]int32{}
	if len(t.CategoriesNodes) != len(t.CategoriesSegments) || len(t.CategoriesNodes) != len(t.CategoriesSizes) {
		return fmt.Errorf("categories_nodes, categories_segments and categories_sizes differ in length")
	}
	for k, nid := range t.CategoriesNodes {
		beg, size := t.CategoriesSegments[k], t.CategoriesSizes[k]
		if nid < 0 || int(nid) >= n || beg < 0 || size <= 0 || beg > int64(len(t.Categories)) || size > int64(len(t.Categories))-beg {
			return fmt.Errorf("categorical node %d: segment [%d, +%d) out of range", nid, beg, size)
		}
		if _, dup := catOf[nid]; dup {
			return fmt.Errorf("categorical node %d listed twice", nid)
		}
		cats := t.Categories[beg : beg+size]
		maxCat := int32(0)
		for _, c := range cats {
			if c < 0 || c >= xgbMaxCategory {
				return fmt.Errorf("categorical node %d: category %d out of range [0, %d)", nid, c, xgbMaxCategory)
			}
			maxCat = max(maxCat, c)
		}
		words := make([]uint32, maxCat/32+1)
		for _, c := range cats {
			words[c/32] |= 1 << (c % 32)
		}
		idx, err := b.f.addBits(words)
		if err != nil {
			return err
		}
		catOf[nid] = idx
	}
	start := len(b.f.nodes)
	err = b.add(srcTree[float32]{
		n:    n,
		root: 0,
		isLeaf: func(i int32) bool {
			return t.Left[i] == -1
		},
		children: func(i int32) (int32, int32) { return t.Left[i], t.Right[i] },
		cover:    func(i int32) float32 { return t.SumHessian[i] },
		fill: func(i int32, dst *node[float32], cat *int32) error {
			if t.Left[i] == -1 {
				if t.Right[i] != -1 {
					return fmt.Errorf("a leaf with a right child %d", t.Right[i])
				}
				dst.thr = t.SplitConditions[i]
				return nil
			}
			fi := t.SplitIndices[i]
			if fi < 0 || fi >= int64(len(features)) {
				return fmt.Errorf("split on feature %d, the model has %d", fi, len(features))
			}
			dst.feat = uint32(fi)
			dst.thr = t.SplitConditions[i]
			dst.missRight = 1
			if t.DefaultLeft[i] != 0 {
				dst.missRight = 0
			}
			dst.kind = kindNumeric
			if len(t.SplitType) != 0 && t.SplitType[i] != 0 {
				if t.SplitType[i] != 1 {
					return fmt.Errorf("split_type %d", t.SplitType[i])
				}
				idx, ok := catOf[i]
				if !ok {
					return fmt.Errorf("categorical split without categories")
				}
				dst.kind, *cat = kindCategorical, idx
			}
			return nil
		},
	}, group, maxNodes)
	if err != nil {
		return err
	}
	b.f.treeBias = append(b.f.treeBias, nodeMean(b.f, start))
	return nil
}

// nodeMean is the mean value of the tree at nodes[start:] (the root's node mean of XGBoost's
// FillNodeMeanValues: each node's value is its children's, weighted by their sum_hessian, in
// float32). Children come after their parents, so one backward pass computes every node's mean.
func nodeMean(f *forest[float32], start int) float32 {
	nodes := f.nodes[start:]
	mean := make([]float32, len(nodes))
	for i := len(nodes) - 1; i >= 0; i-- {
		n := &nodes[i]
		if n.kind == kindLeaf {
			mean[i] = f.value[start+i]
			continue
		}
		l := int(n.left) - start
		r := float32(mean[l] * f.cover[start+l])
		r += float32(mean[l+1] * f.cover[start+l+1])
		mean[i] = r / f.cover[start+i]
	}
	return mean[0]
}

// xgbBaseScore parses learner_model_param.base_score, "5E-1" or "[5E-1]" or, for one intercept per
// class, "[a,b,c]", into the margin each output starts from. XGBoost 3 stores it as the user gave
// it or as it was estimated: a probability for binary:logistic (turned into a margin by the logit,
// in float32 like XGBoost's ProbToMargin), a margin for multi:softprob and a value for regression.
func xgbBaseScore(s string, outputs int, objective string) ([]float32, error) {
	t := strings.TrimSpace(s)
	vector := strings.HasPrefix(t, "[")
	if vector {
		if !strings.HasSuffix(t, "]") {
			return nil, xgbErr("base_score %q", s)
		}
		t = t[1 : len(t)-1]
	}
	parts := strings.Split(t, ",")
	if len(parts) > maxOutputs {
		return nil, xgbErr("base_score has %d values", len(parts))
	}
	vals := make([]float32, 0, len(parts))
	for _, p := range parts {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 32)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, xgbErr("base_score %q is not a number or a list of numbers", s)
		}
		vals = append(vals, float32(v))
	}
	switch {
	case len(vals) == outputs:
	case len(vals) == 1:
		for len(vals) < outputs {
			vals = append(vals, vals[0])
		}
	default:
		return nil, xgbErr("base_score has %d values for %d outputs", len(vals), outputs)
	}
	if objective == "binary:logistic" {
		for i, v := range vals {
			// RegLossObj::ProbToMargin: clamp into (0, 1) by kRtEps, then the logit.
			const eps = float32(1e-6)
			v = min(max(v, eps), 1-eps)
			vals[i] = -float32(math.Log(float64(1/v - 1)))
		}
	}
	return vals, nil
}

// atoiField parses an integer the model writes as a string (XGBoost writes its parameters so).
func atoiField(name, s string, lo, hi int) (int, error) {
	if s == "" && lo == 0 {
		return 0, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < lo || v > hi {
		return 0, xgbErr("%s %q is not an integer in [%d, %d]", name, s, lo, hi)
	}
	return v, nil
}

func shortInts(v []int64) []int64 {
	if len(v) > 8 {
		return v[:8]
	}
	return v
}
