package model

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/online"
	"github.com/streamd/streamd/stream"
)

// classPipeline scores events whose label is a string with two multiclass models: a softmax with
// room for three classes and a tree with room for four.
func classPipeline(t *testing.T, labels LabelSpec) *stream.Pipeline {
	t.Helper()
	f := &stream.JSONFormat{
		KeyField: "card.id", IDField: "event_id",
		Time: stream.EventTimeSpec{Format: stream.TimeKafka},
		Fields: []stream.FieldSpec{
			{Name: "payment.amount", Type: stream.Number, Required: true},
			{Name: "outcome", Type: stream.String},
		},
	}
	if err := f.Init(); err != nil {
		t.Fatal(err)
	}
	labels.Field = "outcome"
	op, err := New(Spec{
		Features: []FeatureSpec{{Name: "amount", Field: "payment.amount", Window: -1}},
		Models: []ModelSpec{
			{Name: "softmax", Learner: online.SoftmaxSpec{Classes: 3}},
			{Name: "tree", Learner: online.TreeSpec{Classes: 4}},
		},
		Output: "predictions", SnapshotEvery: 50, Labels: labels,
	}, f, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &stream.Pipeline{Name: "app", Source: stream.Source{Topic: "tx", Format: f}, DeadLetterTopic: "dlq",
		Operators: []stream.Operator{op}}
}

// classRecord is an event with a nested amount whose class follows from it.
func classRecord(i int, label string) *kgo.Record {
	amount := float64(i%3)*100 + 5
	v := fmt.Sprintf(`{"event_id":"e%d","card":{"id":"c%d"},"payment":{"amount":%g},"outcome":%q}`, i, i%7, amount, label)
	return &kgo.Record{Topic: "tx", Key: []byte(fmt.Sprintf("c%d", i%7)), Value: []byte(v), Offset: int64(i),
		Timestamp: time.UnixMilli(1772366400000 + int64(i)*1000)}
}

type classPrediction struct {
	EventID string `json:"event_id"`
	Warm    bool   `json:"warm"`
	Class   int    `json:"class"`
	Label   any    `json:"label"`
}

func predictions(t *testing.T, d *driven) []classPrediction {
	t.Helper()
	var out []classPrediction
	for _, r := range d.Outputs("predictions") {
		var p classPrediction
		if err := json.Unmarshal(r.Value, &p); err != nil {
			t.Fatal(err)
		}
		if !p.Warm {
			// A cold model decides no class (DefaultMinExamples).
			if !strings.Contains(string(r.Value), `"class":null`) || p.Label != nil {
				t.Fatalf("cold prediction %s decides a class", r.Value)
			}
			p.Class = -1
		}
		out = append(out, p)
	}
	return out
}

// TestDeclaredClasses: string labels of a declared list are learned as their index, a label not in
// the list is an unknown_label dead letter, and every prediction names its class.
func TestDeclaredClasses(t *testing.T) {
	classes := []string{"legit", "fraud", "chargeback"}
	d := newDriver(t, classPipeline(t, LabelSpec{Classes: classes}))
	var recs []*kgo.Record
	for i := range 600 {
		recs = append(recs, classRecord(i, classes[i%3]))
	}
	recs = append(recs, classRecord(600, "refund"))
	feed(t, d, recs, 100, 0, 0)
	dls := d.Outputs("dlq")
	if len(dls) != 1 || header(dls[0], stream.HeaderReason) != "unknown_label" || !strings.Contains(header(dls[0], stream.HeaderError), `"refund"`) {
		t.Fatalf("dead letters %v, want one unknown_label for refund", dls)
	}
	preds := predictions(t, d)
	if len(preds) != 600 {
		t.Fatalf("%d predictions, want 600", len(preds))
	}
	right := 0
	for i, p := range preds {
		if p.Class < 0 {
			continue
		}
		name, ok := p.Label.(string)
		if !ok || name != classes[p.Class] {
			t.Fatalf("prediction %+v: the label does not name class %d", p, p.Class)
		}
		if i >= 300 && name == classes[i%3] {
			right++
		}
	}
	if right < 180 { // chance is 100
		t.Errorf("%d of the last 300 predictions right; the classes were not learned by name", right)
	}
	for _, m := range modelView(t, d).Models {
		if m.Updates != 600 {
			t.Errorf("%s learned %d examples, want 600", m.Name, m.Updates)
		}
	}
}

// TestLearnedClasses: classes learned in order of first appearance are kept in the task's state
// (a restart and an aborted cycle keep the numbering exact), a label past the models' room is an
// unknown_label dead letter, and predictions name their class.
func TestLearnedClasses(t *testing.T) {
	names := []string{"chargeback", "legit", "fraud"} // the order of first appearance
	d := newDriver(t, classPipeline(t, LabelSpec{LearnClasses: true}))
	var recs []*kgo.Record
	for i := range 600 {
		recs = append(recs, classRecord(i, names[i%3]))
	}
	recs = append(recs, classRecord(600, "refund")) // a 4th class: the softmax has room for 3
	feed(t, d, recs, 100, 3, 2)
	dls := d.Outputs("dlq")
	if len(dls) != 1 || header(dls[0], stream.HeaderReason) != "unknown_label" || !strings.Contains(header(dls[0], stream.HeaderError), "room for 3") {
		t.Fatalf("dead letters %v, want one unknown_label for refund", dls)
	}
	preds := predictions(t, d)
	if len(preds) != 600 {
		t.Fatalf("%d predictions, want 600", len(preds))
	}
	right := 0
	for i, p := range preds {
		if p.Class < 0 {
			continue
		}
		if name, ok := p.Label.(string); ok && name != names[p.Class] {
			t.Fatalf("prediction %+v names class %d %q, learned as %q", p, p.Class, name, names[p.Class])
		}
		if i >= 300 && p.Label == names[i%3] {
			right++
		}
	}
	if right < 180 { // chance is 100
		t.Errorf("%d of the last 300 predictions right; the learned numbering did not hold", right)
	}
}

func TestClassesChecked(t *testing.T) {
	for _, c := range []struct {
		name   string
		labels LabelSpec
		want   string
	}{
		{"too many", LabelSpec{Classes: []string{"a", "b", "c", "d"}}, "4 classes declared, but softmax has 3"},
		{"repeated", LabelSpec{Classes: []string{"a", "a"}}, `class "a" is empty or repeated`},
		{"max over room", LabelSpec{LearnClasses: true, MaxClasses: 5}, "max classes 5, but softmax has 3"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := &stream.JSONFormat{Time: stream.EventTimeSpec{Format: stream.TimeKafka},
				Fields: []stream.FieldSpec{{Name: "x", Type: stream.Number}, {Name: "y", Type: stream.String}}}
			if err := f.Init(); err != nil {
				t.Fatal(err)
			}
			c.labels.Field = "y"
			_, err := New(Spec{Features: []FeatureSpec{{Name: "x", Field: "x", Window: -1}},
				Models: []ModelSpec{{Name: "softmax", Learner: online.SoftmaxSpec{Classes: 3}}}, Output: "p", Labels: c.labels}, f, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("New: %v, want %q", err, c.want)
			}
		})
	}
}

