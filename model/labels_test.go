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
)

// TestLabelRules: each task kind accepts exactly its labels, and the operator refuses a label that
// any of its models cannot learn, naming the value, the model and what it allows.
func TestLabelRules(t *testing.T) {
	mk := func(s online.Spec) labelRule {
		l, err := online.New(s)
		if err != nil {
			t.Fatal(err)
		}
		return newLabelRule("m", l)
	}
	binary := mk(online.FTRLSpec{Dim: 4})
	multi := mk(online.SoftmaxSpec{Dim: 4, Classes: 3})
	tree3 := mk(online.TreeSpec{Dim: 4, Classes: 3})
	reg := mk(online.LinearSpec{Dim: 4})
	anomaly := mk(online.KMeansSpec{Dim: 4})
	inf, nan := math.Inf(1), math.NaN()
	for _, c := range []struct {
		name string
		r    labelRule
		ok   []float64
		bad  []float64
	}{
		{"binary", binary, []float64{0, 1}, []float64{2, -1, 0.5, 1e-9, nan, inf}},
		{"softmax", multi, []float64{0, 1, 2}, []float64{3, -1, 0.5, 2.0000001, nan, -inf}},
		{"tree3", tree3, []float64{0, 1, 2}, []float64{3, -1, 1.5}},
		{"regression", reg, []float64{0, -1, 0.5, 1e300}, []float64{nan, inf, -inf}},
		{"anomaly", anomaly, []float64{0, 7.5}, []float64{nan, inf}},
	} {
		for _, y := range c.ok {
			if !c.r.accepts(y) {
				t.Errorf("%s refuses %g", c.name, y)
			}
		}
		for _, y := range c.bad {
			if c.r.accepts(y) {
				t.Errorf("%s accepts %g", c.name, y)
			}
		}
	}

	// The operator of the test pipelines has a binary FTRL champion and a binary tree challenger.
	op := pipeline(t, false, 1000).Operators[1].(*Operator)
	for _, c := range []struct {
		f    stream.Field
		y    float64
		ok   bool
		want string // the rejection's reason, "" for none
	}{
		{stream.Field{Kind: stream.Number, Num: 1}, 1, true, ""},
		{stream.Field{Kind: stream.Bool, Bool: true}, 1, true, ""},
		{stream.Field{Kind: stream.Bool}, 0, true, ""},
		{stream.Field{Kind: stream.Absent}, 0, false, ""},
		{stream.Field{Kind: stream.Number, Num: 2}, 0, false, "label_out_of_range"},
		{stream.Field{Kind: stream.Number, Num: -1}, 0, false, "label_out_of_range"},
		{stream.Field{Kind: stream.Number, Num: 0.5}, 0, false, "label_out_of_range"},
		{stream.Field{Kind: stream.String, Str: []byte("1")}, 0, false, "wrong_type"},
	} {
		y, ok, err := op.label(&c.f, "label")
		rj, isRj := stream.AsRejection(err)
		switch {
		case c.want == "" && (err != nil || y != c.y || ok != c.ok):
			t.Errorf("%+v: got (%g, %v, %v), want (%g, %v)", c.f, y, ok, err, c.y, c.ok)
		case c.want != "" && (!isRj || string(rj.Reason) != c.want || rj.Field != "label" || ok):
			t.Errorf("%+v: got (%g, %v, %v), want a %s rejection", c.f, y, ok, err, c.want)
		}
	}
	_, _, err := op.label(&stream.Field{Kind: stream.Number, Num: 0.5}, "label")
	if msg := err.Error(); !strings.Contains(msg, "label 0.5") || !strings.Contains(msg, `"ftrl"`) || !strings.Contains(msg, "0 or 1") {
		t.Errorf("the rejection does not name the value, the model and what it allows: %s", msg)
	}
}

// withLabel is e's event record with the label written as raw JSON (which may be out of range).
func (e example) withLabel(label string) *kgo.Record {
	r := e.record(false)
	r.Value = append(r.Value[:len(r.Value)-1], `,"label":`+label+`}`...)
	return r
}

