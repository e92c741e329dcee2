package online

import (
	"fmt"
	"math"
	"slices"

	"github.com/streamd/streamd/online/drift"
	"github.com/streamd/streamd/online/internal/wire"
)

// ARF is the Adaptive Random Forest (Gomes et al., "Adaptive random forests for evolving data
// stream classification", Machine Learning 2017), after River's forest.ARFClassifier and
// ARFRegressor at their defaults. Models Hoeffding trees (Tree for classification, the
// regressor's tree for regression) each learn every example with a weight drawn from
// Poisson(Lambda) (online bagging; an example drawn 0 times is not learnt by that tree), and each
// leaf tracks only MaxFeatures features drawn at random from those of the first example it learns.
// Every tree has two ADWIN detectors on its own prequential error (classification: 1 for a
// mistake, 0 otherwise; regression: the error min-max normalized with the tree's running mean and
// ±3 standard deviations): a warning (delta WarningDelta) starts a background tree, which learns
// beside it, and a drift (delta DriftDelta) replaces the tree by its background tree, or by a new
// tree if none was started. A classifier votes with every tree's class probabilities weighted by
// the tree's accuracy since it was created; a regressor predicts the median (or mean) of its
// trees' predictions.
//
// The forest draws everything (Poisson weights, feature subsets) from one splitmix64 generator
// seeded by Seed, whose state is part of the model's state: the same seed and history give the
// same forest, bit for bit, and a forest restored from its state continues exactly as the
// original. River's forest draws from Python's Mersenne Twister, so the two forests are different
// draws of the same algorithm and compare only on average (docs/BENCHMARKS.md).
type ARF struct {
	spec    Spec
	cls     *ARFClassifierSpec // one of cls and reg is set
	reg     *ARFRegressorSpec
	classes int
	rng     *splitmix64 // shared by the trees, which keep the pointer
	// maxFeatures is the feature subset size, resolved from the first example learnt (0 before).
	maxFeatures int
	members     []arfMember
	updates     int64
	// warnings and drifts count the detections since the forest was created (or Reset).
	warnings, drifts int64
	warnCfg          drift.ADWINConfig
	driftCfg         drift.ADWINConfig
	// scratch
	probs, votes, preds []float64
}

type arfMember struct {
	tree, bg     *Tree // classification
	rtree, rbg   *regTree
	warn, detect *drift.ADWIN
	// classification: the tree's prequential accuracy since it was created (River's Accuracy)
	correct, seen float64
	// regression: the running statistics of the tree's errors, to normalize them for ADWIN
	norm varStat
}

const (
	magicARF   = 'F'
	versionARF = 1
	// MaxARFModels bounds the trees of a forest.
	MaxARFModels = 256
)

// Kinds of the adaptive random forest.
const (
	KindARFClassifier = "arf_classifier"
	KindARFRegressor  = "arf_regressor"
)

var arfClassifierKind = &kindInfo{
	name: KindARFClassifier, code: 21,
	zero: func() Spec { return ARFClassifierSpec{} },
	read: func(r *wire.Reader) Spec {
		var s ARFClassifierSpec
		s.Dim = int(r.Int("spec dim", 1, MaxDim))
		s.Classes = int(r.Int("spec classes", 0, MaxClasses))
		s.ForestSpec = readForestSpec(r)
		s.GracePeriod = int(r.Int("spec grace_period", 0, math.MaxInt32))
		s.MaxDepth = int(r.Int("spec max_depth", 0, MaxDepth))
		s.Delta, s.Tau = r.Float(), r.Float()
		return s
	},
}

var arfRegressorKind = &kindInfo{
	name: KindARFRegressor, code: 22,
	zero: func() Spec { return ARFRegressorSpec{} },
	read: func(r *wire.Reader) Spec {
		var s ARFRegressorSpec
		s.ForestSpec = readForestSpec(r)
		a := r.Int("spec aggregation", 0, int64(len(arfAggregations)-1))
		if r.Err() == nil {
			s.Aggregation = arfAggregations[a]
		}
		s.TreeRegressorSpec = readTreeRegressorSpec(r)
		return s
	},
}

