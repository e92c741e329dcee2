package model

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/streamd/streamd/gbdt"
	"github.com/streamd/streamd/internal/jsonscan"
	"github.com/streamd/streamd/online"
	"github.com/streamd/streamd/stream"
)

// Offline models.
//
// An offline model is a tree ensemble trained outside streamd (XGBoost or LightGBM, package gbdt).
// It scores every event like an online learner and takes part in champion and challenger, the
// prequential evaluation and promotion, but it does not learn: a new model is a new version,
// published to the versions topic (versions.go) and swapped in at a commit-cycle boundary.
//
// Its input is the pipeline's dense feature vector (layout.denseNames): every numeric feature by
// its name, as read from the event before any transform (NaN when missing), and every one-hot
// feature as its category code (the index of the value in the feature's values, NaN for another
// value). Hashed features and stacked margins are not in it. The model's file names the features it
// needs; Bind maps them by name, so a model trained on a subset or another order fits, and one that
// needs a feature the pipeline does not compute is refused naming every missing one.

// OfflineSpec is a model trained offline.
type OfflineSpec struct {
	// File is the model file of version 0, the version a pipeline starts with until another is
	// pushed (XGBoost JSON or UBJSON, LightGBM text; gzip'd or not).
	File string
	// Model is the loaded version 0, for callers that load it themselves (tests, Go users); when
	// set, File is only its name.
	Model *gbdt.Model
	// ExplainTopK: when > 0, each prediction this model publishes (as champion) carries the
	// TreeSHAP contributions of its TopK largest features by absolute value, and the bias.
	ExplainTopK int
	// ExplainMinScore: only predictions with a score at or above it are explained (TreeSHAP
	// costs far more than the prediction, and a fraud analyst reads the high scores). The default,
	// 0, explains every prediction of a binary or multiclass model; a regression model with
	// negative values needs a minimum below them all.
	ExplainMinScore float64
}

// MaxExplainTopK bounds OfflineSpec.ExplainTopK.
const MaxExplainTopK = 100

// catalog holds one offline model's versions on this instance: every valid version read from the
// versions topic (and version 0, the configured file), and which one is live. Tasks read it at
// their cycle boundaries; the versions reader writes it. Its mutex guards versions and refused;
// live is atomic so the boundary check costs one load.
type catalog struct {
	name    string
	names   []string // the pipeline's dense feature names, to Bind every version to
	task    gbdt.Task
	outputs int

	live       atomic.Int64
	refusals   atomic.Int64 // versions (and live pointers) refused, for the metric
	swapsTotal atomic.Int64 // swaps committed by this instance's tasks

	mu       sync.Mutex
	versions map[int64]*gbdt.Model
	refused  map[int64]string // version -> why
}

// ErrVersionRefused wraps every reason an offline model version is refused.
var ErrVersionRefused = errors.New("model: version refused")

func newCatalog(name string, names []string, m *gbdt.Model) (*catalog, error) {
	c := &catalog{name: name, names: names, task: m.Task(), outputs: m.Outputs(),
		versions: map[int64]*gbdt.Model{}, refused: map[int64]string{}}
	if _, err := m.Bind(names); err != nil {
		return nil, fmt.Errorf("model: %s: %w", name, err)
	}
	c.versions[0] = m
	return c, nil
}

// check loads a model file and tells whether it may serve as a version of this model: it must
// load, bind to the pipeline's features, and predict what version 0 predicts (the same task and
// number of outputs, since the evaluation, the label rules and the prediction records assume
// them).
func (c *catalog) check(data []byte) (*gbdt.Model, error) {
	m, err := gbdt.Load(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrVersionRefused, err)
	}
	if _, err := m.Bind(c.names); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrVersionRefused, err)
	}
	if m.Task() != c.task || m.Outputs() != c.outputs {
		return nil, fmt.Errorf("%w: it is a %s model with %d output(s); %s is a %s model with %d", ErrVersionRefused,
			m.Task(), m.Outputs(), c.name, c.task, c.outputs)
	}
	return m, nil
}

