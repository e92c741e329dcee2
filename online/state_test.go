package online_test

import (
	"bytes"
	"errors"
	"math"
	"testing"

	"github.com/streamd/streamd/online"
)

// smallSpecs are the learners under test with a small feature space, so
// that dense state stays cheap; quality and speed use DefaultDim.
func smallSpecs() []online.Spec {
	return []online.Spec{
		online.FTRLSpec{Dim: 1 << 10},
		// Unscaled, as every adagrad_linear before target scaling: its state format is the old one.
		online.LinearSpec{Dim: 1 << 10, L2: 0.01, TargetScaling: online.TargetNone},
		online.SoftmaxSpec{Dim: 1 << 10, Classes: 3},
		online.KMeansSpec{Dim: 1 << 10, K: 4},
		online.TreeSpec{Dim: 1 << 10, GracePeriod: 50},
		online.LinearSpec{Dim: 1 << 10, L2: 0.01},
		online.HSTSpec{Dim: 1 << 10, WindowSize: 100},
		online.TreeRegressorSpec{Dim: 1 << 10, GracePeriod: 50},
		online.ARFClassifierSpec{Dim: 1 << 10, ForestSpec: online.ForestSpec{Models: 3, Seed: 5}},
		online.ARFRegressorSpec{ForestSpec: online.ForestSpec{Models: 3, Seed: 5}, TreeRegressorSpec: online.TreeRegressorSpec{Dim: 1 << 10}},
	}
}

func train(t testing.TB, spec online.Spec, s stream, from, to int) online.Learner {
	l, err := online.New(spec)
	if err != nil {
		t.Fatal(err)
	}
	for i := from; i < to; i++ {
		l.Learn(s.X[i], labelFor(spec, s, i))
	}
	return l
}

// TestDeterminism: the same input order gives the same state bytes.
func TestDeterminism(t *testing.T) {
	s := genStream(11, 5000, 1<<10, gradual)
	for _, spec := range smallSpecs() {
		t.Run(spec.Kind(), func(t *testing.T) {
			a := train(t, spec, s, 0, len(s.X)).AppendState(nil)
			b := train(t, spec, s, 0, len(s.X)).AppendState(nil)
			if !bytes.Equal(a, b) {
				t.Fatalf("two runs over the same stream encode differently (%d vs %d bytes)", len(a), len(b))
			}
			t.Logf("%s: %d bytes of state after %d examples", spec.Kind(), len(a), len(s.X))
		})
	}
}

// TestRoundTripContinue: serializing mid-stream, restoring, and learning on
// gives bit-identical predictions and state to never having serialized.
func TestRoundTripContinue(t *testing.T) {
	s := genStream(12, 6000, 1<<10, abrupt)
	half := len(s.X) / 2
	for _, spec := range smallSpecs() {
		t.Run(spec.Kind(), func(t *testing.T) {
			ref := train(t, spec, s, 0, half)
			state := ref.AppendState(nil)
			restored, err := online.Decode(state)
			if err != nil {
				t.Fatal(err)
			}
			// DecodeState into a learner of another history works too.
			other := train(t, spec, s, half, len(s.X))
			if err := other.DecodeState(state); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(restored.AppendState(nil), state) || !bytes.Equal(other.AppendState(nil), state) {
				t.Fatal("decoded state re-encodes differently")
			}
			pa, pb, pc := make([]float64, 8), make([]float64, 8), make([]float64, 8)
			for i := half; i < len(s.X); i++ {
				sa, ca := ref.Predict(s.X[i], pa)
				sb, cb := restored.Predict(s.X[i], pb)
				sc, cc := other.Predict(s.X[i], pc)
				if math.Float64bits(sa) != math.Float64bits(sb) || ca != cb || math.Float64bits(sa) != math.Float64bits(sc) || ca != cc {
					t.Fatalf("example %d: predictions diverge: %v/%d, %v/%d, %v/%d", i, sa, ca, sb, cb, sc, cc)
				}
				y := labelFor(spec, s, i)
				ref.Learn(s.X[i], y)
				restored.Learn(s.X[i], y)
				other.Learn(s.X[i], y)
			}
			if !bytes.Equal(ref.AppendState(nil), restored.AppendState(nil)) || !bytes.Equal(ref.AppendState(nil), other.AppendState(nil)) {
				t.Fatal("states diverge after continuing")
			}
			if ref.Updates() != int64(len(s.X)) && spec.Kind() != online.KindSoftmax {
				t.Errorf("Updates() = %d, want %d", ref.Updates(), len(s.X))
			}
		})
	}
}

