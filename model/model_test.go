package model

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/online"
	"github.com/streamd/streamd/stream"
	"github.com/streamd/streamd/stream/streamtest"
	"github.com/streamd/streamd/window"
	"github.com/streamd/streamd/window/agg"
)

// example is one generated event with a known ground truth: P(y=1) is a logistic function of the
// amount, the channel and how busy the card has been.
type example struct {
	id, key string
	ts      int64
	amount  float64
	channel string
	label   int
	offset  int64
}

func genExamples(rng *rand.Rand, n int) []example {
	out := make([]example, n)
	t := int64(1_700_000_000_000)
	channels := []string{"pos", "online", "atm"}
	for i := range out {
		t += int64(rng.IntN(200))
		e := example{id: fmt.Sprintf("e%06d", i), key: fmt.Sprintf("c%02d", rng.IntN(20)), ts: t,
			amount: math.Exp(rng.NormFloat64() + 3), channel: channels[rng.IntN(3)], offset: int64(i)}
		z := -3 + 1.2*math.Log1p(e.amount)/2
		if e.channel == "online" {
			z += 1.5
		}
		if rng.Float64() < 1/(1+math.Exp(-z)) {
			e.label = 1
		}
		out[i] = e
	}
	return out
}

func (e example) record(withLabel bool) *kgo.Record {
	v := fmt.Sprintf(`{"id":%q,"k":%q,"ts":%d,"amount":%.4f,"channel":%q`, e.id, e.key, e.ts, e.amount, e.channel)
	if withLabel {
		v += fmt.Sprintf(`,"label":%d`, e.label)
	}
	return &kgo.Record{Topic: "tx", Offset: e.offset, Key: []byte(e.key), Value: []byte(v + "}"), Timestamp: time.UnixMilli(e.ts)}
}

func (e example) labelRecord(offset int64) *kgo.Record {
	return &kgo.Record{Topic: "labels", Offset: offset, Key: []byte(e.key),
		Value: []byte(fmt.Sprintf(`{"event_id":%q,"label":%d}`, e.id, e.label)), Timestamp: time.UnixMilli(e.ts)}
}

func sourceFormat() *stream.JSONFormat {
	return &stream.JSONFormat{
		KeyField: "k", IDField: "id",
		Time: stream.EventTimeSpec{Field: "ts", Format: stream.TimeEpochMillis},
		Fields: []stream.FieldSpec{
			{Name: "amount", Type: stream.Number, Required: true},
			{Name: "channel", Type: stream.String, Values: []string{"pos", "online", "atm"}},
			{Name: "label", Type: stream.Number},
		},
	}
}

func labelsFormat() *stream.JSONFormat {
	return &stream.JSONFormat{IDField: "event_id", Time: stream.EventTimeSpec{Format: stream.TimeKafka},
		Fields: []stream.FieldSpec{{Name: "label", Type: stream.Number, Required: true}}}
}

// pipeline builds: a sliding count feature window, then the scoring operator with an FTRL champion
// and a Hoeffding tree challenger.
func pipeline(t *testing.T, topicLabels bool, snapshotEvery int) *stream.Pipeline {
	t.Helper()
	f := sourceFormat()
	if err := f.Init(); err != nil {
		t.Fatal(err)
	}
	win, err := window.New(window.Spec{Name: "features_1m", Kind: window.Sliding, Size: time.Minute, Resolution: time.Second,
		Aggs: []window.Agg{{Name: "tx_count_1m", Kind: agg.Count}}, FeatureSlots: []int{0}}, f)
	if err != nil {
		t.Fatal(err)
	}
	spec := Spec{
		Features: []FeatureSpec{
			{Name: "amount_log", Field: "amount", Window: -1, Transforms: []Transform{{Kind: "log1p"}, {Kind: "standardize"}}},
			{Name: "channel", Field: "channel", Window: -1, Encoding: OneHot, Values: []string{"pos", "online", "atm"}},
			{Name: "tx_count_1m", Window: 0, Transforms: []Transform{{Kind: "log1p"}}},
		},
		Models: []ModelSpec{
			{Name: "ftrl", Learner: online.FTRLSpec{}},
			{Name: "tree", Learner: online.TreeSpec{}},
		},
		Drift:         DriftSpec{Detector: "adwin", Action: "alert"},
		Output:        "predictions",
		SnapshotEvery: snapshotEvery,
	}
	p := &stream.Pipeline{Name: "app", Source: stream.Source{Topic: "tx", Format: f}, DeadLetterTopic: "dlq",
		Features: []string{"tx_count_1m"}}
	var lf stream.Format
	if topicLabels {
		l := labelsFormat()
		if err := l.Init(); err != nil {
			t.Fatal(err)
		}
		lf = l
		p.Labels = &stream.Source{Topic: "labels", Format: l}
		spec.Labels = LabelSpec{TopicField: "label", TTL: 30 * time.Second}
	} else {
		spec.Labels = LabelSpec{Field: "label"}
	}
	op, err := New(spec, f, lf)
	if err != nil {
		t.Fatal(err)
	}
	p.Operators = []stream.Operator{win, op}
	return p
}

