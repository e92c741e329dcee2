package online_test

import (
	"testing"

	"github.com/streamd/streamd/online"
	"github.com/streamd/streamd/online/preprocess"
)

// BenchmarkRiverRows times Predict then Learn, one example at a time, on the rows that
// scripts/river_compare.py --speed times River on; examples/s is the figure to put beside
// River's. The linear case standardizes its features online as River's StandardScaler pipeline
// does (the scaler's cost is in the figure).
func BenchmarkRiverRows(b *testing.B) {
	cases := []struct {
		file  string
		spec  online.Spec
		scale bool
	}{
		{"trump_approval.csv", online.LinearSpec{Dim: 16}, true},
		{"trump_approval.csv", online.TreeRegressorSpec{Dim: 16}, true},
		{"trump_approval.csv", online.ARFRegressorSpec{ForestSpec: online.ForestSpec{Seed: 1}, TreeRegressorSpec: online.TreeRegressorSpec{Dim: 16}}, true},
		{"agrawal.csv.gz", online.TreeSpec{Dim: 16}, false},
		{"agrawal.csv.gz", online.ARFClassifierSpec{Dim: 16, ForestSpec: online.ForestSpec{Seed: 1}}, false},
		{"hst_anomalies.csv.gz", online.HSTSpec{Dim: 3, Seed: 1}, false},
	}
	for _, c := range cases {
		b.Run(c.file+"/"+c.spec.Kind(), func(b *testing.B) {
			xs, ys := loadCSV(b, c.file)
			l, err := online.New(c.spec)
			if err != nil {
				b.Fatal(err)
			}
			std, _ := preprocess.NewStandardizer(len(xs[0]))
			v := make(online.Vector, 0, len(xs[0]))
			vec := func(raw []float64) online.Vector {
				v = v[:0]
				for j, r := range raw {
					if c.scale {
						r = std.Transform(j, r)
					}
					if r != 0 {
						v = append(v, online.Feature{Index: uint32(j), Value: r})
					}
				}
				return v
			}
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				k := n % len(xs)
				l.Predict(vec(xs[k]), nil)
				if c.scale {
					for j, r := range xs[k] {
						std.Learn(j, r)
					}
				}
				l.Learn(vec(xs[k]), ys[k])
				n++
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "examples/s")
		})
	}
}
