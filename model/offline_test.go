package model

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/gbdt"
	"github.com/streamd/streamd/online"
	"github.com/streamd/streamd/stream"
)

// offlineFormat is the events of the offline model tests: amount, channel and the card's count in
// the last minute as a field (the models were trained on those names, testdata/gen.py).
func offlineFormat(t testing.TB) *stream.JSONFormat {
	t.Helper()
	f := &stream.JSONFormat{
		KeyField: "k", IDField: "id",
		Time: stream.EventTimeSpec{Field: "ts", Format: stream.TimeEpochMillis},
		Fields: []stream.FieldSpec{
			{Name: "amount", Type: stream.Number},
			{Name: "channel", Type: stream.String, Values: []string{"pos", "online", "atm"}},
			{Name: "txc", Type: stream.Number},
			{Name: "label", Type: stream.Number},
		},
	}
	if err := f.Init(); err != nil {
		t.Fatal(err)
	}
	return f
}

func offlineFeatures() []FeatureSpec {
	return []FeatureSpec{
		// The transforms are the online learners'; offline models read the value as it came.
		{Name: "amount", Field: "amount", Window: -1, Transforms: []Transform{{Kind: "log1p"}, {Kind: "standardize"}}},
		{Name: "channel", Field: "channel", Window: -1, Encoding: OneHot, Values: []string{"pos", "online", "atm"}},
		{Name: "tx_count_1m", Field: "txc", Window: -1},
	}
}

