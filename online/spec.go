package online

import (
	"errors"
	"fmt"
	"math"

	"github.com/streamd/streamd/online/internal/wire"
)

// Learner kinds accepted in Spec.Kind.
const (
	KindFTRL          = "ftrl_logistic"
	KindLinear        = "adagrad_linear" // "linear" is accepted as an alias
	KindSoftmax       = "softmax"
	KindKMeans        = "kmeans"
	KindHoeffdingTree = "hoeffding_tree"
)

// Bounds enforced by Validate. They keep one model's memory bounded: the
// dense learners hold 16 bytes per parameter.
const (
	DefaultDim = 1 << 18
	MaxDim     = 1 << 24
	// MaxParams bounds Dim*Classes (softmax) and Dim*K (k-means).
	MaxParams  = 1 << 24
	MaxClasses = 1024
	MaxK       = 1024
	MaxDepth   = 64
)

// Spec describes a learner: its kind, shape and hyperparameters. The zero
// value of a field means its default (EnsureDefaults); only the fields of
// the chosen Kind are read and checked.
type Spec struct {
	Kind string `yaml:"kind"`
	// Dim is the size of the feature space (hash buckets). Default 1<<18,
	// at most MaxDim.
	Dim int `yaml:"dim"`
	// Classes is the number of classes of softmax (required, >= 2) and of the
	// Hoeffding tree (default 2).
	Classes int `yaml:"classes"`

	// FTRL-Proximal (McMahan et al. 2013). Defaults alpha 0.1, beta 1, l1 1,
	// l2 1: alpha 0.1 is the paper's typical per-coordinate base rate for
	// unscaled 0/1 features; beta 1 makes the first step of a coordinate
	// alpha/(beta+|g|) instead of unbounded; l1 1 drops coordinates whose
	// cumulative gradient never exceeds 1, which is what keeps hashed click
	// and fraud models sparse; l2 1 keeps rare coordinates from swinging.
	// Since 0 means default, a negative L1 or L2 means no penalty.
	Alpha float64 `yaml:"alpha"`
	Beta  float64 `yaml:"beta"`
	L1    float64 `yaml:"l1"`
	// L2 also applies to adagrad_linear and softmax (default none there).
	L2 float64 `yaml:"l2"`

	// LearningRate is AdaGrad's base rate for adagrad_linear and softmax.
	// Default 0.1.
	LearningRate float64 `yaml:"learning_rate"`

	// K is the number of k-means clusters (default 8). Decay multiplies every
	// cluster's weight at each example (default 0.999, a half-life of about
	// 700 examples; 1 means no forgetting). With 0.99 the half-life is 69
	// examples and centroids chase noise.
	K     int     `yaml:"k"`
	Decay float64 `yaml:"decay"`

	// Hoeffding tree: GracePeriod examples at a leaf between split attempts
	// (default 200), Delta the split confidence (default 1e-7), Tau the tie
	// threshold (default 0.05), MaxDepth (default 20, at most 64). These are
	// River's defaults except MaxDepth, which River leaves unbounded; a bound
	// keeps state size and decode recursion bounded.
	GracePeriod int     `yaml:"grace_period"`
	Delta       float64 `yaml:"delta"`
	Tau         float64 `yaml:"tau"`
	MaxDepth    int     `yaml:"max_depth"`
}

// EnsureDefaults fills the zero fields of the spec's kind with their
// defaults. It is idempotent.
func (s *Spec) EnsureDefaults() {
	if s.Kind == "linear" {
		s.Kind = KindLinear
	}
	if s.Dim == 0 {
		s.Dim = DefaultDim
	}
	switch s.Kind {
	case KindFTRL:
		def(&s.Alpha, 0.1)
		def(&s.Beta, 1)
		def(&s.L1, 1)
		def(&s.L2, 1)
	case KindLinear, KindSoftmax:
		def(&s.LearningRate, 0.1)
	case KindKMeans:
		if s.K == 0 {
			s.K = 8
		}
		def(&s.Decay, 0.999)
	case KindHoeffdingTree:
		if s.Classes == 0 {
			s.Classes = 2
		}
		if s.GracePeriod == 0 {
			s.GracePeriod = 200
		}
		def(&s.Delta, 1e-7)
		def(&s.Tau, 0.05)
		if s.MaxDepth == 0 {
			s.MaxDepth = 20
		}
	}
}

func def(f *float64, v float64) {
	if *f == 0 {
		*f = v
	}
}

