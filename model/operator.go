package model

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/streamd/streamd/internal/jsonscan"
	"github.com/streamd/streamd/online"
	"github.com/streamd/streamd/state"
	"github.com/streamd/streamd/stream"
)

// ModelSpec is one model of the pipeline: an online learner (Learner) or a model trained offline
// (Offline, offline.go). Exactly one is set.
type ModelSpec struct {
	Name    string
	Learner online.Spec
	Offline *OfflineSpec
	// MinExamples is the number of labelled examples an online learner must have learned before
	// its predictions decide a class: until then the model is cold, and its prediction carries
	// "warm":false and a null class and label (see appendPrediction). Zero means
	// DefaultMinExamples; an offline model is trained, hence always warm, and leaves it unset.
	MinExamples int
	// TopK bounds the class probabilities a multiclass model's prediction carries: the TopK most
	// probable classes. Zero means min(classes, DefaultTopK); at most MaxTopK.
	TopK int
	// ClassWeights weighs each learned example of class c by ClassWeights[c] (one weight per
	// class, each finite and > 0), or, with ClassBalanced, by the running class frequency:
	// (n+K) / (K·(n_c+1)) for K classes, n labels learned so far and n_c of them of class c
	// (scikit-learn's "balanced", n/(K·n_c), smoothed so that a class's first examples do not
	// weigh without bound). For classifiers whose learner is an online.WeightedLearner.
	ClassWeights  []float64
	ClassBalanced bool
}

// DefaultTopK and MaxTopK bound ModelSpec.TopK.
const (
	DefaultTopK = 10
	MaxTopK     = 1000
)

// DefaultDriftDelta is ADWIN's confidence on a model's loss or error unless DriftSpec.Delta says
// otherwise: far below River's 0.002 (package drift's default), because a model's per-example
// losses are not independent, which ADWIN's bound assumes. Fraud comes in bursts per card, so a
// partition's loss over a thousand examples rises and falls by 2x on a stationary concept: on the
// demo's stream ADWIN at 0.002 fired 15 times per partition in 5.5 minutes (13 on the error),
// at 1e-6 twice (both 65 s into the run, while the model and the stream warm up), and it still
// found the generator's concept drift 6 s of event time after it happened (docs/BENCHMARKS.md,
// "Drift false alarms").
const DefaultDriftDelta = 1e-6

// DefaultMinExamples is ModelSpec.MinExamples when unset: enough labels for a linear model's
// weights and a tree's first leaf statistics to mean something, few enough that a model warms up
// within seconds of a labelled stream.
const DefaultMinExamples = 100

// DriftSpec configures drift detection on the champion's per-example loss or error.
type DriftSpec struct {
	Detector string // "adwin", "page_hinkley", or "" for none
	Action   string // "alert" (the default), "reset", "promote_best_challenger"
	// Signal is what the detector watches: "loss" (the default: log loss, absolute error, 0/1 for
	// multiclass) or "error" (0/1: the decided class is wrong; the absolute error for regression).
	Signal string
	// Direction is the change reported: "up" (the default: the signal rose, the model got
	// worse), "down" (it fell), or "both".
	Direction string
	// Delta is ADWIN's confidence (default DefaultDriftDelta: smaller means fewer false alarms
	// and later detections); Threshold Page-Hinkley's (default 50, in the signal's units).
	Delta, Threshold float64
	// Topic, when set, receives a JSON record for every detection (driftEventJSON), in the
	// transaction of the cycle that learned the example behind it.
	Topic string
}

// LabelSpec says where labels come from.
type LabelSpec struct {
	// Field is the source field holding the label, for labels in the same record as the event
	// (test, then train, at once). Empty when labels come from the labels topic.
	Field string
	// TopicField is the label field of the labels topic's records (joined by event id).
	TopicField string
	// TTL bounds how long a prediction waits for its label, and an early label (one that comes
	// before its event) for its event, in event time (the task's watermark).
	TTL time.Duration
	// MaxWaiting bounds the early labels a task keeps waiting for their event (labels topic only);
	// over it, the one that would expire first is counted as unmatched and evicted. Default
	// DefaultMaxWaiting.
	MaxWaiting int
	// Classes names the classes of string labels: the label Classes[i] is class i (see classes.go).
	Classes []string
	// LearnClasses: string labels whose classes are learned in order of first appearance, at most
	// MaxClasses of them (default: the fewest classes of the models).
	LearnClasses bool
	MaxClasses   int
	// BoolLabels: the labels are bools, and predictions name their class true or false.
	BoolLabels bool
}

