package model

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/streamd/streamd/internal/jsonscan"
	"github.com/streamd/streamd/online"
	"github.com/streamd/streamd/online/preprocess"
	"github.com/streamd/streamd/stream"
)

// Encoding says how a feature enters the model's vector.
type Encoding uint8

const (
	// Numeric: one coordinate holding the (transformed) value.
	Numeric Encoding = iota
	// Hashed: a categorical value hashed (with the feature's name) into Buckets coordinates, the
	// hashing trick: no vocabulary to keep, unseen values welcome, collisions rare and harmless.
	Hashed
	// OneHot: a categorical value from a small closed vocabulary (Values), one coordinate each.
	OneHot
)

// Transform is a numeric transform, applied in order before standardization.
type Transform struct {
	Kind     string // "log1p", "clip", "standardize"
	Min, Max float64
}

// FeatureSpec is one input of the models.
type FeatureSpec struct {
	Name string
	// Field is the source field the feature reads; empty for a window feature.
	Field string
	// Window is the index in stream.Event.Features of a window aggregate; -1 for a field.
	Window     int
	Encoding   Encoding
	Buckets    int      // Hashed: coordinates for this feature
	Values     []string // OneHot: the vocabulary, in index order
	Transforms []Transform
	// Margin names an offline model whose margin (raw score) is this feature (stacking): a number
	// the operator computes per event, before the online learners score. Field and Window are
	// unset.
	Margin string
}

func (f *FeatureSpec) standardized() bool {
	for _, t := range f.Transforms {
		if t.Kind == "standardize" {
			return true
		}
	}
	return false
}

// layout assigns every feature its coordinates: a bias at 0, then one per numeric feature, then
// each one-hot vocabulary, then each hashed feature's buckets. Dim is their total.
type layout struct {
	specs    []FeatureSpec
	fieldIdx []int // source field index per feature (-1: window feature)
	offset   []uint32
	numeric  []int // feature index of each numeric slot
	numSlot  []int // numeric slot of each feature (-1: categorical)
	dim      int
	dense    []int // features in the offline models' dense vector (see offline.go)
}

var nan = math.NaN()

var errFeature = errors.New("model: bad feature")

func newLayout(specs []FeatureSpec, format stream.Format) (*layout, error) {
	l := &layout{specs: specs, dim: 1}
	var errs []error
	for i := range specs {
		f := &specs[i]
		fi := -1
		if f.Margin != "" {
			if f.Field != "" || f.Window >= 0 || f.Encoding != Numeric {
				errs = append(errs, fmt.Errorf("%w: %s is the margin of %s: a number, with neither a field nor a window", errFeature, f.Name, f.Margin))
			}
		} else if f.Field != "" {
			idx, ok := format.FieldIndex(f.Field)
			if !ok {
				errs = append(errs, fmt.Errorf("%w: %s reads field %q, which the source does not declare", errFeature, f.Name, f.Field))
			}
			fi = idx
		} else if f.Window < 0 {
			errs = append(errs, fmt.Errorf("%w: %s has neither a field nor a window", errFeature, f.Name))
		}
		l.fieldIdx = append(l.fieldIdx, fi)
		l.offset = append(l.offset, uint32(l.dim))
		l.numSlot = append(l.numSlot, -1)
		if f.Margin == "" && f.Encoding != Hashed {
			l.dense = append(l.dense, i)
		}
		switch f.Encoding {
		case Numeric:
			l.numSlot[i] = len(l.numeric)
			l.numeric = append(l.numeric, i)
			l.dim++
		case OneHot:
			if len(f.Values) == 0 {
				errs = append(errs, fmt.Errorf("%w: %s is one-hot without values", errFeature, f.Name))
			}
			l.dim += len(f.Values)
		case Hashed:
			if f.Buckets < 1 || f.Buckets > 1<<22 {
				errs = append(errs, fmt.Errorf("%w: %s has %d buckets; use 1 to 4194304", errFeature, f.Name, f.Buckets))
			}
			l.dim += f.Buckets
		}
	}
	return l, errors.Join(errs...)
}

// raw is an event's features before transforms: a value per numeric slot (NaN when missing) and a
// coordinate (or -1) per categorical feature, plus the categorical values for the prediction record.
// It is what pending predictions and the learning log keep, so that learning later sees exactly
// what scoring saw.
type raw struct {
	nums []float64
	cats []int64
}

