package drift

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestFalseAlarmProbe(t *testing.T) {
	const n = 165_000 // one partition of the demo: 5.5 min at 2,000/s over 4 partitions
	for _, c := range []struct {
		name string
		draw func(r *rand.Rand) float64
	}{
		{"logloss 2% misses", func(r *rand.Rand) float64 {
			if r.Float64() < 0.02 {
				return -math.Log(0.01 + 0.2*r.Float64()) // a missed fraud: 1.5 to 4.6
			}
			return -math.Log(1 - 0.05*r.Float64())
		}},
		{"error 2%", func(r *rand.Rand) float64 {
			if r.Float64() < 0.02 {
				return 1
			}
			return 0
		}},
	} {
		for _, delta := range []float64{0.002, 0.0001} {
			total := 0
			for seed := range uint64(8) {
				r := rand.New(rand.NewPCG(seed, 1))
				a, _ := NewADWIN(ADWINConfig{Direction: Up, Delta: delta})
				for range n {
					if a.Update(c.draw(r)) {
						total++
					}
				}
			}
			t.Logf("%s delta %g: %.2f detections per %d values (mean of 8 seeds)", c.name, delta, float64(total)/8, n)
		}
	}
}
