package online_test

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/streamd/streamd/online"
	"github.com/streamd/streamd/online/preprocess"
)

// stream is a generated labelled stream with a known logistic ground truth:
// 10 dense standard-normal features and 10 sparse binary ones (each present
// with probability 0.2), hashed into dim buckets like a real pipeline does.
type stream struct {
	X     []online.Vector
	Y     []float64
	P     []float64 // the true P(y=1) of each example
	Drift int       // index of an abrupt drift, -1 if none
}

const (
	nDense  = 10
	nSparse = 10
)

type driftKind int

const (
	noDrift driftKind = iota
	abrupt
	gradual
)

func trueWeights(rng *rand.Rand) []float64 {
	w := make([]float64, nDense+nSparse+1)
	for i := range w {
		w[i] = rng.NormFloat64()
	}
	for i := 0; i < nDense; i++ {
		w[i] *= 0.6
	}
	w[len(w)-1] = -0.5 // intercept: about 40% positives
	return w
}

// genStream draws n examples. With abrupt drift the true weights are redrawn
// at n/2; with gradual drift they move from the first to the second draw
// along a sigmoid centred on n/2 with width n/4, as MOA's concept-drift
// streams do.
func genStream(seed uint64, n, dim int, kind driftKind) stream {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	w0, w1 := trueWeights(rng), trueWeights(rng)
	// Hashed indexes, re-probed on a collision: a Vector never repeats an
	// index (two colliding fields would be summed by the caller).
	idx := make([]uint32, nDense+nSparse)
	used := map[uint32]bool{}
	for i := range idx {
		h := preprocess.HashFeature(fmt.Sprintf("f%02d", i), nil, dim)
		for used[h] {
			h = (h + 1) % uint32(dim)
		}
		used[h] = true
		idx[i] = h
	}
	s := stream{Drift: -1}
	if kind == abrupt {
		s.Drift = n / 2
	}
	raw := make([]float64, nDense+nSparse)
	for t := 0; t < n; t++ {
		x := make(online.Vector, 0, nDense+nSparse)
		for i := 0; i < nDense; i++ {
			raw[i] = rng.NormFloat64()
			x = append(x, online.Feature{Index: idx[i], Value: raw[i]})
		}
		for i := nDense; i < nDense+nSparse; i++ {
			raw[i] = 0
			if rng.Float64() < 0.2 {
				raw[i] = 1
				x = append(x, online.Feature{Index: idx[i], Value: 1})
			}
		}
		var mix float64
		switch kind {
		case abrupt:
			if t >= n/2 {
				mix = 1
			}
		case gradual:
			mix = 1 / (1 + math.Exp(-4*float64(t-n/2)/float64(n/4)))
		}
		m := 0.0
		for i := range w0 {
			wi := (1-mix)*w0[i] + mix*w1[i]
			if i < len(raw) {
				m += wi * raw[i]
			} else {
				m += wi
			}
		}
		p := 1 / (1 + math.Exp(-m))
		y := 0.0
		if rng.Float64() < p {
			y = 1
		}
		s.X = append(s.X, x)
		s.Y = append(s.Y, y)
		s.P = append(s.P, p)
	}
	return s
}

func logloss(p, y float64) float64 {
	p = min(max(p, 1e-15), 1-1e-15)
	if y >= 0.5 {
		return -math.Log(p)
	}
	return -math.Log(1 - p)
}

// progressive runs test-then-train over s and returns the mean log loss
// and the per-example losses.
func progressive(l online.Learner, s stream) (float64, []float64) {
	losses := make([]float64, len(s.X))
	sum := 0.0
	for t, x := range s.X {
		p, _ := l.Predict(x, nil)
		losses[t] = logloss(p, s.Y[t])
		sum += losses[t]
		l.Learn(x, s.Y[t])
	}
	return sum / float64(len(s.X)), losses
}
