package model

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamd/streamd/internal/jsonscan"
)

// registry gathers what every task of this instance publishes when its cycle commits: cumulative
// counts, and each partition's current model figures. It is the operator's Prometheus collector and
// the source of the admin API's /v1/models. Tasks publish from their goroutines; scrapes read under
// the same mutex.
type registry struct {
	spec        *Spec
	catalogs    []*catalog // per model: an offline model's versions, nil for an online learner
	minExamples []int64    // per model (Operator.minExamples)
	nameJSON    [][]byte

	mu          sync.Mutex
	predictions []float64 // per model, cumulative
	labels      map[string]float64
	drifts      []float64 // per model
	cold        []float64 // per model: predictions published cold
	merges      float64
	training    map[string]float64 // training rows by result: written, unavailable
	parts       map[int32]partFigures

	descPredictions, descVersion, descEval, descDrift, descLabels, descUpdates, descChampion, descMerges *prometheus.Desc
	descWaiting, descRefused, descSwaps, descTraining, descClassRecall, descCold, descWarm               *prometheus.Desc
}

// partFigures are one partition's models as of its last commit.
type partFigures struct {
	version  int64
	versions []int64 // per model: an offline model's version, else version
	champion int
	updates  []int64
	digests  []string
	evals    []map[string]evalValue
	waiting  int64 // early labels waiting for their event
	warm     []bool
}

type evalValue struct {
	cumulative, rolling float64
	n                   int64
}

func newRegistry(spec *Spec, catalogs []*catalog) *registry {
	r := &registry{
		spec:        spec,
		catalogs:    catalogs,
		predictions: make([]float64, len(spec.Models)),
		drifts:      make([]float64, len(spec.Models)),
		cold:        make([]float64, len(spec.Models)),
		labels:      map[string]float64{},
		training:    map[string]float64{},
		parts:       map[int32]partFigures{},
		descPredictions: prometheus.NewDesc("streamd_predictions_total",
			"Predictions in committed transactions, by model (challengers score every event too).", []string{"model"}, nil),
		descVersion: prometheus.NewDesc("streamd_model_version",
			"The model's version: it grows with every merge of replicas and every reset.", []string{"model"}, nil),
		descEval: prometheus.NewDesc("streamd_model_evaluation",
			"Prequential (test-then-train) evaluation of the model, cumulative or over the rolling window, averaged over this instance's partitions by examples.",
			[]string{"model", "metric", "window"}, nil),
		descClassRecall: prometheus.NewDesc("streamd_model_class_recall",
			"Prequential recall of each class of a multiclass model (the first 32 classes), cumulative or over the rolling window, pooled over this instance's partitions.",
			[]string{"model", "class", "window"}, nil),
		descCold: prometheus.NewDesc("streamd_predictions_cold_total",
			"Predictions published by a cold champion (before its models.list[].min_examples): warm false, no class decided.", []string{"model"}, nil),
		descWarm: prometheus.NewDesc("streamd_model_warm_partitions",
			"This instance's partitions whose replica of the model is warm (has learned its min_examples).", []string{"model"}, nil),
		descDrift: prometheus.NewDesc("streamd_drift_detections_total",
			"Drift detections in the champion's loss or error (models.drift.signal), by the model that was champion.", []string{"model"}, nil),
		descLabels: prometheus.NewDesc("streamd_labels_total",
			"Labels by outcome: joined to their prediction, unmatched (no prediction waiting, and none came within the TTL), expired (a prediction whose label never came within the TTL), early (came before the event and waited for it; later also joined or unmatched), evicted (early, pushed out by labels.max_waiting; also unmatched).",
			[]string{"result"}, nil),
		descWaiting: prometheus.NewDesc("streamd_labels_waiting",
			"Early labels waiting for their event, summed over this instance's partitions.", nil, nil),
		descUpdates: prometheus.NewDesc("streamd_model_updates",
			"Examples the model has learned, summed over this instance's partitions.", []string{"model"}, nil),
		descMerges: prometheus.NewDesc("streamd_model_merges_total",
			"Merges of the partitions' replicas into a new version that this instance coordinated.", []string{"model"}, nil),
		descChampion: prometheus.NewDesc("streamd_model_champion",
			"1 for the model that scores (the champion), 0 for challengers.", []string{"model"}, nil),
		descRefused: prometheus.NewDesc("streamd_model_versions_refused_total",
			"Versions of an offline model (or rollbacks to one) that this instance refused: a file that does not load, needs features the pipeline does not compute, or predicts another task; the live version kept serving.",
			[]string{"model"}, nil),
		descTraining: prometheus.NewDesc("streamd_training_rows_total",
			"Training rows (outputs.training) in committed transactions, by result: written, or unavailable (a label whose pending prediction was made before training rows were on, so what was served is not known).",
			[]string{"result"}, nil),
		descSwaps: prometheus.NewDesc("streamd_model_swaps_total",
			"Swaps of an offline model to another version, by this instance's tasks, in committed cycles.", []string{"model"}, nil),
	}
	for _, m := range spec.Models {
		r.nameJSON = append(r.nameJSON, jsonscan.AppendString(nil, []byte(m.Name)))
	}
	return r
}