type prediction struct {
	EventID  string             `json:"event_id"`
	Model    string             `json:"model"`
	Version  int64              `json:"version"`
	Score    float64            `json:"score"`
	Features map[string]any     `json:"features"`
	Chall    map[string]float64 `json:"challengers"`
}

// run feeds examples (labels in the events), committing every commitEvery; aborting every
// abortEvery-th cycle and replaying it, or restarting (a crash) every restartEvery-th cycle.
func run(t *testing.T, exs []example, commitEvery, abortEvery, restartEvery, snapshotEvery int) (*driven, []*kgo.Record) {
	t.Helper()
	d := newDriver(t, pipeline(t, false, snapshotEvery))
	recs := make([]*kgo.Record, len(exs))
	for i, e := range exs {
		recs[i] = e.record(true)
	}
	feed(t, d, recs, commitEvery, abortEvery, restartEvery)
	return d, d.Outputs("predictions")
}

// driven is a driver and the model operator it runs, for the tests to look inside.
type driven struct {
	*streamtest.Driver
	op *captured
}

// captured is the model operator, keeping the processor it opened last (the driver's current
// task's: a restart opens a new one).
type captured struct {
	*Operator
	last *processor
}

func (c *captured) Open(t *stream.Task) (stream.Processor, error) {
	p, err := c.Operator.Open(t)
	if mp, ok := p.(*processor); ok {
		c.last = mp
	}
	return p, err
}

func modelState(t *testing.T, d *driven) string {
	t.Helper()
	if d.op.last == nil {
		t.Fatal("no model processor")
	}
	return string(d.op.last.m.encode(nil))
}

// TestPredictionsAndLearning: one prediction per event, with lineage and features, and the champion
// learns the ground truth (progressive AUC well above chance).
func TestPredictionsAndLearning(t *testing.T) {
	exs := genExamples(rand.New(rand.NewPCG(1, 1)), 6000)
	d, preds := run(t, exs, 100, 0, 0, 1000)
	if len(preds) != len(exs) {
		t.Fatalf("%d predictions for %d events", len(preds), len(exs))
	}
	var p prediction
	if err := json.Unmarshal(preds[len(preds)-1].Value, &p); err != nil {
		t.Fatal(err)
	}
	if p.EventID != exs[len(exs)-1].id || p.Model != "ftrl" || p.Features["channel"] != exs[len(exs)-1].channel || p.Chall["tree"] < 0 {
		t.Errorf("last prediction %s", preds[len(preds)-1].Value)
	}
	if _, ok := p.Features["tx_count_1m"].(float64); !ok {
		t.Errorf("the window feature is missing: %s", preds[len(preds)-1].Value)
	}
	v := d.op.Registry().View()
	auc := metric(v, "ftrl", "auc")
	if auc < 0.65 {
		t.Errorf("progressive AUC of the champion %.3f; it did not learn", auc)
	}
	t.Logf("ftrl: %+v", v.Models[0].Evaluation)
}