// offer adds version v from its file bytes, or records why it is refused.
func (c *catalog) offer(v int64, data []byte) error {
	m, err := c.check(data)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.refused[v] = err.Error()
		delete(c.versions, v)
		c.refusals.Add(1)
		return err
	}
	delete(c.refused, v)
	c.versions[v] = m
	return nil
}

// setLive makes v the live version, if it is a valid one; else the live version stays.
func (c *catalog) setLive(v int64) error {
	c.mu.Lock()
	_, ok := c.versions[v]
	why, refused := c.refused[v]
	c.mu.Unlock()
	switch {
	case refused:
		c.refusals.Add(1)
		return fmt.Errorf("%w: %s version %d cannot be made live: %s", ErrVersionRefused, c.name, v, why)
	case !ok:
		c.refusals.Add(1)
		return fmt.Errorf("%w: %s has no version %d", ErrVersionRefused, c.name, v)
	}
	c.live.Store(v)
	return nil
}

func (c *catalog) get(v int64) *gbdt.Model {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.versions[v]
}

// VersionView is one version of an offline model as this instance knows it.
type VersionView struct {
	Version int64  `json:"version"`
	Library string `json:"library,omitempty"`
	Trees   int    `json:"trees,omitempty"`
	Live    bool   `json:"live,omitempty"`
	Refused string `json:"refused,omitempty"`
}