// ForestSpec holds the keys both forests share.
type ForestSpec struct {
	// Models is the number of trees (default 10, at most MaxARFModels).
	Models int `yaml:"models"`
	// MaxFeatures is the number of features each leaf may split on; 0 (the default) means
	// round(sqrt(m)), m the number of features of the first example learnt (River's "sqrt").
	MaxFeatures int `yaml:"max_features"`
	// Lambda is the mean of the Poisson weights (default 6).
	Lambda float64 `yaml:"lambda"`
	// Seed seeds the forest's generator (0 is a seed like any other).
	Seed int64 `yaml:"seed"`
	// DriftDelta and WarningDelta are the ADWIN confidences of the drift and warning detectors
	// (defaults 0.001 and 0.01).
	DriftDelta   float64 `yaml:"drift_delta"`
	WarningDelta float64 `yaml:"warning_delta"`
}

func (f ForestSpec) append(dst []byte) []byte {
	dst = wire.AppendVarint(dst, int64(f.Models))
	dst = wire.AppendVarint(dst, int64(f.MaxFeatures))
	dst = wire.AppendVarint(dst, f.Seed)
	for _, v := range [...]float64{f.Lambda, f.DriftDelta, f.WarningDelta} {
		dst = wire.AppendFloat(dst, v)
	}
	return dst
}

func readForestSpec(r *wire.Reader) ForestSpec {
	var f ForestSpec
	f.Models = int(r.Int("spec models", 0, MaxARFModels))
	f.MaxFeatures = int(r.Int("spec max_features", 0, MaxDim))
	f.Seed = r.Varint()
	for _, v := range [...]*float64{&f.Lambda, &f.DriftDelta, &f.WarningDelta} {
		*v = r.Float()
	}
	return f
}

func (f *ForestSpec) defaults() {
	defInt(&f.Models, 10)
	def(&f.Lambda, 6)
	def(&f.DriftDelta, 0.001)
	def(&f.WarningDelta, 0.01)
}

func (f ForestSpec) check(c *specCheck, dim int) {
	if f.Models < 1 || f.Models > MaxARFModels {
		c.bad("models", f.Models, fmt.Sprintf("in [1, %d]", MaxARFModels))
	}
	if f.MaxFeatures < 0 || f.MaxFeatures > dim {
		c.bad("max_features", f.MaxFeatures, "in [0, dim] (0: the square root of the features)")
	}
	if !(f.Lambda > 0 && f.Lambda <= 100) {
		c.bad("lambda", f.Lambda, "in (0, 100]")
	}
	for _, d := range []struct {
		k string
		v float64
	}{{"drift_delta", f.DriftDelta}, {"warning_delta", f.WarningDelta}} {
		if !(d.v > 0 && d.v < 1) {
			c.bad(d.k, d.v, "in (0, 1)")
		}
	}
}

// ARFClassifierSpec configures arf_classifier. The defaults are River's ARFClassifier's: 10 trees,
// sqrt feature subsets, Poisson(6), ADWIN drift 0.001 and warning 0.01, and trees with grace period
// 50, delta 0.01, tau 0.05 (depth bounded at 20, which River leaves unbounded).
type ARFClassifierSpec struct {
	// Dim is the size of the feature space. Default 1<<18, at most MaxDim.
	Dim int `yaml:"dim"`
	// Classes is the number of classes (default 2, at most MaxClasses).
	Classes    int `yaml:"classes"`
	ForestSpec `yaml:",inline"`
	// The trees' GracePeriod, Delta, Tau and MaxDepth (see TreeSpec).
	GracePeriod int     `yaml:"grace_period"`
	Delta       float64 `yaml:"delta"`
	Tau         float64 `yaml:"tau"`
	MaxDepth    int     `yaml:"max_depth"`
}

func (s ARFClassifierSpec) Kind() string              { return KindARFClassifier }
func (s ARFClassifierSpec) InputDim() int             { return s.Dim }
func (s ARFClassifierSpec) WithInputDim(dim int) Spec { s.Dim = dim; return s }
func (s ARFClassifierSpec) NumClasses() int           { return s.Classes }
func (s ARFClassifierSpec) newLearner() Learner       { return newARF(s) }

