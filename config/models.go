package config

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/streamd/streamd/gbdt"
	"github.com/streamd/streamd/model"
	"github.com/streamd/streamd/online"
	"github.com/streamd/streamd/stream"
	"github.com/streamd/streamd/window"
	"github.com/streamd/streamd/window/agg"
)

// Feature is one model input: a source field (`from`) or a window aggregate of the entity key as of
// the event (`window` + `agg`).
type Feature struct {
	Name      string          `yaml:"name"`
	From      string          `yaml:"from"`
	Window    *FeatureWindow  `yaml:"window"`
	Agg       *Agg            `yaml:"agg"`
	Encode    string          `yaml:"encode"`
	Buckets   int             `yaml:"buckets"`
	Transform []TransformStep `yaml:"transform"`
	// MarginOf names an offline model whose margin is this feature (stacking).
	MarginOf string `yaml:"margin_of"`
}

// FeatureWindow is the sliding window of a window feature.
type FeatureWindow struct {
	Kind       string   `yaml:"kind"`
	Size       Duration `yaml:"size"`
	Resolution Duration `yaml:"resolution"`
}

// TransformStep is `log1p`, `standardize`, or `{clip: [MIN, MAX]}`.
type TransformStep struct {
	Kind     string
	Min, Max float64
}

func (s *TransformStep) parseNode(n *yaml.Node, text func(*yaml.Node) (string, error)) error {
	switch n.Kind {
	case yaml.ScalarNode:
		v, err := text(n)
		if err != nil {
			return err
		}
		switch v {
		case "log1p", "standardize":
			s.Kind = v
			return nil
		case "clip":
			return fmt.Errorf("clip needs bounds: {clip: [0, 1000]}")
		}
		return fmt.Errorf("%q: use log1p, standardize or {clip: [MIN, MAX]}", v)
	case yaml.MappingNode:
		if len(n.Content) != 2 || n.Content[0].Value != "clip" || n.Content[1].Kind != yaml.SequenceNode || len(n.Content[1].Content) != 2 {
			return fmt.Errorf("write {clip: [MIN, MAX]}")
		}
		var err error
		vals := [2]float64{}
		for i, e := range n.Content[1].Content {
			t, terr := text(e)
			if terr != nil {
				return terr
			}
			if vals[i], err = strconv.ParseFloat(t, 64); err != nil {
				return fmt.Errorf("clip bound %q is not a number", t)
			}
		}
		if vals[0] > vals[1] {
			return fmt.Errorf("clip: min %g is above max %g", vals[0], vals[1])
		}
		s.Kind, s.Min, s.Max = "clip", vals[0], vals[1]
		return nil
	}
	return fmt.Errorf("write log1p, standardize or {clip: [MIN, MAX]}")
}

// Labels says where the models' labels come from.
type Labels struct {
	Topic   string   `yaml:"topic"`
	Key     string   `yaml:"key"`
	EventID string   `yaml:"event_id"`
	Field   string   `yaml:"field"`
	TTL     Duration `yaml:"ttl"`
	// MaxWaiting bounds the labels per partition that wait for an event not seen yet.
	MaxWaiting int `yaml:"max_waiting"`
	// Classes names the classes of string labels, in class order; MaxClasses bounds the classes
	// learned in order of first appearance when they are not declared (model/classes.go).
	Classes    []string `yaml:"classes"`
	MaxClasses int      `yaml:"max_classes"`
}

// stringLabels reports whether the labels are class names: a string label field in the events,
// or declared or learned classes.
func (c *Config) stringLabels() bool {
	l := &c.Labels
	if len(l.Classes) > 0 || l.MaxClasses > 0 {
		return true
	}
	if l.Topic == "" && l.Field != "" {
		if fs := c.Source.Fields[l.Field]; fs != nil && fs.Type == "string" {
			return true
		}
	}
	return false
}