func (l *layout) newRaw() raw {
	return raw{nums: make([]float64, len(l.numeric)), cats: make([]int64, len(l.specs))}
}

// extract reads an event's features. buf is scratch space, returned for reuse.
func (l *layout) extract(ev *stream.Event, r *raw, buf []byte) []byte {
	for i := range l.specs {
		f := &l.specs[i]
		r.cats[i] = -1
		switch f.Encoding {
		case Numeric:
			v := nan
			switch fi := l.fieldIdx[i]; {
			case f.Margin != "":
				// Its value comes later, from its model (processor.predict).
			case fi >= 0:
				if x, ok := ev.Number(fi); ok {
					v = x
				} else if fb := &ev.Fields[fi]; fb.Kind == stream.Bool {
					v = 0
					if fb.Bool {
						v = 1
					}
				}
			case f.Window >= 0 && f.Window < len(ev.Features):
				v = ev.Features[f.Window]
			}
			r.nums[l.numSlot[i]] = v
		case OneHot:
			if s, ok := ev.String(l.fieldIdx[i]); ok {
				for j, val := range f.Values {
					if val == string(s) {
						r.cats[i] = int64(l.offset[i]) + int64(j)
						break
					}
				}
			}
		case Hashed:
			var b []byte
			if s, ok := ev.String(l.fieldIdx[i]); ok {
				b = s
			} else if x, ok := ev.Number(l.fieldIdx[i]); ok {
				buf = strconv.AppendFloat(buf[:0], x, 'g', -1, 64)
				b = buf
			}
			if b != nil {
				r.cats[i] = int64(l.offset[i]) + int64(preprocess.HashFeature(f.Name, b, f.Buckets))
			}
		}
	}
	return buf
}

// scaler standardizes numeric slots with running means and variances, learned from the examples
// the models learn from — so that scaling is part of the model state, deterministic, and replayed
// with it. A pipeline without numeric features has none (nil).
type scaler = preprocess.Standardizer

func newScaler(n int) *scaler {
	if n == 0 {
		return nil
	}
	s, err := preprocess.NewStandardizer(n)
	if err != nil {
		panic(err) // n is the layout's numeric count, bounded by the config
	}
	return s
}

func learnScaler(s *scaler, nums []float64) {
	if s == nil {
		return
	}
	for i, x := range nums {
		s.Learn(i, x)
	}
}

// vector turns raw features into the models' sparse vector: bias, transformed numbers (missing
// ones imputed with the running mean, i.e. 0 after standardization), and one coordinate per
// present categorical value.
func (l *layout) vector(r *raw, sc *scaler, dst online.Vector) online.Vector {
	dst = append(dst[:0], online.Feature{Index: 0, Value: 1})
	for slot, fi := range l.numeric {
		f := &l.specs[fi]
		x := r.nums[slot]
		if math.IsNaN(x) || math.IsInf(x, 0) {
			if f.standardized() {
				continue // the mean: 0 after standardization
			}
			x = 0
		}
		if x = l.transform(slot, x, sc); x != 0 {
			dst = append(dst, online.Feature{Index: l.offset[fi], Value: x})
		}
	}
	for _, c := range r.cats {
		if c >= 0 {
			dst = append(dst, online.Feature{Index: uint32(c), Value: 1})
		}
	}
	return dst
}

// transform applies the transforms of numeric slot slot to x: the value the models receive.
func (l *layout) transform(slot int, x float64, sc *scaler) float64 {
	for _, t := range l.specs[l.numeric[slot]].Transforms {
		switch t.Kind {
		case "log1p":
			x = preprocess.Log1p(x)
		case "clip":
			x = preprocess.Clip(x, t.Min, t.Max)
		case "standardize":
			// The scaler has learned the values as they are at this point of the chain (see
			// preStandardize).
			x = sc.Transform(slot, x)
		}
	}
	return x
}

// preStandardize applies a numeric feature's transforms that come before standardize: what the
// scaler learns.
func (l *layout) preStandardize(r *raw, out []float64) []float64 {
	out = append(out[:0], r.nums...)
	for slot, fi := range l.numeric {
		x := out[slot]
		if math.IsNaN(x) || math.IsInf(x, 0) {
			continue
		}
		for _, t := range l.specs[fi].Transforms {
			if t.Kind == "standardize" {
				break
			}
			switch t.Kind {
			case "log1p":
				x = preprocess.Log1p(x)
			case "clip":
				x = preprocess.Clip(x, t.Min, t.Max)
			}
		}
		out[slot] = x
	}
	return out
}

