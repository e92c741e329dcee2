package model

import (
	"encoding/json"
	"math"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/online"
	"github.com/streamd/streamd/stream"
)

func multiclassPipeline(t *testing.T, topK int) *stream.Pipeline {
	t.Helper()
	f := &stream.JSONFormat{
		KeyField: "card.id", IDField: "event_id", Time: stream.EventTimeSpec{Format: stream.TimeKafka},
		Fields: []stream.FieldSpec{{Name: "payment.amount", Type: stream.Number, Required: true}, {Name: "outcome", Type: stream.String}},
	}
	if err := f.Init(); err != nil {
		t.Fatal(err)
	}
	op, err := New(Spec{
		Features: []FeatureSpec{{Name: "amount", Field: "payment.amount", Window: -1, Transforms: []Transform{{Kind: "standardize"}}}},
		Models:   []ModelSpec{{Name: "softmax", Learner: online.SoftmaxSpec{Classes: 3}, MinExamples: 1, TopK: topK}},
		Output:   "predictions", SnapshotEvery: 50,
		Labels: LabelSpec{Field: "outcome", Classes: []string{"legit", "fraud", "chargeback"}},
	}, f, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &stream.Pipeline{Name: "app", Source: stream.Source{Topic: "tx", Format: f}, DeadLetterTopic: "dlq", Operators: []stream.Operator{op}}
}

// TestMulticlassProbabilitiesAndMetrics: a multiclass prediction carries its top-k class
// probabilities by class name, most probable first; the model's log loss, macro-F1 and per-class
// recall in /v1/models equal a recount from the published predictions (which, labels being in the
// events, are what the model was evaluated on), exactly across aborts and restarts; the per-class
// recall is a metric with a class label.
func TestMulticlassProbabilitiesAndMetrics(t *testing.T) {
	classes := []string{"legit", "fraud", "chargeback"}
	var recs []*kgo.Record
	for i := range 900 {
		label := classes[0]
		switch {
		case i%10 == 3:
			label = classes[1]
		case i%4 == 1:
			label = classes[2]
		}
		recs = append(recs, classRecord(i, label))
	}
	labelOf := func(r *kgo.Record) string {
		var v struct{ Outcome string }
		_ = json.Unmarshal(r.Value, &v)
		return v.Outcome
	}
	t.Run("top 2", func(t *testing.T) {
		d := newDriver(t, multiclassPipeline(t, 2))
		feed(t, d, recs, 100, 0, 0)
		for i, r := range d.Outputs("predictions") {
			var p struct {
				Warm  bool            `json:"warm"`
				Label *string         `json:"label"`
				Probs json.RawMessage `json:"probabilities"`
			}
			if err := json.Unmarshal(r.Value, &p); err != nil {
				t.Fatal(err)
			}
			// The object's order is the ranking: decode it as a list of pairs.
			dec := json.NewDecoder(strings.NewReader(string(p.Probs)))
			var names []string
			var ps []float64
			dec.Token()
			for dec.More() {
				k, _ := dec.Token()
				var v float64
				if err := dec.Decode(&v); err != nil {
					t.Fatal(err)
				}
				names, ps = append(names, k.(string)), append(ps, v)
			}
			if len(names) != 2 || ps[0] < ps[1] || ps[0]+ps[1] > 1+1e-12 {
				t.Fatalf("prediction %d: probabilities %s, want the top 2 in order", i, p.Probs)
			}
			if p.Warm && *p.Label != names[0] {
				t.Fatalf("prediction %d: class %s, but the most probable is %s: %s", i, *p.Label, names[0], r.Value)
			}
		}
	})
	t.Run("metrics", func(t *testing.T) {
		var views [][]MetricView
		for _, v := range []struct{ commit, abort, restart int }{{900, 0, 0}, {37, 3, 4}} {
			d := newDriver(t, multiclassPipeline(t, 0))
			feed(t, d, recs, v.commit, v.abort, v.restart)
			views = append(views, modelView(t, d).Models[0].Evaluation)
			if v.restart > 0 {
				break
			}
			// The recount from the published predictions (every class's probability: top_k
			// defaults to min(classes, 10)).
			var loss float64
			tp, fp, fn := map[string]float64{}, map[string]float64{}, map[string]float64{}
			for i, r := range d.Outputs("predictions") {
				var p struct {
					Probs map[string]float64 `json:"probabilities"`
				}
				if err := json.Unmarshal(r.Value, &p); err != nil {
					t.Fatal(err)
				}
				y := labelOf(recs[i])
				loss += -math.Log(min(max(p.Probs[y], 1e-15), 1-1e-15))
				pred := classes[0]
				for _, c := range classes { // argmax, the lower class on a tie
					if p.Probs[c] > p.Probs[pred] {
						pred = c
					}
				}
				if pred == y {
					tp[y]++
				} else {
					fp[pred]++
					fn[y]++
				}
			}
			n := float64(len(recs))
			f1, present := 0.0, 0.0
			for _, c := range classes {
				if tp[c]+fp[c]+fn[c] > 0 {
					f1 += 2 * tp[c] / (2*tp[c] + fp[c] + fn[c])
					present++
				}
			}
			want := map[string]float64{"logloss": loss / n, "macro_f1": f1 / present}
			for _, c := range classes {
				want["recall/"+c] = tp[c] / (tp[c] + fn[c])
			}
			got := map[string]float64{}
			for _, m := range views[0] {
				k := m.Metric
				if m.Class != "" {
					k += "/" + m.Class
				}
				got[k] = m.Cumulative
			}
			for k, w := range want {
				if g, ok := got[k]; !ok || math.Abs(g-w) > 1e-9 {
					t.Errorf("%s = %v, want %v (recounted)", k, g, w)
				}
			}
			// Prometheus: streamd_model_class_recall{model, class, window}, one per class and window.
			reg := prometheus.NewPedanticRegistry()
			reg.MustRegister(d.op.reg)
			mfs, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			var series []string
			for _, mf := range mfs {
				if mf.GetName() != "streamd_model_class_recall" {
					continue
				}
				for _, m := range mf.GetMetric() {
					var l []string
					for _, lp := range m.GetLabel() {
						l = append(l, lp.GetName()+"="+lp.GetValue())
					}
					series = append(series, strings.Join(l, ","))
				}
			}
			sort.Strings(series)
			if len(series) != 6 || series[0] != "class=chargeback,model=softmax,window=cumulative" {
				t.Errorf("class recall series %v", series)
			}
		}
		if len(views) != 2 {
			t.Fatal("the recovery variant did not run")
		}
		a, _ := json.Marshal(views[0])
		b, _ := json.Marshal(views[1])
		if string(a) != string(b) {
			t.Errorf("with aborts and restarts the evaluation differs:\n%s\nwant\n%s", b, a)
		}
	})
}

// TestMulticlassScoringAllocs: a multiclass champion's prediction with its top-k probabilities
// allocates nothing, measured over 900 events per run.
func TestMulticlassScoringAllocs(t *testing.T) {
	for _, topK := range []int{0, 2} {
		p := multiclassPipeline(t, topK)
		d := newDriver(t, p)
		var recs []*kgo.Record
		for i := range 900 {
			recs = append(recs, classRecord(i, []string{"legit", "fraud", "chargeback"}[i%3]))
		}
		feed(t, d, recs[:300], 100, 0, 0)
		pr, op := d.op.last, d.op.Operator
		f := p.Source.Format.NewDecoder()
		evs := make([]stream.Event, len(recs))
		for i, r := range recs {
			if err := f.Decode(r, &evs[i]); err != nil {
				t.Fatal(err)
			}
		}
		run := func() {
			for i := range evs {
				pr.buf = op.layout.extract(&evs[i], &pr.raw, pr.buf)
				pr.predict(&pr.raw)
				pr.out = pr.appendPrediction(pr.out[:0], &evs[i])
			}
		}
		run()
		if n := testing.AllocsPerRun(5, run); n != 0 {
			t.Fatalf("top_k %d: %v allocations per 900 events, want 0", topK, n)
		}
	}
}