// Models configures the models that score every event.
type Models struct {
	Champion      string        `yaml:"champion"`
	Drift         Drift         `yaml:"drift"`
	MergeInterval DurationOrOff `yaml:"merge_interval"`
	SnapshotEvery int           `yaml:"snapshot_every"`
	// VersionsTopic is the compacted topic of the offline models' versions; default
	// <app>-model-versions.
	VersionsTopic string       `yaml:"versions_topic"`
	List          []ModelEntry `yaml:"list"`
}

// Drift configures drift detection on the champion's per-example loss or error
// (model.DriftSpec).
type Drift struct {
	Detector  string  `yaml:"detector"`
	Action    string  `yaml:"action"`
	Signal    string  `yaml:"signal"`
	Direction string  `yaml:"direction"`
	Delta     float64 `yaml:"delta"`
	Threshold float64 `yaml:"threshold"`
	Topic     string  `yaml:"topic"`
}

// ModelEntry is one model: an online learner, or a model trained offline.
type ModelEntry struct {
	Name    string   `yaml:"name"`
	Learner Learner  `yaml:"learner"`
	Offline *Offline `yaml:"offline"`
	// MinExamples: labelled examples learned before the model's predictions decide a class
	// (model.ModelSpec.MinExamples).
	MinExamples int `yaml:"min_examples"`
	// TopK bounds the class probabilities of a multiclass model's predictions (model.ModelSpec.TopK).
	TopK int `yaml:"top_k"`
	// ClassWeights: `balanced`, or a weight per class label ({fraud: 20, legit: 1}).
	ClassWeights ClassWeights `yaml:"class_weights"`
}

// ClassWeights is a model's class weights: the word balanced, or a mapping of class labels (the
// class names of string labels, true and false for bool labels, else the class index) to weights.
type ClassWeights struct {
	Balanced bool
	ByLabel  map[string]float64
	order    []string // the labels as written, for messages
}

func (w *ClassWeights) parseNode(n *yaml.Node, text func(*yaml.Node) (string, error)) error {
	switch n.Kind {
	case yaml.ScalarNode:
		v, err := text(n)
		if err != nil {
			return err
		}
		if v != "balanced" {
			return fmt.Errorf("%q: write balanced, or a weight per class: {fraud: 20, legit: 1}", v)
		}
		w.Balanced = true
		return nil
	case yaml.MappingNode:
		w.ByLabel = map[string]float64{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			t, err := text(n.Content[i+1])
			if err != nil {
				return err
			}
			x, err := strconv.ParseFloat(t, 64)
			if err != nil || !(x > 0) || math.IsInf(x, 0) {
				return fmt.Errorf("the weight of %s is %q: want a finite number above 0", k, t)
			}
			if _, dup := w.ByLabel[k]; dup {
				return fmt.Errorf("class %s is given twice", k)
			}
			w.ByLabel[k] = x
			w.order = append(w.order, k)
		}
		return nil
	}
	return fmt.Errorf("write balanced, or a weight per class: {fraud: 20, legit: 1}")
}

// classWeights resolves w against the pipeline's labels into one weight per class index (a class
// not given weighs 1), or reports the labels that name no class.
func (c *Config) classWeights(w *ClassWeights, classes int) ([]float64, error) {
	if len(w.ByLabel) == 0 {
		return nil, nil
	}
	out := make([]float64, classes)
	for i := range out {
		out[i] = 1
	}
	var bad []string
	for _, k := range w.order {
		idx := -1
		switch {
		case len(c.Labels.Classes) > 0:
			for i, name := range c.Labels.Classes {
				if name == k {
					idx = i
				}
			}
		case k == "true" && classes == 2:
			idx = 1
		case k == "false" && classes == 2:
			idx = 0
		default:
			if i, err := strconv.Atoi(k); err == nil && i >= 0 && i < classes {
				idx = i
			}
		}
		if idx < 0 {
			bad = append(bad, k)
			continue
		}
		out[idx] = w.ByLabel[k]
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("%s name no class of the model (classes: labels.classes by name, bool labels true and false, else 0 to %d)", strings.Join(bad, ", "), classes-1)
	}
	return out, nil
}

// Offline is a model trained offline (XGBoost or LightGBM): its file is version 0; later
// versions come from the versions topic (streamd model push).
type Offline struct {
	File            string  `yaml:"file"`
	ExplainTopK     int     `yaml:"explain_top_k"`
	ExplainMinScore float64 `yaml:"explain_min_score"`
}

