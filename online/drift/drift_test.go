package drift

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

type detector interface {
	Update(float64) bool
	AppendState([]byte) []byte
	DecodeState([]byte) error
}

func newDetectors(t testing.TB, dir Direction) map[string]func() detector {
	return map[string]func() detector{
		"adwin": func() detector {
			a, err := NewADWIN(ADWINConfig{Direction: dir})
			if err != nil {
				t.Fatal(err)
			}
			return a
		},
		"page_hinkley": func() detector {
			p, err := NewPageHinkley(PageHinkleyConfig{Direction: dir, Alpha: 1})
			if err != nil {
				t.Fatal(err)
			}
			return p
		},
	}
}

// TestMeanShift: a jump of the mean of Bernoulli-like noise is detected
// soon after it, in the configured direction only; no alarm before it.
func TestMeanShift(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3, 4, 5} {
		for name, mk := range newDetectors(t, Both) {
			for _, dir := range []Direction{Both, Up, Down} {
				for _, up := range []bool{true, false} {
					rng := rand.New(rand.NewPCG(seed, 1))
					d := mk()
					switch v := d.(type) {
					case *ADWIN:
						v.cfg.Direction = dir
					case *PageHinkley:
						v.cfg.Direction = dir
					}
					lo, hi := 0.2, 0.8
					if !up {
						lo, hi = hi, lo
					}
					first := -1
					for i := 0; i < 4000; i++ {
						m := lo
						if i >= 2000 {
							m = hi
						}
						if d.Update(m + rng.Float64() - 0.5) {
							if i < 2000 {
								t.Errorf("seed %d %s dir %d: false alarm at %d", seed, name, dir, i)
							}
							if first < 0 {
								first = i
							}
						}
					}
					want := dir == Both || (dir == Up) == up
					if want && (first < 0 || first > 2300) {
						t.Errorf("seed %d %s dir %d up %v: first detection at %d, want in [2000, 2300]", seed, name, dir, up, first)
					}
					if !want && first >= 0 {
						t.Errorf("seed %d %s dir %d up %v: detected at %d against the direction", seed, name, dir, up, first)
					}
				}
			}
		}
	}
}

// TestRoundTripContinue: restoring mid-stream changes nothing.
func TestRoundTripContinue(t *testing.T) {
	for name, mk := range newDetectors(t, Up) {
		rng := rand.New(rand.NewPCG(7, 7))
		xs := make([]float64, 5000)
		for i := range xs {
			xs[i] = rng.Float64()
			if i > 3000 {
				xs[i] += 0.5
			}
		}
		a, b := mk(), mk()
		for _, x := range xs[:2500] {
			a.Update(x)
		}
		if err := b.DecodeState(a.AppendState(nil)); err != nil {
			t.Fatal(err)
		}
		for i, x := range xs[2500:] {
			if a.Update(x) != b.Update(x) {
				t.Fatalf("%s: diverged at %d", name, 2500+i)
			}
		}
		if !bytes.Equal(a.AppendState(nil), b.AppendState(nil)) {
			t.Fatalf("%s: states differ", name)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	_, err := NewADWIN(ADWINConfig{Delta: 2, Clock: -1, Direction: 9})
	for _, want := range []string{"adwin.delta = 2", "adwin.clock = -1", "adwin.direction"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %q", err, want)
		}
	}
	_, err = NewPageHinkley(PageHinkleyConfig{Threshold: -1, Alpha: 2})
	if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "threshold") || !strings.Contains(err.Error(), "alpha") {
		t.Errorf("err = %v", err)
	}
}

func TestADWINZeroAllocs(t *testing.T) {
	a, _ := NewADWIN(ADWINConfig{})
	rng := rand.New(rand.NewPCG(1, 1))
	for i := 0; i < 100000; i++ {
		a.Update(rng.Float64())
	}
	if n := testing.AllocsPerRun(10000, func() { a.Update(rng.Float64()) }); n != 0 {
		t.Errorf("%v allocs per update", n)
	}
}

func BenchmarkADWIN(b *testing.B) {
	a, _ := NewADWIN(ADWINConfig{})
	rng := rand.New(rand.NewPCG(1, 1))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		a.Update(rng.Float64())
	}
}

func fuzzDetector(f *testing.F, fresh func() detector) {
	for _, n := range []int{0, 3, 50, 3000} {
		d := fresh()
		rng := rand.New(rand.NewPCG(uint64(n), 2))
		for i := 0; i < n; i++ {
			d.Update(rng.Float64())
		}
		f.Add(d.AppendState(nil))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d := fresh()
		before := d.AppendState(nil)
		if err := d.DecodeState(b); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			if !bytes.Equal(before, d.AppendState(nil)) {
				t.Fatal("failed decode changed the detector")
			}
			return
		}
		enc := d.AppendState(nil)
		d2 := fresh()
		if err := d2.DecodeState(enc); err != nil || !bytes.Equal(enc, d2.AppendState(nil)) {
			t.Fatalf("not canonical: %v", err)
		}
		for i := 0; i < 100; i++ {
			d.Update(float64(i % 3))
		}
	})
}

func FuzzDecodeADWIN(f *testing.F) {
	fuzzDetector(f, func() detector { a, _ := NewADWIN(ADWINConfig{Clock: 4}); return a })
}

func FuzzDecodePageHinkley(f *testing.F) {
	fuzzDetector(f, func() detector { p, _ := NewPageHinkley(PageHinkleyConfig{}); return p })
}
