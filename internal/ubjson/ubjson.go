package ubjson

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// Limits bound what one ToJSON call may do.
type Limits struct {
	// MaxDepth is the deepest nesting of arrays and objects accepted. Zero means DefaultMaxDepth.
	MaxDepth int
	// MaxOutput is the largest JSON output, in bytes, before ToJSON gives up with ErrTooLarge.
	// Zero means DefaultMaxOutput.
	MaxOutput int
}

const (
	// DefaultMaxDepth is far beyond any model file (XGBoost's nest five levels deep).
	DefaultMaxDepth = 128
	// DefaultMaxOutput is 1 GiB.
	DefaultMaxOutput = 1 << 30
)

var (
	// ErrTooLarge: the JSON output would exceed Limits.MaxOutput.
	ErrTooLarge = errors.New("ubjson: output exceeds the size limit")
	// ErrTooDeep: arrays and objects nest deeper than Limits.MaxDepth.
	ErrTooDeep = errors.New("ubjson: nesting exceeds the depth limit")
)

// SyntaxError is a malformed document: what is wrong, and the input offset where it was found.
type SyntaxError struct {
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("ubjson: %s at offset %d", e.Msg, e.Offset)
}

// ToJSON appends to dst the JSON text of the one UBJSON value that src holds, and returns the
// extended buffer. On error the returned buffer holds a partial output and must not be used.
func ToJSON(dst, src []byte, lim Limits) ([]byte, error) {
	if lim.MaxDepth <= 0 {
		lim.MaxDepth = DefaultMaxDepth
	}
	if lim.MaxOutput <= 0 {
		lim.MaxOutput = DefaultMaxOutput
	}
	d := decoder{src: src, out: dst, maxOut: len(dst) + lim.MaxOutput, maxDepth: lim.MaxDepth}
	marker, err := d.marker()
	if err != nil {
		return d.out, err
	}
	if err := d.value(marker, 0); err != nil {
		return d.out, err
	}
	for d.pos < len(d.src) && d.src[d.pos] == 'N' {
		d.pos++
	}
	if d.pos != len(d.src) {
		return d.out, d.errorf("trailing bytes after the top-level value")
	}
	return d.out, nil
}

type decoder struct {
	src      []byte
	pos      int
	out      []byte
	maxOut   int
	maxDepth int
}

func (d *decoder) errorf(format string, args ...any) error {
	return &SyntaxError{Offset: d.pos, Msg: fmt.Sprintf(format, args...)}
}

// room fails with ErrTooLarge unless n more output bytes fit under the limit.
func (d *decoder) room(n int) error {
	if n > d.maxOut-len(d.out) {
		return ErrTooLarge
	}
	return nil
}

func (d *decoder) write(b ...byte) error {
	if err := d.room(len(b)); err != nil {
		return err
	}
	d.out = append(d.out, b...)
	return nil
}

// marker reads the next type marker, skipping no-ops.
func (d *decoder) marker() (byte, error) {
	for d.pos < len(d.src) {
		m := d.src[d.pos]
		d.pos++
		if m != 'N' {
			return m, nil
		}
	}
	return 0, d.errorf("unexpected end of input")
}

func (d *decoder) take(n int) ([]byte, error) {
	if n > len(d.src)-d.pos {
		return nil, d.errorf("unexpected end of input (%d bytes needed, %d left)", n, len(d.src)-d.pos)
	}
	b := d.src[d.pos : d.pos+n]
	d.pos += n
	return b, nil
}

// payloadSize is the number of input bytes a value of type m takes after its marker, when fixed;
// -1 for variable-size types.
func payloadSize(m byte) int {
	switch m {
	case 'Z', 'T', 'F':
		return 0
	case 'i', 'U', 'C':
		return 1
	case 'I':
		return 2
	case 'l', 'd':
		return 4
	case 'L', 'D':
		return 8
	}
	return -1
}