func (l *Learner) given() bool { return l.Kind != "" || l.spec.IsValid() }

// denseFeatureNames are the names of the features offline models can read (model.layout's dense
// vector): numbers and one-hot categories, not hashed ones or margins.
func (c *Config) denseFeatureNames() []string {
	var names []string
	for _, f := range c.Features {
		if f.MarginOf == "" && f.Encode != "hash" {
			names = append(names, f.Name)
		}
	}
	return names
}

// validateOffline checks an offline model entry: its file loads and binds to the pipeline's
// features (naming every one missing).
func (c *Config) validateOffline(v *validator, key string, e *ModelEntry) {
	o := e.Offline
	if e.Learner.given() {
		v.bad(key, "a model has a learner or is offline, not both")
	}
	if o.ExplainTopK < 0 || o.ExplainTopK > model.MaxExplainTopK {
		v.bad(key+".offline.explain_top_k", "%d: want 0 (off) to %d", o.ExplainTopK, model.MaxExplainTopK)
	}

	if o.File == "" {
		v.bad(key+".offline.file", "required: the model file (XGBoost JSON or UBJSON, LightGBM text)")
		return
	}
	m, err := gbdt.LoadFile(o.File)
	if err != nil {
		v.bad(key+".offline.file", "%v", err)
		return
	}
	names := c.denseFeatureNames()
	if _, err := m.Bind(names); err != nil {
		var mf *gbdt.MissingFeaturesError
		if errors.As(err, &mf) {
			v.bad(key+".offline.file", "%s needs features the pipeline does not compute: %s (add them to features; offline models read numbers and one-hot features: %s)",
				o.File, strings.Join(mf.Missing, ", "), strings.Join(names, ", "))
			return
		}
		v.bad(key+".offline.file", "%v", err)
	}
}

// Learner is a model's learner block. Its kind picks the spec type of online's registry
// (online.NewSpec) that the block's other keys decode into, so each learner's keys, defaults and
// checks are declared once, with the learner, in online/.
type Learner struct {
	// Kind is the kind as written.
	Kind string
	// spec points to the decoded spec; nil when the kind is unknown.
	spec reflect.Value
}

func (l *Learner) chooseKind(kind string) any {
	l.Kind = kind
	s, err := online.NewSpec(kind)
	if err != nil {
		l.spec = reflect.Value{}
		return nil
	}
	l.spec = reflect.New(reflect.TypeOf(s))
	l.spec.Elem().Set(reflect.ValueOf(s))
	return l.spec.Interface()
}

// Spec returns the decoded spec (defaults not applied), or an error naming the kinds when the
// kind is unknown.
func (l *Learner) Spec() (online.Spec, error) {
	if !l.spec.IsValid() {
		return online.NewSpec(l.Kind)
	}
	return l.spec.Elem().Interface().(online.Spec), nil
}

func (c *Config) hasModels() bool { return len(c.Models.List) > 0 }

