package jsonscan

import (
	"errors"
	"strconv"
	"unsafe"
)

// linearMax is the largest schema looked up by a linear scan. Up to about this size, comparing the key
// with each name (lengths first, so most comparisons are a single integer compare) beats hashing the
// key; beyond it a map keeps lookup cost flat.
const linearMax = 8

// Schema maps the wanted top-level field names to slot indexes 0..n-1, in the order the names were
// given. It is immutable after NewSchema and safe to share between goroutines and Scanners.
type Schema struct {
	names []string
	index map[string]int // nil when len(names) <= linearMax
}

// NewSchema returns a schema for the given field names. Names are matched exactly (case-sensitive)
// against keys after their escapes are decoded. It panics on a duplicate name: that is a programming
// error, and silently dropping a slot would leave a field forever Missing.
func NewSchema(names ...string) *Schema {
	s := &Schema{names: append([]string(nil), names...)}
	seen := make(map[string]int, len(names))
	for i, n := range names {
		if j, dup := seen[n]; dup {
			panic("jsonscan: duplicate schema field " + strconv.Quote(n) + " at indexes " +
				strconv.Itoa(j) + " and " + strconv.Itoa(i))
		}
		seen[n] = i
	}
	if len(names) > linearMax {
		s.index = seen
	}
	return s
}

// Len returns the number of fields, the minimum length of the vals slice passed to Scan. A nil
// Schema has no fields (Scan then only validates).
func (s *Schema) Len() int {
	if s == nil {
		return 0
	}
	return len(s.names)
}

// Index returns the slot of a field name.
func (s *Schema) Index(name string) (int, bool) {
	if s == nil {
		return 0, false
	}
	if s.index != nil {
		i, ok := s.index[name]
		return i, ok
	}
	for i, n := range s.names {
		if n == name {
			return i, true
		}
	}
	return 0, false
}

// lookup returns the slot of key, or -1. It must not allocate: string(key) in a comparison or a map
// index is not materialised by the compiler.
func (s *Schema) lookup(key []byte) int {
	if s.index != nil {
		if i, ok := s.index[string(key)]; ok {
			return i
		}
		return -1
	}
	// The string comparison checks lengths before calling memequal. (Adding a first-byte check
	// measured slower: it stops lookup from being inlined.)
	for i, name := range s.names {
		if name == string(key) {
			return i
		}
	}
	return -1
}

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