// labelAs is e's label record with the label written as raw JSON.
func (e example) labelAs(offset int64, label string) *kgo.Record {
	r := e.labelRecord(offset)
	r.Value = []byte(fmt.Sprintf(`{"event_id":%q,"label":%s}`, e.id, label))
	return r
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// checkDeadLetters checks that the dead letters are exactly want (record values), each with reason
// label_out_of_range from the models operator, the label field, and a detail naming the value.
func checkDeadLetters(t *testing.T, d *driven, want map[string]string) {
	t.Helper()
	dls := d.Outputs("dlq")
	if len(dls) != len(want) {
		t.Errorf("%d dead letters, want %d", len(dls), len(want))
	}
	for _, r := range dls {
		label, ok := want[string(r.Value)]
		if !ok {
			t.Errorf("unexpected dead letter %s", r.Value)
			continue
		}
		if header(r, stream.HeaderReason) != "label_out_of_range" || header(r, stream.HeaderOperator) != "models" ||
			header(r, stream.HeaderField) != "label" || !strings.Contains(header(r, stream.HeaderError), "label "+label+" ") {
			t.Errorf("dead letter %s: reason %q, operator %q, field %q, error %q", r.Value, header(r, stream.HeaderReason),
				header(r, stream.HeaderOperator), header(r, stream.HeaderField), header(r, stream.HeaderError))
		}
	}
}

// TestOutOfRangeLabelInEvent: an event whose own label is 2, -1 or 0.5 for binary models is a dead
// letter as a whole, without a prediction, and nothing learns from it; the other events are scored
// and learned as if the bad ones had never been there.
func TestOutOfRangeLabelInEvent(t *testing.T) {
	exs := genExamples(rand.New(rand.NewPCG(4, 4)), 1500)
	bad := []string{"2", "-1", "0.5"}
	var good []example
	var recs []*kgo.Record
	want := map[string]string{}
	for i, e := range exs {
		if i%10 == 3 {
			r := e.withLabel(bad[i%3])
			want[string(r.Value)] = bad[i%3]
			recs = append(recs, r)
			continue
		}
		good = append(good, e)
		recs = append(recs, e.record(true))
	}
	d := newDriver(t, pipeline(t, false, 200))
	feed(t, d, recs, 100, 0, 0)
	checkDeadLetters(t, d, want)
	preds := d.Outputs("predictions")
	if len(preds) != len(good) {
		t.Fatalf("%d predictions for %d events with a good label", len(preds), len(good))
	}
	for i, p := range preds {
		var pr prediction
		if err := json.Unmarshal(p.Value, &pr); err != nil {
			t.Fatal(err)
		}
		if pr.EventID != good[i].id {
			t.Fatalf("prediction %d is of %s, want %s", i, pr.EventID, good[i].id)
		}
	}
	for _, m := range modelView(t, d).Models {
		if m.Updates != int64(len(good)) {
			t.Errorf("%s learned %d examples, want %d", m.Name, m.Updates, len(good))
		}
	}
}

// TestEarlyLabelsJoinLikeLabelsInTheEvent: when every label comes just before its event, each event
// is scored and then learns its label at once, exactly as with the label in the event: the
// predictions and the models are the same, bit for bit.
func TestEarlyLabelsJoinLikeLabelsInTheEvent(t *testing.T) {
	exs := genExamples(rand.New(rand.NewPCG(5, 5)), 2000)
	inEvent, want := run(t, exs, 100, 0, 0, 300)
	var recs []*kgo.Record
	for i, e := range exs {
		recs = append(recs, e.labelRecord(int64(i)), e.record(false))
	}
	d := newDriver(t, pipeline(t, true, 300))
	feed(t, d, recs, 200, 0, 0)
	got := d.Outputs("predictions")
	if len(got) != len(want) {
		t.Fatalf("%d predictions, want %d", len(got), len(want))
	}
	for i := range got {
		if string(got[i].Value) != string(want[i].Value) {
			t.Fatalf("prediction %d differs:\n got %s\nwant %s", i, got[i].Value, want[i].Value)
		}
	}
	if modelState(t, d) != modelState(t, inEvent) {
		t.Error("the models differ from those that learned the labels in the events")
	}
	v := modelView(t, d)
	if v.Labels["early"] != float64(len(exs)) || v.Labels["joined"] != float64(len(exs)) || v.Labels["unmatched"] != 0 || v.LabelsWaiting != 0 {
		t.Errorf("labels %v, waiting %v: want %d early and joined, none unmatched or waiting", v.Labels, v.LabelsWaiting, len(exs))
	}
}

// TestEarlyLabelsCap: over labels.max_waiting, the early label that would expire first is evicted
// and counted; the rest join their events; the waiting gauge follows, across a restart too.
func TestEarlyLabelsCap(t *testing.T) {
	exs := genExamples(rand.New(rand.NewPCG(6, 6)), 40)
	p := pipeline(t, true, 1000)
	p.Operators[1].(*Operator).spec.Labels.MaxWaiting = 10
	d := newDriver(t, p)
	// Labels of events 0..24, newest first: the cap keeps the ten newest (events 15..24).
	var recs []*kgo.Record
	for i := 24; i >= 0; i-- {
		recs = append(recs, exs[i].labelRecord(int64(24-i)))
	}
	feed(t, d, recs, 1000, 0, 0)
	if v := modelView(t, d); v.Labels["early"] != 25 || v.Labels["evicted"] != 15 || v.Labels["unmatched"] != 15 || v.LabelsWaiting != 10 {
		t.Fatalf("after the labels: %v, waiting %v; want 25 early, 15 evicted and unmatched, 10 waiting", v.Labels, v.LabelsWaiting)
	}
	if err := d.Restart(); err != nil {
		t.Fatal(err)
	}
	if v := modelView(t, d); v.LabelsWaiting != 10 {
		t.Fatalf("after a restart %v early labels wait, want 10", v.LabelsWaiting)
	}
	recs = recs[:0]
	for _, e := range exs {
		recs = append(recs, e.record(false))
	}
	feed(t, d, recs, 1000, 0, 0)
	v := modelView(t, d)
	if v.Labels["joined"] != 10 || v.LabelsWaiting != 0 || v.Models[0].Updates != 10 {
		t.Errorf("after the events: %v, waiting %v, %d learned; want 10 joined and learned, none waiting", v.Labels, v.LabelsWaiting, v.Models[0].Updates)
	}
}

// topicScenario interleaves events and labels the way a catch-up run does, and worse: labels
// before their event (some twice), after it, never, out of range, for events that do not exist,
// and for events long gone. It returns the records in order and the expected label counts of an
// uninterrupted run, after the watermark has passed every TTL.
func topicScenario(seed uint64, n int) (recs []*kgo.Record, want map[string]float64, wantDead map[string]string) {
	rng := rand.New(rand.NewPCG(seed, seed))
	exs := genExamples(rng, n)
	slots := make([][]*kgo.Record, n+31)
	want = map[string]float64{}
	wantDead = map[string]string{}
	var off int64
	label := func(e example, slot int, value string) {
		off++
		r := e.labelAs(off, value)
		slots[max(slot, 0)] = append(slots[max(slot, 0)], r)
	}
	bad := []string{"2", "-1", "0.5"}
	for j, e := range exs {
		good := fmt.Sprint(e.label)
		switch m := rng.IntN(10); {
		case m < 4: // early, up to 30 events ahead
			lead := 1 + rng.IntN(30)
			if j%7 == 0 { // a first, wrong word, then the right one, both early
				label(e, j-lead-1, fmt.Sprint(1-e.label))
				want["unmatched"]++
				want["early"]++
			}
			label(e, j-lead, good)
			want["early"]++
			want["joined"]++
		case m < 8: // late, up to 30 events behind
			label(e, j+1+rng.IntN(30), good)
			want["joined"]++
		case m < 9: // out of range: a dead letter; the prediction waits in vain
			v := bad[j%3]
			label(e, j+1+rng.IntN(30), v)
			wantDead[fmt.Sprintf(`{"event_id":%q,"label":%s}`, e.id, v)] = v
			want["expired"]++
		default: // never
			want["expired"]++
		}
		if j%50 == 0 { // an event that never comes
			ghost := e
			ghost.id = "ghost-" + e.id
			label(ghost, j, "1")
			want["early"]++
			want["unmatched"]++
		}
		if j%97 == 0 && j > 0 && e.ts-exs[0].ts > 40_000 { // an event far behind the watermark
			stale := exs[0]
			stale.id = "stale-" + e.id
			label(stale, j, "0")
			want["unmatched"]++
		}
	}
	for i, s := range slots {
		recs = append(recs, s...)
		if i < n {
			recs = append(recs, exs[i].record(false))
		}
	}
	return recs, want, wantDead
}

// TestEarlyAndBadLabelsRecoveryIsExact: with early, late, repeated, missing, out-of-range, ghost and
// stale labels, aborted cycles and crashes give the same predictions, the same models, the same
// dead letters and the same label counts as an uninterrupted run; the small cap makes evictions part
// of it.
func TestEarlyAndBadLabelsRecoveryIsExact(t *testing.T) {
	const seed = 7
	t.Logf("seed %d", seed)
	recs, want, wantDead := topicScenario(seed, 1000)
	last := int64(0)
	for _, r := range recs {
		last = max(last, r.Timestamp.UnixMilli())
	}
	type result struct {
		preds  []*kgo.Record
		state  string
		labels map[string]float64
	}
	do := func(maxWaiting, commit, abort, restart int) result {
		p := pipeline(t, true, 250)
		p.Operators[1].(*Operator).spec.Labels.MaxWaiting = maxWaiting
		d := newDriver(t, p)
		feed(t, d, recs, commit, abort, restart)
		if err := d.AdvanceIdle(last + 31_000); err != nil {
			t.Fatal(err)
		}
		if err := d.Commit(); err != nil {
			t.Fatal(err)
		}
		checkDeadLetters(t, d, wantDead)
		v := modelView(t, d)
		if v.LabelsWaiting != 0 {
			t.Errorf("%v early labels still wait after every TTL", v.LabelsWaiting)
		}
		return result{d.Outputs("predictions"), modelState(t, d), v.Labels}
	}
	for _, maxWaiting := range []int{DefaultMaxWaiting, 8} {
		base := do(maxWaiting, 1_000_000, 0, 0)
		t.Logf("cap %d: labels %v", maxWaiting, base.labels)
		if maxWaiting == DefaultMaxWaiting {
			for _, k := range []string{"joined", "unmatched", "expired", "early", "evicted"} {
				if base.labels[k] != want[k] {
					t.Errorf("labels %s: %v, want %v", k, base.labels[k], want[k])
				}
			}
		} else {
			// Every label that is not a dead letter is joined or unmatched, once.
			l := base.labels
			if l["evicted"] == 0 || l["joined"] >= want["joined"] || l["joined"]+l["unmatched"] != want["joined"]+want["unmatched"] {
				t.Errorf("cap %d: labels %v; want some evicted, fewer joined, and as many joined or unmatched as in %v", maxWaiting, l, want)
			}
		}
		for _, v := range []struct{ commit, abort, restart int }{{50, 3, 0}, {37, 0, 2}, {11, 4, 7}} {
			got := do(maxWaiting, v.commit, v.abort, v.restart)
			if len(got.preds) != len(base.preds) {
				t.Fatalf("cap %d, variant %+v: %d predictions, want %d", maxWaiting, v, len(got.preds), len(base.preds))
			}
			for i := range got.preds {
				if string(got.preds[i].Value) != string(base.preds[i].Value) {
					t.Fatalf("cap %d, variant %+v: prediction %d differs:\n got %s\nwant %s", maxWaiting, v, i, got.preds[i].Value, base.preds[i].Value)
				}
			}
			if got.state != base.state {
				t.Errorf("cap %d, variant %+v: the model state differs from the uninterrupted run's", maxWaiting, v)
			}
			for k, n := range base.labels {
				if got.labels[k] != n {
					t.Errorf("cap %d, variant %+v: labels %s %v, want %v", maxWaiting, v, k, got.labels[k], n)
				}
			}
		}
	}
}

// TestOutOfRangeLabelsInEventRecoveryIsExact: rejected events in the stream do not disturb the
// exactness of aborted cycles and crashes.
func TestOutOfRangeLabelsInEventRecoveryIsExact(t *testing.T) {
	exs := genExamples(rand.New(rand.NewPCG(8, 8)), 2000)
	var recs []*kgo.Record
	want := map[string]string{}
	for i, e := range exs {
		if i%13 == 5 {
			v := []string{"2", "-1", "0.5"}[i%3]
			r := e.withLabel(v)
			want[string(r.Value)] = v
			recs = append(recs, r)
			continue
		}
		recs = append(recs, e.record(true))
	}
	do := func(commit, abort, restart int) ([]*kgo.Record, string) {
		d := newDriver(t, pipeline(t, false, 250))
		feed(t, d, recs, commit, abort, restart)
		checkDeadLetters(t, d, want)
		return d.Outputs("predictions"), modelState(t, d)
	}
	basePreds, baseState := do(1_000_000, 0, 0)
	for _, v := range []struct{ commit, abort, restart int }{{50, 3, 0}, {37, 0, 2}, {11, 4, 7}} {
		preds, state := do(v.commit, v.abort, v.restart)
		if len(preds) != len(basePreds) {
			t.Fatalf("variant %+v: %d predictions, want %d", v, len(preds), len(basePreds))
		}
		for i := range preds {
			if string(preds[i].Value) != string(basePreds[i].Value) {
				t.Fatalf("variant %+v: prediction %d differs", v, i)
			}
		}
		if state != baseState {
			t.Errorf("variant %+v: the model state differs from the uninterrupted run's", v)
		}
	}
}

// newDriver runs p on a stream/streamtest driver, with its model operator wrapped so that the
// tests can look inside the processor it opened last.
func newDriver(t testing.TB, p *stream.Pipeline) *driven {
	t.Helper()
	var op *captured
	for i, o := range p.Operators {
		if m, ok := o.(*Operator); ok {
			op = &captured{Operator: m}
			p.Operators[i] = op
		}
	}
	if op == nil {
		t.Fatal("the pipeline has no model operator")
	}
	sd, err := streamtest.NewDriver(p, streamtest.Config{StateDir: t.TempDir(), MaxOutOfOrderness: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	d := &driven{Driver: sd, op: op}
	t.Cleanup(func() { d.Close() })
	return d
}

// modelView is what the admin API shows of the driven model operator.
func modelView(t *testing.T, d *driven) View {
	t.Helper()
	return d.op.Registry().View()
}

// feed processes recs, committing every commitEvery records; aborting every abortEvery-th cycle
// and replaying it, or crashing (a restart) in every restartEvery-th cycle and replaying it.
func feed(t testing.TB, d *driven, recs []*kgo.Record, commitEvery, abortEvery, restartEvery int) {
	t.Helper()
	cycle := 0
	for i := 0; i < len(recs); i += commitEvery {
		chunk := recs[i:min(i+commitEvery, len(recs))]
		cycle++
		for pass := 0; pass < 2; pass++ {
			if err := d.Process(chunk...); err != nil {
				t.Fatal(err)
			}
			if pass == 0 && abortEvery > 0 && cycle%abortEvery == 0 {
				if err := d.Abort(); err != nil {
					t.Fatal(err)
				}
				continue
			}
			if pass == 0 && restartEvery > 0 && cycle%restartEvery == 0 {
				if err := d.Restart(); err != nil {
					t.Fatal(err)
				}
				continue
			}
			if err := d.Commit(); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
}
