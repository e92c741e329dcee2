package agg

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// testSeed returns the seed of a randomized test: AGG_SEED when set ("random" picks one), else a fixed
// default so that CI runs are reproducible. The seed is logged when the test fails.
func testSeed(t *testing.T, def uint64) uint64 {
	t.Helper()
	seed := def
	if s := os.Getenv("AGG_SEED"); s == "random" {
		seed = rand.Uint64()
	} else if s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("AGG_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("seed %d (rerun with AGG_SEED=%d)", seed, seed)
		}
	})
	return seed
}

// allSpecs covers every kind: moments, distinct and quantiles of the numeric field 0, distinct of the
// string field 1.
var allSpecs = []Spec{
	{Kind: Count}, {Kind: Sum}, {Kind: Mean}, {Kind: Min}, {Kind: Max}, {Kind: StdDev},
	{Kind: Distinct, Field: 1}, {Kind: Distinct, Field: 0},
	{Kind: Quantile, Q: 0.5}, {Kind: Quantile, Q: 0.9}, {Kind: Quantile, Q: 0.99}, {Kind: Quantile, Q: 0.01},
}

// ref is the brute-force reference: it keeps every usable value.
type ref struct {
	events   int64
	nums     []float64
	distinct map[string]struct{}
	strs     map[string]struct{}
}

func newRef() *ref { return &ref{distinct: map[string]struct{}{}, strs: map[string]struct{}{}} }

func (r *ref) add(ev []Input) {
	r.events++
	if x := ev[0]; x.Kind == Number && finite(x.Num) {
		v := x.Num
		if v == 0 {
			v = 0 // -0 and +0 are one value, reported as +0
		}
		r.nums = append(r.nums, v)
		r.distinct["n:"+strconv.FormatUint(math.Float64bits(v), 16)] = struct{}{}
	} else if x.Kind == String {
		r.distinct["s:"+string(x.Str)] = struct{}{}
	}
	if x := ev[1]; x.Kind == String {
		r.strs[string(x.Str)] = struct{}{}
	}
}

// neumaier returns Σxs with compensated summation.
func neumaier(xs []float64, f func(float64) float64) float64 {
	var s, c float64
	for _, x := range xs {
		v := f(x)
		t := s + v
		if math.Abs(s) >= math.Abs(v) {
			c += (s - t) + v
		} else {
			c += (v - t) + s
		}
		s = t
	}
	return s + c
}

// check compares every result of a (for allSpecs) with the reference.
func (r *ref) check(t *testing.T, a *Acc, what string) {
	t.Helper()
	n := len(r.nums)
	if a.Count() != r.events {
		t.Fatalf("%s: Count %d, want %d", what, a.Count(), r.events)
	}
	id := func(x float64) float64 { return x }
	sum := neumaier(r.nums, id)
	abs := neumaier(r.nums, math.Abs)
	for i, s := range a.Layout().Specs() {
		got, ok := a.Result(i)
		var want float64
		wantOK := n > 0
		tol := 0.0
		switch s.Kind {
		case Count:
			want, wantOK = float64(r.events), true
		case Sum:
			want, wantOK, tol = sum, true, 1e-9*abs
		case Mean:
			if n > 0 {
				want, tol = sum/float64(n), 1e-9*abs/float64(n)
			}
		case Min, Max:
			if n > 0 {
				want = slices.Min(r.nums)
				if s.Kind == Max {
					want = slices.Max(r.nums)
				}
			}
		case StdDev:
			if n > 0 {
				mean := sum / float64(n)
				want = math.Sqrt(neumaier(r.nums, func(x float64) float64 { return (x - mean) * (x - mean) }) / float64(n))
				tol = 1e-9*want + 1e-12*abs/float64(n)
			}
		case Distinct:
			d := len(r.distinct)
			if s.Field == 1 {
				d = len(r.strs)
			}
			want, wantOK = float64(d), true
			if d > ExactDistinct {
				tol = 4 * DistinctStdError * float64(d)
			}
		case Quantile:
			if n > 0 {
				sorted := slices.Clone(r.nums)
				slices.Sort(sorted)
				want = sorted[int(math.Floor(s.Q*float64(n-1)))]
				if want == 0 {
					want = 0
				}
				if n > ExactQuantileValues {
					tol = QuantileAccuracy*math.Abs(want)*(1+1e-12) + 1e-300
				}
			}
		}
		if ok != wantOK {
			t.Fatalf("%s: %v: ok %v, want %v (n=%d)", what, s, ok, wantOK, n)
		}
		if !ok {
			continue
		}
		if math.Abs(got-want) > tol || (tol == 0 && math.Float64bits(got) != math.Float64bits(want)) {
			t.Fatalf("%s: %v = %v, want %v ± %v (n=%d, events=%d)", what, s, got, want, tol, n, r.events)
		}
	}
}