// Spec configures the scoring operator.
type Spec struct {
	Name     string // operator and store name; default "models"
	Features []FeatureSpec
	Models   []ModelSpec
	Champion string // default: the first model
	Drift    DriftSpec
	Labels   LabelSpec
	Output   string // predictions topic
	// Training is the topic of training rows, one per labelled event (training.go); empty: none.
	Training string
	// SnapshotEvery: the models' full state is written after this many learned examples; between
	// snapshots each learned example is logged, and a restore replays the log. Default 5000.
	SnapshotEvery int
	// MergeInterval: how often the partitions' replicas are merged into a new version (see
	// merge.go). Zero: never.
	MergeInterval time.Duration
	// VersionsTopic is the compacted topic of the offline models' versions (versions.go). Empty:
	// offline models keep the version of their file.
	VersionsTopic string
}

// Operator scores every event with every model and learns from labels. See the package doc.
type Operator struct {
	spec      Spec
	layout    *layout
	labelIdx  int // source field of same-record labels, -1
	topicIdx  int // labels format field, -1
	champion  int
	rules     []labelRule // what each model accepts as a label
	reg       *registry
	regOnce   sync.Once
	regErr    error
	ttl       int64
	classIdx  map[string]int // declared classes by name; nil without
	classJSON [][]byte       // declared classes as JSON strings
	// minExamples is, per model, the examples learned before it is warm (0: always warm).
	minExamples []int64
	// weighted: per model, whether it learns with class weights (ModelSpec.ClassWeights or
	// ClassBalanced); balancedK the classes the balanced counts cover (0: no balanced model).
	weighted  []bool
	balancedK int
	// Multiclass models, per model: nclass its classes (0 for other tasks), probOff the offset of
	// its class probabilities in processor.probs, topK how many a prediction carries. nprobs is
	// the length of processor.probs.
	nclass, probOff, topK []int
	nprobs                int

	readerMu sync.Mutex
	reader   *modelsReader

	// Offline models: catalogs[i] is model i's versions (nil for an online learner), offline the
	// indices of the offline models, margins the stacked margin features.
	catalogs []*catalog
	offline  []int
	margins  []marginFeature
	versions versionsFollower
}

// marginFeature is a numeric slot that holds an offline model's margin.
type marginFeature struct {
	slot, model int
}

