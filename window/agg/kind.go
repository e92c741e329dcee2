package agg

import "fmt"

// Kind is one aggregation function.
type Kind uint8

// The aggregations. The numeric values are not part of the encoding (only the state blocks a layout
// derives from its specs are), but they are kept stable anyway so that logs and configs that print them
// stay meaningful.
const (
	Count    Kind = iota // events in the window (every event, whatever its fields hold)
	Sum                  // sum of the field's finite numbers; 0 for none
	Mean                 // arithmetic mean; undefined for no values
	Min                  // smallest value; undefined for no values
	Max                  // largest value; undefined for no values
	StdDev               // population standard deviation (STDDEV_POP); undefined for no values
	Distinct             // approximate count of distinct values (strings or numbers); exact up to ExactDistinct
	Quantile             // approximate q-quantile (relative accuracy QuantileAccuracy); exact up to ExactQuantileValues
	numKinds
)

var kindNames = [numKinds]string{"count", "sum", "mean", "min", "max", "stddev", "distinct", "quantile"}

// String returns the config name of k ("count", "sum", ...).
func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// ParseKind maps a config name ("count", "sum", "mean", "min", "max", "stddev", "distinct",
// "quantile") to its Kind. Names are case-sensitive, as in the config language.
func ParseKind(s string) (Kind, bool) {
	for k, name := range kindNames {
		if s == name {
			return Kind(k), true
		}
	}
	return 0, false
}

// Spec is one configured aggregation.
type Spec struct {
	Kind  Kind
	Field int     // index of the input field in Acc.Add's []Input; ignored for Count
	Q     float64 // for Quantile: the quantile, in (0,1); ignored otherwise
}

func (s Spec) String() string {
	switch s.Kind {
	case Count:
		return "count"
	case Quantile:
		return fmt.Sprintf("quantile(field %d, q=%g)", s.Field, s.Q)
	}
	return fmt.Sprintf("%v(field %d)", s.Kind, s.Field)
}

// InputKind says what an Input holds.
type InputKind uint8

const (
	Missing InputKind = iota // the field is absent or null: skipped by every aggregation of the field
	Number                   // Num holds the value
	String                   // Str holds the bytes
)

// Input is one field value of one event. Acc.Add reads Spec.Field's element of the event's []Input.
//
// Numbers feed every aggregation; NaN and ±Inf are skipped like Missing (they would poison sums and
// make min, max and quantiles meaningless). Strings feed only Distinct (by their bytes) and are
// skipped by the numeric aggregations. Str is only read during Add, never retained.
type Input struct {
	Kind InputKind
	Num  float64
	Str  []byte
}

// NumInput returns a Number input.
func NumInput(x float64) Input { return Input{Kind: Number, Num: x} }

// StrInput returns a String input. b is read during Add only.
func StrInput(b []byte) Input { return Input{Kind: String, Str: b} }

// finite reports whether x is neither NaN nor ±Inf (x-x is NaN exactly for those), in one subtraction
// and compare instead of two classifications on the hot path.
func finite(x float64) bool { return x-x == 0 }
