package window

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/stream"
	"github.com/streamd/streamd/stream/streamtest"
	"github.com/streamd/streamd/window/agg"
)

// event is one generated input event.
type event struct {
	key      string
	ts       int64
	amount   float64
	hasAmt   bool
	merchant string
	offset   int64
}

func (e event) record() *kgo.Record {
	var b strings.Builder
	fmt.Fprintf(&b, `{"k":%q,"ts":%d,"m":%q`, e.key, e.ts, e.merchant)
	if e.hasAmt {
		fmt.Fprintf(&b, `,"amount":%s`, strconv.FormatFloat(e.amount, 'g', -1, 64))
	}
	b.WriteString("}")
	return &kgo.Record{Topic: "in", Offset: e.offset, Value: []byte(b.String()), Timestamp: time.UnixMilli(e.ts)}
}

func testFormat() *stream.JSONFormat {
	return &stream.JSONFormat{
		KeyField: "k",
		Time:     stream.EventTimeSpec{Field: "ts", Format: stream.TimeEpochMillis},
		Fields: []stream.FieldSpec{
			{Name: "amount", Type: stream.Number},
			{Name: "m", Type: stream.String},
		},
	}
}

var testAggs = []Agg{
	{Name: "count", Kind: agg.Count},
	{Name: "sum", Kind: agg.Sum, Field: "amount"},
	{Name: "mean", Kind: agg.Mean, Field: "amount"},
	{Name: "min", Kind: agg.Min, Field: "amount"},
	{Name: "max", Kind: agg.Max, Field: "amount"},
	{Name: "stddev", Kind: agg.StdDev, Field: "amount"},
	{Name: "distinct", Kind: agg.Distinct, Field: "m"},
	{Name: "p50", Kind: agg.Quantile, Field: "amount", Q: 0.5},
}

// genEvents makes a random out-of-order stream: time moves forward with jitter of up to
// 3*maxOOO, so that some events are late.
func genEvents(rng *rand.Rand, n, keys int, maxOOO int64) []event {
	out := make([]event, n)
	clock := int64(1_700_000_000_000)
	for i := range out {
		clock += int64(rng.IntN(400))
		ts := clock - int64(rng.Float64()*rng.Float64()*float64(3*maxOOO))
		e := event{key: fmt.Sprintf("k%d", rng.IntN(keys)), ts: ts, merchant: fmt.Sprintf("m%d", rng.IntN(6)), offset: int64(i)}
		if rng.IntN(10) > 0 {
			e.hasAmt, e.amount = true, math.Round(rng.NormFloat64()*1000)/100
		}
		out[i] = e
	}
	return out
}

// result is one window result, decoded from the operator's JSON or computed by the reference.
type result struct {
	Key   string              `json:"key"`
	Start int64               `json:"start"`
	End   int64               `json:"end"`
	Emit  string              `json:"emit"`
	Count int64               `json:"count"`
	Aggs  map[string]*float64 `json:"aggs"`

	p50lo, p50hi float64 // reference only
}

func (r result) id() string { return fmt.Sprintf("%s[%d,%d)", r.Key, r.Start, r.End) }

// brute computes the aggregates of values exactly.
func brute(evs []event) result {
	r := result{Count: int64(len(evs)), Aggs: map[string]*float64{}}
	var nums []float64
	ms := map[string]bool{}
	for _, e := range evs {
		if e.hasAmt {
			nums = append(nums, e.amount)
		}
		ms[e.merchant] = true
	}
	f := func(v float64) *float64 { return &v }
	r.Aggs["count"] = f(float64(len(evs)))
	r.Aggs["distinct"] = f(float64(len(ms)))
	sum := 0.0
	for _, x := range nums {
		sum += x
	}
	r.Aggs["sum"] = f(sum)
	if len(nums) > 0 {
		mean := sum / float64(len(nums))
		ss := 0.0
		for _, x := range nums {
			ss += (x - mean) * (x - mean)
		}
		sorted := append([]float64(nil), nums...)
		sort.Float64s(sorted)
		r.Aggs["mean"] = f(mean)
		r.Aggs["min"] = f(sorted[0])
		r.Aggs["max"] = f(sorted[len(sorted)-1])
		r.Aggs["stddev"] = f(math.Sqrt(ss / float64(len(nums))))
		rank := int(math.Ceil(0.5*float64(len(sorted)))) - 1
		r.Aggs["p50"] = f(sorted[rank])
		// Neighbouring ranks: a sketch may define the rank of a quantile one off.
		r.p50lo, r.p50hi = sorted[max(rank-1, 0)], sorted[min(rank+1, len(sorted)-1)]
	}
	return r
}