func (s ARFClassifierSpec) Task() Task {
	if s.Classes > 2 {
		return Multiclass
	}
	return Binary
}

func (s ARFClassifierSpec) appendParams(dst []byte) []byte {
	dst = wire.AppendVarint(dst, int64(s.Dim))
	dst = wire.AppendVarint(dst, int64(s.Classes))
	dst = s.ForestSpec.append(dst)
	dst = wire.AppendVarint(dst, int64(s.GracePeriod))
	dst = wire.AppendVarint(dst, int64(s.MaxDepth))
	dst = wire.AppendFloat(dst, s.Delta)
	return wire.AppendFloat(dst, s.Tau)
}

func (s ARFClassifierSpec) WithDefaults() Spec {
	defInt(&s.Dim, DefaultDim)
	defInt(&s.Classes, 2)
	s.ForestSpec.defaults()
	defInt(&s.GracePeriod, 50)
	def(&s.Delta, 0.01)
	def(&s.Tau, 0.05)
	defInt(&s.MaxDepth, 20)
	return s
}

// treeSpec is the spec of the forest's trees.
func (s ARFClassifierSpec) treeSpec() TreeSpec {
	return TreeSpec{Dim: s.Dim, Classes: s.Classes, GracePeriod: s.GracePeriod, Delta: s.Delta, Tau: s.Tau, MaxDepth: s.MaxDepth}
}

func (s ARFClassifierSpec) Validate() error {
	var c specCheck
	s.ForestSpec.check(&c, s.Dim)
	if err := s.treeSpec().Validate(); err != nil {
		c.errs = append(c.errs, err)
	}
	return c.err()
}

var arfAggregations = []string{"median", "mean"}

// ARFRegressorSpec configures arf_regressor. The defaults are River's ARFRegressor's: 10 trees,
// sqrt feature subsets, Poisson(6), ADWIN drift 0.001 and warning 0.01, the median of the trees'
// predictions, and tree regressors with grace period 50 and delta 0.01 (otherwise
// TreeRegressorSpec's defaults).
type ARFRegressorSpec struct {
	ForestSpec `yaml:",inline"`
	// Aggregation is "median" (default) or "mean".
	Aggregation       string `yaml:"aggregation"`
	TreeRegressorSpec `yaml:",inline"`
}

func (s ARFRegressorSpec) Kind() string              { return KindARFRegressor }
func (s ARFRegressorSpec) Task() Task                { return Regression }
func (s ARFRegressorSpec) InputDim() int             { return s.Dim }
func (s ARFRegressorSpec) WithInputDim(dim int) Spec { s.Dim = dim; return s }
func (s ARFRegressorSpec) newLearner() Learner       { return newARF(s) }

func (s ARFRegressorSpec) appendParams(dst []byte) []byte {
	dst = s.ForestSpec.append(dst)
	dst = wire.AppendUvarint(dst, uint64(slices.Index(arfAggregations, s.Aggregation)))
	return s.TreeRegressorSpec.appendParams(dst)
}

func (s ARFRegressorSpec) WithDefaults() Spec {
	s.ForestSpec.defaults()
	if s.Aggregation == "" {
		s.Aggregation = "median"
	}
	defInt(&s.GracePeriod, 50)
	def(&s.Delta, 0.01)
	s.TreeRegressorSpec = s.TreeRegressorSpec.WithDefaults().(TreeRegressorSpec)
	return s
}

func (s ARFRegressorSpec) Validate() error {
	var c specCheck
	s.ForestSpec.check(&c, s.Dim)
	if !slices.Contains(arfAggregations, s.Aggregation) {
		c.bad("aggregation", s.Aggregation, `"median" or "mean"`)
	}
	if err := s.TreeRegressorSpec.Validate(); err != nil {
		c.errs = append(c.errs, err)
	}
	return c.err()
}