func (c *catalog) view() []VersionView {
	c.mu.Lock()
	defer c.mu.Unlock()
	live := c.live.Load()
	var out []VersionView
	for v, m := range c.versions {
		out = append(out, VersionView{Version: v, Library: m.Library().String(), Trees: m.NumTrees(), Live: v == live})
	}
	for v, why := range c.refused {
		out = append(out, VersionView{Version: v, Refused: why})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out
}

// offlineLearner is a task's instance of an offline model: the version it scores with, bound to
// the pipeline's dense vector, and its scratch memory. It implements online.Learner so that the
// operator's champion, challengers, evaluation, snapshots and promotion treat it like any model;
// it does not learn, merge or reset. Its state is the version it scores with.
type offlineLearner struct {
	cat      *catalog
	topK     int
	minScore float64 // explain only scores at or above it
	version  int64
	scorer   *gbdt.Scorer
	task     online.Task
	out      []float64 // predictions
	margin   []float64
	// explanations (ExplainTopK > 0)
	contribs []float64
	top      []gbdt.Contribution
	nameJSON [][]byte // the version's feature names, JSON-quoted
	last     float64
	lastCls  int
}

func newOfflineLearner(c *catalog, spec *OfflineSpec) *offlineLearner {
	l := &offlineLearner{cat: c, topK: spec.ExplainTopK, minScore: spec.ExplainMinScore, task: onlineTask(c.task), out: make([]float64, c.outputs), margin: make([]float64, c.outputs)}
	v := c.live.Load()
	if m := c.get(v); m != nil {
		l.use(v, m)
	} else {
		l.use(0, c.get(0))
	}
	return l
}

func onlineTask(t gbdt.Task) online.Task {
	switch t {
	case gbdt.Binary:
		return online.Binary
	case gbdt.Multiclass:
		return online.Multiclass
	}
	return online.Regression
}

// use makes the learner score with version v. Binding allocates: it runs at cycle boundaries and
// restores, never per event.
func (l *offlineLearner) use(v int64, m *gbdt.Model) {
	s, err := m.Bind(l.cat.names)
	if err != nil {
		panic(fmt.Sprintf("model: %s version %d passed its check but does not bind: %v", l.cat.name, v, err))
	}
	l.version, l.scorer = v, s
	if l.topK > 0 {
		l.contribs = make([]float64, m.ContributionsLen())
		l.top = make([]gbdt.Contribution, 0, l.topK)
		l.nameJSON = l.nameJSON[:0]
		for _, n := range m.FeatureNames() {
			l.nameJSON = append(l.nameJSON, jsonscan.AppendString(nil, []byte(n)))
		}
	}
}

// score predicts from the dense vector x. Binary: P(y=1) and class = P >= 0.5; regression: the
// value; multiclass: the argmax class and its probability.
func (l *offlineLearner) score(x []float64) (float64, int) {
	l.scorer.Predict(x, l.out)
	switch l.task {
	case online.Binary:
		l.last, l.lastCls = l.out[0], 0
		if l.out[0] >= 0.5 {
			l.lastCls = 1
		}
	case online.Multiclass:
		best := 0
		for k, p := range l.out {
			if p > l.out[best] {
				best = k
			}
		}
		l.last, l.lastCls = l.out[best], best
	default:
		l.last, l.lastCls = l.out[0], 0
	}
	return l.last, l.lastCls
}

// marginOf returns the model's margin (raw score, before the link) for x: what a stacked online
// learner reads as a feature. Only single-output models are stacked.
func (l *offlineLearner) marginOf(x []float64) float64 {
	l.scorer.Margin(x, l.margin)
	return l.margin[0]
}

// appendExplanation writes `"explanation":{"bias":B,"top":[{"feature":F,"contribution":C},...]}`
// for x and the given output (the predicted class of a multiclass model, else 0).
func (l *offlineLearner) appendExplanation(dst []byte, x []float64, output int) []byte {
	if l.task != online.Multiclass {
		output = 0
	}
	l.scorer.Contributions(x, l.contribs)
	m := l.scorer.Model()
	nf := m.NumFeatures()
	l.top = m.TopK(l.contribs, output, l.topK, l.top)
	dst = append(dst, `,"explanation":{"bias":`...)
	dst = appendFloat(dst, l.contribs[output*(nf+1)+nf])
	dst = append(dst, `,"top":[`...)
	for i, c := range l.top {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"feature":`...)
		dst = append(dst, l.nameJSON[c.Feature]...)
		dst = append(dst, `,"contribution":`...)
		dst = appendFloat(dst, c.Value)
		dst = append(dst, '}')
	}
	return append(dst, "]}"...)
}

// online.Learner.

func (l *offlineLearner) Spec() online.Spec { return nil }
func (l *offlineLearner) Task() online.Task { return l.task }

// Predict returns the score of the last event scored (score); an offline model reads the dense
// vector, not the online learners' sparse one.
func (l *offlineLearner) Predict(online.Vector, []float64) (float64, int) { return l.last, l.lastCls }
func (l *offlineLearner) Learn(online.Vector, float64)                    {}
func (l *offlineLearner) Updates() int64                                  { return 0 }
func (l *offlineLearner) Merge([]online.Learner, []float64) error         { return nil }
func (l *offlineLearner) Reset()                                          {}

const offlineStateTag = 'g'

func (l *offlineLearner) AppendState(dst []byte) []byte {
	return binary.AppendVarint(append(dst, offlineStateTag), l.version)
}

// DecodeState restores the version the state names; if this instance no longer has it (refused
// now, or gone from the versions topic), the live version: the task swaps at its next boundary
// anyway, and every prediction names the version that made it.
func (l *offlineLearner) DecodeState(b []byte) error {
	if len(b) < 2 || b[0] != offlineStateTag {
		return fmt.Errorf("%w: offline model state", errCorrupt)
	}
	v, k := binary.Varint(b[1:])
	if k <= 0 {
		return fmt.Errorf("%w: offline model state", errCorrupt)
	}
	if v == l.version {
		return nil
	}
	m := l.cat.get(v)
	if m == nil {
		v = l.cat.live.Load()
		if m = l.cat.get(v); m == nil {
			return nil
		}
	}
	l.use(v, m)
	return nil
}

// kind names an offline model's kind for the admin API: "gbdt/xgboost" or "gbdt/lightgbm".
func (c *catalog) kind() string {
	return "gbdt/" + c.get(0).Library().String()
}

// denseNames are the names of the dense vector offline models read, in its order.
func (l *layout) denseNames() []string {
	var names []string
	for _, i := range l.dense {
		names = append(names, l.specs[i].Name)
	}
	return names
}

// fillDense writes the dense vector of r into dst (len(l.dense)).
func (l *layout) fillDense(r *raw, dst []float64) {
	for j, i := range l.dense {
		f := &l.specs[i]
		if f.Encoding == Numeric {
			dst[j] = r.nums[l.numSlot[i]]
			continue
		}
		dst[j] = nan
		if c := r.cats[i]; c >= 0 {
			dst[j] = float64(c - int64(l.offset[i]))
		}
	}
}

// newOfflineCatalog loads an offline model's version 0 and binds it to the pipeline's dense
// vector: a model that needs a feature the pipeline does not compute is refused here, at start,
// naming every missing one.
func newOfflineCatalog(ms *ModelSpec, l *layout) (*catalog, error) {
	if ms.Learner != nil {
		return nil, fmt.Errorf("model: %s has both a learner and an offline model", ms.Name)
	}
	o := ms.Offline
	if math.IsNaN(o.ExplainMinScore) {
		return nil, fmt.Errorf("model: %s: explain min score is NaN", ms.Name)
	}
	if o.ExplainTopK < 0 || o.ExplainTopK > MaxExplainTopK {
		return nil, fmt.Errorf("model: %s: explain top-k %d: want 0 (off) to %d", ms.Name, o.ExplainTopK, MaxExplainTopK)
	}
	m := o.Model
	if m == nil {
		var err error
		if m, err = gbdt.LoadFile(o.File); err != nil {
			return nil, fmt.Errorf("model: %s: %w", ms.Name, err)
		}
	}
	c, err := newCatalog(ms.Name, l.denseNames(), m)
	if err != nil {
		var mf *gbdt.MissingFeaturesError
		if errors.As(err, &mf) {
			return nil, fmt.Errorf("model: %s (%s): the model needs features the pipeline does not compute: %s (the pipeline's numeric and one-hot features are: %s)",
				ms.Name, o.File, strings.Join(mf.Missing, ", "), strings.Join(l.denseNames(), ", "))
		}
		return nil, err
	}
	return c, nil
}

// resolveMargins finds the model of each stacked margin feature: an offline model with one
// output.
func (o *Operator) resolveMargins() error {
	var errs []error
	for i := range o.spec.Features {
		f := &o.spec.Features[i]
		if f.Margin == "" {
			continue
		}
		mi := -1
		for j, ms := range o.spec.Models {
			if ms.Name == f.Margin {
				mi = j
			}
		}
		switch {
		case mi < 0:
			errs = append(errs, fmt.Errorf("%w: %s is the margin of %q, which is not one of the models", errFeature, f.Name, f.Margin))
		case o.catalogs[mi] == nil:
			errs = append(errs, fmt.Errorf("%w: %s is the margin of %q, an online learner: stack an offline model", errFeature, f.Name, f.Margin))
		case o.catalogs[mi].outputs != 1:
			errs = append(errs, fmt.Errorf("%w: %s is the margin of %q, which has %d outputs: stack a binary or regression model", errFeature, f.Name, f.Margin, o.catalogs[mi].outputs))
		default:
			o.margins = append(o.margins, marginFeature{slot: o.layout.numSlot[i], model: mi})
		}
	}
	return errors.Join(errs...)
}

// swapVersions runs at the start of each cycle: every offline model whose live version changed
// swaps to it. The swap is not state of its own: a restored task starts from the live version (or
// its snapshot's, and swaps at its first cycle), and each prediction names the version that made
// it.
func (p *processor) swapVersions(t *stream.Task) {
	for _, i := range p.op.offline {
		l := p.m.learners[i].(*offlineLearner)
		c := p.op.catalogs[i]
		v := c.live.Load()
		if v == l.version {
			continue
		}
		m := c.get(v)
		if m == nil {
			continue
		}
		from := l.version
		l.use(v, m)
		t.Logger().Info("offline model swapped", "model", c.name, "from", from, "to", v)
	}
}

// commitSwaps counts, once a cycle committed, the offline models whose version differs from the
// one of the task's previous committed cycle.
func (p *processor) commitSwaps() {
	for _, i := range p.op.offline {
		v := p.m.learners[i].(*offlineLearner).version
		if v != p.committedVersion[i] {
			p.op.catalogs[i].swapsTotal.Add(1)
			p.committedVersion[i] = v
		}
	}
}