// reference replays the window semantics of the package doc over raw events, in arrival order.
type reference struct {
	spec    Spec
	maxOOO  int64
	maxSeen int64
	// windows: key → start → events (tumbling, hopping); sessions: key → list.
	fixed    map[string]map[int64][]event
	sessions map[string][]*refSession
	accepted map[string][]event // sliding: every on-time event per key
	final    []result
	updates  []result
	late     []int64 // offsets
}

type refSession struct {
	start, last int64
	evs         []event
}

func newReference(spec Spec, maxOOO int64) *reference {
	return &reference{spec: spec, maxOOO: maxOOO, maxSeen: math.MinInt64,
		fixed: map[string]map[int64][]event{}, sessions: map[string][]*refSession{}, accepted: map[string][]event{}}
}

func (r *reference) wm() int64 {
	if r.maxSeen == math.MinInt64 {
		return math.MinInt64
	}
	return r.maxSeen - r.maxOOO
}

func (r *reference) add(e event) {
	s := r.spec
	size, late := s.Size.Milliseconds(), s.AllowedLateness.Milliseconds()
	wm := r.wm()
	used := false
	switch s.Kind {
	case Tumbling, Hopping:
		adv := s.Advance.Milliseconds()
		if s.Kind == Tumbling {
			adv = size
		}
		for start := floorDiv(e.ts, adv) * adv; start > e.ts-size; start -= adv {
			if start+size+late <= wm {
				continue
			}
			used = true
			if r.fixed[e.key] == nil {
				r.fixed[e.key] = map[int64][]event{}
			}
			r.fixed[e.key][start] = append(r.fixed[e.key][start], e)
			if s.Emit == EmitUpdate {
				res := brute(r.fixed[e.key][start])
				res.Key, res.Start, res.End, res.Emit = e.key, start, start+size, "update"
				r.updates = append(r.updates, res)
			}
		}
	case Session:
		gap := s.Gap.Milliseconds()
		merged := &refSession{start: e.ts, last: e.ts, evs: []event{e}}
		var keep, drop []*refSession
		for _, x := range r.sessions[e.key] {
			if x.start < e.ts+gap && e.ts < x.last+gap {
				drop = append(drop, x)
			} else {
				keep = append(keep, x)
			}
		}
		for _, x := range drop {
			merged.start, merged.last = min(merged.start, x.start), max(merged.last, x.last)
		}
		if merged.last+gap+late > wm {
			used = true
			for _, x := range drop {
				merged.evs = append(merged.evs, x.evs...)
			}
			r.sessions[e.key] = append(keep, merged)
			if s.Emit == EmitUpdate {
				res := brute(merged.evs)
				res.Key, res.Start, res.End, res.Emit = e.key, merged.start, merged.last+gap, "update"
				r.updates = append(r.updates, res)
			}
		}
	case Sliding:
		res := s.Resolution.Milliseconds()
		if e.ts+1+late > wm {
			used = true
			r.accepted[e.key] = append(r.accepted[e.key], e)
			pane := floorDiv(e.ts, res) * res
			var in []event
			for _, x := range r.accepted[e.key] {
				if p := floorDiv(x.ts, res) * res; p > pane-size && p <= pane {
					in = append(in, x)
				}
			}
			out := brute(in)
			out.Key, out.Start, out.End, out.Emit = e.key, pane-size+res, pane+res, "update"
			r.updates = append(r.updates, out)
		}
	}
	if !used {
		r.late = append(r.late, e.offset)
	}
	r.maxSeen = max(r.maxSeen, e.ts)
	r.fire()
}

