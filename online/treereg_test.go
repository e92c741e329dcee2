package online

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// TestRoundDecimal: roundDecimal agrees with the correctly rounded decimal (strconv's, which is
// what Python's round(x, d) computes) on random values and on the ties and edges.
func TestRoundDecimal(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	xs := []float64{0, 0.05, 0.15, 0.25, 0.35, -0.25, 2.5, 1e-300, -1e-300, 123456.75, 0.45, 1.05}
	for i := 0; i < 200000; i++ {
		x := rng.NormFloat64() * math.Pow(10, float64(rng.IntN(12)-4))
		if i%3 == 0 {
			x = math.Round(x*100) / 100 // many near-ties
		}
		xs = append(xs, x)
	}
	for _, x := range xs {
		for _, d := range []int{0, 1, 2, 3, 6} {
			want, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'f', d, 64), 64)
			if got := roundDecimal(x, d); got != want && !(got == 0 && want == 0) {
				t.Fatalf("roundDecimal(%v, %d) = %v, want %v", x, d, got, want)
			}
		}
	}
}

// TestTreeRegressorMaxValues: a leaf keeps at most max_values distinct values per feature, the
// others joining their nearest kept value, so its state stays bounded on unscaled features.
func TestTreeRegressorMaxValues(t *testing.T) {
	m := newTreeRegressor(TreeRegressorSpec{Dim: 4, GracePeriod: 1 << 30, MaxValues: 10}.WithDefaults().(TreeRegressorSpec))
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 5000; i++ {
		v := rng.Float64() * 1e6
		m.Learn(Vector{{Index: 1, Value: v}}, v)
	}
	l := m.t.root.leaf
	if len(l.obs) != 1 || len(l.obs[0]) != 10 {
		t.Fatalf("kept %d features, %d values; want 1 and 10", len(l.obs), len(l.obs[0]))
	}
	var n float64
	for _, b := range l.obs[0] {
		n += b.st.n
	}
	if n != 5000 {
		t.Errorf("the kept values hold %v examples, want all 5000", n)
	}
	if _, err := Decode(m.AppendState(nil)); err != nil {
		t.Fatal(err)
	}
}