// TestClassesFromTheLabelsTopic: string labels from the labels topic, some before their event
// (early) and some after, join their predictions and are learned as their class; a name not in the
// classes is an unknown_label dead letter.
func TestClassesFromTheLabelsTopic(t *testing.T) {
	classes := []string{"legit", "fraud", "chargeback"}
	f := &stream.JSONFormat{
		KeyField: "card.id", IDField: "event_id", Time: stream.EventTimeSpec{Format: stream.TimeKafka},
		Fields: []stream.FieldSpec{{Name: "payment.amount", Type: stream.Number, Required: true}},
	}
	lf := &stream.JSONFormat{IDField: "event_id", Time: stream.EventTimeSpec{Format: stream.TimeKafka},
		Fields: []stream.FieldSpec{{Name: "label", Type: stream.String, Required: true}}}
	for _, x := range []stream.Format{f, lf} {
		if err := x.Init(); err != nil {
			t.Fatal(err)
		}
	}
	op, err := New(Spec{
		Features: []FeatureSpec{{Name: "amount", Field: "payment.amount", Window: -1}},
		Models:   []ModelSpec{{Name: "softmax", Learner: online.SoftmaxSpec{Classes: 3}}},
		Output:   "predictions",
		Labels:   LabelSpec{TopicField: "label", TTL: time.Hour, Classes: classes},
	}, f, lf)
	if err != nil {
		t.Fatal(err)
	}
	d := newDriver(t, &stream.Pipeline{Name: "app", Source: stream.Source{Topic: "tx", Format: f}, DeadLetterTopic: "dlq",
		Labels: &stream.Source{Topic: "labels", Format: lf}, Operators: []stream.Operator{op}})
	label := func(i int, name string) *kgo.Record {
		return &kgo.Record{Topic: "labels", Offset: int64(i), Key: []byte(fmt.Sprintf("c%d", i%7)),
			Value: []byte(fmt.Sprintf(`{"event_id":"e%d","label":%q}`, i, name)), Timestamp: time.UnixMilli(1772366400000 + int64(i)*1000)}
	}
	var recs []*kgo.Record
	for i := range 300 {
		ev := classRecord(i, classes[i%3])
		if i%2 == 0 {
			recs = append(recs, label(i, classes[i%3]), ev) // early
		} else {
			recs = append(recs, ev, label(i, classes[i%3]))
		}
	}
	recs = append(recs, label(999, "refund"))
	feed(t, d, recs, 50, 0, 0)
	dls := d.Outputs("dlq")
	if len(dls) != 1 || header(dls[0], stream.HeaderReason) != "unknown_label" {
		t.Fatalf("dead letters %v, want one unknown_label", dls)
	}
	for _, m := range modelView(t, d).Models {
		if m.Updates != 300 {
			t.Errorf("%s learned %d examples, want 300", m.Name, m.Updates)
		}
	}
	for _, p := range predictions(t, d) {
		if p.Class >= 0 && p.Label != classes[p.Class] {
			t.Fatalf("prediction %+v does not name its class", p)
		}
	}
}
