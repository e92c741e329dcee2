package agg

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
)

// momentSpecs is the moments-only layout of the hot-path requirement: count, sum, mean, min, max and
// stddev of one numeric field.
var momentSpecs = []Spec{{Kind: Count}, {Kind: Sum}, {Kind: Mean}, {Kind: Min}, {Kind: Max}, {Kind: StdDev}}

// sketchSpecs adds a distinct count of a string field (1) and a p99 of the numeric field (0).
var sketchSpecs = append(append([]Spec(nil), momentSpecs...), Spec{Kind: Distinct, Field: 1}, Spec{Kind: Quantile, Q: 0.99})

func mustLayout(tb testing.TB, specs []Spec, n int) *Layout {
	tb.Helper()
	l, err := NewLayout(specs, n)
	if err != nil {
		tb.Fatal(err)
	}
	return l
}

// benchEvents returns n events of (amount, merchant id) with n distinct merchants and amounts drawn
// from a log-normal-ish distribution, as a card transaction stream would have.
func benchEvents(n int, r *rand.Rand) [][]Input {
	ev := make([][]Input, n)
	for i := range ev {
		ev[i] = []Input{NumInput(r.ExpFloat64() * 80), StrInput([]byte("merchant-" + strconv.Itoa(i)))}
	}
	return ev
}

// hotCycle is the per-event work of a window operator: decode the window's bytes, add the event, encode
// back into a reused buffer.
func hotCycle(tb testing.TB, a *Acc, state []byte, buf *[]byte, ev []Input) {
	if err := a.Decode(state); err != nil {
		tb.Fatal(err)
	}
	a.Add(ev)
	*buf = a.AppendEncoded((*buf)[:0])
}

func BenchmarkHotMoments(b *testing.B) {
	l := mustLayout(b, momentSpecs, 1)
	r := rand.New(rand.NewPCG(1, 2))
	a := l.NewAcc()
	for _, e := range benchEvents(100, r) {
		a.Add(e[:1])
	}
	state := a.AppendEncoded(nil)
	buf := make([]byte, 0, 256)
	ev := []Input{NumInput(42.5)}
	b.ReportAllocs()
	for b.Loop() {
		hotCycle(b, a, state, &buf, ev)
	}
	b.ReportMetric(float64(len(buf)), "state-bytes")
}

func BenchmarkHotSketches(b *testing.B) {
	for _, n := range []int{1, 10, 100, 1000, 10000} {
		b.Run(fmt.Sprintf("values=%d", n), func(b *testing.B) {
			l := mustLayout(b, sketchSpecs, 2)
			r := rand.New(rand.NewPCG(1, uint64(n)))
			a := l.NewAcc()
			for _, e := range benchEvents(n, r) {
				a.Add(e)
			}
			state := a.AppendEncoded(nil)
			// A new event with a merchant seen before and an amount like the others: the window's shape
			// stays as it was, as for most events of a long window.
			ev := []Input{NumInput(r.ExpFloat64() * 80), StrInput([]byte("merchant-0"))}
			var buf []byte
			b.ReportAllocs()
			for b.Loop() {
				hotCycle(b, a, state, &buf, ev)
			}
			b.ReportMetric(float64(len(state)), "state-bytes")
		})
	}
}

// TestAllocs: the hot cycle allocates nothing, for the moments-only layout and, once the Acc's buffers
// have grown, for the sketch layout at every window size.
func TestAllocs(t *testing.T) {
	l := mustLayout(t, momentSpecs, 1)
	a := l.NewAcc()
	a.Add([]Input{NumInput(1)})
	state := a.AppendEncoded(nil)
	buf := make([]byte, 0, 64)
	ev := []Input{NumInput(2)}
	if n := testing.AllocsPerRun(1000, func() { hotCycle(t, a, state, &buf, ev) }); n != 0 {
		t.Errorf("moments hot cycle: %v allocs", n)
	}
	for _, size := range []int{1, 10, 100, 1000, 10000} {
		l := mustLayout(t, sketchSpecs, 2)
		a := l.NewAcc()
		r := rand.New(rand.NewPCG(1, uint64(size)))
		for _, e := range benchEvents(size, r) {
			a.Add(e)
		}
		state := a.AppendEncoded(nil)
		var buf []byte
		ev := []Input{NumInput(3.5), StrInput([]byte("new merchant"))}
		hotCycle(t, a, state, &buf, ev) // warm up: grow the Acc's and the output buffers
		if n := testing.AllocsPerRun(200, func() { hotCycle(t, a, state, &buf, ev) }); n != 0 {
			t.Errorf("sketch hot cycle, %d values: %v allocs", size, n)
		}
	}
}

// TestEncodedSizes logs the state size of the sketch layout by window size (the figures in the doc).
func TestEncodedSizes(t *testing.T) {
	for _, specs := range [][]Spec{momentSpecs, sketchSpecs} {
		l := mustLayout(t, specs, 2)
		for _, size := range []int{0, 1, 10, 16, 17, 100, 1000, 10000, 100000} {
			a := l.NewAcc()
			for _, e := range benchEvents(size, rand.New(rand.NewPCG(1, uint64(size)))) {
				a.Add(e)
			}
			t.Logf("%d specs, %6d values: %5d bytes", len(specs), size, len(a.AppendEncoded(nil)))
		}
	}
}