func (r *reference) fire() {
	s := r.spec
	wm := r.wm()
	size, late := s.Size.Milliseconds(), s.AllowedLateness.Milliseconds()
	switch s.Kind {
	case Tumbling, Hopping:
		for key, ws := range r.fixed {
			for start, evs := range ws {
				if start+size+late <= wm {
					if s.Emit == EmitFinal {
						res := brute(evs)
						res.Key, res.Start, res.End, res.Emit = key, start, start+size, "final"
						r.final = append(r.final, res)
					}
					delete(ws, start)
				}
			}
		}
	case Session:
		gap := s.Gap.Milliseconds()
		for key, list := range r.sessions {
			var keep []*refSession
			for _, x := range list {
				if x.last+gap+late <= wm {
					if s.Emit == EmitFinal {
						res := brute(x.evs)
						res.Key, res.Start, res.End, res.Emit = key, x.start, x.last+gap, "final"
						r.final = append(r.final, res)
					}
				} else {
					keep = append(keep, x)
				}
			}
			r.sessions[key] = keep
		}
	}
}

func decodeResults(t *testing.T, recs []*kgo.Record) []result {
	t.Helper()
	var out []result
	for _, rec := range recs {
		var r result
		if err := json.Unmarshal(rec.Value, &r); err != nil {
			t.Fatalf("result %s: %v", rec.Value, err)
		}
		out = append(out, r)
	}
	return out
}

// sameResult compares an operator result with the reference: moments to float precision, distinct
// and quantiles exactly (the test's windows hold few distinct values and few values, where the
// sketches are exact by design; see agg.ExactDistinct and agg.ExactQuantileValues).
func sameResult(got, want result) string {
	if got.Key != want.Key || got.Start != want.Start || got.End != want.End || got.Count != want.Count || got.Emit != want.Emit {
		return fmt.Sprintf("window %s count %d emit %s, want %s count %d emit %s", got.id(), got.Count, got.Emit, want.id(), want.Count, want.Emit)
	}
	for name, w := range want.Aggs {
		g := got.Aggs[name]
		switch {
		case (g == nil) != (w == nil):
			return fmt.Sprintf("%s %s = %v, want %v", want.id(), name, ptr(g), ptr(w))
		case g != nil && name == "p50":
			// Beyond agg.ExactQuantileValues values the sketch answers within its relative accuracy
			// (1%) of a value of the right rank.
			const acc = 0.01 + 1e-12
			ok := false
			for _, v := range []float64{*w, want.p50lo, want.p50hi} {
				ok = ok || math.Abs(*g-v) <= acc*math.Abs(v)
			}
			if !ok {
				return fmt.Sprintf("%s p50 = %v, want %v (±1%%, ranks around it %v..%v)", want.id(), *g, *w, want.p50lo, want.p50hi)
			}
		case g != nil && math.Abs(*g-*w) > 1e-9*math.Max(1, math.Abs(*w)):
			return fmt.Sprintf("%s %s = %v, want %v", want.id(), name, *g, *w)
		}
	}
	for name, g := range got.Aggs {
		if _, ok := want.Aggs[name]; !ok && g != nil {
			return fmt.Sprintf("%s %s = %v, want undefined", want.id(), name, *g)
		}
	}
	return ""
}