// New builds the scoring operator over events of format; labelFormat is the labels topic's format
// (nil when labels come in the events).
func New(spec Spec, format, labelFormat stream.Format) (*Operator, error) {
	if spec.Name == "" {
		spec.Name = "models"
	}
	if spec.SnapshotEvery == 0 {
		spec.SnapshotEvery = 5000
	}
	if spec.Labels.MaxWaiting == 0 {
		spec.Labels.MaxWaiting = DefaultMaxWaiting
	}
	var errs []error
	l, err := newLayout(spec.Features, format)
	errs = append(errs, err)
	o := &Operator{spec: spec, layout: l, labelIdx: -1, topicIdx: -1, champion: -1, ttl: spec.Labels.TTL.Milliseconds()}
	if len(spec.Models) == 0 {
		errs = append(errs, errors.New("model: no models"))
	}
	names := map[string]bool{}
	for i := range spec.Models {
		m := &spec.Models[i]
		if names[m.Name] || m.Name == "" {
			errs = append(errs, fmt.Errorf("model: model name %q is empty or repeated", m.Name))
		}
		names[m.Name] = true
		switch {
		case m.MinExamples < 0:
			errs = append(errs, fmt.Errorf("model: %s has min examples %d: want 0 (the default, %d) or more", m.Name, m.MinExamples, DefaultMinExamples))
		case m.Offline != nil && m.MinExamples != 0:
			errs = append(errs, fmt.Errorf("model: %s is trained offline and warm from the start: leave min examples out", m.Name))
		}
		switch {
		case m.Offline != nil:
			o.minExamples = append(o.minExamples, 0)
		case m.MinExamples == 0:
			o.minExamples = append(o.minExamples, DefaultMinExamples)
		default:
			o.minExamples = append(o.minExamples, int64(m.MinExamples))
		}
		if m.Offline != nil {
			c, err := newOfflineCatalog(m, l)
			if err != nil {
				errs = append(errs, err)
				o.catalogs = append(o.catalogs, nil)
				continue
			}
			o.catalogs = append(o.catalogs, c)
			o.offline = append(o.offline, i)
			o.rules = append(o.rules, labelRule{model: m.Name, task: onlineTask(c.task), classes: c.outputs})
			if m.Name == spec.Champion {
				o.champion = i
			}
			continue
		}
		o.catalogs = append(o.catalogs, nil)
		if m.Learner != nil {
			// An unset dim fits the features; a dim set too small is refused, not raised behind
			// the user's back.
			if m.Learner.InputDim() == 0 {
				m.Learner = m.Learner.WithInputDim(l.dim)
			}
			if m.Learner.InputDim() < l.dim {
				errs = append(errs, fmt.Errorf("model: %s has dim %d, but the features make %d inputs: raise dim, or leave it out to fit them", m.Name, m.Learner.InputDim(), l.dim))
			}
		}
		if l, err := online.New(m.Learner); err != nil {
			errs = append(errs, fmt.Errorf("model: %s: %w", m.Name, err))
		} else {
			o.rules = append(o.rules, newLabelRule(m.Name, l))
		}
		if m.Name == spec.Champion {
			o.champion = i
		}
	}
	errs = append(errs, checkClasses(&o.spec.Labels, o.rules)...)
	if len(o.rules) == len(spec.Models) {
		for i, r := range o.rules {
			k, top := 0, 0
			if r.task == online.Multiclass {
				k = r.classes
				switch t := spec.Models[i].TopK; {
				case t < 0 || t > MaxTopK:
					errs = append(errs, fmt.Errorf("model: %s has top k %d: want 0 (the default, min(classes, %d)) to %d", spec.Models[i].Name, t, DefaultTopK, MaxTopK))
				case t == 0:
					top = min(k, DefaultTopK)
				default:
					top = min(k, t)
				}
			} else if spec.Models[i].TopK != 0 {
				errs = append(errs, fmt.Errorf("model: %s is a %s model: top k bounds a multiclass model's class probabilities", spec.Models[i].Name, r.task))
			}
			errs = append(errs, o.checkWeights(i, r)...)
			o.nclass = append(o.nclass, k)
			o.probOff = append(o.probOff, o.nprobs)
			o.topK = append(o.topK, top)
			o.nprobs += k
		}
	}
	if spec.Labels.LearnClasses && spec.MergeInterval > 0 {
		errs = append(errs, errors.New("model: learned classes are numbered per partition and cannot be merged: declare the classes, or merge never"))
	}
	if len(spec.Labels.Classes) > 0 {
		o.classIdx = make(map[string]int, len(spec.Labels.Classes))
		for i, c := range spec.Labels.Classes {
			o.classIdx[c] = i
			o.classJSON = append(o.classJSON, jsonscan.AppendString(nil, []byte(c)))
		}
	}
	if spec.Champion == "" && len(spec.Models) > 0 {
		o.champion = 0
	} else if o.champion < 0 {
		errs = append(errs, fmt.Errorf("model: champion %q is not one of the models", spec.Champion))
	}
	switch {
	case spec.Labels.Field != "":
		idx, ok := format.FieldIndex(spec.Labels.Field)
		if !ok {
			errs = append(errs, fmt.Errorf("model: label field %q is not a source field", spec.Labels.Field))
		}
		o.labelIdx = idx
	case labelFormat != nil:
		idx, ok := labelFormat.FieldIndex(spec.Labels.TopicField)
		if !ok {
			errs = append(errs, fmt.Errorf("model: label field %q is not a field of the labels", spec.Labels.TopicField))
		}
		o.topicIdx = idx
		if spec.Labels.TTL <= 0 {
			errs = append(errs, errors.New("model: labels from a topic need a TTL"))
		}
		if spec.Labels.MaxWaiting < 0 {
			errs = append(errs, fmt.Errorf("model: labels max waiting %d is negative", spec.Labels.MaxWaiting))
		}
	}
	switch spec.Drift.Detector {
	case "", "adwin", "page_hinkley":
	default:
		errs = append(errs, fmt.Errorf("model: drift detector %q: use adwin or page_hinkley", spec.Drift.Detector))
	}
	switch spec.Drift.Action {
	case "", "alert", "reset", "promote_best_challenger":
	default:
		errs = append(errs, fmt.Errorf("model: drift action %q: use alert, reset or promote_best_challenger", spec.Drift.Action))
	}
	switch spec.Drift.Signal {
	case "", "loss", "error":
	default:
		errs = append(errs, fmt.Errorf("model: drift signal %q: use loss or error", spec.Drift.Signal))
	}
	switch spec.Drift.Direction {
	case "", "up", "down", "both":
	default:
		errs = append(errs, fmt.Errorf("model: drift direction %q: use up, down or both", spec.Drift.Direction))
	}
	if spec.Drift.Detector != "" {
		if _, err := newDriftDetector(spec.Drift); err != nil {
			errs = append(errs, err)
		}
	}
	if o.spec.Drift.Action == "" {
		o.spec.Drift.Action = "alert"
	}
	if o.spec.Drift.Signal == "" {
		o.spec.Drift.Signal = "loss"
	}
	if o.spec.Drift.Direction == "" {
		o.spec.Drift.Direction = "up"
	}
	errs = append(errs, o.resolveMargins())
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	o.reg = newRegistry(&o.spec, o.catalogs)
	o.reg.minExamples = o.minExamples
	return o, nil
}

