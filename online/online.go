package online

import (
	"errors"
	"fmt"
	"math"

	"github.com/streamd/streamd/online/internal/wire"
)

// Feature is one non-zero entry of a sparse vector. Index is in [0, Dim):
// hashed (preprocess.HashFeature) or assigned by the caller.
type Feature struct {
	Index uint32
	Value float64
}

// Vector is a sparse feature vector. It need not be sorted, but the caller
// never repeats an index. Learners read it and never keep it.
//
// A feature whose Index is >= Dim or whose Value is NaN or ±Inf is skipped by
// every learner, in Predict and Learn alike: one bad field must not crash the
// task or poison the model's state for good. Validating input is the scoring
// operator's job; this is only the last line of defence.
type Vector []Feature

// Task is what a learner predicts.
type Task uint8

const (
	// Binary learners return P(y=1) as the score and class = score >= 0.5.
	Binary Task = iota + 1
	// Regression learners return the predicted value as the score; class is 0.
	Regression
	// Multiclass learners fill probs and return the argmax class (and its
	// probability as the score).
	Multiclass
	// Anomaly learners return an anomaly score (kmeans: the distance to the
	// nearest centroid, and that centroid as the class; half_space_trees: a
	// score in [0, 1], class 0) and learn without labels.
	Anomaly
)

func (t Task) String() string {
	switch t {
	case Binary:
		return "binary"
	case Regression:
		return "regression"
	case Multiclass:
		return "multiclass"
	case Anomaly:
		return "anomaly"
	}
	return fmt.Sprintf("Task(%d)", uint8(t))
}

// Learner is an online model: task state of the scoring operator.
//
// A Learner is not safe for concurrent use: a task owns it and calls it from
// one goroutine. Predict and Learn do not allocate in steady state.
type Learner interface {
	// Spec returns the spec the learner was built (or decoded) with, defaults
	// applied.
	Spec() Spec
	// Task returns what the learner predicts.
	Task() Task
	// Predict scores x without changing the model.
	//   Binary: score = P(y=1), class = 1 if score >= 0.5.
	//   Regression: score = the predicted value, class = 0.
	//   Multiclass: probs (if not nil, it must have len >= Classes) receives
	//     the class probabilities; class = argmax, score = its probability.
	//   Anomaly: kmeans: score = Euclidean distance to the nearest centroid,
	//     class = that centroid; (0, -1) before the first example.
	//     half_space_trees: score in [0, 1] (higher: more anomalous), class 0;
	//     (0, -1) during the first window.
	Predict(x Vector, probs []float64) (score float64, class int)
	// Learn updates the model with one labelled example: y is 0 or 1 (binary;
	// values in between are soft labels), the target (regression), or the
	// class index (multiclass); it is ignored by anomaly learners. An example
	// whose label is NaN, infinite or not a valid class is ignored and not
	// counted, so a bad label cannot corrupt the state.
	Learn(x Vector, y float64)
	// Updates returns the number of examples learned.
	Updates() int64
	// AppendState appends a versioned encoding of the complete state (spec
	// included) to dst. The same history gives the same bytes.
	AppendState(dst []byte) []byte
	// DecodeState replaces the state with b, which must come from
	// AppendState of the same kind of learner. On error the learner is left
	// unchanged. It never panics, and it keeps no reference to b.
	DecodeState(b []byte) error
	// Merge sets the receiver to the weighted combination of replicas (the
	// receiver may be one of them); see each kind for what is averaged. All
	// replicas must be the receiver's kind with the same shape (Dim, Classes,
	// K); weights must be finite, >= 0, and not all 0.
	Merge(replicas []Learner, weights []float64) error
	// Reset forgets everything learned; the spec stays.
	Reset()
}