// appendJSON writes the features of r as a JSON object, each under its name: for a numeric
// feature the value the model receives: for an online learner (transformed) the value after its
// transforms (log1p, clip, standardize with the scaler sc as it is now), for an offline model the
// raw value, which is what it reads (fillDense); or null when the value is missing or not finite (the models then
// receive the imputed mean: 0 in standard units, or the transforms of 0 without standardize;
// appendOverflow tells overflows apart); for a categorical one the event's own value, since the
// coordinate it becomes (a one-hot slot, a hash bucket) would mean nothing to a reader.
func (l *layout) appendJSON(dst []byte, r *raw, sc *scaler, transformed bool, ev *stream.Event) []byte {
	dst = append(dst, '{')
	for i := range l.specs {
		f := &l.specs[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = jsonscan.AppendString(dst, []byte(f.Name))
		dst = append(dst, ':')
		switch f.Encoding {
		case Numeric:
			slot := l.numSlot[i]
			x := r.nums[slot]
			if transformed && !math.IsNaN(x) && !math.IsInf(x, 0) {
				x = l.transform(slot, x, sc)
			}
			dst = appendFloat(dst, x)
		default:
			if s, ok := ev.String(l.fieldIdx[i]); ok {
				dst = jsonscan.AppendString(dst, s)
			} else if x, ok := ev.Number(l.fieldIdx[i]); ok {
				dst = strconv.AppendFloat(dst, x, 'g', -1, 64)
			} else {
				dst = append(dst, "null"...)
			}
		}
	}
	return append(dst, '}')
}

// appendOverflow writes `,"overflow":[names]` for the numeric features of r that overflowed a
// float64 (a window sum past ±1.8e308): appendJSON writes them as null, like missing ones, and the
// list tells the two apart. It writes nothing when every feature is finite or missing.
func (l *layout) appendOverflow(dst []byte, r *raw) []byte {
	first := true
	for i := range l.specs {
		if l.specs[i].Encoding != Numeric || !math.IsInf(r.nums[l.numSlot[i]], 0) {
			continue
		}
		if first {
			dst = append(dst, `,"overflow":[`...)
			first = false
		} else {
			dst = append(dst, ',')
		}
		dst = jsonscan.AppendString(dst, []byte(l.specs[i].Name))
	}
	if !first {
		dst = append(dst, ']')
	}
	return dst
}

// encodeRaw and decodeRaw carry raw features through pending predictions and the learning log.
func (r *raw) encode(dst []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(r.nums)))
	for _, x := range r.nums {
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(x))
	}
	dst = binary.AppendUvarint(dst, uint64(len(r.cats)))
	for _, c := range r.cats {
		dst = binary.AppendVarint(dst, c)
	}
	return dst
}

func (r *raw) decode(b []byte) ([]byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n != uint64(len(r.nums)) || len(b)-k < int(n)*8 {
		return nil, errCorrupt
	}
	b = b[k:]
	for i := range r.nums {
		r.nums[i] = math.Float64frombits(binary.LittleEndian.Uint64(b))
		b = b[8:]
	}
	n, k = binary.Uvarint(b)
	if k <= 0 || n != uint64(len(r.cats)) {
		return nil, errCorrupt
	}
	b = b[k:]
	for i := range r.cats {
		c, k := binary.Varint(b)
		if k <= 0 {
			return nil, errCorrupt
		}
		r.cats[i] = c
		b = b[k:]
	}
	return b, nil
}

var errCorrupt = errors.New("model: corrupt state")

// ViewFeatures implements stream.FeatureView: with an event, its features as its prediction would
// show them now (the champion's inputs: after the transforms, with the task's scaler as it is,
// for an online champion); without one, the values as they are (the key's window aggregates).
func (p *processor) ViewFeatures(_ *stream.Task, ev *stream.Event, withEvent bool) (json.RawMessage, error) {
	l := p.op.layout
	r := l.newRaw()
	l.extract(ev, &r, nil)
	return l.appendJSON(nil, &r, p.m.scaler, withEvent && p.op.catalogs[p.m.champion] == nil, ev), nil
}