// checkWeights checks model i's class weights against what it is (rule r), and records them.
func (o *Operator) checkWeights(i int, r labelRule) []error {
	ms := &o.spec.Models[i]
	w := len(ms.ClassWeights) > 0 || ms.ClassBalanced
	o.weighted = append(o.weighted, w)
	if !w {
		return nil
	}
	var errs []error
	k := r.classes
	if r.task == online.Binary {
		k = 2
	}
	switch {
	case len(ms.ClassWeights) > 0 && ms.ClassBalanced:
		errs = append(errs, fmt.Errorf("model: %s has class weights and balanced: one or the other", ms.Name))
	case r.task != online.Binary && r.task != online.Multiclass:
		errs = append(errs, fmt.Errorf("model: %s is a %s model: class weights are for classifiers", ms.Name, r.task))
	case ms.Offline != nil:
		errs = append(errs, fmt.Errorf("model: %s is trained offline and learns nothing here: class weights are for online learners", ms.Name))
	case len(ms.ClassWeights) > 0 && len(ms.ClassWeights) != k:
		errs = append(errs, fmt.Errorf("model: %s has %d class weights for %d classes", ms.Name, len(ms.ClassWeights), k))
	}
	if ms.Learner != nil {
		if l, err := online.New(ms.Learner); err == nil {
			if _, ok := l.(online.WeightedLearner); !ok {
				errs = append(errs, fmt.Errorf("model: %s: a %s learner does not learn weighted examples; class weights apply to ftrl_logistic and softmax", ms.Name, ms.Learner.Kind()))
			}
		}
	}
	for c, x := range ms.ClassWeights {
		if !(x > 0) || math.IsInf(x, 0) {
			errs = append(errs, fmt.Errorf("model: %s: class %d's weight %v: want a finite number above 0", ms.Name, c, x))
		}
	}
	if ms.ClassBalanced {
		o.balancedK = max(o.balancedK, k)
	}
	return errs
}

// classWeight is the weight model i learns an example of class y with (1 without class weights),
// given the balanced class counts (including this example's).
func (o *Operator) classWeight(i int, y float64, counts []int64) float64 {
	ms := &o.spec.Models[i]
	c := int(y)
	if len(ms.ClassWeights) > 0 {
		if c >= 0 && c < len(ms.ClassWeights) {
			return ms.ClassWeights[c]
		}
		return 1
	}
	k := o.nclass[i]
	if k == 0 {
		k = 2
	}
	if c < 0 || c >= k || c >= len(counts) {
		return 1
	}
	var n int64
	for _, x := range counts[:k] {
		n += x
	}
	return float64(n+int64(k)) / (float64(k) * float64(counts[c]+1))
}

// Name implements stream.Operator.
func (o *Operator) Name() string { return o.spec.Name }

// Stores implements stream.Stateful.
func (o *Operator) Stores() []string { return []string{o.spec.Name} }

// OutputTopics implements stream.OutputTopics.
func (o *Operator) OutputTopics() []string {
	out := []string{o.spec.Output}
	if o.spec.Training != "" {
		out = append(out, o.spec.Training)
	}
	if o.spec.Drift.Topic != "" {
		out = append(out, o.spec.Drift.Topic)
	}
	return out
}

// Registry returns the operator's view of its models across this instance's tasks, for the admin
// API.
func (o *Operator) Registry() *Registry { return &Registry{o.reg} }

// Open implements stream.Operator: it loads the models from the store (the last snapshot, then the
// learning log after it).
func (o *Operator) Open(t *stream.Task) (stream.Processor, error) {
	o.regOnce.Do(func() {
		if reg := t.Registerer(); reg != nil {
			o.regErr = reg.Register(o.reg)
		}
	})
	if o.regErr != nil {
		return nil, fmt.Errorf("model: register metrics: %w", o.regErr)
	}
	st, err := t.Store(o.spec.Name)
	if err != nil {
		return nil, err
	}
	// The offline models' live versions are known before the task scores (readiness waits).
	if err := o.followVersions(t); err != nil {
		return nil, err
	}
	p := &processor{op: o, store: st, partition: t.Partition(), partitions: t.Partitions()}
	if o.spec.MergeInterval > 0 {
		p.reader = o.acquireReader(t)
		p.nextTick = time.Now().Add(o.spec.MergeInterval)
	}
	p.raw = o.layout.newRaw()
	p.raw2 = o.layout.newRaw()
	p.dense = make([]float64, len(o.layout.dense))
	p.scores = make([]float64, len(o.spec.Models))
	p.classes = make([]int, len(o.spec.Models))
	p.evalIn = make([]float64, len(o.spec.Models))
	p.probs = make([]float64, o.nprobs)
	p.topIdx = make([]int, 0, slices.Max(append([]int{0}, o.nclass...)))
	if err := p.Rewind(t); err != nil {
		p.Close()
		return nil, err
	}
	p.committedVersion = make([]int64, len(o.spec.Models))
	for _, i := range o.offline {
		p.committedVersion[i] = p.m.learners[i].(*offlineLearner).version
	}
	// Show the restored models at once, before the first cycle commits.
	o.reg.publish(p.partition, &p.m, &p.counts)
	return p, nil
}

