package preprocess

import (
	"errors"
	"fmt"
	"math"

	"github.com/streamd/streamd/online"
	"github.com/streamd/streamd/online/internal/wire"
)

// MaxInputs bounds the number of numeric inputs of a Standardizer or an
// Imputer.
const MaxInputs = 1 << 20

var (
	// ErrCorrupt is wrapped by every DecodeState error.
	ErrCorrupt = wire.ErrCorrupt
	// ErrInputs is returned for a number of inputs out of [1, MaxInputs].
	ErrInputs = errors.New("preprocess: number of inputs out of range")
)

// Log1p returns sign(x)·log(1+|x|): it compresses heavy tails like log1p
// and, unlike it, is defined (and odd) for negative values, so a refund does
// not become NaN.
func Log1p(x float64) float64 {
	if x < 0 {
		return -math.Log1p(-x)
	}
	return math.Log1p(x)
}

// Clip returns x limited to [lo, hi]; NaN stays NaN so that imputation can
// still see it is missing.
func Clip(x, lo, hi float64) float64 {
	if x < lo {
		return lo
	}
	if x > hi {
		return hi
	}
	return x
}

// welford is one input's running count, mean and sum of squared deviations.
type welford struct{ n, mean, m2 float64 }

func (w *welford) add(x float64) {
	w.n++
	d := x - w.mean
	w.mean += d / w.n
	w.m2 += d * (x - w.mean)
}

func checkInputs(n int) error {
	if n < 1 || n > MaxInputs {
		return fmt.Errorf("%w: %d, want in [1, %d]", ErrInputs, n, MaxInputs)
	}
	return nil
}

// Standardizer keeps a running mean and variance per numeric input
// (Welford's algorithm, numerically stable in one pass) and maps x to
// (x-mean)/std, the population standard deviation, as River's StandardScaler.
type Standardizer struct {
	s []welford
}

// MinStd is the standard deviation below which an input is treated as
// constant and transformed to 0: dividing by a near-zero deviation would turn
// rounding noise into huge features.
const MinStd = 1e-12

// NewStandardizer returns a standardizer of n inputs, indexed 0..n-1.
func NewStandardizer(n int) (*Standardizer, error) {
	if err := checkInputs(n); err != nil {
		return nil, err
	}
	return &Standardizer{s: make([]welford, n)}, nil
}

// Inputs returns the number of inputs.
func (s *Standardizer) Inputs() int { return len(s.s) }

// Learn adds x to input i's statistics. Non-finite values and inputs out of
// range are ignored.
func (s *Standardizer) Learn(i int, x float64) {
	if uint(i) >= uint(len(s.s)) || math.IsNaN(x) || math.IsInf(x, 0) {
		return
	}
	s.s[i].add(x)
}

// Transform returns x standardized by input i's statistics (0 while its
// deviation is below MinStd, and for an input out of range).
func (s *Standardizer) Transform(i int, x float64) float64 {
	if uint(i) >= uint(len(s.s)) {
		return 0
	}
	w := s.s[i]
	if w.n == 0 {
		return 0
	}
	std := math.Sqrt(w.m2 / w.n)
	if !(std >= MinStd) {
		return 0
	}
	return (x - w.mean) / std
}

// Mean and Std return input i's running statistics.
func (s *Standardizer) Mean(i int) float64 { return s.s[i].mean }
func (s *Standardizer) Std(i int) float64 {
	if s.s[i].n == 0 {
		return 0
	}
	return math.Sqrt(s.s[i].m2 / s.s[i].n)
}

// LearnVector learns every feature of x whose Index < Inputs(); features
// absent from x are not counted (they are missing, not zero: impute first).
func (s *Standardizer) LearnVector(x online.Vector) {
	for _, f := range x {
		s.Learn(int(f.Index), f.Value)
	}
}

// TransformVector standardizes in place the features of x whose
// Index < Inputs().
func (s *Standardizer) TransformVector(x online.Vector) {
	for k, f := range x {
		if int(f.Index) < len(s.s) {
			x[k].Value = s.Transform(int(f.Index), f.Value)
		}
	}
}

// Merge sets s to the statistics of all of parts' inputs together, exactly (Chan et al.'s parallel
// combination of counts, means and squared deviations): what merging model replicas needs. Every part
// must have s's number of inputs.
func (s *Standardizer) Merge(parts []*Standardizer) error {
	for _, p := range parts {
		if len(p.s) != len(s.s) {
			return fmt.Errorf("%w: merging %d inputs into %d", ErrInputs, len(p.s), len(s.s))
		}
	}
	for i := range s.s {
		var w welford
		for _, p := range parts {
			q := p.s[i]
			if q.n == 0 {
				continue
			}
			d := q.mean - w.mean
			n := w.n + q.n
			w.mean += d * q.n / n
			w.m2 += q.m2 + d*d*w.n*q.n/n
			w.n = n
		}
		s.s[i] = w
	}
	return nil
}