func newARF(spec Spec) *ARF {
	m := &ARF{spec: spec, rng: new(splitmix64)}
	var f ForestSpec
	switch s := spec.(type) {
	case ARFClassifierSpec:
		m.cls, f, m.classes = &s, s.ForestSpec, s.Classes
	case ARFRegressorSpec:
		m.reg, f = &s, s.ForestSpec
	}
	m.warnCfg = drift.ADWINConfig{Delta: f.WarningDelta}
	m.driftCfg = drift.ADWINConfig{Delta: f.DriftDelta}
	m.warnCfg.EnsureDefaults()
	m.driftCfg.EnsureDefaults()
	m.members = make([]arfMember, f.Models)
	m.probs = make([]float64, max(m.classes, 1))
	m.votes = make([]float64, max(m.classes, 1))
	m.preds = make([]float64, f.Models)
	m.Reset()
	return m
}

func (m *ARF) forest() ForestSpec {
	if m.cls != nil {
		return m.cls.ForestSpec
	}
	return m.reg.ForestSpec
}

func (m *ARF) Spec() Spec     { return m.spec }
func (m *ARF) Task() Task     { return m.spec.Task() }
func (m *ARF) Updates() int64 { return m.updates }

func (m *ARF) Reset() {
	f := m.forest()
	*m.rng = splitmix64(uint64(f.Seed))
	m.maxFeatures = 0
	m.updates, m.warnings, m.drifts = 0, 0, 0
	for i := range m.members {
		mb := &m.members[i]
		*mb = arfMember{}
		mb.warn = m.newADWIN(m.warnCfg)
		mb.detect = m.newADWIN(m.driftCfg)
		m.newTree(mb, false)
	}
}

func (m *ARF) newADWIN(c drift.ADWINConfig) *drift.ADWIN {
	a, err := drift.NewADWIN(c)
	if err != nil {
		panic(err) // the spec was validated
	}
	return a
}

// newTree puts a new tree in a member's main (or background) place.
func (m *ARF) newTree(mb *arfMember, background bool) {
	if m.cls != nil {
		t := newTree(m.cls.treeSpec())
		t.maxFeatures, t.rng = max(m.maxFeatures, 1), m.rng
		if background {
			mb.bg = t
		} else {
			mb.tree = t
		}
		return
	}
	t := &newTreeRegressor(m.reg.TreeRegressorSpec).t
	t.maxFeatures, t.rng = max(m.maxFeatures, 1), m.rng
	if background {
		mb.rbg = t
	} else {
		mb.rtree = t
	}
}

// Trees returns the number of trees and of background trees.
func (m *ARF) Trees() (trees, background int) {
	for _, mb := range m.members {
		if mb.bg != nil || mb.rbg != nil {
			background++
		}
	}
	return len(m.members), background
}

// Detections returns the warnings (each started a background tree) and drifts (each replaced a
// tree) the trees' detectors raised since the forest was created or Reset.
func (m *ARF) Detections() (warnings, drifts int64) { return m.warnings, m.drifts }

// Nodes returns the number of nodes of all trees, background trees included.
func (m *ARF) Nodes() int {
	n := 0
	for _, mb := range m.members {
		for _, t := range [...]*Tree{mb.tree, mb.bg} {
			if t != nil {
				n += t.nodes
			}
		}
		for _, t := range [...]*regTree{mb.rtree, mb.rbg} {
			if t != nil {
				n += t.nodes
			}
		}
	}
	return n
}

func (m *ARF) Predict(x Vector, probs []float64) (float64, int) {
	if m.reg != nil {
		return m.predictReg(x), 0
	}
	if len(probs) < m.classes {
		probs = m.probs
	}
	probs = probs[:m.classes]
	clear(probs)
	total := 0.0
	for i := range m.members {
		mb := &m.members[i]
		if mb.tree.updates == 0 {
			continue // River's empty tree has no vote
		}
		mb.tree.Predict(x, m.votes)
		w := 1.0
		if mb.seen > 0 && mb.correct > 0 {
			w = mb.correct / mb.seen
		}
		for k, v := range m.votes {
			probs[k] += w * v
			total += w * v
		}
	}
	if total > 0 {
		for k := range probs {
			probs[k] /= total
		}
	} else {
		for k := range probs {
			probs[k] = 1 / float64(m.classes)
		}
	}
	return decide(probs)
}

