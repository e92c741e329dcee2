package jsonscan

import (
	"errors"
	"strconv"
	"unsafe"
)

// Kind is the JSON type of an extracted value.
type Kind uint8

const (
	Missing Kind = iota // the field is not in the object (the zero Value)
	Null                // null
	Number              // a number; Raw is its text
	String              // a string; Raw is its decoded contents
	Bool                // true or false; see Value.Bool
	Object              // an object; Raw is its text
	Array               // an array; Raw is its text
)

var kindNames = [...]string{
	Missing: "missing",
	Null:    "null",
	Number:  "number",
	String:  "string",
	Bool:    "bool",
	Object:  "object",
	Array:   "array",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Value is one extracted field.
type Value struct {
	Kind Kind
	// Raw: for String, the decoded (unescaped) contents without quotes; it aliases the input when the
	// string has no escapes, otherwise the Scanner's scratch buffer. Bytes that are not valid UTF-8 are
	// passed through unchanged (see the package documentation). For Number, Bool, Null, Object and
	// Array, the raw JSON text of the value. Valid until the next Scan on the same Scanner (and as long
	// as the input is unchanged). nil for Missing.
	Raw []byte
	// Bool is the value of a Bool; false for every other Kind.
	Bool bool
	// Num is always 0 from the Scanner, which keeps a number's text in Raw. It is here because this
	// Value is also the wire-independent value of streamd's source formats (stream.Value is this
	// type), where a binary encoding gives a float without text: Raw nil, the float in Num. Sharing
	// the type lets the JSON decoder scan straight into the format's values, with no copy per field.
	Num float64
}

var (
	// ErrNotNumber is returned by Value.Float and Value.Int for a value that is not a JSON number.
	ErrNotNumber = errors.New("jsonscan: value is not a number")
	// ErrNotInteger is returned by Value.Int for a number with a fraction or an exponent.
	ErrNotInteger = errors.New("jsonscan: number is not an integer literal")
)

// Float parses a Number value with strconv.ParseFloat semantics (nearest float64, correctly rounded).
// Any other Kind gives ErrNotNumber. A number too large for a float64 (1e999) gives ±Inf and a
// *strconv.NumError wrapping strconv.ErrRange; one too small rounds to ±0 without error, as in strconv.
func (v Value) Float() (float64, error) {
	// Re-check the JSON grammar: it costs a few nanoseconds and stops a hand-built Value such as
	// {Number, "NaN"} or {Number, "0x1p3"} from being parsed with Go's looser float syntax.
	if v.Kind != Number || len(v.Raw) == 0 {
		return 0, ErrNotNumber
	}
	if end, err := scanNumber(v.Raw, 0); err != nil || end != len(v.Raw) {
		return 0, ErrNotNumber
	}
	// unsafe.String avoids copying Raw into a new string. ParseFloat does not retain its argument
	// (its *NumError clones the text), so the aliasing cannot outlive this call.
	return strconv.ParseFloat(unsafe.String(unsafe.SliceData(v.Raw), len(v.Raw)), 64)
}

// Int parses a Number that is an integer literal (no fraction, no exponent) into an int64. Any other
// Kind gives ErrNotNumber, a fraction or exponent gives ErrNotInteger, and a value outside the int64
// range gives a *strconv.NumError wrapping strconv.ErrRange.
func (v Value) Int() (int64, error) {
	if v.Kind != Number || len(v.Raw) == 0 {
		return 0, ErrNotNumber
	}
	if end, err := scanNumber(v.Raw, 0); err != nil || end != len(v.Raw) {
		return 0, ErrNotNumber
	}
	b := v.Raw
	neg := b[0] == '-'
	if neg {
		b = b[1:]
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, ErrNotInteger
		}
	}
	// Up to 18 digits cannot overflow an int64, which covers every id and epoch timestamp; longer
	// literals go through strconv for its exact range checks.
	if len(b) <= 18 {
		var n int64
		for _, c := range b {
			n = n*10 + int64(c-'0')
		}
		if neg {
			n = -n
		}
		return n, nil
	}
	return strconv.ParseInt(unsafe.String(unsafe.SliceData(v.Raw), len(v.Raw)), 10, 64)
}