// Validate reports every field out of bounds for the spec's kind, each
// naming the field, its value and the bound; the errors wrap ErrInvalidSpec.
// Call EnsureDefaults first: zero values are checked as they are.
func (s Spec) Validate() error {
	var errs []error
	bad := func(field string, v any, want string) {
		errs = append(errs, fmt.Errorf("%w: %s = %v, want %s", ErrInvalidSpec, field, v, want))
	}
	pos := func(field string, v float64) {
		if !(v > 0) || math.IsInf(v, 0) {
			bad(field, v, "> 0 and finite")
		}
	}
	penalty := func(field string, v float64) {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			bad(field, v, "finite (negative means none)")
		}
	}
	if s.Dim < 1 || s.Dim > MaxDim {
		bad("dim", s.Dim, fmt.Sprintf("in [1, %d]", MaxDim))
	}
	switch s.Kind {
	case KindFTRL:
		pos("alpha", s.Alpha)
		pos("beta", s.Beta)
		penalty("l1", s.L1)
		penalty("l2", s.L2)
	case KindLinear:
		pos("learning_rate", s.LearningRate)
		penalty("l2", s.L2)
	case KindSoftmax:
		pos("learning_rate", s.LearningRate)
		penalty("l2", s.L2)
		if s.Classes < 2 || s.Classes > MaxClasses {
			bad("classes", s.Classes, fmt.Sprintf("in [2, %d]", MaxClasses))
		} else if s.Dim >= 1 && s.Dim*s.Classes > MaxParams {
			bad("dim*classes", s.Dim*s.Classes, fmt.Sprintf("<= %d", MaxParams))
		}
	case KindKMeans:
		if s.K < 1 || s.K > MaxK {
			bad("k", s.K, fmt.Sprintf("in [1, %d]", MaxK))
		} else if s.Dim >= 1 && s.Dim*s.K > MaxParams {
			bad("dim*k", s.Dim*s.K, fmt.Sprintf("<= %d", MaxParams))
		}
		if !(s.Decay > 0 && s.Decay <= 1) {
			bad("decay", s.Decay, "in (0, 1]")
		}
	case KindHoeffdingTree:
		if s.Classes < 2 || s.Classes > MaxClasses {
			bad("classes", s.Classes, fmt.Sprintf("in [2, %d]", MaxClasses))
		}
		if s.GracePeriod < 1 {
			bad("grace_period", s.GracePeriod, ">= 1")
		}
		if !(s.Delta > 0 && s.Delta < 1) {
			bad("delta", s.Delta, "in (0, 1)")
		}
		if !(s.Tau >= 0 && s.Tau <= 1) {
			bad("tau", s.Tau, "in [0, 1]")
		}
		if s.MaxDepth < 1 || s.MaxDepth > MaxDepth {
			bad("max_depth", s.MaxDepth, fmt.Sprintf("in [1, %d]", MaxDepth))
		}
	default:
		bad("kind", fmt.Sprintf("%q", s.Kind), `one of "ftrl_logistic", "adagrad_linear" ("linear"), "softmax", "kmeans", "hoeffding_tree"`)
	}
	return errors.Join(errs...)
}

// Task returns what a learner of this spec predicts.
func (s Spec) Task() Task {
	switch s.Kind {
	case KindFTRL:
		return Binary
	case KindLinear, "linear":
		return Regression
	case KindSoftmax:
		return Multiclass
	case KindKMeans:
		return Anomaly
	case KindHoeffdingTree:
		if s.Classes > 2 {
			return Multiclass
		}
		return Binary
	}
	return 0
}

var kindCodes = []string{KindFTRL, KindLinear, KindSoftmax, KindKMeans, KindHoeffdingTree}

func appendSpec(dst []byte, s Spec) []byte {
	code := 0
	for i, k := range kindCodes {
		if k == s.Kind {
			code = i + 1
		}
	}
	dst = wire.AppendUvarint(dst, uint64(code))
	dst = wire.AppendVarint(dst, int64(s.Dim))
	dst = wire.AppendVarint(dst, int64(s.Classes))
	for _, f := range [...]float64{s.Alpha, s.Beta, s.L1, s.L2, s.LearningRate, s.Decay, s.Delta, s.Tau} {
		dst = wire.AppendFloat(dst, f)
	}
	dst = wire.AppendVarint(dst, int64(s.K))
	dst = wire.AppendVarint(dst, int64(s.GracePeriod))
	dst = wire.AppendVarint(dst, int64(s.MaxDepth))
	return dst
}

// readSpec reads and validates a spec; defaults are not applied, so a
// decoded learner keeps exactly the spec it was encoded with.
func readSpec(r *wire.Reader) Spec {
	var s Spec
	code := r.Uvarint()
	if r.Err() == nil && (code < 1 || code > uint64(len(kindCodes))) {
		r.Fail("spec: kind code %d", code)
		return s
	}
	if r.Err() != nil {
		return s
	}
	s.Kind = kindCodes[code-1]
	s.Dim = int(r.Int("spec dim", 1, MaxDim))
	s.Classes = int(r.Int("spec classes", 0, MaxClasses))
	for _, f := range [...]*float64{&s.Alpha, &s.Beta, &s.L1, &s.L2, &s.LearningRate, &s.Decay, &s.Delta, &s.Tau} {
		*f = r.Float()
	}
	s.K = int(r.Int("spec k", 0, MaxK))
	s.GracePeriod = int(r.Int("spec grace_period", 0, math.MaxInt32))
	s.MaxDepth = int(r.Int("spec max_depth", 0, MaxDepth))
	if r.Err() == nil {
		if err := s.Validate(); err != nil {
			r.Fail("spec: %v", err)
		}
	}
	return s
}

// sameShape reports whether two specs describe parameters that can be
// averaged coordinate by coordinate.
func sameShape(a, b Spec) bool {
	return a.Kind == b.Kind && a.Dim == b.Dim && a.Classes == b.Classes && a.K == b.K
}
