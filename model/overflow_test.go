package model

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/online"
	"github.com/streamd/streamd/stream"
	"github.com/streamd/streamd/window"
	"github.com/streamd/streamd/window/agg"
)

// TestOverflowedFeatureIsFlagged: a window feature that overflows to +Inf is written as null in
// the prediction and named in its overflow list; a finite one is not listed.
func TestOverflowedFeatureIsFlagged(t *testing.T) {
	f := &stream.JSONFormat{KeyField: "k", Time: stream.EventTimeSpec{Format: stream.TimeKafka},
		Fields: []stream.FieldSpec{{Name: "amount", Type: stream.Number, Required: true}}}
	if err := f.Init(); err != nil {
		t.Fatal(err)
	}
	win, err := window.New(window.Spec{Name: "features_1m", Kind: window.Sliding, Size: time.Minute, Resolution: time.Second,
		Aggs: []window.Agg{{Name: "sum_1m", Kind: agg.Sum, Field: "amount"}}, FeatureSlots: []int{0}}, f)
	if err != nil {
		t.Fatal(err)
	}
	op, err := New(Spec{Features: []FeatureSpec{{Name: "amount", Field: "amount", Window: -1}, {Name: "sum_1m", Window: 0}},
		Models: []ModelSpec{{Name: "ftrl", Learner: online.FTRLSpec{}}}, Output: "predictions"}, f, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := newDriver(t, &stream.Pipeline{Name: "app", Source: stream.Source{Topic: "tx", Format: f}, DeadLetterTopic: "dlq",
		Features: []string{"sum_1m"}, Operators: []stream.Operator{win, op}})
	var recs []*kgo.Record
	for i, amount := range []string{"1e308", "1e308", "1"} {
		key := "a"
		if i == 2 {
			key = "b"
		}
		recs = append(recs, &kgo.Record{Topic: "tx", Key: []byte(key), Offset: int64(i), Value: []byte(fmt.Sprintf(`{"k":%q,"amount":%s}`, key, amount)),
			Timestamp: time.UnixMilli(1772366400000 + int64(i))})
	}
	feed(t, d, recs, 10, 0, 0)
	preds := d.Outputs("predictions")
	if len(preds) != 3 {
		t.Fatalf("%d predictions, want 3", len(preds))
	}
	for i, want := range [][]string{nil, {"sum_1m"}, nil} {
		var p struct {
			Features map[string]*float64 `json:"features"`
			Overflow []string            `json:"overflow"`
		}
		if err := json.Unmarshal(preds[i].Value, &p); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(p.Overflow) != fmt.Sprint(want) || (want != nil) != (p.Features["sum_1m"] == nil) {
			t.Errorf("prediction %d: %s, want overflow %v", i, preds[i].Value, want)
		}
	}
}