// processor is one task's models.
type processor struct {
	op        *Operator
	store     *state.Store
	partition int32
	m         models

	raw, raw2   raw
	vec         online.Vector
	pre         []float64
	scores      []float64
	classes     []int
	evalIn      []float64 // what evaluation needs of each prediction: the score, or the class (multiclass)
	probs       []float64 // the multiclass models' class probabilities (Operator.probOff)
	topIdx      []int     // scratch: the classes of a prediction's probabilities, most probable first
	driftBuf    []byte    // scratch: a drift detection's statistics
	driftOut    []byte    // scratch: a drift event
	buf, keyBuf []byte
	earlyBuf    []byte
	out         []byte
	// features is the span of p.out from `"features":` to the end of the overflow list, for the
	// event's training row; served what every model predicted for it (training.go).
	features        [2]int
	served, served2 []servedModel
	trainBuf        []byte
	classNames      []string       // learned classes, in order (classes.go)
	classIdx        map[string]int // learned classes by name
	nextExpiry      int64          // the earliest expiry of a pending prediction (a lower bound)
	nextEarly       int64          // the earliest expiry of an early label (a lower bound)
	evict           evictCursor
	counts          taskCounts

	partitions int32
	reader     *modelsReader
	nextTick   time.Time
	sinceCheck int

	dense   []float64 // the offline models' input (offline.go)
	atCycle bool      // the offline models' versions were checked in this cycle
	// committedVersion is, per offline model, the version of the task's last committed cycle.
	committedVersion []int64
}

// taskCounts are a task's counts in the open cycle, published on commit.
type taskCounts struct {
	predictions []int64 // per model
	cold        []int64 // per model: its predictions published cold (as champion)
	joined      int64
	unmatched   int64
	expired     int64
	early       int64   // labels that came before their event and were kept waiting
	evicted     int64   // early labels pushed out by LabelSpec.MaxWaiting (also unmatched)
	waiting     int64   // early labels waiting now: a gauge, not reset on commit
	drifts      []int64 // per model: detections in its signal while it was champion
	merges      int64
	adopted     int64
	// trainingRows written, and labels whose pending prediction predates Spec.Training.
	trainingRows, trainingUnavailable int64
}

// Rewind implements stream.Rewinder: the models go back to what the store holds.
func (p *processor) Rewind(t *stream.Task) error {
	m, err := loadModels(p.op, p.store)
	if err != nil {
		return fmt.Errorf("model: partition %d: %w", p.partition, err)
	}
	p.m = *m
	p.atCycle = false
	n := len(p.op.spec.Models)
	p.counts = taskCounts{predictions: make([]int64, n), drifts: make([]int64, n), cold: make([]int64, n)}
	p.nextExpiry = math.MaxInt64
	it, err := p.store.NewIter([]byte(expPrefix), []byte(expEnd))
	if err != nil {
		return err
	}
	if it.Valid() && len(it.Key()) >= len(expPrefix)+8 {
		p.nextExpiry = getTime(it.Key()[len(expPrefix):])
	}
	if err := it.Close(); err != nil {
		return err
	}
	if err := p.loadClasses(); err != nil {
		return fmt.Errorf("model: partition %d: %w", p.partition, err)
	}
	return p.loadWaiting()
}

// Close implements stream.Processor.
func (p *processor) Close() error {
	p.op.reg.drop(p.partition)
	p.op.releaseVersions()
	if p.reader != nil {
		p.reader = nil
		p.op.releaseReader()
	}
	return nil
}

// Process implements stream.Processor: score with every model, publish the champion's prediction,
// and learn at once if the label is in the event or came early from the labels topic, or keep the
// prediction for its label.
//
// An event whose own label is out of range is rejected before it is scored (label_out_of_range):
// like a field outside its declared min or max, it is a bad record, and it goes to the dead letters
// whole, with neither a prediction nor learning, so that a corrected record can be replayed. Every
// accepted event gets exactly one prediction.
func (p *processor) Process(t *stream.Task, ev *stream.Event) error {
	o := p.op
	var y float64
	var labelled bool
	if o.labelIdx >= 0 {
		var err error
		if y, labelled, err = p.label(&ev.Fields[o.labelIdx], o.spec.Labels.Field); err != nil {
			return err
		}
	}
	if p.reader != nil {
		// The wall clock is read every 256 events, not per event.
		if p.sinceCheck++; p.sinceCheck >= 256 {
			p.sinceCheck = 0
			if now := time.Now(); !now.Before(p.nextTick) {
				p.nextTick = now.Add(o.spec.MergeInterval)
				if err := p.tick(t); err != nil {
					return err
				}
			}
		}
	}
	if !p.atCycle {
		// The first event of a cycle: offline models swap to their live version here, so that
		// every prediction of a cycle is made by one version.
		p.atCycle = true
		p.swapVersions(t)
	}
	p.buf = o.layout.extract(ev, &p.raw, p.buf)
	p.predict(&p.raw)
	for i := range p.scores {
		p.counts.predictions[i]++
	}
	p.emit(t, ev)
	training := o.spec.Training != ""
	if training {
		p.serve()
	}
	if o.labelIdx >= 0 {
		if labelled {
			p.trainNow(t, ev, y, ev.Time)
			p.learn(t, ev, &p.raw, y, p.evalIn, p.probs)
		}
		return nil
	}
	if o.ttl <= 0 {
		return nil
	}
	// Its label came first: learn now, after the prediction (test, then train).
	if y, labelTime, ok, err := p.takeEarly(ev.ID); err != nil {
		return err
	} else if ok {
		p.counts.joined++
		p.trainNow(t, ev, y, labelTime)
		p.learn(t, ev, &p.raw, y, p.evalIn, p.probs)
		return nil
	}
	// Keep the prediction for its label: features and scores as they were, under the event id,
	// with an expiry in event time.
	exp := ev.Time + o.ttl
	p.buf = p.encodePending(p.buf[:0], exp, &p.raw, p.evalIn, p.probs)
	if training {
		// What the training row needs when the label comes (training.go).
		p.buf = encodeTraining(p.buf, ev.Time, ev.Record.Offset, p.m.champion, p.served, p.out[p.features[0]:p.features[1]])
	}
	p.store.Set(p.pendingKey(ev.ID), p.buf)
	p.store.Set(p.expiryKey(exp, ev.ID), nil)
	p.nextExpiry = min(p.nextExpiry, exp)
	return nil
}