func TestResetEqualsFresh(t *testing.T) {
	s := genStream(13, 2000, 1<<10, noDrift)
	for _, spec := range smallSpecs() {
		t.Run(spec.Kind(), func(t *testing.T) {
			l := train(t, spec, s, 0, len(s.X))
			l.Reset()
			fresh, _ := online.New(spec)
			if !bytes.Equal(l.AppendState(nil), fresh.AppendState(nil)) {
				t.Fatal("Reset state differs from a new learner's")
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	s := genStream(14, 500, 1<<10, noDrift)
	for _, spec := range smallSpecs() {
		t.Run(spec.Kind(), func(t *testing.T) {
			l := train(t, spec, s, 0, len(s.X))
			good := l.AppendState(nil)
			before := l.AppendState(nil)
			for _, c := range []struct {
				name string
				b    []byte
			}{
				{"empty", nil},
				{"truncated", good[:len(good)-1]},
				{"trailing", append(append([]byte{}, good...), 0)},
				{"magic", append([]byte{'?'}, good[1:]...)},
			} {
				if err := l.DecodeState(c.b); !errors.Is(err, online.ErrCorrupt) {
					t.Errorf("%s: err = %v, want ErrCorrupt", c.name, err)
				}
				if _, err := online.Decode(c.b); err == nil {
					t.Errorf("%s: Decode accepted it", c.name)
				}
			}
			if !bytes.Equal(before, l.AppendState(nil)) {
				t.Error("a failed DecodeState changed the learner")
			}
		})
	}
	// Another kind's state is refused.
	ftrl := train(t, smallSpecs()[0], s, 0, 10)
	lin, _ := online.New(smallSpecs()[1])
	if err := lin.DecodeState(ftrl.AppendState(nil)); err == nil {
		t.Error("linear accepted ftrl state")
	}
}

func TestSpecValidate(t *testing.T) {
	bad := online.FTRLSpec{Dim: -1, Alpha: -1, Beta: math.NaN()}
	err := bad.Validate()
	if !errors.Is(err, online.ErrInvalidSpec) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{"dim = -1", "alpha = -1", "beta = NaN"} {
		if !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if _, err := online.NewSpec("nope"); !errors.Is(err, online.ErrInvalidSpec) {
		t.Errorf("NewSpec(nope) err = %v, want ErrInvalidSpec", err)
	}
	for _, s := range []online.Spec{
		online.SoftmaxSpec{},
		online.SoftmaxSpec{Classes: 2, Dim: online.MaxDim},
		online.KMeansSpec{Decay: 1.5},
		online.TreeSpec{MaxDepth: 100},
		online.LinearSpec{TargetScaling: "log"},
		online.HSTSpec{Height: 30},
		online.HSTSpec{Low: 1, High: 1},
		online.TreeRegressorSpec{LeafPrediction: "median"},
		online.TreeRegressorSpec{ModelSelectorDecay: 2, SplitDigits: 16, MaxDepth: 65},
		online.ARFClassifierSpec{ForestSpec: online.ForestSpec{Models: 1000, Lambda: -1}},
		online.ARFRegressorSpec{Aggregation: "max"},
		online.ARFRegressorSpec{ForestSpec: online.ForestSpec{DriftDelta: 2}, TreeRegressorSpec: online.TreeRegressorSpec{LeafPrediction: "x"}},
	} {
		if _, err := online.New(s); !errors.Is(err, online.ErrInvalidSpec) {
			t.Errorf("New(%+v) err = %v, want ErrInvalidSpec", s, err)
		}
	}
	alias, err := online.NewSpec("linear")
	if err != nil {
		t.Fatal(err)
	}
	s := alias.WithDefaults()
	s2 := s.WithDefaults()
	if ls, ok := s.(online.LinearSpec); s != s2 || s.Kind() != online.KindLinear || !ok || ls.Dim != online.DefaultDim || ls.LearningRate != 0.1 {
		t.Errorf("WithDefaults: %+v then %+v", s, s2)
	}
	ft := online.FTRLSpec{L1: -1}.WithDefaults().(online.FTRLSpec)
	if ft.L1 != -1 || ft.Validate() != nil {
		t.Errorf("negative l1 (no penalty) not kept: %+v %v", ft, ft.Validate())
	}
}

// TestBadInputIgnored: out-of-range indexes, non-finite values and bad
// labels neither panic nor change the state.
func TestBadInputIgnored(t *testing.T) {
	for _, spec := range smallSpecs() {
		t.Run(spec.Kind(), func(t *testing.T) {
			l, _ := online.New(spec)
			x := online.Vector{{Index: 1 << 20, Value: 1}, {Index: 3, Value: math.NaN()}, {Index: 4, Value: math.Inf(1)}}
			l.Predict(x, nil)
			l.Learn(x, 1)
			before := l.AppendState(nil)
			for _, y := range []float64{math.NaN(), math.Inf(1)} {
				l.Learn(online.Vector{{Index: 1, Value: 1}}, y)
			}
			if spec.Task() != online.Anomaly && !bytes.Equal(before, l.AppendState(nil)) {
				t.Error("an invalid label changed the state")
			}
		})
	}
}

func FuzzDecodeFTRL(f *testing.F)          { fuzzDecode(f, smallSpecs()[0]) }
func FuzzDecodeLinear(f *testing.F)        { fuzzDecode(f, smallSpecs()[1]) }
func FuzzDecodeSoftmax(f *testing.F)       { fuzzDecode(f, smallSpecs()[2]) }
func FuzzDecodeKMeans(f *testing.F)        { fuzzDecode(f, smallSpecs()[3]) }
func FuzzDecodeTree(f *testing.F)          { fuzzDecode(f, smallSpecs()[4]) }
func FuzzDecodeLinearScaled(f *testing.F)  { fuzzDecode(f, smallSpecs()[5]) }
func FuzzDecodeHST(f *testing.F)           { fuzzDecode(f, smallSpecs()[6]) }
func FuzzDecodeTreeRegressor(f *testing.F) { fuzzDecode(f, smallSpecs()[7]) }
func FuzzDecodeARFClassifier(f *testing.F) { fuzzDecode(f, smallSpecs()[8]) }
func FuzzDecodeARFRegressor(f *testing.F)  { fuzzDecode(f, smallSpecs()[9]) }

// fuzzDecode seeds the corpus with real states of spec (small Dim, so that
// mutations hit the interesting parts) and checks that any input either is
// refused, leaving the learner as it was, or decodes to a learner that
// re-encodes canonically and can predict and learn without panicking.
func fuzzDecode(f *testing.F, spec online.Spec) {
	spec = spec.WithInputDim(32)
	s := genStream(15, 600, 32, noDrift)
	for _, n := range []int{0, 1, 5, 100, 600} {
		f.Add(train(f, spec, s, 0, n).AppendState(nil))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		l, _ := online.New(spec)
		before := l.AppendState(nil)
		if err := l.DecodeState(b); err != nil {
			if !errors.Is(err, online.ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			if !bytes.Equal(before, l.AppendState(nil)) {
				t.Fatal("failed decode changed the learner")
			}
			return
		}
		enc := l.AppendState(nil)
		l2, err := online.Decode(enc)
		if err != nil {
			t.Fatalf("re-encoded state refused: %v", err)
		}
		if !bytes.Equal(enc, l2.AppendState(nil)) {
			t.Fatal("encoding not canonical after a round trip")
		}
		probs := make([]float64, 8)
		for i := 0; i < 3; i++ {
			l.Predict(s.X[i], probs)
			l.Learn(s.X[i], labelFor(l.Spec(), s, i))
		}
	})
}
