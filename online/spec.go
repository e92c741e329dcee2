package online

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/streamd/streamd/online/internal/wire"
)

// Spec is a learner's configuration: one struct per kind (FTRLSpec, LinearSpec, SoftmaxSpec,
// KMeansSpec, TreeSpec), with the YAML tags of its keys. The zero value of a field means its
// default (WithDefaults). A spec is a plain value: copying it copies the configuration.
//
// Only this package implements Spec: adding a learner is one file declaring its spec, its learner
// and its kindInfo, plus its line in kinds (registry.go).
type Spec interface {
	// Kind returns the kind's name (never an alias).
	Kind() string
	// WithDefaults returns the spec with its zero fields set to their defaults. It is idempotent.
	WithDefaults() Spec
	// Validate reports every field out of bounds, each naming the field's key, its value and the
	// bound; the errors wrap ErrInvalidSpec. Call it after WithDefaults: zero values are checked as
	// they are.
	Validate() error
	// Task returns what a learner of this spec predicts.
	Task() Task
	// InputDim returns the size of the feature space the learner reads (Dim).
	InputDim() int
	// WithInputDim returns the spec with its feature space size set to dim.
	WithInputDim(dim int) Spec

	// newLearner returns an empty learner of a validated spec.
	newLearner() Learner
	// appendParams appends the spec's encoding after its kind code (see appendSpec).
	appendParams(dst []byte) []byte
}

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

// NewSpec returns the empty spec (every field its default) of a kind, given by name or alias:
// what a config decoder fills with the learner block's other keys. An unknown kind is an error
// wrapping ErrInvalidSpec that lists the kinds.
func NewSpec(kind string) (Spec, error) {
	if k := lookupKind(kind); k != nil {
		return k.zero(), nil
	}
	var names []string
	for _, k := range kinds {
		n := fmt.Sprintf("%q", k.name)
		for _, a := range k.aliases {
			n += fmt.Sprintf(" (%q)", a)
		}
		names = append(names, n)
	}
	return nil, fmt.Errorf("%w: kind = %q, want one of %s", ErrInvalidSpec, kind, strings.Join(names, ", "))
}

// specCheck collects the problems of one spec for Validate.
type specCheck struct{ errs []error }

func (c *specCheck) bad(field string, v any, want string) {
	c.errs = append(c.errs, &SpecError{Field: field, Value: fmt.Sprint(v), Want: want})
}

// SpecError is one bad field of a learner spec; it wraps ErrInvalidSpec. The config names the
// field by its key.
type SpecError struct {
	Field, Value, Want string
}

func (e *SpecError) Error() string {
	return fmt.Sprintf("%v: %s = %s, want %s", ErrInvalidSpec, e.Field, e.Value, e.Want)
}
func (e *SpecError) Unwrap() error { return ErrInvalidSpec }

// pos requires a finite v > 0.
func (c *specCheck) pos(field string, v float64) {
	if !(v > 0) || math.IsInf(v, 0) {
		c.bad(field, v, "> 0 and finite")
	}
}

// penalty requires a finite v; a negative penalty means none.
func (c *specCheck) penalty(field string, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		c.bad(field, v, "finite (negative means none)")
	}
}

func (c *specCheck) dim(d int) {
	if d < 1 || d > MaxDim {
		c.bad("dim", d, fmt.Sprintf("in [1, %d]", MaxDim))
	}
}

func (c *specCheck) err() error { return errors.Join(c.errs...) }

func def(f *float64, v float64) {
	if *f == 0 {
		*f = v
	}
}

func defInt(f *int, v int) {
	if *f == 0 {
		*f = v
	}
}

// appendSpec writes the spec that starts every learner's state: its kind's code, then the kind's
// own encoding. It is generic so that a learner's concrete spec is not boxed (an allocation).
func appendSpec[S Spec](dst []byte, s S) []byte {
	code := lookupKind(s.Kind()).code
	if l, ok := any(s).(interface{ layoutCode() uint64 }); ok {
		code = l.layoutCode()
	}
	dst = wire.AppendUvarint(dst, code)
	return s.appendParams(dst)
}

// readSpec reads and validates a spec; defaults are not applied, so a
// decoded learner keeps exactly the spec it was encoded with.
func readSpec(r *wire.Reader) Spec {
	code := r.Uvarint()
	if r.Err() != nil {
		return nil
	}
	var read func(r *wire.Reader) Spec
	for _, k := range kinds {
		if k.code == code {
			read = k.read
		}
		for _, l := range k.layouts {
			if l.code == code {
				read = l.read
			}
		}
	}
	if read == nil {
		r.Fail("spec: kind code %d", code)
		return nil
	}
	s := read(r)
	if r.Err() == nil {
		if err := s.Validate(); err != nil {
			r.Fail("spec: %v", err)
		}
	}
	return s
}

// readSpecOf reads the spec of a learner's own state (name is the learner's, for messages): a
// spec of another kind fails the reader.
func readSpecOf[S Spec](r *wire.Reader, name string) S {
	s := readSpec(r)
	own, ok := s.(S)
	if r.Err() == nil && !ok {
		r.Fail("%s: state of kind %q", name, s.Kind())
	}
	return own
}

// v1Spec is the spec layout of the first five kinds (ftrl_logistic, adagrad_linear, softmax,
// kmeans, hoeffding_tree): one record with the fields of all of them, unused ones 0. Those kinds
// keep writing it so that existing changelogs stay readable; a new kind writes its own fields.
type v1Spec struct {
	Dim, Classes, K, GracePeriod, MaxDepth               int
	Alpha, Beta, L1, L2, LearningRate, Decay, Delta, Tau float64
}

func (s v1Spec) append(dst []byte) []byte {
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

func readV1Spec(r *wire.Reader) v1Spec {
	var s v1Spec
	s.Dim = int(r.Int("spec dim", 1, MaxDim))
	s.Classes = int(r.Int("spec classes", 0, MaxClasses))
	for _, f := range [...]*float64{&s.Alpha, &s.Beta, &s.L1, &s.L2, &s.LearningRate, &s.Decay, &s.Delta, &s.Tau} {
		*f = r.Float()
	}
	s.K = int(r.Int("spec k", 0, MaxK))
	s.GracePeriod = int(r.Int("spec grace_period", 0, math.MaxInt32))
	s.MaxDepth = int(r.Int("spec max_depth", 0, MaxDepth))
	return s
}