// OnLabel implements stream.LabelListener: join the label to its prediction, evaluate the prediction
// made before learning (prequential), then learn. A label whose event has not been scored yet
// waits for it (see waitEarly); a label that some model cannot learn is a dead letter
// (label_out_of_range), whether or not its prediction waits.
func (p *processor) OnLabel(t *stream.Task, lev *stream.Event) error {
	o := p.op
	if o.topicIdx < 0 {
		return nil
	}
	y, ok, err := p.label(&lev.Fields[o.topicIdx], o.spec.Labels.TopicField)
	if err != nil {
		return err
	}
	if !ok {
		return &stream.Rejection{Reason: stream.ReasonWrongType, Field: o.spec.Labels.TopicField, Detail: "the label record has no label"}
	}
	key := p.pendingKey(lev.ID)
	v, found, err := p.store.Get(key)
	if err != nil {
		return err
	}
	if !found {
		return p.waitEarly(t, lev.ID, y, lev.Time)
	}
	exp, rest, err := decodePendingHead(v)
	if err != nil {
		return err
	}
	if rest, err = p.raw2.decode(rest); err != nil {
		return err
	}
	// The scores, then the multiclass probabilities (absent from predictions kept before they
	// were: their log loss is not counted), then the training trailer (training.go) when the
	// prediction was made with training rows on.
	probs := p.probs
	trailer := rest[min(8*len(o.spec.Models), len(rest)):]
	switch {
	case len(rest) == 8*len(o.spec.Models):
		probs = nil
	case len(rest) >= 8*(len(o.spec.Models)+o.nprobs):
		trailer = rest[8*(len(o.spec.Models)+o.nprobs):]
	default:
		return fmt.Errorf("%w: pending prediction has %d bytes of scores", errCorrupt, len(rest))
	}
	scores := p.evalIn[:0]
	for i := range o.spec.Models {
		scores = append(scores, math.Float64frombits(binary.LittleEndian.Uint64(rest[8*i:])))
	}
	for i := range probs {
		probs[i] = math.Float64frombits(binary.LittleEndian.Uint64(rest[8*(len(o.spec.Models)+i):]))
	}
	// A pipeline that turned training rows off since ignores the trailer. Before the deletes
	// below, which may reuse the bytes v points into.
	if o.spec.Training != "" {
		if err := p.trainPending(t, lev, y, trailer); err != nil {
			return err
		}
	}
	p.store.Delete(key)
	p.store.Delete(p.expiryKey(exp, lev.ID))
	p.counts.joined++
	p.learn(t, lev, &p.raw2, y, scores, probs)
	return nil
}

// OnWatermark implements stream.WatermarkListener: predictions whose label did not come within the
// TTL, and early labels whose event did not, are dropped and counted.
func (p *processor) OnWatermark(t *stream.Task, wm int64) error {
	if err := p.expireEarly(wm); err != nil {
		return err
	}
	if wm < p.nextExpiry {
		return nil
	}
	due, next, err := p.due(expPrefix, expEnd, p.nextExpiry, wm)
	if err != nil {
		return err
	}
	p.nextExpiry = next
	for _, k := range due {
		p.store.Delete(k)
		p.store.Delete(p.pendingKey(k[len(expPrefix)+8:]))
		p.counts.expired++
	}
	return nil
}