func (r *registry) publish(partition int32, m *models, c *taskCounts) {
	f := partFigures{version: m.version, champion: m.champion, waiting: c.waiting}
	for i, l := range m.learners {
		f.warm = append(f.warm, l.Updates() >= r.minExamples[i])
		v := m.version
		if off, ok := l.(*offlineLearner); ok {
			v = off.version
		}
		f.versions = append(f.versions, v)
		f.updates = append(f.updates, l.Updates())
		f.evals = append(f.evals, m.evals[i].values())
		sum := sha256.Sum256(l.AppendState(nil))
		f.digests = append(f.digests, hex.EncodeToString(sum[:8]))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, n := range c.predictions {
		r.predictions[i] += float64(n)
	}
	for i, n := range c.cold {
		r.cold[i] += float64(n)
	}
	r.labels["joined"] += float64(c.joined)
	r.labels["unmatched"] += float64(c.unmatched)
	r.labels["expired"] += float64(c.expired)
	r.labels["early"] += float64(c.early)
	r.labels["evicted"] += float64(c.evicted)
	r.training["written"] += float64(c.trainingRows)
	r.training["unavailable"] += float64(c.trainingUnavailable)
	for i, n := range c.drifts {
		r.drifts[i] += float64(n)
	}
	r.merges += float64(c.merges)
	r.parts[partition] = f
}

func (r *registry) drop(partition int32) {
	r.mu.Lock()
	delete(r.parts, partition)
	r.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (r *registry) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{r.descPredictions, r.descVersion, r.descEval, r.descDrift, r.descLabels, r.descUpdates, r.descChampion, r.descMerges, r.descWaiting, r.descRefused, r.descSwaps, r.descTraining, r.descClassRecall, r.descCold, r.descWarm} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (r *registry) Collect(ch chan<- prometheus.Metric) {
	v := r.view()
	champion := ""
	for _, m := range v.Models {
		ch <- prometheus.MustNewConstMetric(r.descPredictions, prometheus.CounterValue, m.Predictions, m.Name)
		ch <- prometheus.MustNewConstMetric(r.descVersion, prometheus.GaugeValue, float64(m.Version), m.Name)
		ch <- prometheus.MustNewConstMetric(r.descUpdates, prometheus.GaugeValue, float64(m.Updates), m.Name)
		ch <- prometheus.MustNewConstMetric(r.descCold, prometheus.CounterValue, m.ColdPredictions, m.Name)
		ch <- prometheus.MustNewConstMetric(r.descWarm, prometheus.GaugeValue, float64(m.WarmPartitions), m.Name)
		c := 0.0
		if m.Champion {
			c, champion = 1, m.Name
		}
		ch <- prometheus.MustNewConstMetric(r.descChampion, prometheus.GaugeValue, c, m.Name)
		for _, e := range m.Evaluation {
			if e.Class != "" {
				ch <- prometheus.MustNewConstMetric(r.descClassRecall, prometheus.GaugeValue, e.Cumulative, m.Name, e.Class, "cumulative")
				ch <- prometheus.MustNewConstMetric(r.descClassRecall, prometheus.GaugeValue, e.Rolling, m.Name, e.Class, "rolling")
				continue
			}
			ch <- prometheus.MustNewConstMetric(r.descEval, prometheus.GaugeValue, e.Cumulative, m.Name, e.Metric, "cumulative")
			ch <- prometheus.MustNewConstMetric(r.descEval, prometheus.GaugeValue, e.Rolling, m.Name, e.Metric, "rolling")
		}
	}
	if champion == "" && len(r.spec.Models) > 0 {
		champion = r.spec.Models[0].Name
	}
	for _, m := range v.Models {
		ch <- prometheus.MustNewConstMetric(r.descDrift, prometheus.CounterValue, m.Drifts, m.Name)
	}
	for _, m := range v.Models {
		ch <- prometheus.MustNewConstMetric(r.descMerges, prometheus.CounterValue, v.Merges, m.Name)
	}
	for _, res := range []string{"joined", "unmatched", "expired", "early", "evicted"} {
		ch <- prometheus.MustNewConstMetric(r.descLabels, prometheus.CounterValue, v.Labels[res], res)
	}
	ch <- prometheus.MustNewConstMetric(r.descWaiting, prometheus.GaugeValue, v.LabelsWaiting)
	if r.spec.Training != "" {
		r.mu.Lock()
		written, unavailable := r.training["written"], r.training["unavailable"]
		r.mu.Unlock()
		ch <- prometheus.MustNewConstMetric(r.descTraining, prometheus.CounterValue, written, "written")
		ch <- prometheus.MustNewConstMetric(r.descTraining, prometheus.CounterValue, unavailable, "unavailable")
	}
	for i, c := range r.catalogs {
		if c == nil {
			continue
		}
		name := r.spec.Models[i].Name
		ch <- prometheus.MustNewConstMetric(r.descRefused, prometheus.CounterValue, float64(c.refusals.Load()), name)
		ch <- prometheus.MustNewConstMetric(r.descSwaps, prometheus.CounterValue, float64(c.swapsTotal.Load()), name)
	}
}

// View is the admin API's picture of the models on this instance.
type View struct {
	Models     []ModelView        `json:"models"`
	Partitions []int32            `json:"partitions"`
	Labels     map[string]float64 `json:"labels"`
	Drifts     float64            `json:"drift_detections"`
	Merges     float64            `json:"merges"`

	// LabelsWaiting is the early labels waiting for their event, as of each partition's last commit.
	LabelsWaiting float64 `json:"labels_waiting"`
}

// ModelView is one model across this instance's partitions.
type ModelView struct {
	Name        string  `json:"name"`
	Kind        string  `json:"kind"`
	Champion    bool    `json:"champion"`
	Version     int64   `json:"version"`
	Updates     int64   `json:"updates"`
	Predictions float64 `json:"predictions"`
	// Drifts counts the drift detections in the model's signal while it was champion.
	Drifts float64 `json:"drift_detections"`
	// ColdPredictions are the predictions it published cold (as champion, before its min
	// examples); WarmPartitions the partitions whose replica is warm now.
	ColdPredictions float64      `json:"cold_predictions"`
	WarmPartitions  int          `json:"warm_partitions"`
	Evaluation      []MetricView `json:"evaluation"`
	// Live and Versions: an offline model's live version on this instance and every version it
	// has read from the versions topic, valid or refused (with the reason).
	Live     *int64        `json:"live_version,omitempty"`
	Versions []VersionView `json:"versions,omitempty"`
	// Partitions are the replicas, one per partition this instance owns, as of their last commit.
	Partitions []ReplicaView `json:"partitions"`
}

// ReplicaView is one partition's replica of a model. Digest identifies its parameters: two replicas
// with the same digest are the same model, bit for bit.
type ReplicaView struct {
	Partition int32  `json:"partition"`
	Version   int64  `json:"version"`
	Updates   int64  `json:"updates"`
	Digest    string `json:"digest"`
}

// MetricView is one evaluation metric, averaged over partitions by their examples. A multiclass
// model's per-class recall is metric "recall" with Class set (the class's label: its name with
// declared classes, else its index), its Examples that class's.
type MetricView struct {
	Metric     string  `json:"metric"`
	Class      string  `json:"class,omitempty"`
	Cumulative float64 `json:"cumulative"`
	Rolling    float64 `json:"rolling"`
	Examples   int64   `json:"examples"`
}

func (r *registry) view() View {
	r.mu.Lock()
	defer r.mu.Unlock()
	v := View{Labels: map[string]float64{}, Merges: r.merges}
	for k, n := range r.labels {
		v.Labels[k] = n
	}
	for p, f := range r.parts {
		v.Partitions = append(v.Partitions, p)
		v.LabelsWaiting += float64(f.waiting)
	}
	sort.Slice(v.Partitions, func(i, j int) bool { return v.Partitions[i] < v.Partitions[j] })
	championVotes := make([]int, len(r.spec.Models))
	for i, ms := range r.spec.Models {
		mv := ModelView{Name: ms.Name, Predictions: r.predictions[i], Drifts: r.drifts[i], ColdPredictions: r.cold[i]}
		v.Drifts += r.drifts[i]
		if c := r.catalogs[i]; c != nil {
			mv.Kind = c.kind()
			live := c.live.Load()
			mv.Live, mv.Versions = &live, c.view()
		} else {
			mv.Kind = ms.Learner.Kind()
		}
		sums := map[string]*MetricView{}
		var names []string
		for _, p := range v.Partitions {
			f := r.parts[p]
			mv.Version = max(mv.Version, f.versions[i])
			mv.Updates += f.updates[i]
			if f.warm[i] {
				mv.WarmPartitions++
			}
			mv.Partitions = append(mv.Partitions, ReplicaView{Partition: p, Version: f.versions[i], Updates: f.updates[i], Digest: f.digests[i]})
			if f.champion == i {
				championVotes[i]++
			}
			for name, e := range f.evals[i] {
				s, ok := sums[name]
				if !ok {
					s = &MetricView{Metric: name}
					sums[name] = s
					names = append(names, name)
				}
				s.Cumulative += e.cumulative * float64(e.n)
				s.Rolling += e.rolling * float64(e.n)
				s.Examples += e.n
			}
		}
		sort.Strings(names)
		for _, n := range names {
			s := sums[n]
			if s.Examples > 0 {
				s.Cumulative /= float64(s.Examples)
				s.Rolling /= float64(s.Examples)
			}
			if c, ok := strings.CutPrefix(n, classRecallPrefix); ok {
				s.Metric, s.Class = "recall", c
				if k, err := strconv.Atoi(c); err == nil && k < len(r.spec.Labels.Classes) {
					s.Class = r.spec.Labels.Classes[k]
				}
			}
			mv.Evaluation = append(mv.Evaluation, *s)
		}
		v.Models = append(v.Models, mv)
	}
	best := -1
	for i, n := range championVotes {
		if best < 0 || n > championVotes[best] {
			best = i
		}
	}
	if len(v.Partitions) == 0 {
		best = -1
		for i, ms := range r.spec.Models {
			if ms.Name == r.spec.Champion || (r.spec.Champion == "" && i == 0) {
				best = i
			}
		}
	}
	if best >= 0 {
		v.Models[best].Champion = true
	}
	return v
}

// Registry is the read-only handle the admin server uses.
type Registry struct{ r *registry }

// View returns the models on this instance.
func (r *Registry) View() View { return r.r.view() }

// JSON returns View as JSON.
func (r *Registry) JSON() ([]byte, error) { return json.MarshalIndent(r.r.view(), "", "  ") }