func (m *ARF) predictReg(x Vector) float64 {
	p := m.preds[:len(m.members)]
	for i := range m.members {
		p[i] = m.members[i].rtree.predict(x)
	}
	if m.reg.Aggregation == "mean" {
		s := 0.0
		for _, v := range p {
			s += v
		}
		return s / float64(len(p))
	}
	slices.Sort(p)
	n := len(p)
	if n%2 == 1 {
		return p[n/2]
	}
	return (p[n/2-1] + p[n/2]) / 2 // numpy's median
}

// poisson draws from Poisson(rate) as River's utils.random.poisson does (Knuth's product of
// uniforms).
func (m *ARF) poisson(rate float64) int {
	l := math.Exp(-rate)
	k, p := 0, 1.0
	for p > l {
		k++
		p *= m.rng.float64()
	}
	return k - 1
}

func (m *ARF) Learn(x Vector, y float64) {
	if !finite(y) {
		return
	}
	if m.cls != nil && (y < 0 || y >= float64(m.classes) || y != math.Trunc(y)) {
		return
	}
	if m.maxFeatures == 0 {
		m.resolveMaxFeatures(x)
	}
	lambda := m.forest().Lambda
	for i := range m.members {
		mb := &m.members[i]
		var in float64 // the detectors' input
		if m.cls != nil {
			c := int(y)
			pred := -1
			if mb.tree.updates > 0 {
				_, pred = mb.tree.Predict(x, m.votes)
			}
			mb.seen++
			if pred == c {
				mb.correct++
				in = 0
			} else {
				in = 1
			}
			k := m.poisson(lambda)
			if k == 0 {
				continue
			}
			if mb.bg != nil {
				mb.bg.learnW(x, c, float64(k))
			}
			mb.tree.learnW(x, c, float64(k))
		} else {
			pred := mb.rtree.predict(x)
			k := m.poisson(lambda)
			if k == 0 {
				continue
			}
			if mb.rbg != nil {
				mb.rbg.learn(x, y, float64(k))
			}
			mb.rtree.learn(x, y, float64(k))
			in = m.normalizedError(mb, y-pred)
		}
		if mb.warn.Update(in) {
			m.warnings++
			m.newTree(mb, true)
			mb.warn.Reset()
		}
		if mb.detect.Update(in) {
			m.drifts++
			if mb.bg != nil || mb.rbg != nil {
				mb.tree, mb.bg, mb.rtree, mb.rbg = mb.bg, nil, mb.rbg, nil
				mb.warn.Reset()
			} else {
				m.newTree(mb, false)
			}
			mb.detect.Reset()
			mb.correct, mb.seen = 0, 0
		}
	}
	m.updates++
}

// normalizedError is River's ARFRegressor input to the detectors: the error min-max normalized to
// [0, 1] by the tree's running mean error ± 3 standard deviations (0.5 at first).
func (m *ARF) normalizedError(mb *arfMember, e float64) float64 {
	mb.norm.update(e, 1)
	if mb.norm.n == 1 {
		return 0.5
	}
	sd := math.Sqrt(mb.norm.variance())
	if sd > 0 {
		return (e + 3*sd) / (6 * sd)
	}
	return 0.5
}

// resolveMaxFeatures fixes the subset size from the first example learnt (River's "sqrt": the
// rounded square root of its number of features, ties to even) and hands it to the trees.
func (m *ARF) resolveMaxFeatures(x Vector) {
	k := m.forest().MaxFeatures
	if k == 0 {
		n := 0
		for _, f := range x {
			if f.Index < uint32(m.spec.InputDim()) && finite(f.Value) {
				n++
			}
		}
		k = max(int(math.RoundToEven(math.Sqrt(float64(n)))), 1)
	}
	m.maxFeatures = k
	for i := range m.members {
		m.setTreeFeatures(&m.members[i])
	}
}

func (m *ARF) setTreeFeatures(mb *arfMember) {
	for _, t := range [...]*Tree{mb.tree, mb.bg} {
		if t != nil {
			t.maxFeatures = max(m.maxFeatures, 1)
		}
	}
	for _, t := range [...]*regTree{mb.rtree, mb.rbg} {
		if t != nil {
			t.maxFeatures = max(m.maxFeatures, 1)
		}
	}
}