// Committed implements stream.Committer: the cycle's counts and the models' figures reach the
// metrics and the admin API.
func (p *processor) Committed(t *stream.Task) {
	p.op.reg.publish(p.partition, &p.m, &p.counts)
	for i := range p.counts.predictions {
		p.counts.predictions[i] = 0
	}
	p.counts.joined, p.counts.unmatched, p.counts.expired = 0, 0, 0
	clear(p.counts.drifts)
	clear(p.counts.cold)
	p.counts.early, p.counts.evicted = 0, 0
	p.counts.merges, p.counts.adopted = 0, 0
	p.counts.trainingRows, p.counts.trainingUnavailable = 0, 0
	p.commitSwaps()
	p.atCycle = false
}

// predict scores r with every model into p.scores and p.classes: the offline models first, on
// the dense vector, since stacked online learners read their margins (which r keeps, so that
// learning later sees them as scoring did).
func (p *processor) predict(r *raw) {
	o := p.op
	if len(o.offline) > 0 {
		o.layout.fillDense(r, p.dense)
		for _, i := range o.offline {
			l := p.m.learners[i].(*offlineLearner)
			p.scores[i], p.classes[i] = l.score(p.dense)
			p.evalIn[i] = p.scores[i]
			if l.task == online.Multiclass {
				p.evalIn[i] = float64(p.classes[i])
				copy(p.probs[o.probOff[i]:o.probOff[i]+o.nclass[i]], l.out)
			}
		}
		for _, mf := range o.margins {
			r.nums[mf.slot] = p.m.learners[mf.model].(*offlineLearner).marginOf(p.dense)
		}
	}
	p.vec = o.layout.vector(r, p.m.scaler, p.vec)
	for i, l := range p.m.learners {
		if o.catalogs[i] != nil {
			continue
		}
		var probs []float64
		if k := o.nclass[i]; k > 0 {
			probs = p.probs[o.probOff[i] : o.probOff[i]+k]
		}
		p.scores[i], p.classes[i] = l.Predict(p.vec, probs)
		p.evalIn[i] = p.scores[i]
		if l.Task() == online.Multiclass {
			p.evalIn[i] = float64(p.classes[i])
		}
	}
}

// learn is one prequential step: evaluate the scores made before learning, watch the champion's
// loss for drift, update the scaler, then every model. It is deterministic in (r, y, scores), and
// it is logged, so that a restore replays it exactly.
//
// ev is the record that completed the example (the event, or the label record that joined it):
// a drift detection names it.
func (p *processor) learn(t *stream.Task, ev *stream.Event, r *raw, y float64, scores, probs []float64) {
	seq := p.m.seq
	p.buf = appendLogEntry(p.buf[:0], seq, r, y, scores, probs)
	p.store.Set(logKey(p.keyBuf[:0], seq%int64(p.op.spec.SnapshotEvery)), p.buf)
	if det := p.m.learnExample(p.op, r, y, scores, probs, &p.pre, &p.vec, &p.counts); det.fired {
		p.reportDrift(t, ev, seq, &det)
	}
	if p.m.seq-p.m.snapSeq >= int64(p.op.spec.SnapshotEvery) {
		p.m.snapshot(p.store, &p.buf)
	}
}

// emit produces the champion's prediction for ev.
func (p *processor) emit(t *stream.Task, ev *stream.Event) {
	p.out = p.appendPrediction(p.out[:0], ev)
	t.Emit(p.op.spec.Output, ev.Key, p.out, ev.Time)
}

