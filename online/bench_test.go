package online_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/streamd/streamd/online"
)

func benchSpecs() []online.Spec {
	return []online.Spec{
		online.FTRLSpec{},
		online.LinearSpec{},
		online.SoftmaxSpec{Classes: 4},
		online.KMeansSpec{K: 8},
		online.TreeSpec{},
		online.HSTSpec{},
		online.TreeRegressorSpec{},
	}
}

func labelFor(spec online.Spec, s stream, i int) float64 {
	switch spec := spec.(type) {
	case online.SoftmaxSpec:
		return float64(i % spec.Classes)
	}
	if spec.Task() == online.Regression {
		return s.P[i]
	}
	return s.Y[i]
}

// BenchmarkPredictLearn measures one prequential step, Predict then Learn,
// of a 20-feature sparse example in a 1<<18 feature space.
func BenchmarkPredictLearn(b *testing.B) {
	s := genStream(1, 4096, online.DefaultDim, noDrift)
	for _, spec := range benchSpecs() {
		b.Run(spec.Kind(), func(b *testing.B) {
			l, err := online.New(spec)
			if err != nil {
				b.Fatal(err)
			}
			probs := make([]float64, 8)
			for i := range s.X { // warm up: steady state, not first touches
				l.Predict(s.X[i], probs)
				l.Learn(s.X[i], labelFor(spec, s, i))
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				k := i & 4095
				l.Predict(s.X[k], probs)
				l.Learn(s.X[k], labelFor(spec, s, k))
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "updates/s")
		})
	}
}

func BenchmarkAppendState(b *testing.B) {
	s := genStream(1, 4096, online.DefaultDim, noDrift)
	for _, spec := range benchSpecs() {
		b.Run(spec.Kind(), func(b *testing.B) {
			l, _ := online.New(spec)
			for i := range s.X {
				l.Learn(s.X[i], labelFor(spec, s, i))
			}
			buf := l.AppendState(nil)
			b.ReportAllocs()
			b.SetBytes(int64(len(buf)))
			for i := 0; i < b.N; i++ {
				buf = l.AppendState(buf[:0])
			}
		})
	}
}

// TestZeroAllocs: the per-event path of every learner allocates nothing in
// steady state.
func TestZeroAllocs(t *testing.T) {
	s := genStream(2, 1024, online.DefaultDim, noDrift)
	for _, spec := range benchSpecs() {
		t.Run(spec.Kind(), func(t *testing.T) {
			l, err := online.New(spec)
			if err != nil {
				t.Fatal(err)
			}
			probs := make([]float64, 8)
			for i := range s.X {
				l.Predict(s.X[i], probs)
				l.Learn(s.X[i], labelFor(spec, s, i))
			}
			i := 0
			allocs := testing.AllocsPerRun(1000, func() {
				k := i % len(s.X)
				l.Predict(s.X[k], probs)
				l.Predict(s.X[k], nil)
				l.Learn(s.X[k], labelFor(spec, s, k))
				i++
			})
			if allocs != 0 {
				t.Errorf("%s: %v allocs per Predict+Learn, want 0", spec.Kind(), allocs)
			}
		})
	}
}

var _ = fmt.Sprint

// BenchmarkFTRLScattered is the cache-unfriendly case: every example has 20
// features at random buckets of 1<<18 (as hashed categorical fields with
// large vocabularies give), so most coordinate reads miss the CPU caches.
func BenchmarkFTRLScattered(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	xs := make([]online.Vector, 1<<14)
	for i := range xs {
		seen := map[uint32]bool{}
		for len(xs[i]) < 20 {
			k := uint32(rng.IntN(online.DefaultDim))
			if !seen[k] {
				seen[k] = true
				xs[i] = append(xs[i], online.Feature{Index: k, Value: 1})
			}
		}
	}
	l, _ := online.New(online.FTRLSpec{})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		x := xs[i&(len(xs)-1)]
		l.Predict(x, nil)
		l.Learn(x, float64(i&1))
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "updates/s")
}