func (m *ARF) AppendState(dst []byte) []byte {
	dst = wire.AppendHeader(dst, magicARF, versionARF)
	switch {
	case m.cls != nil:
		dst = appendSpec(dst, *m.cls)
	default:
		dst = appendSpec(dst, *m.reg)
	}
	dst = wire.AppendVarint(dst, m.updates)
	dst = wire.AppendVarint(dst, m.warnings)
	dst = wire.AppendVarint(dst, m.drifts)
	dst = wire.AppendUvarint(dst, uint64(*m.rng))
	dst = wire.AppendVarint(dst, int64(m.maxFeatures))
	for i := range m.members {
		mb := &m.members[i]
		if m.cls != nil {
			dst = mb.tree.appendBody(dst)
			dst = wire.AppendBool(dst, mb.bg != nil)
			if mb.bg != nil {
				dst = mb.bg.appendBody(dst)
			}
			dst = wire.AppendFloat(dst, mb.correct)
			dst = wire.AppendFloat(dst, mb.seen)
		} else {
			dst = mb.rtree.appendState(dst)
			dst = wire.AppendBool(dst, mb.rbg != nil)
			if mb.rbg != nil {
				dst = mb.rbg.appendState(dst)
			}
			dst = appendVar(dst, mb.norm)
		}
		dst = appendADWIN(dst, mb.warn)
		dst = appendADWIN(dst, mb.detect)
	}
	return dst
}

func appendADWIN(dst []byte, a *drift.ADWIN) []byte {
	n := len(dst)
	dst = a.AppendState(dst)
	// Length-prefixed: the detector decodes from its own bytes.
	st := append([]byte(nil), dst[n:]...)
	return wire.AppendBytes(dst[:n], st)
}

func (m *ARF) DecodeState(b []byte) error {
	r := wire.NewReader(b)
	if v := r.Header(magicARF, "forest"); r.Err() == nil && v != versionARF {
		r.Fail("forest: version %d", v)
	}
	var spec Spec
	if m.cls != nil {
		spec = readSpecOf[ARFClassifierSpec](r, "forest")
	} else {
		spec = readSpecOf[ARFRegressorSpec](r, "forest")
	}
	if r.Err() != nil {
		return r.Err()
	}
	d := newARF(spec)
	d.updates = r.Int("forest updates", 0, math.MaxInt64)
	d.warnings = r.Int("forest warnings", 0, math.MaxInt64)
	d.drifts = r.Int("forest drifts", 0, math.MaxInt64)
	*d.rng = splitmix64(r.Uvarint())
	d.maxFeatures = int(r.Int("forest max features", 0, int64(spec.InputDim())))
	for i := range d.members {
		if r.Err() != nil {
			break
		}
		mb := &d.members[i]
		d.setTreeFeatures(mb)
		if d.cls != nil {
			mb.tree.readBody(r, versionTree)
			if r.Bool() {
				d.newTree(mb, true)
				mb.bg.readBody(r, versionTree)
			}
			mb.correct = r.NonNeg("forest correct")
			mb.seen = r.NonNeg("forest seen")
			if r.Err() == nil && mb.correct > mb.seen {
				r.Fail("forest: %v correct of %v", mb.correct, mb.seen)
			}
		} else {
			mb.rtree.readState(r)
			if r.Bool() {
				d.newTree(mb, true)
				mb.rbg.readState(r)
			}
			mb.norm = readVar(r, "forest norm")
		}
		readADWIN(r, mb.warn)
		readADWIN(r, mb.detect)
	}
	if err := r.End("forest"); err != nil {
		return err
	}
	*m = *d
	return nil
}

func readADWIN(r *wire.Reader, a *drift.ADWIN) {
	st := r.Bytes("forest adwin", r.Len())
	if r.Err() != nil {
		return
	}
	if err := a.DecodeState(st); err != nil {
		r.Fail("forest: %v", err)
	}
}

// Merge keeps the replica with the largest merge weight (the first on ties), as the trees' Merge
// does: a forest is trees plus the detectors and accuracies that pick and weigh them, and none of
// it averages; the best-informed replica is spread to the others.
func (m *ARF) Merge(replicas []Learner, weights []float64) error {
	return mergeKeepHeaviest(m, replicas, weights, func(x, y *ARF) bool { return x.spec == y.spec })
}