// appendPrediction appends the champion's prediction record for ev, as scored by predict.
func (p *processor) appendPrediction(b []byte, ev *stream.Event) []byte {
	o := p.op
	c := p.m.champion
	b = append(b, `{"event_id":`...)
	b = jsonscan.AppendString(b, ev.ID)
	b = append(b, `,"key":`...)
	b = jsonscan.AppendString(b, ev.Key)
	b = append(b, `,"model":`...)
	b = append(b, o.reg.nameJSON[c]...)
	b = append(b, `,"version":`...)
	off, _ := p.m.learners[c].(*offlineLearner)
	if off != nil {
		b = strconv.AppendInt(b, off.version, 10)
	} else {
		b = strconv.AppendInt(b, p.m.version, 10)
	}
	// A cold model (fewer than its min examples learned) decides no class: its score is what it
	// says, but neither class nor label claims a decision it cannot make yet.
	warm := p.warm(c)
	if !warm {
		p.counts.cold[c]++
	}
	if warm {
		b = append(b, `,"warm":true,"score":`...)
	} else {
		b = append(b, `,"warm":false,"score":`...)
	}
	b = appendFloat(b, p.scores[c])
	b = append(b, `,"class":`...)
	if warm {
		b = strconv.AppendInt(b, int64(p.classes[c]), 10)
	} else {
		b = append(b, "null"...)
	}
	if t := p.m.learners[c].Task(); t == online.Binary || t == online.Multiclass {
		b = append(b, `,"label":`...)
		if warm {
			b = p.appendLabel(b, p.classes[c])
		} else {
			b = append(b, "null"...)
		}
	}
	if k := o.nclass[c]; k > 0 {
		b = p.appendProbabilities(b, c, p.probs[o.probOff[c]:o.probOff[c]+k])
	}
	b = append(b, `,"event_time":`...)
	b = strconv.AppendInt(b, ev.Time, 10)
	b = append(b, `,"source":{"topic":`...)
	b = jsonscan.AppendString(b, []byte(ev.Record.Topic))
	b = append(b, `,"partition":`...)
	b = strconv.AppendInt(b, int64(ev.Record.Partition), 10)
	b = append(b, `,"offset":`...)
	b = strconv.AppendInt(b, ev.Record.Offset, 10)
	b = append(b, `},`...)
	p.features[0] = len(b)
	b = append(b, `"features":`...)
	b = o.layout.appendJSON(b, &p.raw, p.m.scaler, off == nil, ev)
	b = o.layout.appendOverflow(b, &p.raw)
	p.features[1] = len(b)
	if off != nil && off.topK > 0 && p.scores[c] >= off.minScore {
		b = off.appendExplanation(b, p.dense, p.classes[c])
	}
	if len(p.scores) > 1 {
		b = append(b, `,"challengers":{`...)
		first := true
		for i := range p.scores {
			if i == c {
				continue
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			b = append(b, o.reg.nameJSON[i]...)
			b = append(b, ':')
			b = appendFloat(b, p.scores[i])
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

// warm reports whether model i has learned its min examples (an offline model always has).
func (p *processor) warm(i int) bool {
	return p.m.learners[i].Updates() >= p.op.minExamples[i]
}

func appendFloat(b []byte, x float64) []byte {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, x, 'g', -1, 64)
}

// Store keys: pending predictions by event id, their expiry index, the learning log ring and the
// snapshot chunks.
const (
	pendPrefix = "p/"
	expPrefix  = "x/"
	expEnd     = "x0" // '/'+1
)

func (p *processor) pendingKey(id []byte) []byte {
	p.keyBuf = append(append(p.keyBuf[:0], pendPrefix...), id...)
	return p.keyBuf
}

func (p *processor) expiryKey(exp int64, id []byte) []byte {
	p.keyBuf = append(putTime(append(p.keyBuf[:0], expPrefix...), exp), id...)
	return p.keyBuf
}

func putTime(dst []byte, ts int64) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(ts)^(1<<63))
}

func getTime(b []byte) int64 { return int64(binary.BigEndian.Uint64(b) ^ (1 << 63)) }

func (p *processor) encodePending(dst []byte, exp int64, r *raw, scores, probs []float64) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(exp))
	dst = r.encode(dst)
	for _, s := range scores {
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(s))
	}
	for _, s := range probs {
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(s))
	}
	return dst
}

// appendProbabilities writes `,"probabilities":{CLASS:P,...}` for the multiclass champion c: the
// Operator.topK most probable classes, most probable first (the lower class first on a tie), each
// named as its label is (the class name of string labels, else the index). A learned class no
// label has named yet has no name, and is left out. It allocates nothing.
func (p *processor) appendProbabilities(b []byte, c int, probs []float64) []byte {
	idx := p.topIdx[:0]
	for k := range probs {
		idx = append(idx, k)
	}
	top := min(p.op.topK[c], len(idx))
	// A partial selection sort: O(classes × top), no allocation. NaN ranks last.
	above := func(a, b int) bool {
		pa, pb := probs[a], probs[b]
		switch {
		case math.IsNaN(pb):
			return !math.IsNaN(pa) || a < b
		case math.IsNaN(pa):
			return false
		}
		return pa > pb || pa == pb && a < b
	}
	for j := 0; j < top; j++ {
		best := j
		for k := j + 1; k < len(idx); k++ {
			if above(idx[k], idx[best]) {
				best = k
			}
		}
		idx[j], idx[best] = idx[best], idx[j]
	}
	b = append(b, `,"probabilities":{`...)
	first := true
	for _, k := range idx[:top] {
		o := p.op
		switch {
		case o.classIdx != nil:
			if !first {
				b = append(b, ',')
			}
			b = append(b, o.classJSON[k]...)
		case o.spec.Labels.LearnClasses:
			if k >= len(p.classNames) {
				continue
			}
			if !first {
				b = append(b, ',')
			}
			b = jsonscan.AppendString(b, []byte(p.classNames[k]))
		default:
			if !first {
				b = append(b, ',')
			}
			b = append(b, '"')
			b = strconv.AppendInt(b, int64(k), 10)
			b = append(b, '"')
		}
		first = false
		b = append(b, ':')
		b = appendFloat(b, probs[k])
	}
	return append(b, '}')
}

func decodePendingHead(v []byte) (int64, []byte, error) {
	if len(v) < 8 {
		return 0, nil, errCorrupt
	}
	return int64(binary.BigEndian.Uint64(v)), v[8:], nil
}
