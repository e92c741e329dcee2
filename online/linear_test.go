package online_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/streamd/streamd/online"
)

// TestLinearFarTarget: at its defaults adagrad_linear follows a target far from zero (mean 250,
// deviation ~30) from the first few hundred examples; without target scaling the same learner
// is still far off, which is what target standardization is for.
func TestLinearFarTarget(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	mae := func(spec online.Spec) float64 {
		l, err := online.New(spec)
		if err != nil {
			t.Fatal(err)
		}
		var abs float64
		for i := range 1000 {
			a, b := rng.NormFloat64(), rng.NormFloat64()
			x := online.Vector{{Index: 0, Value: a}, {Index: 1, Value: b}}
			y := 250 + 25*a - 15*b + rng.NormFloat64()
			if p, _ := l.Predict(x, nil); i >= 800 {
				abs += math.Abs(p - y)
			}
			l.Learn(x, y)
		}
		return abs / 200
	}
	scaled := mae(online.LinearSpec{Dim: 4})
	raw := mae(online.LinearSpec{Dim: 4, TargetScaling: online.TargetNone})
	t.Logf("MAE over examples 800-999: standardized %.3f, raw %.3f", scaled, raw)
	if scaled > 2 {
		t.Errorf("standardized target: MAE %.3f, want <= 2 (noise deviation 1)", scaled)
	}
	if raw < 10*scaled {
		t.Errorf("raw target MAE %.3f not clearly worse than standardized %.3f: the test no longer shows the difference", raw, scaled)
	}
}

// TestLinearDecodesUnscaledState: a state of the format before target scaling (what
// TargetScaling "none" writes) decodes to an unscaled learner, and a state's version must agree
// with its spec.
func TestLinearDecodesUnscaledState(t *testing.T) {
	s := genStream(21, 300, 1<<10, noDrift)
	old := train(t, online.LinearSpec{Dim: 1 << 10, TargetScaling: online.TargetNone}, s, 0, len(s.X)).AppendState(nil)
	if old[1] != 1 {
		t.Fatalf("unscaled state has version %d, want 1 (the format before target scaling)", old[1])
	}
	l, err := online.Decode(old)
	if err != nil {
		t.Fatal(err)
	}
	if ts := l.Spec().(online.LinearSpec).TargetScaling; ts != online.TargetNone {
		t.Errorf("decoded target_scaling %q, want %q", ts, online.TargetNone)
	}
	bad := append([]byte{}, old...)
	bad[1] = 2
	if _, err := online.Decode(bad); err == nil {
		t.Error("a version-2 header over an unscaled spec was accepted")
	}
}