func ptr(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

func seed(t *testing.T) uint64 {
	s := uint64(time.Now().UnixNano())
	if v := os.Getenv("WINDOW_SEED"); v != "" {
		s, _ = strconv.ParseUint(v, 10, 64)
	}
	t.Logf("seed %d (WINDOW_SEED=%d to repeat)", s, s)
	return s
}

var specs = []Spec{
	{Name: "tumbling", Kind: Tumbling, Size: 5 * time.Second, AllowedLateness: time.Second},
	{Name: "tumbling-update", Kind: Tumbling, Size: 3 * time.Second, Emit: EmitUpdate},
	{Name: "hopping", Kind: Hopping, Size: 3 * time.Second, Advance: time.Second, AllowedLateness: 200 * time.Millisecond},
	{Name: "session", Kind: Session, Gap: 1500 * time.Millisecond, AllowedLateness: time.Second},
	{Name: "session-update", Kind: Session, Gap: 800 * time.Millisecond, Emit: EmitUpdate},
	{Name: "sliding", Kind: Sliding, Size: 4 * time.Second, Resolution: 250 * time.Millisecond, AllowedLateness: 300 * time.Millisecond},
}

// run drives events through a window operator, committing every commitEvery events; abortEvery > 0
// aborts every abortEvery-th cycle and replays its events (as the runtime does after an aborted
// transaction), and restartEvery > 0 restarts the task (a crash) instead, every restartEvery-th cycle.
func run(t *testing.T, spec Spec, evs []event, maxOOO time.Duration, commitEvery, abortEvery, restartEvery int) (final, updates, late []*kgo.Record) {
	t.Helper()
	f := testFormat()
	if err := f.Init(); err != nil {
		t.Fatal(err)
	}
	spec.Aggs = testAggs
	spec.Output = "out"
	op, err := New(spec, f)
	if err != nil {
		t.Fatal(err)
	}
	d, err := streamtest.NewDriver(&stream.Pipeline{Name: "app", Source: stream.Source{Topic: "in", Format: f},
		Operators: []stream.Operator{op}, DeadLetterTopic: "dlq", LateTopic: "late"}, streamtest.Config{StateDir: t.TempDir(), MaxOutOfOrderness: maxOOO})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	cycle := 0
	for i := 0; i < len(evs); i += commitEvery {
		chunk := evs[i:min(i+commitEvery, len(evs))]
		cycle++
		for pass := 0; pass < 2; pass++ {
			for _, e := range chunk {
				if err := d.Process(e.record()); err != nil {
					t.Fatal(err)
				}
			}
			switch {
			case pass == 0 && abortEvery > 0 && cycle%abortEvery == 0:
				if err := d.Abort(); err != nil {
					t.Fatal(err)
				}
				continue // replay the chunk
			case pass == 0 && restartEvery > 0 && cycle%restartEvery == 0:
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
	for _, r := range d.Outputs("out") {
		if strings.Contains(string(r.Value), `"emit":"final"`) {
			final = append(final, r)
		} else {
			updates = append(updates, r)
		}
	}
	return final, updates, d.Outputs("late")
}

// TestAgainstReference: on random out-of-order streams, every window kind and aggregation equals the
// brute-force reference, and the late records are exactly the reference's.
func TestAgainstReference(t *testing.T) {
	s := seed(t)
	for i, spec := range specs {
		t.Run(spec.Name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(s, uint64(i)))
			const maxOOO = 2 * time.Second
			evs := genEvents(rng, 3000, 7, maxOOO.Milliseconds())
			op, _ := New(withAggs(spec), mustFormat(t))
			ref := newReference(op.Spec(), maxOOO.Milliseconds())
			for _, e := range evs {
				ref.add(e)
			}
			final, updates, late := run(t, spec, evs, maxOOO, 97, 0, 0)
			compare(t, "final", decodeResults(t, final), ref.final, true)
			compare(t, "update", decodeResults(t, updates), ref.updates, false)
			var gotLate []int64
			for _, r := range late {
				o, _ := strconv.ParseInt(kgoHeader(r, stream.HeaderSourceOffset), 10, 64)
				gotLate = append(gotLate, o)
			}
			if fmt.Sprint(gotLate) != fmt.Sprint(ref.late) {
				t.Errorf("late records at offsets %v, want %v", gotLate, ref.late)
			}
			if len(ref.late) == 0 {
				t.Error("the stream had no late records; the test proves less than it should")
			}
			if len(ref.final)+len(ref.updates) == 0 {
				t.Error("no results")
			}
		})
	}
}

func withAggs(s Spec) Spec { s.Aggs = testAggs; return s }

func mustFormat(t *testing.T) *stream.JSONFormat {
	f := testFormat()
	if err := f.Init(); err != nil {
		t.Fatal(err)
	}
	return f
}

func kgoHeader(r *kgo.Record, k string) string {
	for _, h := range r.Headers {
		if h.Key == k {
			return string(h.Value)
		}
	}
	return ""
}

// compare matches results; final results as a set (their order within one firing is by window end
// and key), updates in order.
func compare(t *testing.T, what string, got, want []result, asSet bool) {
	t.Helper()
	if asSet {
		byID := func(rs []result) {
			sort.Slice(rs, func(i, j int) bool { return rs[i].id() < rs[j].id() })
		}
		byID(got)
		byID(want)
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d results, want %d", what, len(got), len(want))
	}
	bad := 0
	for i := range min(len(got), len(want)) {
		if msg := sameResult(got[i], want[i]); msg != "" {
			t.Errorf("%s result %d: %s", what, i, msg)
			if bad++; bad > 5 {
				return
			}
		}
	}
}

// TestMetamorphic: the same input gives the same committed outputs whatever the commit size, and
// when cycles are aborted and replayed or the task crashes and restarts from its state.
func TestMetamorphic(t *testing.T) {
	s := seed(t)
	for i, spec := range specs {
		t.Run(spec.Name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(s, uint64(100+i)))
			evs := genEvents(rng, 1500, 5, 2000)
			type variant struct{ commit, abort, restart int }
			var want string
			for _, v := range []variant{{1000000, 0, 0}, {1, 0, 0}, {13, 0, 0}, {50, 3, 0}, {37, 0, 2}, {7, 2, 5}} {
				final, updates, late := run(t, spec, evs, 2*time.Second, v.commit, v.abort, v.restart)
				var b strings.Builder
				for _, rs := range [][]*kgo.Record{final, updates, late} {
					for _, r := range rs {
						b.Write(r.Value)
						b.WriteByte('\n')
					}
				}
				if want == "" {
					want = b.String()
					continue
				}
				if b.String() != want {
					t.Fatalf("variant %+v: outputs differ from a single-cycle run", v)
				}
			}
		})
	}
}