func (c *Config) validateModels(v *validator) {
	s := &c.Source
	names := map[string]bool{}
	for i, f := range c.Features {
		key := fmt.Sprintf("features[%d]", i)
		v.name(key+".name", f.Name, true)
		if names[f.Name] {
			v.bad(key+".name", "%q is used by two features", f.Name)
		}
		names[f.Name] = true
		switch {
		case f.MarginOf != "":
			if f.From != "" || f.Window != nil || f.Encode != "" {
				v.bad(key+".margin_of", "a margin is a number of its own: no from, window or encode")
			}
			found := false
			for _, e := range c.Models.List {
				if e.Name == f.MarginOf {
					found = true
					if e.Offline == nil {
						v.bad(key+".margin_of", "%q is an online learner: stack an offline model", f.MarginOf)
					}
				}
			}
			if !found {
				v.bad(key+".margin_of", "%q is not in models.list", f.MarginOf)
			}
		case f.From != "" && f.Window != nil:
			v.bad(key, "a feature reads a field (from) or a window, not both")
		case f.From == "" && f.Window == nil:
			v.bad(key, "give from: FIELD or window: {...} with agg")
		case f.From != "":
			fs, ok := c.fieldSpec(f.From)
			if !ok {
				v.bad(key+".from", "field %q is not declared in %s", f.From, c.fieldsWhere())
				break
			}
			switch f.Encode {
			case "":
				if fs.Type == "string" {
					v.bad(key+".encode", "%q is a string field: use encode: hash or onehot", f.From)
				}
			case "hash":
				if f.Buckets < 1 || f.Buckets > 1<<22 {
					v.bad(key+".buckets", "%d: hash needs 1 to 4194304 buckets", f.Buckets)
				}
			case "onehot":
				if len(fs.Values) == 0 {
					v.bad(key+".encode", "onehot needs the values of field %s declared (values:)", f.From)
				}
			default:
				v.bad(key+".encode", "%q: use hash or onehot (or leave it out for a number)", f.Encode)
			}
			if fs.Type != "number" && fs.Type != "bool" && len(f.Transform) > 0 {
				v.bad(key+".transform", "transforms apply to numbers")
			}
		default:
			if f.Window.Kind != "sliding" {
				v.bad(key+".window.kind", "%q: features are as of each event, so their windows are sliding", f.Window.Kind)
			}
			if f.Window.Size <= 0 {
				v.bad(key+".window.size", "required")
			}
			if f.Agg == nil {
				v.bad(key+".agg", "a window feature needs an aggregation: count, {sum: FIELD}, ...")
			} else if f.Agg.Kind != agg.Count {
				fs, ok := c.fieldSpec(f.Agg.Field)
				if !ok {
					v.bad(key+".agg", "field %q is not declared in %s", f.Agg.Field, c.fieldsWhere())
				} else if f.Agg.Kind != agg.Distinct && fs.Type != "number" {
					v.bad(key+".agg", "%s needs a number field", f.Agg.Kind)
				}
			}
			if f.Encode != "" {
				v.bad(key+".encode", "a window feature is a number")
			}
		}
	}
	l := &c.Labels
	if l.Topic != "" {
		v.name("labels.topic", l.Topic, true)
		if l.Topic == s.Topic {
			v.bad("labels.topic", "%q is the source topic", l.Topic)
		}
		if l.EventID == "" {
			v.bad("labels.event_id", "required with a labels topic: the field that names the labelled event")
		}
		if l.Field == "" {
			v.bad("labels.field", "required: the label's field")
		}
		if l.TTL <= 0 {
			v.bad("labels.ttl", "required with a labels topic: how long a prediction waits for its label (e.g. 7d)")
		}
		if l.MaxWaiting < 0 {
			v.bad("labels.max_waiting", "%d: want 0 (the default, %d) or more", l.MaxWaiting, model.DefaultMaxWaiting)
		}
		if s.EventID == "" {
			v.bad("source.event_id", "required with a labels topic: labels join predictions by event id")
		}
	} else if l.Field != "" {
		if fs, ok := s.Fields[l.Field]; !ok || fs == nil || (fs.Type != "number" && fs.Type != "bool" && fs.Type != "string") {
			v.bad("labels.field", "%q must be a number, bool or string field in source.fields (labels in the event itself)", l.Field)
		} else if fs.Type != "string" && (len(l.Classes) > 0 || l.MaxClasses != 0) {
			v.bad("labels.classes", "classes name string labels, and %q is a %s field", l.Field, fs.Type)
		}
		if l.EventID != "" || l.TTL != 0 || l.Key != "" || l.MaxWaiting != 0 {
			v.bad("labels", "event_id, key, ttl and max_waiting apply to a labels topic")
		}
	}
	if len(l.Classes) > 0 && l.MaxClasses != 0 {
		v.bad("labels.max_classes", "bounds learned classes; with labels.classes declared, leave it out")
	}
	if l.MaxClasses < 0 {
		v.bad("labels.max_classes", "%d is negative", l.MaxClasses)
	}
	seenClass := map[string]bool{}
	for i, cl := range l.Classes {
		if cl == "" || seenClass[cl] {
			v.bad(fmt.Sprintf("labels.classes[%d]", i), "%q is empty or repeated", cl)
		}
		seenClass[cl] = true
	}
	if c.stringLabels() && len(l.Classes) == 0 && c.Models.MergeInterval.D() != -1 && c.hasModels() {
		v.bad("models.merge_interval", "learned classes are numbered per partition and cannot be merged: declare labels.classes, or write merge_interval: off")
	}
	m := &c.Models
	if !c.hasModels() {
		if len(c.Features) > 0 || l.Topic != "" || l.Field != "" {
			v.bad("models.list", "features and labels are for models: add at least one")
		}
		if c.Outputs.Training != "" {
			v.bad("outputs.training", "training rows are the rows models saw: add at least one model, and labels")
		}
		return
	}
	v.name("outputs.training", c.Outputs.Training, false)
	if c.Outputs.Training != "" && l.Topic == "" && l.Field == "" {
		v.bad("outputs.training", "a training row is written for each labelled event: set labels.field or labels.topic")
	}
	if len(c.Features) == 0 {
		v.bad("features", "models need at least one feature")
	}
	v.name("outputs.predictions", c.Outputs.Predictions, true)
	mnames := map[string]bool{}
	for i, e := range m.List {
		key := fmt.Sprintf("models.list[%d]", i)
		v.name(key+".name", e.Name, true)
		if mnames[e.Name] {
			v.bad(key+".name", "%q is used by two models", e.Name)
		}
		mnames[e.Name] = true
		if e.TopK < 0 || e.TopK > model.MaxTopK {
			v.bad(key+".top_k", "%d: want 0 (the default, min(classes, %d)) to %d", e.TopK, model.DefaultTopK, model.MaxTopK)
		}
		if e.MinExamples < 0 {
			v.bad(key+".min_examples", "%d: want 0 (the default, %d) or more", e.MinExamples, model.DefaultMinExamples)
		}
		if e.Offline != nil {
			if e.MinExamples != 0 {
				v.bad(key+".min_examples", "an offline model is trained, and warm from the start: leave it out")
			}
			c.validateOffline(v, key, &m.List[i])
			continue
		}
		spec, err := e.Learner.Spec()
		if err == nil {
			err = spec.WithDefaults().Validate()
		}
		reportSpecErrors(v, key+".learner", err)
		if err == nil && len(e.ClassWeights.ByLabel) > 0 {
			if _, werr := c.classWeights(&e.ClassWeights, learnerClasses(spec)); werr != nil {
				v.bad(key+".class_weights", "%v", werr)
			}
		}
	}
	if m.Champion != "" && !mnames[m.Champion] {
		v.bad("models.champion", "%q is not in models.list", m.Champion)
	}
	switch m.Drift.Detector {
	case "", "adwin", "page_hinkley":
	default:
		v.bad("models.drift.detector", "%q: use adwin or page_hinkley", m.Drift.Detector)
	}
	switch m.Drift.Action {
	case "", "alert", "reset", "promote_best_challenger":
	default:
		v.bad("models.drift.action", "%q: use alert, reset or promote_best_challenger", m.Drift.Action)
	}
	switch m.Drift.Signal {
	case "", "loss", "error":
	default:
		v.bad("models.drift.signal", "%q: use loss or error", m.Drift.Signal)
	}
	switch m.Drift.Direction {
	case "", "up", "down", "both":
	default:
		v.bad("models.drift.direction", "%q: use up, down or both", m.Drift.Direction)
	}
	if d := m.Drift.Delta; d != 0 && (m.Drift.Detector != "adwin" || !(d > 0 && d < 1)) {
		v.bad("models.drift.delta", "%v: ADWIN's confidence, in (0, 1), with detector adwin", d)
	}
	if th := m.Drift.Threshold; th != 0 && (m.Drift.Detector != "page_hinkley" || !(th > 0) || math.IsInf(th, 0)) {
		v.bad("models.drift.threshold", "%v: Page-Hinkley's threshold, above 0, with detector page_hinkley", th)
	}
	if m.Drift.Topic != "" {
		v.name("models.drift.topic", m.Drift.Topic, false)
		if m.Drift.Detector == "" {
			v.bad("models.drift.topic", "receives drift detections: set models.drift.detector")
		}
		if m.Drift.Topic == c.Source.Topic || m.Drift.Topic == c.Outputs.Predictions {
			v.bad("models.drift.topic", "%q is already the source or the predictions topic", m.Drift.Topic)
		}
	}
	if m.Drift.Action == "promote_best_challenger" && len(m.List) < 2 {
		v.bad("models.drift.action", "promote_best_challenger needs a challenger: add a second model")
	}
	if mi := m.MergeInterval.D(); mi != -1 && mi != 0 && mi < time.Second {
		v.bad("models.merge_interval", "%s is under 1s (or write off)", m.MergeInterval)
	}
	if m.SnapshotEvery < 0 {
		v.bad("models.snapshot_every", "%d is negative", m.SnapshotEvery)
	}
	if m.VersionsTopic != "" {
		v.name("models.versions_topic", m.VersionsTopic, false)
	}
}