func (s *Standardizer) Reset() { clear(s.s) }

func (s *Standardizer) AppendState(dst []byte) []byte {
	dst = wire.AppendHeader(dst, 's', 1)
	dst = wire.AppendUvarint(dst, uint64(len(s.s)))
	for _, w := range s.s {
		dst = wire.AppendFloat(dst, w.n)
		dst = wire.AppendFloat(dst, w.mean)
		dst = wire.AppendFloat(dst, w.m2)
	}
	return dst
}

func (s *Standardizer) DecodeState(b []byte) error {
	r := wire.NewReader(b)
	if v := r.Header('s', "standardizer"); r.Err() == nil && v != 1 {
		r.Fail("standardizer: version %d", v)
	}
	n := r.Count("inputs", MaxInputs, 24)
	if r.Err() == nil && n == 0 {
		r.Fail("standardizer: no inputs")
	}
	if r.Err() != nil {
		return r.Err()
	}
	ws := make([]welford, n)
	for i := range ws {
		ws[i] = welford{r.NonNeg("n"), r.Finite("mean"), r.NonNeg("m2")}
	}
	if err := r.End("standardizer"); err != nil {
		return err
	}
	s.s = ws
	return nil
}

// ImputeMode chooses what replaces a missing value.
type ImputeMode uint8

const (
	// ImputeMean fills in the running mean of the values seen.
	ImputeMean ImputeMode = iota
	// ImputeConstant fills in a fixed value.
	ImputeConstant
)

// Imputer replaces missing numeric values (NaN by convention: the decoder
// maps an absent or null field to NaN) per input.
type Imputer struct {
	mode     ImputeMode
	constant float64
	s        []welford
}

// NewImputer returns an imputer of n inputs. With ImputeMean, an input
// with no value seen yet imputes constant.
func NewImputer(n int, mode ImputeMode, constant float64) (*Imputer, error) {
	if err := checkInputs(n); err != nil {
		return nil, err
	}
	if mode > ImputeConstant {
		return nil, fmt.Errorf("preprocess: impute mode %d", mode)
	}
	if math.IsNaN(constant) || math.IsInf(constant, 0) {
		return nil, fmt.Errorf("preprocess: impute constant %v, want finite", constant)
	}
	return &Imputer{mode: mode, constant: constant, s: make([]welford, n)}, nil
}

// Learn records a present value of input i (non-finite values are missing
// and ignored).
func (m *Imputer) Learn(i int, x float64) {
	if uint(i) >= uint(len(m.s)) || math.IsNaN(x) || math.IsInf(x, 0) {
		return
	}
	m.s[i].add(x)
}

// Value returns what a missing value of input i becomes.
func (m *Imputer) Value(i int) float64 {
	if m.mode == ImputeConstant || uint(i) >= uint(len(m.s)) || m.s[i].n == 0 {
		return m.constant
	}
	return m.s[i].mean
}

// Transform returns x, or Value(i) if x is missing (NaN or ±Inf).
func (m *Imputer) Transform(i int, x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return m.Value(i)
	}
	return x
}

func (m *Imputer) Reset() { clear(m.s) }

func (m *Imputer) AppendState(dst []byte) []byte {
	dst = wire.AppendHeader(dst, 'i', 1)
	dst = append(dst, byte(m.mode))
	dst = wire.AppendFloat(dst, m.constant)
	dst = wire.AppendUvarint(dst, uint64(len(m.s)))
	for _, w := range m.s {
		dst = wire.AppendFloat(dst, w.n)
		dst = wire.AppendFloat(dst, w.mean)
		dst = wire.AppendFloat(dst, w.m2)
	}
	return dst
}

func (m *Imputer) DecodeState(b []byte) error {
	r := wire.NewReader(b)
	if v := r.Header('i', "imputer"); r.Err() == nil && v != 1 {
		r.Fail("imputer: version %d", v)
	}
	var mode ImputeMode
	if raw := r.Raw(1); raw != nil {
		mode = ImputeMode(raw[0])
		if mode > ImputeConstant {
			r.Fail("imputer: mode %d", mode)
		}
	}
	c := r.Finite("constant")
	n := r.Count("inputs", MaxInputs, 24)
	if r.Err() == nil && n == 0 {
		r.Fail("imputer: no inputs")
	}
	if r.Err() != nil {
		return r.Err()
	}
	ws := make([]welford, n)
	for i := range ws {
		ws[i] = welford{r.NonNeg("n"), r.Finite("mean"), r.NonNeg("m2")}
	}
	if err := r.End("imputer"); err != nil {
		return err
	}
	m.mode, m.constant, m.s = mode, c, ws
	return nil
}