// TestEveryResultHasLineage: a window result carries lineage headers whether the event that
// advanced the watermark fired it, or an idle partition's watermark did (then the partition's
// position: the last record processed).
func TestEveryResultHasLineage(t *testing.T) {
	f := testFormat()
	if err := f.Init(); err != nil {
		t.Fatal(err)
	}
	spec := Spec{Name: "tumbling", Kind: Tumbling, Size: 5 * time.Second, Aggs: testAggs, Output: "out"}
	op, err := New(spec, f)
	if err != nil {
		t.Fatal(err)
	}
	d, err := streamtest.NewDriver(&stream.Pipeline{Name: "app", Source: stream.Source{Topic: "in", Format: f},
		Operators: []stream.Operator{op}, DeadLetterTopic: "dlq"}, streamtest.Config{StateDir: t.TempDir(), MaxOutOfOrderness: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	const t0 = 1_700_000_000_000
	for i, e := range []event{
		{key: "a", ts: t0, offset: 0, amount: 1, hasAmt: true},
		{key: "b", ts: t0 + 6000, offset: 1, amount: 2, hasAmt: true}, // closes a's window
	} {
		if err := d.Process(e.record()); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
	if err := d.AdvanceIdle(t0 + 20_000); err != nil { // closes b's window: no event does
		t.Fatal(err)
	}
	if err := d.Commit(); err != nil {
		t.Fatal(err)
	}
	out := d.Outputs("out")
	if len(out) != 2 {
		t.Fatalf("%d window results, want 2", len(out))
	}
	for i, r := range out {
		h := map[string]string{}
		for _, x := range r.Headers {
			h[x.Key] = string(x.Value)
		}
		if h[stream.HeaderSourceTopic] != "in" || h[stream.HeaderSourcePartition] == "" || h[stream.HeaderSourceOffset] != "1" {
			t.Errorf("result %d (%s) has lineage %v, want in/…@1 (the record that closed it, or the position)", i, r.Value, h)
		}
	}
}