// integer reads an integer of type m (a length or a count).
func (d *decoder) integer(m byte) (int64, error) {
	switch m {
	case 'i', 'U', 'I', 'l', 'L':
	default:
		return 0, d.errorf("want an integer type for a length or count, have marker %q", m)
	}
	b, err := d.take(payloadSize(m))
	if err != nil {
		return 0, err
	}
	switch m {
	case 'i':
		return int64(int8(b[0])), nil
	case 'U':
		return int64(b[0]), nil
	case 'I':
		return int64(int16(binary.BigEndian.Uint16(b))), nil
	case 'l':
		return int64(int32(binary.BigEndian.Uint32(b))), nil
	default:
		return int64(binary.BigEndian.Uint64(b)), nil
	}
}

// length reads a length or count and checks it is not negative and that its elements, at minSize
// input bytes each, fit in the input left.
func (d *decoder) length(minSize int) (int, error) {
	m, err := d.marker()
	if err != nil {
		return 0, err
	}
	start := d.pos
	n, err := d.integer(m)
	if err != nil {
		return 0, err
	}
	if n < 0 {
		d.pos = start
		return 0, d.errorf("negative length %d", n)
	}
	if left := len(d.src) - d.pos; minSize > 0 && n > int64(left/minSize) {
		d.pos = start
		return 0, d.errorf("length %d exceeds the %d bytes left", n, left)
	}
	if n > math.MaxInt32 {
		d.pos = start
		return 0, d.errorf("length %d is too large", n)
	}
	return int(n), nil
}

func (d *decoder) value(m byte, depth int) error {
	switch m {
	case 'Z':
		return d.write('n', 'u', 'l', 'l')
	case 'T':
		return d.write('t', 'r', 'u', 'e')
	case 'F':
		return d.write('f', 'a', 'l', 's', 'e')
	case 'i', 'U', 'I', 'l', 'L':
		v, err := d.integer(m)
		if err != nil {
			return err
		}
		if err := d.room(20); err != nil {
			return err
		}
		d.out = strconv.AppendInt(d.out, v, 10)
		return nil
	case 'd', 'D':
		return d.float(m)
	case 'H':
		return d.highPrecision()
	case 'C':
		b, err := d.take(1)
		if err != nil {
			return err
		}
		if b[0] >= utf8.RuneSelf {
			d.pos--
			return d.errorf("char %#x is not ASCII", b[0])
		}
		return d.str(b)
	case 'S':
		s, err := d.stringBody()
		if err != nil {
			return err
		}
		return d.str(s)
	case '[':
		return d.array(depth + 1)
	case '{':
		return d.object(depth + 1)
	}
	d.pos--
	return d.errorf("unknown type marker %q", m)
}

func (d *decoder) float(m byte) error {
	start := d.pos
	b, err := d.take(payloadSize(m))
	if err != nil {
		return err
	}
	var f float64
	bits := 64
	if m == 'd' {
		f, bits = float64(math.Float32frombits(binary.BigEndian.Uint32(b))), 32
	} else {
		f = math.Float64frombits(binary.BigEndian.Uint64(b))
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		d.pos = start
		return d.errorf("non-finite number %v has no JSON form", f)
	}
	if err := d.room(32); err != nil {
		return err
	}
	d.out = strconv.AppendFloat(d.out, f, 'g', -1, bits)
	return nil
}

func (d *decoder) highPrecision() error {
	start := d.pos
	s, err := d.stringBody()
	if err != nil {
		return err
	}
	if !isJSONNumber(s) {
		d.pos = start
		return d.errorf("high-precision number %q is not a JSON number", s)
	}
	return d.write(s...)
}

func (d *decoder) stringBody() ([]byte, error) {
	n, err := d.length(1)
	if err != nil {
		return nil, err
	}
	start := d.pos
	s, err := d.take(n)
	if err != nil {
		return nil, err
	}
	if !utf8.Valid(s) {
		d.pos = start
		return nil, d.errorf("string is not valid UTF-8")
	}
	return s, nil
}

const hexDigits = "0123456789abcdef"