// learnerClasses is the classes a learner spec decides between: its class count for a
// multiclass learner, 2 for the others (a binary one; the model refuses weights for the rest).
func learnerClasses(s online.Spec) int {
	if cc, ok := s.WithDefaults().(online.ClassCounter); ok && cc.NumClasses() > 2 {
		return cc.NumClasses()
	}
	return 2
}

// versionsTopic is models.versions_topic or its default.
func (c *Config) versionsTopic() string {
	if c.Models.VersionsTopic != "" {
		return c.Models.VersionsTopic
	}
	return c.App + "-model-versions"
}

// featureWindowName names the sliding window operator that serves the features of one window shape.
func featureWindowName(w *FeatureWindow) string {
	n := "features_" + strings.NewReplacer("h0m0s", "h", "m0s", "m").Replace(w.Size.D().String())
	if w.Resolution > 0 {
		n += "_at_" + w.Resolution.D().String()
	}
	return strings.ReplaceAll(n, ".", "_")
}

// modelOperators compiles the features (sliding windows that write Event.Features) and the scoring
// operator. It returns them and the pipeline's feature names.
func (c *Config) modelOperators(f stream.Format, labels stream.Format) ([]stream.Operator, []string, error) {
	if !c.hasModels() {
		return nil, nil, nil
	}
	type group struct {
		spec window.Spec
	}
	groups := map[string]*group{}
	var order []string
	var featNames []string
	var specs []model.FeatureSpec
	for _, ft := range c.Features {
		fs := model.FeatureSpec{Name: ft.Name, Field: ft.From, Window: -1, Buckets: ft.Buckets, Margin: ft.MarginOf}
		for _, t := range ft.Transform {
			fs.Transforms = append(fs.Transforms, model.Transform{Kind: t.Kind, Min: t.Min, Max: t.Max})
		}
		switch ft.Encode {
		case "hash":
			fs.Encoding = model.Hashed
		case "onehot":
			fs.Encoding = model.OneHot
			if spec, ok := c.fieldSpec(ft.From); ok {
				fs.Values = spec.Values
			}
		}
		if ft.Window != nil {
			name := featureWindowName(ft.Window)
			g, ok := groups[name]
			if !ok {
				g = &group{spec: window.Spec{Name: name, Kind: window.Sliding, Size: ft.Window.Size.D(), Resolution: ft.Window.Resolution.D()}}
				groups[name] = g
				order = append(order, name)
			}
			g.spec.Aggs = append(g.spec.Aggs, window.Agg{Name: ft.Name, Kind: ft.Agg.Kind, Field: ft.Agg.Field, Q: ft.Agg.Q})
			g.spec.FeatureSlots = append(g.spec.FeatureSlots, len(featNames))
			fs.Window = len(featNames)
			featNames = append(featNames, ft.Name)
		}
		specs = append(specs, fs)
	}
	sort.Strings(order)
	var ops []stream.Operator
	for _, name := range order {
		op, err := window.New(groups[name].spec, f)
		if err != nil {
			return nil, nil, err
		}
		ops = append(ops, op)
	}
	ms := model.Spec{
		Features: specs,
		Champion: c.Models.Champion,
		Drift: model.DriftSpec{Detector: c.Models.Drift.Detector, Action: c.Models.Drift.Action, Signal: c.Models.Drift.Signal,
			Direction: c.Models.Drift.Direction, Delta: c.Models.Drift.Delta, Threshold: c.Models.Drift.Threshold, Topic: c.Models.Drift.Topic},
		Output:        c.Outputs.Predictions,
		Training:      c.Outputs.Training,
		SnapshotEvery: c.Models.SnapshotEvery,
		Labels:        model.LabelSpec{Field: c.Labels.Field},
		VersionsTopic: c.versionsTopic(),
	}
	switch mi := c.Models.MergeInterval.D(); {
	case mi == 0:
		ms.MergeInterval = time.Minute
	case mi > 0:
		ms.MergeInterval = mi
	}
	if c.Labels.Topic != "" {
		ms.Labels = model.LabelSpec{TopicField: c.Labels.Field, TTL: c.Labels.TTL.D(), MaxWaiting: c.Labels.MaxWaiting}
	} else if fs := c.Source.Fields[c.Labels.Field]; fs != nil && fs.Type == "bool" {
		ms.Labels.BoolLabels = true
	}
	if c.stringLabels() {
		ms.Labels.Classes = c.Labels.Classes
		ms.Labels.LearnClasses = len(c.Labels.Classes) == 0
		ms.Labels.MaxClasses = c.Labels.MaxClasses
	}
	for _, e := range c.Models.List {
		if o := e.Offline; o != nil {
			ms.Models = append(ms.Models, model.ModelSpec{Name: e.Name, Offline: &model.OfflineSpec{File: o.File, ExplainTopK: o.ExplainTopK, ExplainMinScore: o.ExplainMinScore}})
			continue
		}
		spec, err := e.Learner.Spec()
		if err != nil {
			return nil, nil, err
		}
		weights, err := c.classWeights(&e.ClassWeights, learnerClasses(spec))
		if err != nil {
			return nil, nil, fmt.Errorf("config: %s: class_weights: %w", e.Name, err)
		}
		ms.Models = append(ms.Models, model.ModelSpec{Name: e.Name, Learner: spec, MinExamples: e.MinExamples, TopK: e.TopK,
			ClassWeights: weights, ClassBalanced: e.ClassWeights.Balanced})
	}
	var lf stream.Format
	if labels != nil {
		lf = labels
	}
	op, err := model.New(ms, f, lf)
	if err != nil {
		return nil, nil, err
	}
	return append(ops, op), featNames, nil
}

