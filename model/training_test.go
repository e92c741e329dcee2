package model

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// trainingRowJSON is a training row as a consumer reads it.
type trainingRowJSON struct {
	EventID   string                 `json:"event_id"`
	Key       string                 `json:"key"`
	EventTime int64                  `json:"event_time"`
	Label     float64                `json:"label"`
	LabelTime int64                  `json:"label_time"`
	Source    struct{ Offset int64 } `json:"source"`
	Champion  string                 `json:"champion"`
	Models    []struct {
		Name    string
		Version int64
		Score   float64
		Class   int
	} `json:"models"`
	Features map[string]any `json:"features"`
	Overflow []string       `json:"overflow"`
}

// checkTrainingRows checks rows against the predictions: one row per joined label, each with its
// prediction's features (the same bytes), event time, offset, champion score and version, and the
// label wantLabel gives for its event id.
func checkTrainingRows(t *testing.T, preds, rows []*kgo.Record, joined int, wantLabel map[string]float64) {
	t.Helper()
	byID := map[string]map[string]json.RawMessage{}
	for _, r := range preds {
		var v map[string]json.RawMessage
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Fatalf("prediction %s: %v", r.Value, err)
		}
		var id string
		_ = json.Unmarshal(v["event_id"], &id)
		byID[id] = v
	}
	if len(rows) != joined {
		t.Errorf("%d training rows, want one per joined label: %d", len(rows), joined)
	}
	seen := map[string]bool{}
	for _, r := range rows {
		var row trainingRowJSON
		if err := json.Unmarshal(r.Value, &row); err != nil {
			t.Fatalf("training row %s: %v", r.Value, err)
		}
		var raw map[string]json.RawMessage
		_ = json.Unmarshal(r.Value, &raw)
		if seen[row.EventID] {
			t.Fatalf("two training rows for event %s", row.EventID)
		}
		seen[row.EventID] = true
		p, ok := byID[row.EventID]
		if !ok {
			t.Fatalf("a training row for event %s, which has no prediction: %s", row.EventID, r.Value)
		}
		if string(raw["features"]) != string(p["features"]) || string(raw["overflow"]) != string(p["overflow"]) {
			t.Fatalf("event %s: the row's features differ from the prediction's:\n row %s %s\npred %s %s",
				row.EventID, raw["features"], raw["overflow"], p["features"], p["overflow"])
		}
		var pred struct {
			Model     string  `json:"model"`
			Version   int64   `json:"version"`
			Score     float64 `json:"score"`
			EventTime int64   `json:"event_time"`
			Key       string  `json:"key"`
			Source    struct{ Offset int64 }
		}
		b, _ := json.Marshal(p)
		_ = json.Unmarshal(b, &pred)
		var champ *struct {
			Name    string
			Version int64
			Score   float64
			Class   int
		}
		for i := range row.Models {
			if row.Models[i].Name == row.Champion {
				champ = &row.Models[i]
			}
		}
		if champ == nil || row.Champion != pred.Model || champ.Score != pred.Score || champ.Version != pred.Version ||
			row.EventTime != pred.EventTime || row.Key != pred.Key || row.Source.Offset != pred.Source.Offset {
			t.Fatalf("event %s: the row does not carry its prediction's champion, score, version, event time, key and offset:\n row %s\npred %s",
				row.EventID, r.Value, b)
		}
		if len(row.Models) != 2 {
			t.Fatalf("event %s: %d models in the row, want every model's prediction", row.EventID, len(row.Models))
		}
		if want, ok := wantLabel[row.EventID]; !ok || row.Label != want {
			t.Fatalf("event %s: label %v, want %v", row.EventID, row.Label, want)
		}
		if row.LabelTime == 0 {
			t.Fatalf("event %s: no label time", row.EventID)
		}
	}
}

// TestTrainingRowsFromLabelsTopic: with labels that come early, late, twice, never, out of range or
// for events that never come, every joined label gives exactly one training row, with the features
// of its prediction, byte for byte, and aborted cycles and crashes give the same rows as an
// uninterrupted run.
func TestTrainingRowsFromLabelsTopic(t *testing.T) {
	recs, want, _ := topicScenario(11, 600)
	wantLabel := map[string]float64{}
	for _, r := range recs {
		if r.Topic != "labels" {
			continue
		}
		var v struct {
			EventID string  `json:"event_id"`
			Label   float64 `json:"label"`
		}
		if json.Unmarshal(r.Value, &v) == nil && (v.Label == 0 || v.Label == 1) {
			wantLabel[v.EventID] = v.Label // the last word on an event is the one joined
		}
	}
	last := int64(0)
	for _, r := range recs {
		last = max(last, r.Timestamp.UnixMilli())
	}
	do := func(commit, abort, restart int) ([]*kgo.Record, []*kgo.Record) {
		p := pipeline(t, true, 100)
		p.Operators[1].(*Operator).spec.Training = "training"
		d := newDriver(t, p)
		feed(t, d, recs, commit, abort, restart)
		if err := d.AdvanceIdle(last + 31_000); err != nil {
			t.Fatal(err)
		}
		if err := d.Commit(); err != nil {
			t.Fatal(err)
		}
		if got := modelView(t, d).Labels["joined"]; got != want["joined"] {
			t.Fatalf("%v labels joined, want %v", got, want["joined"])
		}
		return d.Outputs("predictions"), d.Outputs("training")
	}
	preds, base := do(1_000_000, 0, 0)
	checkTrainingRows(t, preds, base, int(want["joined"]), wantLabel)
	for _, v := range []struct{ commit, abort, restart int }{{50, 3, 0}, {37, 0, 2}, {11, 4, 7}} {
		_, got := do(v.commit, v.abort, v.restart)
		if len(got) != len(base) {
			t.Fatalf("variant %+v: %d rows, want %d", v, len(got), len(base))
		}
		for i := range got {
			if string(got[i].Value) != string(base[i].Value) {
				t.Fatalf("variant %+v: row %d differs:\n got %s\nwant %s", v, i, got[i].Value, base[i].Value)
			}
		}
	}
}

// TestTrainingRowsFromLabelsInEvents: with the label in the event, every labelled event gives one
// row at once, with its own time as the label's.
func TestTrainingRowsFromLabelsInEvents(t *testing.T) {
	p := pipeline(t, false, 100)
	p.Operators[1].(*Operator).spec.Training = "training"
	d := newDriver(t, p)
	exs := genExamples(rand.New(rand.NewPCG(3, 3)), 400)
	var recs []*kgo.Record
	wantLabel := map[string]float64{}
	for i, e := range exs {
		recs = append(recs, e.record(i%4 != 0)) // every fourth event unlabelled
		if i%4 != 0 {
			wantLabel[e.id] = float64(e.label)
		}
	}
	feed(t, d, recs, 64, 0, 0)
	rows := d.Outputs("training")
	checkTrainingRows(t, d.Outputs("predictions"), rows, len(wantLabel), wantLabel)
	for _, r := range rows {
		var row trainingRowJSON
		_ = json.Unmarshal(r.Value, &row)
		if row.LabelTime != row.EventTime {
			t.Fatalf("label time %d of a label in its event at %d", row.LabelTime, row.EventTime)
		}
	}
	if !reflect.DeepEqual(p.Operators[1].(*captured).OutputTopics(), []string{"predictions", "training"}) {
		t.Errorf("output topics %v", p.Operators[1].(*captured).OutputTopics())
	}
}