// str writes s as a JSON string literal.
func (d *decoder) str(s []byte) error {
	// Worst case: every byte a \u00XX escape, plus the quotes.
	if err := d.room(6*len(s) + 2); err != nil {
		// Maybe it fits unescaped: measure exactly before failing.
		if d.room(escapedLen(s)) != nil {
			return err
		}
	}
	d.out = append(d.out, '"')
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			d.out = append(d.out, '\\', c)
		case c < 0x20:
			d.out = append(d.out, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			d.out = append(d.out, c)
		}
	}
	d.out = append(d.out, '"')
	return nil
}

func escapedLen(s []byte) int {
	n := 2
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			n += 2
		case c < 0x20:
			n += 6
		default:
			n++
		}
	}
	return n
}

// header reads the optional $type and #count after an opening [ or {. count is -1 when the
// container is not counted (it then ends with its closing marker).
func (d *decoder) header(keyed bool) (typ byte, count int, err error) {
	count = -1
	if d.pos < len(d.src) && d.src[d.pos] == '$' {
		d.pos++
		if d.pos >= len(d.src) {
			return 0, 0, d.errorf("unexpected end of input")
		}
		typ = d.src[d.pos]
		d.pos++
		switch typ {
		case 'Z', 'T', 'F', 'i', 'U', 'I', 'l', 'L', 'd', 'D', 'H', 'C', 'S', '[', '{':
		default:
			d.pos--
			return 0, 0, d.errorf("invalid container type %q", typ)
		}
		if d.pos >= len(d.src) || d.src[d.pos] != '#' {
			return 0, 0, d.errorf("a typed container needs a count")
		}
	}
	if d.pos < len(d.src) && d.src[d.pos] == '#' {
		d.pos++
		// Each element needs at least its payload (or a marker when untyped); an object's
		// entries also need a key length.
		minSize := 1
		if p := payloadSize(typ); typ != 0 && p >= 0 {
			minSize = p
		}
		if keyed {
			minSize += 2
		}
		count, err = d.length(minSize)
		if err != nil {
			return 0, 0, err
		}
	}
	return typ, count, nil
}

func (d *decoder) array(depth int) error {
	if depth > d.maxDepth {
		return ErrTooDeep
	}
	typ, count, err := d.header(false)
	if err != nil {
		return err
	}
	if err := d.write('['); err != nil {
		return err
	}
	for i := 0; count < 0 || i < count; i++ {
		m := typ
		if m == 0 {
			if m, err = d.marker(); err != nil {
				return err
			}
			if count < 0 && m == ']' {
				break
			}
		}
		if i > 0 {
			if err := d.write(','); err != nil {
				return err
			}
		}
		if err := d.value(m, depth); err != nil {
			return err
		}
	}
	return d.write(']')
}

func (d *decoder) object(depth int) error {
	if depth > d.maxDepth {
		return ErrTooDeep
	}
	typ, count, err := d.header(true)
	if err != nil {
		return err
	}
	if err := d.write('{'); err != nil {
		return err
	}
	for i := 0; count < 0 || i < count; i++ {
		if count < 0 {
			// Skip no-ops; the key has no marker, so peek for the closing brace.
			for d.pos < len(d.src) && d.src[d.pos] == 'N' {
				d.pos++
			}
			if d.pos < len(d.src) && d.src[d.pos] == '}' {
				d.pos++
				break
			}
		}
		if i > 0 {
			if err := d.write(','); err != nil {
				return err
			}
		}
		key, err := d.stringBody()
		if err != nil {
			return err
		}
		if err := d.str(key); err != nil {
			return err
		}
		if err := d.write(':'); err != nil {
			return err
		}
		m := typ
		if m == 0 {
			if m, err = d.marker(); err != nil {
				return err
			}
		}
		if err := d.value(m, depth); err != nil {
			return err
		}
	}
	return d.write('}')
}

// isJSONNumber reports whether s is a number in JSON's grammar.
func isJSONNumber(s []byte) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return false
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return false
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	return i == len(s)
}
