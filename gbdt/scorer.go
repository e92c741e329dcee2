package gbdt

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
)

// MissingFeaturesError is Bind's error when the pipeline does not compute every feature the
// model needs. Missing lists them all, in model order.
type MissingFeaturesError struct {
	Missing []string
}

func (e *MissingFeaturesError) Error() string {
	return fmt.Sprintf("gbdt: the model needs %d feature(s) the pipeline does not compute: %s",
		len(e.Missing), strings.Join(e.Missing, ", "))
}

// Scorer scores one feature vector at a time, allocation-free. It holds scratch memory, so it is
// for one goroutine: Bind one Scorer per task (the Model behind it is shared).
type Scorer struct {
	m *Model
	// pos[j] is the index in the pipeline's vector of model feature j.
	pos   []int
	width int // length of the pipeline's vector
	fv32  []float32
	acc32 []float32
	fv64  []float64
	acc64 []float64
	sh32  shapScratch[float32]
	sh64  shapScratch[float64]
	// contributions in the forest's float type, before widening
	c32 []float32
	c64 []float64
}

// Bind maps the model's features, by name, onto the positions of the pipeline's feature vector
// (names, in vector order) and returns a Scorer that reads vectors of that layout. The pipeline
// may compute more features than the model uses; every one the model uses must be there, else
// Bind returns a *MissingFeaturesError naming each missing one. A name the pipeline lists twice
// is an error, since either position could be meant.
func (m *Model) Bind(names []string) (*Scorer, error) {
	at := make(map[string]int, len(names))
	var dups []string
	for i, n := range names {
		if _, ok := at[n]; ok {
			dups = append(dups, n)
			continue
		}
		at[n] = i
	}
	s := &Scorer{m: m, pos: make([]int, len(m.features)), width: len(names)}
	var missing []string
	for j, f := range m.features {
		i, ok := at[f.Name]
		if !ok {
			missing = append(missing, f.Name)
			continue
		}
		if slices.Contains(dups, f.Name) {
			return nil, fmt.Errorf("gbdt: the pipeline's feature vector names %q more than once", f.Name)
		}
		s.pos[j] = i
	}
	if len(missing) > 0 {
		return nil, &MissingFeaturesError{Missing: missing}
	}
	nf := len(m.features)
	if m.f32 != nil {
		s.fv32, s.acc32 = make([]float32, nf), make([]float32, m.outputs)
	} else {
		s.fv64, s.acc64 = make([]float64, nf), make([]float64, m.outputs)
	}
	return s, nil
}

// Model returns the model the Scorer scores with.
func (s *Scorer) Model() *Model { return s.m }

func (s *Scorer) check(x, out []float64, want int, what string) {
	if len(x) != s.width {
		panic(fmt.Sprintf("gbdt: feature vector of length %d, the Scorer was bound to %d names", len(x), s.width))
	}
	if len(out) != want {
		panic(fmt.Sprintf("gbdt: %s output of length %d, want %d", what, len(out), want))
	}
}

// gather copies the model's features out of the pipeline's vector, in the forest's float type:
// XGBoost reads every value as a float32 (its DMatrix stores float32), LightGBM drops values
// within its zero threshold of 0 before it predicts. In a simple forest +Inf is read as the
// largest float, which no finite threshold tells apart from it. It reports whether a value is
// missing.
func (s *Scorer) gather(x []float64) (hasNaN bool) {
	if s.fv32 != nil {
		clamp := s.m.f32.simple
		for j, p := range s.pos {
			v := float32(x[p])
			hasNaN = hasNaN || v != v
			if clamp && v > math.MaxFloat32 {
				v = math.MaxFloat32
			}
			s.fv32[j] = v
		}
		return hasNaN
	}
	zt, clamp := s.m.f64.zeroThreshold, s.m.f64.simple
	for j, p := range s.pos {
		v := x[p]
		hasNaN = hasNaN || v != v
		if v >= -zt && v <= zt {
			v = 0
		}
		if clamp && v > math.MaxFloat64 {
			v = math.MaxFloat64
		}
		s.fv64[j] = v
	}
	return hasNaN
}

// Margin writes the model's raw scores for x into out (len Outputs()): the sum of the trees'
// leaves and the base score, before the sigmoid or softmax. x is the pipeline's vector in the
// layout given to Bind, with NaN for a missing value. It panics if a length is wrong.
func (s *Scorer) Margin(x []float64, out []float64) {
	s.check(x, out, s.m.outputs, "margin")
	nan := s.gather(x)
	if s.fv32 != nil {
		s.m.f32.margins(s.fv32, s.acc32, nan)
		for k, v := range s.acc32 {
			out[k] = float64(v)
		}
		return
	}
	s.m.f64.margins(s.fv64, out, nan)
}

// Predict writes the model's prediction for x into out (len Outputs()): the probability of the
// positive class (Binary), the value (Regression), or the class probabilities (Multiclass),
// computed as the library computes them (XGBoost in float32, LightGBM in float64). x is as for
// Margin. It allocates nothing, and panics if a length is wrong.
func (s *Scorer) Predict(x []float64, out []float64) {
	s.check(x, out, s.m.outputs, "prediction")
	nan := s.gather(x)
	if s.fv32 != nil {
		s.m.f32.margins(s.fv32, s.acc32, nan)
		xgbTransform(s.m.task, s.acc32)
		for k, v := range s.acc32 {
			out[k] = float64(v)
		}
		return
	}
	s.m.f64.margins(s.fv64, out, nan)
	lgbTransform(s.m.task, s.m.sigmoid, out)
}