// gen draws values of one of several shapes: symmetric, skewed positive, a large offset with a small
// spread, a wide log-normal range of both signs, and small integers with many duplicates and zeros.
type gen struct {
	r     *rand.Rand
	shape int
	card  int // string cardinality
	bad   float64
}

func (g *gen) value() float64 {
	r := g.r
	switch g.shape {
	case 0:
		return r.Float64()*200 - 100
	case 1:
		return r.ExpFloat64() * 80
	case 2:
		return 1e4 + r.NormFloat64()*10
	case 3:
		v := math.Exp(r.NormFloat64() * 3)
		if r.IntN(2) == 0 {
			v = -v
		}
		return v
	default:
		v := float64(r.IntN(6))
		if v == 0 && r.IntN(2) == 0 {
			v = math.Copysign(0, -1)
		}
		return v
	}
}

func (g *gen) event() []Input {
	r := g.r
	ev := make([]Input, 2)
	switch x := r.Float64(); {
	case x < g.bad/4:
		ev[0] = Input{} // Missing
	case x < g.bad/2:
		ev[0] = NumInput([]float64{math.NaN(), math.Inf(1), math.Inf(-1)}[r.IntN(3)])
	case x < g.bad*3/4:
		ev[0] = StrInput([]byte("not a number"))
	default:
		ev[0] = NumInput(g.value())
	}
	if r.Float64() < g.bad {
		ev[1] = Input{}
	} else {
		ev[1] = StrInput([]byte("m-" + strconv.Itoa(r.IntN(g.card))))
	}
	return ev
}

func newGen(r *rand.Rand) *gen {
	g := &gen{r: r, shape: r.IntN(5)}
	g.card = []int{1, 5, 16, 17, 100, 3000, 1 << 30}[r.IntN(7)]
	if r.IntN(3) == 0 {
		g.bad = r.Float64() * 0.3
	}
	return g
}

// randN draws a window size, mostly small as in practice, sometimes large.
func randN(r *rand.Rand) int {
	switch r.IntN(4) {
	case 0:
		return r.IntN(20)
	case 1:
		return r.IntN(200)
	case 2:
		return r.IntN(3000)
	default:
		return r.IntN(20000)
	}
}

func TestAgainstReference(t *testing.T) {
	r := rand.New(rand.NewPCG(testSeed(t, 1), 0))
	l := mustLayout(t, allSpecs, 2)
	a, b := l.NewAcc(), l.NewAcc()
	var buf []byte
	trials := 300
	if testing.Short() {
		trials = 60
	}
	for trial := range trials {
		g, n, rf := newGen(r), randN(r), newRef()
		a.Reset()
		for i := range n {
			ev := g.event()
			rf.add(ev)
			// The first 300 events take the hot path, through the window's bytes: decode, add, encode.
			// The rest go straight into a, which picks the state up from the bytes at event 300.
			switch {
			case i < 300:
				if i == 0 {
					b.Reset()
				} else if err := b.Decode(buf); err != nil {
					t.Fatalf("trial %d event %d: %v", trial, i, err)
				}
				b.Add(ev)
				buf = b.AppendEncoded(buf[:0])
				a.Add(ev)
			case i == 300:
				if err := a.Decode(buf); err != nil {
					t.Fatal(err)
				}
				a.Add(ev)
			default:
				a.Add(ev)
			}
		}
		what := fmt.Sprintf("trial %d (shape %d, card %d, n %d)", trial, g.shape, g.card, n)
		rf.check(t, a, what)
		if err := b.Decode(a.AppendEncoded(nil)); err != nil {
			t.Fatalf("%s: round trip: %v", what, err)
		}
		rf.check(t, b, what+" after round trip")
		buf = buf[:0]
	}
}