// WeightedLearner is implemented by learners that can learn an example with a weight: as if it
// were w examples (the loss's gradient scaled by w), what class weights for imbalanced classes
// need. A weight of 1 is Learn, bit for bit; a weight that is not finite and > 0 is ignored like
// a bad label. Like Learn, it does not allocate in steady state.
type WeightedLearner interface {
	LearnWeighted(x Vector, y, w float64)
}

var (
	// ErrInvalidSpec is wrapped by every error of Spec.Validate.
	ErrInvalidSpec = errors.New("online: invalid spec")
	// ErrIncompatible is wrapped when Merge gets replicas of another kind or
	// shape, or bad weights.
	ErrIncompatible = errors.New("online: incompatible merge")
	// ErrCorrupt is wrapped by every DecodeState error.
	ErrCorrupt = wire.ErrCorrupt
)

// New returns an empty learner for spec, after applying defaults.
func New(spec Spec) (Learner, error) {
	if spec == nil {
		return nil, fmt.Errorf("%w: no spec", ErrInvalidSpec)
	}
	spec = spec.WithDefaults()
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	return spec.newLearner(), nil
}

// Decode builds a learner from AppendState bytes of any kind: what a task
// calls when it restores a model from its changelog.
func Decode(b []byte) (Learner, error) {
	if len(b) < 3 {
		return nil, fmt.Errorf("%w: %d bytes", ErrCorrupt, len(b))
	}
	// Every learner's encoding starts with its header and then its spec.
	r := wire.NewReader(b[2:])
	spec := readSpec(r)
	if r.Err() != nil {
		return nil, r.Err()
	}
	l, err := New(spec)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if err := l.DecodeState(b); err != nil {
		return nil, err
	}
	return l, nil
}

// mergeWeights checks replicas and weights and returns weights normalized to
// sum to 1.
func mergeWeights[T Learner](self T, replicas []Learner, weights []float64, same func(a, b T) bool) ([]T, []float64, error) {
	if len(replicas) == 0 || len(replicas) != len(weights) {
		return nil, nil, fmt.Errorf("%w: %d replicas, %d weights", ErrIncompatible, len(replicas), len(weights))
	}
	rs := make([]T, len(replicas))
	sum := 0.0
	for i, r := range replicas {
		t, ok := r.(T)
		if !ok {
			return nil, nil, fmt.Errorf("%w: replica %d is a %T, not a %T", ErrIncompatible, i, r, self)
		}
		if !same(self, t) {
			return nil, nil, fmt.Errorf("%w: replica %d has spec %+v, receiver %+v", ErrIncompatible, i, t.Spec(), self.Spec())
		}
		w := weights[i]
		if math.IsNaN(w) || math.IsInf(w, 0) || w < 0 {
			return nil, nil, fmt.Errorf("%w: weight %d is %v", ErrIncompatible, i, w)
		}
		rs[i] = t
		sum += w
	}
	if sum <= 0 {
		return nil, nil, fmt.Errorf("%w: weights sum to %v", ErrIncompatible, sum)
	}
	a := make([]float64, len(weights))
	for i, w := range weights {
		a[i] = w / sum
	}
	return rs, a, nil
}

// maxUpdates is what Updates becomes after a merge: replicas share the
// history before the last merge, so summing would count it several times, and
// the learner cannot tell shared from own examples. The largest count never
// overstates what any replica saw.
func maxUpdates[T Learner](rs []T) int64 {
	var m int64
	for _, r := range rs {
		m = max(m, r.Updates())
	}
	return m
}

func sigmoid(m float64) float64 {
	// Clamped so that exp never overflows and P stays strictly inside (0, 1).
	if m > 35 {
		m = 35
	} else if m < -35 {
		m = -35
	}
	return 1 / (1 + math.Exp(-m))
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// validBinaryLabel clamps a soft label into [0, 1] and refuses NaN and ±Inf.
func validBinaryLabel(y float64) (float64, bool) {
	if !finite(y) {
		return 0, false
	}
	return min(max(y, 0), 1), true
}