func metric(v View, model, name string) float64 {
	for _, m := range v.Models {
		if m.Name == model {
			for _, e := range m.Evaluation {
				if e.Metric == name {
					return e.Cumulative
				}
			}
		}
	}
	return math.NaN()
}

// TestRecoveryIsExact: aborted cycles, crashes and restores (snapshot + learning log) give the same
// predictions and the same model state, bit for bit, as an uninterrupted run.
func TestRecoveryIsExact(t *testing.T) {
	exs := genExamples(rand.New(rand.NewPCG(2, 2)), 3000)
	d0, want := run(t, exs, 1000000, 0, 0, 250)
	wantState := modelState(t, d0)
	for _, v := range []struct{ commit, abort, restart, snap int }{{50, 3, 0, 250}, {37, 0, 2, 250}, {11, 4, 7, 64}, {200, 0, 1, 5000}} {
		d, got := run(t, exs, v.commit, v.abort, v.restart, v.snap)
		if len(got) != len(want) {
			t.Fatalf("variant %+v: %d predictions, want %d", v, len(got), len(want))
		}
		for i := range got {
			if string(got[i].Value) != string(want[i].Value) {
				t.Fatalf("variant %+v: prediction %d differs:\n got %s\nwant %s", v, i, got[i].Value, want[i].Value)
			}
		}
		if v.snap == 250 && modelState(t, d) != wantState {
			t.Errorf("variant %+v: the model state differs from the uninterrupted run's", v)
		}
	}
}

// TestLabelsTopic: labels from their own topic join predictions by event id; a label without a
// prediction is unmatched, a prediction without a label expires after the TTL; both are counted.
func TestLabelsTopic(t *testing.T) {
	exs := genExamples(rand.New(rand.NewPCG(3, 3)), 2000)
	p := pipeline(t, true, 500)
	d, err := streamtest.NewDriver(p, streamtest.Config{StateDir: t.TempDir(), MaxOutOfOrderness: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var loff int64
	for i, e := range exs {
		if err := d.Process(e.record(false)); err != nil {
			t.Fatal(err)
		}
		// Label most events 20 events later; leave every tenth unlabelled; add a label for an
		// event that does not exist every 50th.
		if j := i - 20; j >= 0 && j%10 != 0 {
			loff++
			if err := d.Process(exs[j].labelRecord(loff)); err != nil {
				t.Fatal(err)
			}
		}
		if i%50 == 0 {
			loff++
			ghost := exs[i]
			ghost.id = "ghost-" + ghost.id
			if err := d.Process(ghost.labelRecord(loff)); err != nil {
				t.Fatal(err)
			}
		}
		if i%100 == 99 {
			if err := d.Commit(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Event time moves 30 s past the last event: every unlabelled prediction expires.
	if err := d.AdvanceIdle(exs[len(exs)-1].ts + 31_000); err != nil {
		t.Fatal(err)
	}
	if err := d.Commit(); err != nil {
		t.Fatal(err)
	}
	v := p.Operators[1].(*Operator).Registry().View()
	joined, unmatched, expired := v.Labels["joined"], v.Labels["unmatched"], v.Labels["expired"]
	wantJoined := 0
	for j := 0; j < len(exs)-20; j++ {
		if j%10 != 0 {
			wantJoined++
		}
	}
	if int(joined) != wantJoined || int(unmatched) != (len(exs)+49)/50 || int(joined+expired) != len(exs) {
		t.Errorf("labels joined %v (want %d), unmatched %v (want %d), expired %v (want %d)",
			joined, wantJoined, unmatched, (len(exs)+49)/50, expired, len(exs)-wantJoined)
	}
	if n := len(d.Outputs("predictions")); n != len(exs) {
		t.Errorf("%d predictions for %d events", n, len(exs))
	}
	if !strings.Contains(string(d.Outputs("predictions")[0].Value), `"version":1`) {
		t.Errorf("prediction without version: %s", d.Outputs("predictions")[0].Value)
	}
}