// TestDistinctAccuracy checks the stated error bound over many independent sketches at sizes across the
// sparse and dense forms: every estimate within 4 standard errors, and the root-mean-square relative error
// within 1.25 times the stated standard error.
func TestDistinctAccuracy(t *testing.T) {
	r := rand.New(rand.NewPCG(testSeed(t, 2), 0))
	l := mustLayout(t, []Spec{{Kind: Distinct, Field: 0}}, 1)
	a := l.NewAcc()
	sizes := []int{1, 7, 16, 17, 40, 200, 1000, 2500, 5000, 20000, 100000}
	trials := 40
	if testing.Short() {
		trials = 10
	}
	ev := []Input{{Kind: String}}
	var key []byte
	for _, n := range sizes {
		var sq float64
		for trial := range trials {
			a.Reset()
			base := r.Uint64()
			for i := range n {
				key = strconv.AppendUint(key[:0], base+uint64(i), 36)
				ev[0].Str = key
				a.Add(ev)
				if i%997 == 0 { // and a repeat, which must not count
					a.Add(ev)
				}
			}
			got, _ := a.Result(0)
			if n <= ExactDistinct && got != float64(n) {
				t.Fatalf("n=%d trial %d: %v, want exactly %d", n, trial, got, n)
			}
			rel := (got - float64(n)) / float64(n)
			if math.Abs(rel) > 4*DistinctStdError {
				t.Fatalf("n=%d trial %d: estimate %v off by %.2f%% > 4σ", n, trial, got, 100*rel)
			}
			sq += rel * rel
		}
		rms := math.Sqrt(sq / float64(trials))
		t.Logf("n=%6d: rms relative error %.3f%% (σ = %.3f%%)", n, 100*rms, 100*DistinctStdError)
		if rms > 1.25*DistinctStdError {
			t.Errorf("n=%d: rms relative error %.3f%% > 1.25σ", n, 100*rms)
		}
	}
}

// TestMerge splits streams into random chunks, aggregates each (through an encode/decode round trip),
// merges them in random order, and compares with aggregating the whole stream: count, distinct and
// quantiles identically (their states are order-independent), moments within float tolerance.
func TestMerge(t *testing.T) {
	r := rand.New(rand.NewPCG(testSeed(t, 3), 0))
	l := mustLayout(t, allSpecs, 2)
	trials := 150
	if testing.Short() {
		trials = 30
	}
	for trial := range trials {
		g, n, rf := newGen(r), randN(r), newRef()
		whole := l.NewAcc()
		chunks := []*Acc{l.NewAcc()}
		for range n {
			ev := g.event()
			rf.add(ev)
			whole.Add(ev)
			if r.IntN(max(n/8, 1)) == 0 {
				chunks = append(chunks, l.NewAcc())
			}
			chunks[len(chunks)-1].Add(ev)
		}
		r.Shuffle(len(chunks), func(i, j int) { chunks[i], chunks[j] = chunks[j], chunks[i] })
		for _, c := range chunks {
			if err := c.Decode(c.AppendEncoded(nil)); err != nil {
				t.Fatal(err)
			}
		}
		// Merge as a random tree: repeatedly merge a random pair.
		for len(chunks) > 1 {
			i := r.IntN(len(chunks) - 1)
			chunks[i].Merge(chunks[i+1])
			chunks = append(chunks[:i+1], chunks[i+2:]...)
		}
		merged := chunks[0]
		what := fmt.Sprintf("trial %d (shape %d, card %d, n %d)", trial, g.shape, g.card, n)
		rf.check(t, merged, what+" merged")
		for i, s := range l.Specs() {
			if s.Kind == Distinct || s.Kind == Quantile || s.Kind == Count || s.Kind == Min || s.Kind == Max {
				w, wok := whole.Result(i)
				m, mok := merged.Result(i)
				if w != m || wok != mok {
					t.Fatalf("%s: %v: merged %v/%v, whole %v/%v", what, s, m, mok, w, wok)
				}
			}
		}
		// The sketch blocks encode identically.
		we, me := whole.AppendEncoded(nil), merged.AppendEncoded(nil)
		if wo, mo := sketchOffset(t, whole, we), sketchOffset(t, merged, me); !bytes.Equal(we[wo:], me[mo:]) {
			t.Fatalf("%s: sketch blocks differ after merge:\n%x\n%x", what, we[wo:], me[mo:])
		}
	}
}

