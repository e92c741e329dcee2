package preprocess

import (
	"math"
	"testing"
)

func TestStandardizerMerge(t *testing.T) {
	whole, _ := NewStandardizer(2)
	a, _ := NewStandardizer(2)
	b, _ := NewStandardizer(2)
	for i := range 1000 {
		x, y := float64(i%37)*1.5, math.Sin(float64(i))
		whole.Learn(0, x)
		whole.Learn(1, y)
		part := a
		if i%3 == 0 {
			part = b
		}
		part.Learn(0, x)
		part.Learn(1, y)
	}
	merged, _ := NewStandardizer(2)
	if err := merged.Merge([]*Standardizer{a, b}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if math.Abs(merged.Mean(i)-whole.Mean(i)) > 1e-9 || math.Abs(merged.Std(i)-whole.Std(i)) > 1e-9 {
			t.Errorf("input %d: merged mean %v std %v, whole %v %v", i, merged.Mean(i), merged.Std(i), whole.Mean(i), whole.Std(i))
		}
	}
	odd, _ := NewStandardizer(3)
	if merged.Merge([]*Standardizer{odd}) == nil {
		t.Error("merged a standardizer of another shape")
	}
}