// labelsFormat is the format of the labels topic (nil without one): keyed like the source, joined by
// event id, the label a number.
func (c *Config) labelsFormat() (stream.Format, error) {
	l := &c.Labels
	if l.Topic == "" {
		return nil, nil
	}
	labelType := stream.Number
	if c.stringLabels() {
		labelType = stream.String
	}
	return c.format(labelsWire, stream.Schema{
		KeyField:       l.Key,
		IDField:        l.EventID,
		Time:           stream.EventTimeSpec{Format: stream.TimeKafka},
		Fields:         []stream.FieldSpec{{Name: l.Field, Type: labelType, Required: true}},
		MaxRecordBytes: int(c.Source.MaxRecordBytes),
		Rekey:          c.Source.Rekey,
	})
}

// reportSpecErrors reports a learner spec's errors under their keys: a bad field as
// key.field ("models.list[0].learner.alpha: -1: want > 0 and finite"), anything else under key.
func reportSpecErrors(v *validator, key string, err error) {
	if err == nil {
		return
	}
	if list, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range list.Unwrap() {
			reportSpecErrors(v, key, e)
		}
		return
	}
	var se *online.SpecError
	if errors.As(err, &se) {
		v.bad(key+"."+se.Field, "%s: want %s", se.Value, se.Want)
		return
	}
	v.bad(key, "%s", strings.TrimPrefix(err.Error(), "online: "))
}