// sketchOffset returns where the distinct and quantile blocks start in enc.
func sketchOffset(t *testing.T, a *Acc, enc []byte) int {
	t.Helper()
	c := *a
	c.dis, c.qua = nil, nil
	return len(c.AppendEncoded(nil))
}

func TestOrderIndependentBytes(t *testing.T) {
	r := rand.New(rand.NewPCG(testSeed(t, 4), 0))
	l := mustLayout(t, []Spec{{Kind: Count}, {Kind: Distinct, Field: 1}, {Kind: Distinct}, {Kind: Quantile, Q: 0.5}}, 2)
	for _, n := range []int{0, 1, 10, 16, 17, 100, 2000, 5000} {
		g := newGen(r)
		evs := make([][]Input, n)
		for i := range evs {
			evs[i] = g.event()
		}
		a, b := l.NewAcc(), l.NewAcc()
		for _, e := range evs {
			a.Add(e)
		}
		r.Shuffle(n, func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
		for _, e := range evs {
			b.Add(e)
		}
		if ea, eb := a.AppendEncoded(nil), b.AppendEncoded(nil); !bytes.Equal(ea, eb) {
			t.Fatalf("n=%d: encodings depend on order:\n%x\n%x", n, ea, eb)
		}
	}
}

func TestEdgeValues(t *testing.T) {
	l := mustLayout(t, allSpecs, 2)
	a := l.NewAcc()
	for i := range l.Specs() { // empty
		v, ok := a.Result(i)
		s := l.Specs()[i]
		if wantOK := s.Kind == Count || s.Kind == Sum || s.Kind == Distinct; ok != wantOK || v != 0 {
			t.Errorf("empty %v = %v, %v", s, v, ok)
		}
	}
	a.Add([]Input{NumInput(math.Copysign(0, -1))})
	a.Add([]Input{NumInput(0)})
	a.Add(nil) // no fields: counts as an event only
	if c := a.Count(); c != 3 {
		t.Fatalf("count %d", c)
	}
	for _, i := range []int{3, 4, 8} { // min, max, median of -0 and +0: +0
		if v, _ := a.Result(i); math.Signbit(v) {
			t.Errorf("%v = -0", l.Specs()[i])
		}
	}
	if v, _ := a.Result(7); v != 1 {
		t.Errorf("distinct of -0, +0 = %v", v)
	}
	// Huge and tiny magnitudes in the sketch form.
	a.Reset()
	vals := []float64{math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64, 1e-310, -1e300, 1e300}
	for i := range 40 {
		a.Add([]Input{NumInput(vals[i%len(vals)])})
	}
	if err := a.Decode(a.AppendEncoded(nil)); err != nil {
		t.Fatal(err)
	}
	if v, ok := a.Result(11); !ok || v > -1e300*(1-QuantileAccuracy) {
		t.Errorf("p01 of huge values = %v", v)
	}
}

func TestNewLayoutErrors(t *testing.T) {
	_, err := NewLayout([]Spec{
		{Kind: Count, Field: 99},         // fine: Field ignored
		{Kind: Sum, Field: 3},            // bad field
		{Kind: Quantile, Field: 0, Q: 1}, // bad q
		{Kind: Quantile, Field: 0, Q: math.NaN()},
		{Kind: Kind(42)},        // bad kind
		{Kind: Mean, Field: -1}, // bad field
	}, 2)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"spec 1", "spec 2", "spec 3", "spec 4", "spec 5"} {
		if !strings.Contains(err.Error(), want+" ") && !strings.Contains(err.Error(), want+":") {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "spec 0") {
		t.Errorf("error names the good spec 0: %v", err)
	}
	for k := range numKinds {
		if got, ok := ParseKind(k.String()); !ok || got != k {
			t.Errorf("ParseKind(%q) = %v, %v", k.String(), got, ok)
		}
	}
	if _, ok := ParseKind("median"); ok {
		t.Error("ParseKind(median) ok")
	}
	// Blocks are shared: sum, mean and stddev of one field use one moments block, p50 and p99 one sketch.
	l := mustLayout(t, []Spec{{Kind: Sum}, {Kind: StdDev}, {Kind: Mean}, {Kind: Quantile, Q: .5}, {Kind: Quantile, Q: .99}}, 1)
	if len(l.mom) != 1 || len(l.qua) != 1 {
		t.Errorf("blocks not shared: %d moments, %d quantile", len(l.mom), len(l.qua))
	}
}

// TestDecodeCorrupt: every truncation of valid encodings of every block form fails with ErrCorrupt and
// leaves the Acc empty; so do a wrong version, a wrong layout, trailing bytes, and random byte changes
// never panic.
func TestDecodeCorrupt(t *testing.T) {
	r := rand.New(rand.NewPCG(testSeed(t, 5), 0))
	l := mustLayout(t, allSpecs, 2)
	a := l.NewAcc()
	for _, enc := range sampleEncodings(l) {
		for i := range len(enc) {
			if err := a.Decode(enc[:i]); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("truncated to %d of %d bytes: %v", i, len(enc), err)
			}
			if a.Count() != 0 {
				t.Fatal("not reset after error")
			}
		}
		if err := a.Decode(append(slices.Clone(enc), 0)); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("trailing byte: %v", err)
		}
		bad := slices.Clone(enc)
		bad[0] = 2
		if err := a.Decode(bad); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("version 2: %v", err)
		}
		for range 300 {
			bad := slices.Clone(enc)
			for range 1 + r.IntN(3) {
				bad[r.IntN(len(bad))] = byte(r.Uint32())
			}
			decodeAndUse(t, l, bad)
		}
	}
	other := mustLayout(t, []Spec{{Kind: Count}, {Kind: Min}}, 1)
	if err := other.NewAcc().Decode(sampleEncodings(l)[0]); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("other layout: %v", err)
	}
}