func loadTestModel(t testing.TB, name string) *gbdt.Model {
	t.Helper()
	m, err := gbdt.LoadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func readTestFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// offlinePipeline: the given models over offlineFeatures (plus extra features), labels in the
// events.
func offlinePipeline(t testing.TB, spec Spec) (*stream.Pipeline, *Operator) {
	t.Helper()
	f := offlineFormat(t)
	spec.Features = append(offlineFeatures(), spec.Features...)
	spec.Output = "predictions"
	if reflect.DeepEqual(spec.Labels, LabelSpec{}) {
		spec.Labels = LabelSpec{Field: "label"}
	}
	op, err := New(spec, f, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := &stream.Pipeline{Name: "app", Source: stream.Source{Topic: "tx", Format: f}, DeadLetterTopic: "dlq", Operators: []stream.Operator{op}}
	return p, op
}

type offlineEvent struct {
	amount  float64 // NaN: missing
	channel int
	txc     float64
	label   int
}

var channels = []string{"pos", "online", "atm"}

func (e offlineEvent) record(i int) *kgo.Record {
	v := fmt.Sprintf(`{"id":"e%06d","k":"c%02d","ts":%d,"channel":%q,"txc":%g,"label":%d`, i, i%20, 1_700_000_000_000+int64(i)*10, channels[e.channel], e.txc, e.label)
	if !math.IsNaN(e.amount) {
		v += fmt.Sprintf(`,"amount":%v`, e.amount)
	}
	return &kgo.Record{Topic: "tx", Offset: int64(i), Key: []byte(fmt.Sprintf("c%02d", i%20)), Value: []byte(v + "}"), Timestamp: time.UnixMilli(1_700_000_000_000 + int64(i)*10)}
}

// genOffline draws events like testdata/gen.py's training data.
func genOffline(rng *rand.Rand, n int) []offlineEvent {
	out := make([]offlineEvent, n)
	for i := range out {
		e := offlineEvent{amount: math.Round(math.Exp(rng.NormFloat64()+3)*100) / 100, channel: rng.IntN(3), txc: float64(1 + rng.IntN(29))}
		z := -3 + 0.6*math.Log1p(e.amount) + 0.05*e.txc
		if e.channel == 1 {
			z += 1.5
		}
		if rng.Float64() < 1/(1+math.Exp(-z)) {
			e.label = 1
		}
		out[i] = e
	}
	return out
}

func records(evs []offlineEvent, from int) []*kgo.Record {
	out := make([]*kgo.Record, len(evs))
	for i, e := range evs {
		out[i] = e.record(from + i)
	}
	return out
}

type offlinePrediction struct {
	EventID     string             `json:"event_id"`
	Model       string             `json:"model"`
	Version     int64              `json:"version"`
	Score       float64            `json:"score"`
	Class       int                `json:"class"`
	Probs       map[string]float64 `json:"probabilities"`
	Features    map[string]any     `json:"features"`
	Challengers map[string]float64 `json:"challengers"`
	Explanation *struct {
		Bias float64 `json:"bias"`
		Top  []struct {
			Feature      string  `json:"feature"`
			Contribution float64 `json:"contribution"`
		} `json:"top"`
	} `json:"explanation"`
}

func decodePredictions(t *testing.T, recs []*kgo.Record) []offlinePrediction {
	t.Helper()
	out := make([]offlinePrediction, len(recs))
	for i, r := range recs {
		if err := json.Unmarshal(r.Value, &out[i]); err != nil {
			t.Fatalf("prediction %d: %v: %s", i, err, r.Value)
		}
	}
	return out
}

// TestOfflineScoresAsTheLibrary: an offline champion publishes, for every event, XGBoost's own
// probability (testdata/fraud_v1_expect.csv, from predict_proba), with version 0 (the file), the
// features mapped by name (the pipeline's order differs from the model's is not needed: the
// one-hot channel enters as its category code) and missing values as missing.
func TestOfflineScoresAsTheLibrary(t *testing.T) {
	f, err := os.Open("testdata/fraud_v1_expect.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	rows = rows[1:]
	var evs []offlineEvent
	var want []float64
	for _, r := range rows {
		e := offlineEvent{amount: math.NaN()}
		if r[0] != "" {
			e.amount, _ = strconv.ParseFloat(r[0], 64)
		}
		c, _ := strconv.ParseFloat(r[1], 64)
		e.channel = int(c)
		e.txc, _ = strconv.ParseFloat(r[2], 64)
		p, _ := strconv.ParseFloat(r[3], 64)
		evs, want = append(evs, e), append(want, p)
	}
	p, _ := offlinePipeline(t, Spec{Models: []ModelSpec{{Name: "nightly", Offline: &OfflineSpec{Model: loadTestModel(t, "fraud_v1.json")}}}})
	d := newDriver(t, p)
	feed(t, d, records(evs, 0), 50, 0, 0)
	preds := decodePredictions(t, d.Outputs("predictions"))
	if len(preds) != len(evs) {
		t.Fatalf("%d predictions for %d events", len(preds), len(evs))
	}
	missing := 0
	for i, pr := range preds {
		if pr.Model != "nightly" || pr.Version != 0 {
			t.Fatalf("prediction %d: model %q version %d", i, pr.Model, pr.Version)
		}
		if math.Abs(pr.Score-want[i]) > 1e-7 {
			t.Errorf("row %d: score %v, XGBoost %v", i, pr.Score, want[i])
		}
		if math.IsNaN(evs[i].amount) {
			missing++
		}
	}
	if missing == 0 {
		t.Fatal("no row with a missing amount")
	}
	v := d.op.Registry().View()
	if v.Models[0].Kind != "gbdt/xgboost" || v.Models[0].Live == nil || *v.Models[0].Live != 0 {
		t.Errorf("view %+v", v.Models[0])
	}
}

// TestOfflineMissingFeatures: a model that needs a feature the pipeline does not compute is
// refused at start, naming it.
func TestOfflineMissingFeatures(t *testing.T) {
	spec := Spec{Features: offlineFeatures(), Output: "p", Labels: LabelSpec{Field: "label"},
		Models: []ModelSpec{{Name: "nightly", Offline: &OfflineSpec{File: "testdata/fraud_needs_merchant_risk.json"}}}}
	_, err := New(spec, offlineFormat(t), nil)
	if err == nil || !strings.Contains(err.Error(), "merchant_risk") || !strings.Contains(err.Error(), "nightly") {
		t.Fatalf("err = %v, want one naming merchant_risk and the model", err)
	}
	spec.Models[0].Offline = &OfflineSpec{File: "testdata/no-such-model.json"}
	if _, err := New(spec, offlineFormat(t), nil); err == nil || !strings.Contains(err.Error(), "no-such-model.json") {
		t.Fatalf("err = %v, want one naming the file", err)
	}
}

// TestOfflineVersionSwapAtCycleBoundary: a version made live mid-cycle is used from the next cycle
// on, by every event of it; an aborted cycle and a restart keep that rule; the metric counts the
// committed swaps.
func TestOfflineVersionSwapAtCycleBoundary(t *testing.T) {
	p, op := offlinePipeline(t, Spec{Models: []ModelSpec{{Name: "nightly", Offline: &OfflineSpec{Model: loadTestModel(t, "fraud_v1.json")}}}})
	d := newDriver(t, p)
	c := op.catalogs[0]
	evs := genOffline(rand.New(rand.NewPCG(3, 3)), 400)
	recs := records(evs, 0)
	process := func(rs []*kgo.Record) {
		t.Helper()
		if err := d.Process(rs...); err != nil {
			t.Fatal(err)
		}
	}
	commit := func() {
		t.Helper()
		if err := d.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	process(recs[:50])
	if err := c.offer(1, readTestFile(t, "fraud_v2.json")); err != nil {
		t.Fatal(err)
	}
	if err := c.setLive(1); err != nil {
		t.Fatal(err)
	}
	process(recs[50:100]) // same cycle: still version 0
	commit()
	process(recs[100:150]) // version 1 from here
	if err := d.Abort(); err != nil {
		t.Fatal(err)
	}
	process(recs[100:150])
	commit()
	// LightGBM as version 2, live mid-cycle; a crash before the commit.
	if err := c.offer(2, readTestFile(t, "fraud_lgb.txt")); err != nil {
		t.Fatal(err)
	}
	process(recs[150:200])
	if err := c.setLive(2); err != nil {
		t.Fatal(err)
	}
	if err := d.Restart(); err != nil {
		t.Fatal(err)
	}
	process(recs[150:200])
	commit()
	// A rollback to version 0.
	if err := c.setLive(0); err != nil {
		t.Fatal(err)
	}
	process(recs[200:250])
	commit()

	preds := decodePredictions(t, d.Outputs("predictions"))
	if len(preds) != 250 {
		t.Fatalf("%d predictions, want 250", len(preds))
	}
	wantVersion := func(i int) int64 {
		switch {
		case i < 100:
			return 0
		case i < 150:
			return 1
		case i < 200:
			return 2
		}
		return 0
	}
	scorers := map[int64]*gbdt.Scorer{}
	names := op.layout.denseNames()
	for v, file := range map[int64]string{0: "fraud_v1.json", 1: "fraud_v2.json", 2: "fraud_lgb.txt"} {
		s, err := loadTestModel(t, file).Bind(names)
		if err != nil {
			t.Fatal(err)
		}
		scorers[v] = s
	}
	out := make([]float64, 1)
	for i, pr := range preds {
		v := wantVersion(i)
		if pr.Version != v || pr.EventID != fmt.Sprintf("e%06d", i) {
			t.Fatalf("prediction %d: version %d (event %s), want %d", i, pr.Version, pr.EventID, v)
		}
		e := evs[i]
		scorers[v].Predict([]float64{e.amount, float64(e.channel), e.txc}, out)
		if pr.Score != out[0] {
			t.Fatalf("prediction %d: score %v, version %d scores %v", i, pr.Score, v, out[0])
		}
	}
	// Committed swaps: 0->1 (the aborted cycle's is not counted) and 2->0; the restarted task
	// opened at version 2, the live one, which is not a swap of its own.
	if n := c.swapsTotal.Load(); n != 2 {
		t.Errorf("swaps = %d, want 2", n)
	}
}

// TestOfflineRefusedVersionKeepsServing: a version that does not load, predicts another task, or
// needs a missing feature is refused with its reason, and so is making it (or an unknown version)
// live; the live version keeps serving; the metric counts every refusal.
func TestOfflineRefusedVersionKeepsServing(t *testing.T) {
	p, op := offlinePipeline(t, Spec{Models: []ModelSpec{{Name: "nightly", Offline: &OfflineSpec{Model: loadTestModel(t, "fraud_v1.json")}}}})
	d := newDriver(t, p)
	c := op.catalogs[0]
	for _, tc := range []struct {
		v    int64
		data []byte
		want string
	}{
		{1, readTestFile(t, "fraud_regression.json"), "regression"},
		{2, readTestFile(t, "fraud_needs_merchant_risk.json"), "merchant_risk"},
		{3, []byte(`{"learner": 1}`), "gbdt"},
		{4, []byte("not a model"), "unknown model format"},
	} {
		err := c.offer(tc.v, tc.data)
		if !errors.Is(err, ErrVersionRefused) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("version %d: err = %v, want a refusal naming %q", tc.v, err, tc.want)
		}
		if err := c.setLive(tc.v); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("live %d: err = %v, want a refusal naming %q", tc.v, err, tc.want)
		}
	}
	if err := c.setLive(9); err == nil || !strings.Contains(err.Error(), "no version 9") {
		t.Errorf("live 9: err = %v", err)
	}
	feed(t, d, records(genOffline(rand.New(rand.NewPCG(4, 4)), 100), 0), 25, 0, 0)
	for i, pr := range decodePredictions(t, d.Outputs("predictions")) {
		if pr.Version != 0 {
			t.Fatalf("prediction %d: version %d, want 0", i, pr.Version)
		}
	}
	want := `# HELP streamd_model_versions_refused_total Versions of an offline model (or rollbacks to one) that this instance refused: a file that does not load, needs features the pipeline does not compute, or predicts another task; the live version kept serving.
# TYPE streamd_model_versions_refused_total counter
streamd_model_versions_refused_total{model="nightly"} 9
`
	if err := testutil.CollectAndCompare(op.reg, strings.NewReader(want), "streamd_model_versions_refused_total"); err != nil {
		t.Error(err)
	}
	vs := op.Registry().View().Models[0].Versions
	if len(vs) != 5 || vs[1].Refused == "" || !vs[0].Live {
		t.Errorf("versions %+v", vs)
	}
}

// TestOfflineExplanations: with explain top-k, each prediction carries the k largest TreeSHAP
// contributions by absolute value, as gbdt computes them, and the bias; the contributions of all
// features and the bias sum to the margin.
func TestOfflineExplanations(t *testing.T) {
	m := loadTestModel(t, "fraud_v1.json")
	p, op := offlinePipeline(t, Spec{Models: []ModelSpec{{Name: "nightly", Offline: &OfflineSpec{Model: m, ExplainTopK: 2}}}})
	d := newDriver(t, p)
	evs := genOffline(rand.New(rand.NewPCG(5, 5)), 200)
	feed(t, d, records(evs, 0), 40, 0, 0)
	s, err := m.Bind(op.layout.denseNames())
	if err != nil {
		t.Fatal(err)
	}
	contribs := make([]float64, m.ContributionsLen())
	margin := make([]float64, 1)
	for i, pr := range decodePredictions(t, d.Outputs("predictions")) {
		e := evs[i]
		x := []float64{e.amount, float64(e.channel), e.txc}
		s.Contributions(x, contribs)
		s.Margin(x, margin)
		top := m.TopK(contribs, 0, 2, nil)
		if pr.Explanation == nil || len(pr.Explanation.Top) != 2 {
			t.Fatalf("prediction %d: explanation %+v", i, pr.Explanation)
		}
		if pr.Explanation.Bias != contribs[len(contribs)-1] {
			t.Fatalf("prediction %d: bias %v, want %v", i, pr.Explanation.Bias, contribs[len(contribs)-1])
		}
		for j, c := range top {
			if got := pr.Explanation.Top[j]; got.Feature != c.Name || got.Contribution != c.Value {
				t.Fatalf("prediction %d: top %d is %+v, want %+v", i, j, got, c)
			}
		}
		sum := 0.0
		for _, c := range contribs {
			sum += c
		}
		if math.Abs(sum-margin[0]) > 1e-5 {
			t.Fatalf("prediction %d: contributions sum to %v, the margin is %v", i, sum, margin[0])
		}
	}
}

// TestOfflineMulticlass: a multiclass offline model publishes the most probable class and its
// probability, is evaluated on class labels, and explains the predicted class.
func TestOfflineMulticlass(t *testing.T) {
	m := loadTestModel(t, "channel_multiclass.json")
	p, op := offlinePipeline(t, Spec{Models: []ModelSpec{{Name: "channel", Offline: &OfflineSpec{Model: m, ExplainTopK: 1}}}})
	d := newDriver(t, p)
	evs := genOffline(rand.New(rand.NewPCG(11, 11)), 300)
	feed(t, d, records(evs, 0), 50, 0, 0)
	s, err := m.Bind(op.layout.denseNames())
	if err != nil {
		t.Fatal(err)
	}
	probs := make([]float64, 3)
	contribs := make([]float64, m.ContributionsLen())
	classes := map[int]int{}
	for i, pr := range decodePredictions(t, d.Outputs("predictions")) {
		e := evs[i]
		x := []float64{e.amount, float64(e.channel), e.txc}
		s.Predict(x, probs)
		best := 0
		for k := range probs {
			if probs[k] > probs[best] {
				best = k
			}
		}
		if pr.Class != best || pr.Score != probs[best] {
			t.Fatalf("prediction %d: class %d score %v, want %d %v", i, pr.Class, pr.Score, best, probs[best])
		}
		if len(pr.Probs) != 3 || pr.Probs["0"] != probs[0] || pr.Probs["1"] != probs[1] || pr.Probs["2"] != probs[2] {
			t.Fatalf("prediction %d: probabilities %v, want %v", i, pr.Probs, probs)
		}
		s.Contributions(x, contribs)
		top := m.TopK(contribs, best, 1, nil)
		if pr.Explanation == nil || len(pr.Explanation.Top) != 1 || pr.Explanation.Top[0].Contribution != top[0].Value {
			t.Fatalf("prediction %d: explanation %+v, want class %d's %+v", i, pr.Explanation, best, top)
		}
		classes[best]++
	}
	if len(classes) < 2 {
		t.Fatalf("predicted classes %v: the test does not reach a class but the first", classes)
	}
	ev := op.Registry().View().Models[0].Evaluation
	if len(ev) < 3 || ev[0].Metric != "accuracy" || ev[0].Examples != 300 || ev[1].Metric != "logloss" || ev[1].Examples != 300 || ev[2].Metric != "macro_f1" {
		t.Fatalf("evaluation %+v", ev)
	}
}

// TestOfflineExplainMinScore: with a minimum score, only the predictions at or above it carry an
// explanation.
func TestOfflineExplainMinScore(t *testing.T) {
	p, _ := offlinePipeline(t, Spec{Models: []ModelSpec{{Name: "nightly", Offline: &OfflineSpec{Model: loadTestModel(t, "fraud_v1.json"), ExplainTopK: 2, ExplainMinScore: 0.3}}}})
	d := newDriver(t, p)
	feed(t, d, records(genOffline(rand.New(rand.NewPCG(5, 5)), 300), 0), 50, 0, 0)
	explained := 0
	for i, pr := range decodePredictions(t, d.Outputs("predictions")) {
		if (pr.Explanation != nil) != (pr.Score >= 0.3) {
			t.Fatalf("prediction %d: score %v, explanation %+v", i, pr.Score, pr.Explanation)
		}
		if pr.Explanation != nil {
			explained++
		}
	}
	if explained == 0 || explained == 300 {
		t.Fatalf("%d of 300 explained: the threshold splits nothing", explained)
	}
}

// TestOfflineChallengerAndPromotion: an offline challenger is scored on every event (its score in
// the champion's record, shadow: never published as the prediction), evaluated prequentially on
// the labels, and promoted by the drift rule when its rolling loss is better; the published
// prediction is then its own, with its version.
func TestOfflineChallengerAndPromotion(t *testing.T) {
	p, op := offlinePipeline(t, Spec{
		Models: []ModelSpec{
			{Name: "online", Learner: online.FTRLSpec{}},
			{Name: "nightly", Offline: &OfflineSpec{Model: loadTestModel(t, "fraud_v1.json")}},
		},
		Drift: DriftSpec{Detector: "adwin", Action: "promote_best_challenger"},
	})
	d := newDriver(t, p)
	evs := genOffline(rand.New(rand.NewPCG(6, 6)), 600)
	feed(t, d, records(evs, 0), 100, 0, 0)
	preds := decodePredictions(t, d.Outputs("predictions"))
	for i, pr := range preds {
		if pr.Model != "online" || pr.Challengers["nightly"] <= 0 {
			t.Fatalf("prediction %d: %+v, want online's, with nightly's score", i, pr)
		}
	}
	v := op.Registry().View()
	var ev []MetricView
	for _, m := range v.Models {
		if m.Name == "nightly" {
			ev = m.Evaluation
		}
	}
	if len(ev) == 0 || ev[0].Examples != 600 {
		t.Fatalf("nightly's evaluation %+v, want 600 examples", ev)
	}
	// The drift rule (what the detector triggers): the trained offline model beats an online
	// learner that has seen 600 examples.
	pr := d.op.last
	pr.m.onDrift(op, &detection{})
	if pr.m.champion != 1 {
		t.Fatalf("champion %d after promotion, want nightly (1); rolling losses %v %v", pr.m.champion, pr.m.evals[0].rollingLoss(), pr.m.evals[1].rollingLoss())
	}
	pr.m.snapshot(pr.store, &pr.buf)
	if err := d.Commit(); err != nil {
		t.Fatal(err)
	}
	feed(t, d, records(evs[:10], 600), 10, 0, 0)
	preds = decodePredictions(t, d.Outputs("predictions"))
	last := preds[len(preds)-1]
	if last.Model != "nightly" || last.Version != 0 || last.Challengers["online"] <= 0 {
		t.Fatalf("after promotion: %+v", last)
	}
}

// TestOfflineStaleChampionIsReplacedOnDrift: an offline champion whose world changes (the labels
// flip at event 3,000) is replaced by the online challenger once the drift detector sees the
// champion's loss jump and the challenger's rolling loss is lower: the promotion rule works with an
// offline champion, and the pipeline keeps serving a model that adapts.
func TestOfflineStaleChampionIsReplacedOnDrift(t *testing.T) {
	p, op := offlinePipeline(t, Spec{
		Models: []ModelSpec{
			{Name: "nightly", Offline: &OfflineSpec{Model: loadTestModel(t, "fraud_v1.json")}},
			{Name: "online", Learner: online.FTRLSpec{}},
		},
		Drift: DriftSpec{Detector: "adwin", Action: "promote_best_challenger"},
	})
	d := newDriver(t, p)
	const drift = 3000
	evs := genOffline(rand.New(rand.NewPCG(10, 10)), 8000)
	for i := drift; i < len(evs); i++ {
		evs[i].label = 1 - evs[i].label
	}
	feed(t, d, records(evs, 0), 100, 0, 0)
	preds := decodePredictions(t, d.Outputs("predictions"))
	switched := -1
	for i, pr := range preds {
		if pr.Model == "online" && switched < 0 {
			switched = i
		}
		if switched < 0 && (pr.Model != "nightly" || pr.Version != 0) {
			t.Fatalf("prediction %d: %s version %d before the switch", i, pr.Model, pr.Version)
		}
	}
	if switched < drift || switched > drift+1000 {
		t.Fatalf("the online challenger took over at event %d; the labels flipped at %d", switched, drift)
	}
	if last := preds[len(preds)-1]; last.Model != "online" {
		t.Fatalf("the last prediction is %s's", last.Model)
	}
	v := op.Registry().View()
	if v.Drifts == 0 || v.Models[1].Name != "online" || !v.Models[1].Champion {
		t.Fatalf("view: drifts %v, models %+v", v.Drifts, v.Models)
	}
	t.Logf("the online challenger took over at event %d (drift at %d)", switched, drift)
}

// TestOfflineStackedMargin: an online learner reads the offline model's margin as a feature: the
// prediction record shows it (equal to gbdt's margin), the learner learns from it, and a restart
// replays the learning log to the same state.
func TestOfflineStackedMargin(t *testing.T) {
	m := loadTestModel(t, "fraud_v1.json")
	spec := Spec{
		Features: []FeatureSpec{{Name: "nightly_margin", Margin: "nightly", Window: -1}},
		Models: []ModelSpec{
			{Name: "stacked", Learner: online.FTRLSpec{}},
			{Name: "nightly", Offline: &OfflineSpec{Model: m}},
		},
		SnapshotEvery: 1000,
	}
	p, op := offlinePipeline(t, spec)
	d := newDriver(t, p)
	evs := genOffline(rand.New(rand.NewPCG(7, 7)), 500)
	feed(t, d, records(evs, 0), 50, 3, 4)
	s, err := m.Bind(op.layout.denseNames())
	if err != nil {
		t.Fatal(err)
	}
	margin := make([]float64, 1)
	preds := decodePredictions(t, d.Outputs("predictions"))
	if len(preds) != len(evs) {
		t.Fatalf("%d predictions for %d events", len(preds), len(evs))
	}
	for i, pr := range preds {
		e := evs[i]
		s.Margin([]float64{e.amount, float64(e.channel), e.txc}, margin)
		if got, _ := pr.Features["nightly_margin"].(float64); got != margin[0] {
			t.Fatalf("prediction %d: nightly_margin %v, want %v", i, pr.Features["nightly_margin"], margin[0])
		}
	}
	before := modelState(t, d)
	if err := d.Restart(); err != nil {
		t.Fatal(err)
	}
	if after := modelState(t, d); after != before {
		t.Fatal("the stacked learner's state differs after a restart")
	}
	if n := d.op.last.m.learners[0].Updates(); n != 500 {
		t.Fatalf("the stacked learner learned %d examples, want 500", n)
	}
	// A margin of an online learner, or of a model that is not there, is refused.
	for _, bad := range []string{"stacked", "nope"} {
		spec.Features = []FeatureSpec{{Name: "m", Margin: bad, Window: -1}}
		spec.Features = append(offlineFeatures(), spec.Features...)
		spec.Output, spec.Labels = "p", LabelSpec{Field: "label"}
		if _, err := New(spec, offlineFormat(t), nil); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("margin of %q: err = %v", bad, err)
		}
	}
}

// TestOfflineScoringAllocs: the model operator's per-event path with offline models (features,
// the boundary check, scoring the champion and a stacked challenger, the prediction record, with
// and without explanations) allocates nothing, measured over 1,000 events per run.
func TestOfflineScoringAllocs(t *testing.T) {
	for _, topK := range []int{0, 3} {
		t.Run(fmt.Sprintf("explain=%d", topK), func(t *testing.T) {
			spec := Spec{
				Features: []FeatureSpec{{Name: "nightly_margin", Margin: "nightly", Window: -1}},
				Models: []ModelSpec{
					{Name: "nightly", Offline: &OfflineSpec{Model: loadTestModel(t, "fraud_v2.json"), ExplainTopK: topK}},
					{Name: "stacked", Learner: online.FTRLSpec{}},
				},
			}
			p, op := offlinePipeline(t, spec)
			d := newDriver(t, p)
			feed(t, d, records(genOffline(rand.New(rand.NewPCG(8, 8)), 100), 0), 100, 0, 0)
			pr := d.op.last
			f := p.Source.Format.NewDecoder() // the events, decoded once
			evs := make([]stream.Event, 1000)
			for i, r := range records(genOffline(rand.New(rand.NewPCG(9, 9)), len(evs)), 100) {
				if err := f.Decode(r, &evs[i]); err != nil {
					t.Fatal(err)
				}
			}
			task := d.Task()
			run := func() {
				for i := range evs {
					ev := &evs[i]
					pr.atCycle = false
					pr.swapVersions(task)
					pr.buf = op.layout.extract(ev, &pr.raw, pr.buf)
					pr.predict(&pr.raw)
					pr.out = pr.appendPrediction(pr.out[:0], ev)
				}
			}
			run()
			if n := testing.AllocsPerRun(5, run); n != 0 {
				t.Fatalf("%v allocations per 1,000 events, want 0", n)
			}
		})
	}
}

// processCPU is the process's user and system CPU time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkOfflineScoring times the model operator's per-event path (features, the boundary
// check, scoring, the prediction record) with an offline champion (model/testdata/fraud_v2.json:
// 40 trees of depth 4), with and without a top-3 explanation, beside an online FTRL champion.
func BenchmarkOfflineScoring(b *testing.B) {
	for _, bc := range []struct {
		name string
		ms   ModelSpec
	}{
		{"offline", ModelSpec{Name: "nightly", Offline: &OfflineSpec{Model: loadTestModel(b, "fraud_v2.json")}}},
		{"offline_explain3", ModelSpec{Name: "nightly", Offline: &OfflineSpec{Model: loadTestModel(b, "fraud_v2.json"), ExplainTopK: 3}}},
		{"ftrl", ModelSpec{Name: "ftrl", Learner: online.FTRLSpec{}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p, op := offlinePipeline(b, Spec{Models: []ModelSpec{bc.ms}})
			d := newDriver(b, p)
			feed(b, d, records(genOffline(rand.New(rand.NewPCG(8, 8)), 10), 0), 10, 0, 0)
			pr := d.op.last
			f := p.Source.Format.NewDecoder()
			evs := make([]stream.Event, 1024)
			for i, r := range records(genOffline(rand.New(rand.NewPCG(9, 9)), len(evs)), 100) {
				if err := f.Decode(r, &evs[i]); err != nil {
					b.Fatal(err)
				}
			}
			task := d.Task()
			b.ReportAllocs()
			b.ResetTimer()
			start := processCPU()
			for i := range b.N {
				ev := &evs[i%len(evs)]
				pr.swapVersions(task)
				pr.buf = op.layout.extract(ev, &pr.raw, pr.buf)
				pr.predict(&pr.raw)
				pr.out = pr.appendPrediction(pr.out[:0], ev)
			}
			// CPU time, not wall time: the shared machine's wall clock includes other processes.
			b.ReportMetric(float64((processCPU()-start).Nanoseconds())/float64(b.N), "cpu-ns/event")
		})
	}
}