// xgbTransform is XGBoost's PredTransform in float32: common::Sigmoid and common::Softmax.
func xgbTransform(task Task, v []float32) {
	switch task {
	case Binary:
		v[0] = sigmoid32(v[0])
	case Multiclass:
		wmax := v[0]
		for _, x := range v[1:] {
			wmax = max(x, wmax)
		}
		var wsum float64 // XGBoost sums the float32 exponentials in a double
		for k, x := range v {
			v[k] = exp32(x - wmax)
			wsum += float64(v[k])
		}
		for k := range v {
			v[k] /= float32(wsum)
		}
	}
}

func sigmoid32(x float32) float32 {
	const eps = float32(1e-16) // XGBoost's kEps
	x = min(-x, 88.7)
	denom := exp32(x) + 1
	denom += eps
	return 1 / denom
}

// exp32 is expf: the float64 exponential rounded to float32 is the correctly rounded expf, which
// glibc's expf also returns.
func exp32(x float32) float32 { return float32(math.Exp(float64(x))) }

// lgbTransform is LightGBM's ConvertOutput in float64.
func lgbTransform(task Task, sigmoid float64, v []float64) {
	switch task {
	case Binary:
		v[0] = 1 / (1 + math.Exp(-sigmoid*v[0]))
	case Multiclass:
		wmax := v[0]
		for _, x := range v[1:] {
			wmax = max(x, wmax)
		}
		var wsum float64
		for k, x := range v {
			v[k] = math.Exp(x - wmax)
			wsum += v[k]
		}
		for k := range v {
			v[k] /= wsum
		}
	}
}

// ContributionsLen is the length of Contributions' output: for each output, one value per model
// feature and the bias.
func (m *Model) ContributionsLen() int { return m.outputs * (len(m.features) + 1) }

// Contributions writes the TreeSHAP feature contributions of x into out (len ContributionsLen()):
// for output k, out[k*(NumFeatures()+1)+j] is model feature j's contribution to the margin and
// out[k*(NumFeatures()+1)+NumFeatures()] the bias, the expected margin; each output's values sum
// to its Margin. These are the values of XGBoost's pred_contribs and LightGBM's pred_contrib
// (path-dependent TreeSHAP), in margin space. The first call sizes the scratch memory; later calls
// allocate nothing. Cost: O(trees × leaves × depth²), far more than Predict; compute them when
// an explanation is asked for.
func (s *Scorer) Contributions(x []float64, out []float64) {
	s.check(x, out, s.m.ContributionsLen(), "contributions")
	s.gather(x)
	if s.fv32 != nil {
		if s.c32 == nil {
			s.sh32 = newShapScratch(s.m.f32)
			s.c32 = make([]float32, len(out))
		}
		s.m.f32.contributions(s.fv32, s.c32, &s.sh32, true)
		for i, v := range s.c32 {
			out[i] = float64(v)
		}
		return
	}
	if s.sh64.path == nil {
		s.sh64 = newShapScratch(s.m.f64)
	}
	s.m.f64.contributions(s.fv64, out, &s.sh64, false)
}

// Contribution is one feature's share of a prediction.
type Contribution struct {
	Feature int    // model feature index
	Name    string // model feature name
	Value   float64
}

// TopK appends to dst[:0] the k features of output `output` with the largest absolute
// contributions in contribs (as Contributions writes them), largest first, ties by feature
// index, and returns it. The bias is not a feature and is never listed. With cap(dst) >= k it
// allocates nothing. It panics if contribs is not ContributionsLen() long or output is not an
// output of the model.
func (m *Model) TopK(contribs []float64, output, k int, dst []Contribution) []Contribution {
	nf := len(m.features)
	if len(contribs) != m.ContributionsLen() || output < 0 || output >= m.outputs {
		panic(fmt.Sprintf("gbdt: TopK of %d contributions, output %d: the model has %d outputs of %d", len(contribs), output, m.outputs, nf+1))
	}
	row := contribs[output*(nf+1):][:nf]
	dst = dst[:0]
	k = min(k, nf)
	if k <= 0 {
		return dst
	}
	better := func(a, b Contribution) int {
		if c := cmp.Compare(math.Abs(b.Value), math.Abs(a.Value)); c != 0 {
			return c
		}
		return cmp.Compare(a.Feature, b.Feature)
	}
	// Insertion into a sorted top list of at most k: k is small (a handful of features).
	for j, v := range row {
		c := Contribution{Feature: j, Name: m.features[j].Name, Value: v}
		if len(dst) == k && better(c, dst[k-1]) >= 0 {
			continue
		}
		if len(dst) < k {
			dst = append(dst, c)
		} else {
			dst[k-1] = c
		}
		for i := len(dst) - 1; i > 0 && better(dst[i], dst[i-1]) < 0; i-- {
			dst[i], dst[i-1] = dst[i-1], dst[i]
		}
	}
	return dst
}
