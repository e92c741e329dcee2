package preprocess

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/streamd/streamd/online"
)

// TestHashFeatureStable pins hash values: they are part of every hashed
// model's meaning and must never change across runs, platforms or versions.
func TestHashFeatureStable(t *testing.T) {
	got := []uint32{
		HashFeature("country", []byte("FR"), 1<<18),
		HashFeature("country", []byte("DE"), 1<<18),
		HashFeature("merchant", []byte("acme"), 1024),
		HashFeature("", nil, 1<<18),
	}
	want := []uint32{76938, 203964, 363, 191282}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("hash %d = %d, want %d (the hash function changed: every hashed model breaks)", i, got[i], want[i])
		}
	}
	if HashFeature("ab", []byte("c"), 1<<20) == HashFeature("a", []byte("bc"), 1<<20) {
		t.Error("name/value boundary not part of the hash")
	}
}

// TestHashFeatureUniform: buckets are filled evenly (chi-square).
func TestHashFeatureUniform(t *testing.T) {
	const dim, n = 64, 64000
	counts := make([]float64, dim)
	for i := 0; i < n; i++ {
		counts[HashFeature("user", []byte(fmt.Sprint(i)), dim)]++
	}
	chi := 0.0
	for _, c := range counts {
		chi += (c - n/dim) * (c - n/dim) / (n / dim)
	}
	// 63 degrees of freedom: p = 0.001 at about 103.
	if chi > 103 {
		t.Errorf("chi-square %v over %d buckets", chi, dim)
	}
}

func TestStandardizer(t *testing.T) {
	s, _ := NewStandardizer(3)
	rng := rand.New(rand.NewPCG(1, 1))
	var xs []float64
	for i := 0; i < 1000; i++ {
		x := 5 + 2*rng.NormFloat64()
		xs = append(xs, x)
		s.Learn(0, x)
		s.Learn(1, 7) // constant input
	}
	mean, ss := 0.0, 0.0
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	for _, x := range xs {
		ss += (x - mean) * (x - mean)
	}
	std := math.Sqrt(ss / float64(len(xs)))
	if math.Abs(s.Mean(0)-mean) > 1e-9 || math.Abs(s.Std(0)-std) > 1e-9 {
		t.Errorf("mean %v std %v, want %v %v", s.Mean(0), s.Std(0), mean, std)
	}
	if got := s.Transform(0, mean+std); math.Abs(got-1) > 1e-9 {
		t.Errorf("Transform(mean+std) = %v", got)
	}
	if got := s.Transform(1, 8); got != 0 {
		t.Errorf("constant input transforms to %v, want 0", got)
	}
	if got := s.Transform(2, 8); got != 0 {
		t.Errorf("unseen input transforms to %v, want 0", got)
	}
	v := online.Vector{{Index: 0, Value: mean}, {Index: 5, Value: 3}}
	s.TransformVector(v)
	if math.Abs(v[0].Value) > 1e-9 || v[1].Value != 3 {
		t.Errorf("TransformVector: %v", v)
	}
	b := s.AppendState(nil)
	s2, _ := NewStandardizer(1)
	if err := s2.DecodeState(b); err != nil || !bytes.Equal(b, s2.AppendState(nil)) {
		t.Fatalf("round trip: %v", err)
	}
}

func TestImputer(t *testing.T) {
	m, _ := NewImputer(2, ImputeMean, -1)
	m.Learn(0, 2)
	m.Learn(0, 4)
	m.Learn(0, math.NaN())
	if got := m.Transform(0, math.NaN()); got != 3 {
		t.Errorf("mean imputation %v, want 3", got)
	}
	if got := m.Transform(1, math.NaN()); got != -1 {
		t.Errorf("unseen input imputes %v, want the constant", got)
	}
	if got := m.Transform(0, 9); got != 9 {
		t.Errorf("present value changed to %v", got)
	}
	c, _ := NewImputer(1, ImputeConstant, 0)
	c.Learn(0, 5)
	if got := c.Transform(0, math.Inf(1)); got != 0 {
		t.Errorf("constant imputation %v", got)
	}
}

func TestTransforms(t *testing.T) {
	if Log1p(-3) != -math.Log1p(3) || Log1p(3) != math.Log1p(3) || Log1p(0) != 0 {
		t.Error("Log1p")
	}
	if Clip(5, 0, 1) != 1 || Clip(-5, 0, 1) != 0 || Clip(0.5, 0, 1) != 0.5 || !math.IsNaN(Clip(math.NaN(), 0, 1)) {
		t.Error("Clip")
	}
}

func TestVocabulary(t *testing.T) {
	v, _ := NewVocabulary(100, 2)
	a, b, c := v.Index([]byte("a")), v.Index([]byte("b")), v.Index([]byte("c"))
	if a != 100 || b != 101 || c != 102 || v.Index([]byte("a")) != 100 || v.Overflow() != 102 {
		t.Errorf("indexes %d %d %d", a, b, c)
	}
	if _, ok := v.Lookup([]byte("c")); ok {
		t.Error("overflow value was assigned")
	}
	key := []byte("a")
	if n := testing.AllocsPerRun(100, func() { v.Index(key) }); n != 0 {
		t.Errorf("lookup allocates %v", n)
	}
	b1 := v.AppendState(nil)
	w, _ := NewVocabulary(0, 1)
	if err := w.DecodeState(b1); err != nil || w.Index([]byte("b")) != 101 || !bytes.Equal(b1, w.AppendState(nil)) {
		t.Fatalf("round trip: %v", err)
	}
}

type state interface {
	AppendState([]byte) []byte
	DecodeState([]byte) error
}

func fuzzState(f *testing.F, fresh func() state, filled ...state) {
	for _, m := range filled {
		f.Add(m.AppendState(nil))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m := fresh()
		before := m.AppendState(nil)
		if err := m.DecodeState(b); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			if !bytes.Equal(before, m.AppendState(nil)) {
				t.Fatal("failed decode changed the state")
			}
			return
		}
		enc := m.AppendState(nil)
		m2 := fresh()
		if err := m2.DecodeState(enc); err != nil || !bytes.Equal(enc, m2.AppendState(nil)) {
			t.Fatalf("not canonical: %v", err)
		}
		switch v := m.(type) {
		case *Standardizer:
			v.Learn(0, 1)
			v.Transform(0, 2)
		case *Imputer:
			v.Transform(0, math.NaN())
		case *Vocabulary:
			v.Index([]byte("new"))
		}
	})
}

func FuzzDecodeStandardizer(f *testing.F) {
	s, _ := NewStandardizer(3)
	s.Learn(0, 1)
	s.Learn(0, 3)
	fuzzState(f, func() state { s, _ := NewStandardizer(1); return s }, s)
}

func FuzzDecodeImputer(f *testing.F) {
	m, _ := NewImputer(2, ImputeMean, 1)
	m.Learn(1, 4)
	fuzzState(f, func() state { m, _ := NewImputer(1, ImputeConstant, 0); return m }, m)
}

func FuzzDecodeVocabulary(f *testing.F) {
	v, _ := NewVocabulary(10, 4)
	v.Index([]byte("x"))
	v.Index([]byte("yy"))
	fuzzState(f, func() state { v, _ := NewVocabulary(0, 1); return v }, v)
}