// sampleEncodings returns encodings with every block form: exact, sparse and dense distinct blocks,
// exact and sketch quantile blocks with negative, zero and positive values.
func sampleEncodings(l *Layout) [][]byte {
	var out [][]byte
	r := rand.New(rand.NewPCG(9, 9))
	for _, n := range []int{0, 1, 3, 16, 17, 60, 400, 3000} {
		a := l.NewAcc()
		for i := range n {
			a.Add([]Input{NumInput(math.Round(r.NormFloat64()*1e3) / 10), StrInput([]byte(strconv.Itoa(i)))})
		}
		out = append(out, a.AppendEncoded(nil))
	}
	return out
}

// decodeAndUse decodes data and, when it decodes, exercises everything on the result: it must re-encode
// to bytes that decode to the same encoding, and Add, Merge, Result and AppendEncoded must not panic.
func decodeAndUse(t *testing.T, l *Layout, data []byte) {
	a := l.NewAcc()
	if err := a.Decode(data); err != nil {
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error does not wrap ErrCorrupt: %v", err)
		}
		if a.Count() != 0 {
			t.Fatal("not reset after error")
		}
		return
	}
	enc := a.AppendEncoded(nil)
	b := l.NewAcc()
	if err := b.Decode(enc); err != nil {
		t.Fatalf("re-encoding of accepted input does not decode: %v\ninput %x\nenc   %x", err, data, enc)
	}
	if enc2 := b.AppendEncoded(nil); !bytes.Equal(enc, enc2) {
		t.Fatalf("re-encoding not stable:\n%x\n%x", enc, enc2)
	}
	for i := range l.Specs() {
		a.Result(i)
	}
	for _, v := range []float64{0, -3, 1e300, 7.5, -1e-300} {
		a.Add([]Input{NumInput(v), StrInput([]byte(strconv.FormatFloat(v, 'g', -1, 64)))})
	}
	a.Merge(b)
	b.Merge(a)
	for i := range l.Specs() {
		a.Result(i)
		b.Result(i)
	}
	if err := b.Decode(a.AppendEncoded(nil)); err != nil {
		t.Fatalf("after Add and Merge: %v", err)
	}
}
