package avroscan

import (
	"encoding/binary"
	"math"
	"strconv"

	"github.com/streamd/streamd/internal/jsonscan"
)

// Value is what Scan finds at a path: the JSON scanner's Value, which streamd's formats share.
type Value = jsonscan.Value

// MaxDepth is the deepest nesting of records, arrays, maps and unions a record may have: a
// recursive schema (a linked list) would otherwise let a hostile record recurse without bound.
const MaxDepth = 256

// SyntaxError reports a record that is not a valid encoding of its schema.
type SyntaxError struct {
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return "avroscan: " + e.Msg + " at offset " + strconv.Itoa(e.Offset)
}

//go:noinline
func errAt(i int, msg string) error { return &SyntaxError{Offset: i, Msg: msg} }

//go:noinline
func errEOF(data []byte) error {
	return &SyntaxError{Offset: len(data), Msg: "truncated: unexpected end of record"}
}

// maxKeptScratch is the largest scratch a Scanner keeps between records (only integers are
// written there, so it stays tiny unless a record is freakish).
const maxKeptScratch = 64 << 10

// Scanner holds the scratch where integers are written as text. The zero value is ready; it is
// not safe for concurrent use.
type Scanner struct {
	scratch []byte
}

// Scan walks data, an Avro binary record of the plan's schema, and fills vals[i] with the value
// at path i (Kind Missing when the record has none). len(vals) must be at least p.Len(). On error
// every value is Missing.
func (s *Scanner) Scan(data []byte, p *Plan, vals []Value) error {
	vals = vals[:p.n]
	clear(vals)
	if cap(s.scratch) > maxKeptScratch {
		s.scratch = nil
	}
	s.scratch = s.scratch[:0]
	i, err := s.read(data, 0, p.root, vals, 0)
	if err == nil && i != len(data) {
		err = errAt(i, strconv.Itoa(len(data)-i)+" bytes after the end of the record")
	}
	if err != nil {
		clear(vals)
		return err
	}
	return nil
}

// read walks the value of r's type at data[i], filling r's slot and those of its parts, and
// returns the index past it.
func (s *Scanner) read(data []byte, i int, r *rnode, vals []Value, depth int) (int, error) {
	if depth > MaxDepth {
		return 0, errAt(i, "nested deeper than "+strconv.Itoa(MaxDepth))
	}
	t := r.t
	start := i
	var err error
	switch t.kind {
	case kRecord:
		if r.fields == nil {
			i, err = skip(data, i, t, depth)
			break
		}
		for j, ft := range t.fields {
			if c := r.fields[j]; c != nil {
				i, err = s.read(data, i, c, vals, depth+1)
			} else {
				i, err = skip(data, i, ft, depth+1)
			}
			if err != nil {
				return 0, err
			}
		}
	case kUnion:
		var b int64
		if b, i, err = readLong(data, i); err != nil {
			return 0, err
		}
		if b < 0 || b >= int64(len(t.branches)) {
			return 0, errAt(start, "union branch "+strconv.FormatInt(b, 10)+" out of range")
		}
		if r.branches != nil && r.branches[b] != nil {
			return s.read(data, i, r.branches[b], vals, depth+1)
		}
		return skip(data, i, t.branches[b], depth+1)
	case kArray:
		if r.elems == nil {
			i, err = skip(data, i, t, depth)
			break
		}
		i, err = s.readArray(data, i, r, vals, depth)
	case kMap:
		if r.keys == nil {
			i, err = skip(data, i, t, depth)
			break
		}
		i, err = s.readMap(data, i, r, vals, depth)
	default:
		if r.slot < 0 {
			return skip(data, i, t, depth)
		}
		return s.scalar(data, i, t, &vals[r.slot])
	}
	if err != nil {
		return 0, err
	}
	if r.slot >= 0 {
		k := jsonscan.Object
		if t.kind == kArray {
			k = jsonscan.Array
		}
		vals[r.slot] = Value{Kind: k, Raw: data[start:i:i]}
	}
	return i, nil
}

// readArray walks an array's blocks, reading the wanted elements.
func (s *Scanner) readArray(data []byte, i int, r *rnode, vals []Value, depth int) (int, error) {
	it := r.t.items
	idx, next := 0, 0 // next: the position in r.elems of the next wanted index
	for {
		n, j, err := blockCount(data, i, it.min)
		if err != nil {
			return 0, err
		}
		i = j
		if n == 0 {
			return i, nil
		}
		if it.zero && idx > r.maxElem {
			idx += int(min(n, math.MaxInt32)) // nothing to read, nothing to skip
			continue
		}
		for k := int64(0); k < n; k++ {
			if it.zero && idx > r.maxElem {
				break // the rest are 0 bytes each: nothing to read or skip
			}
			if next < len(r.elems) && r.elems[next].i == idx {
				i, err = s.read(data, i, r.elems[next].r, vals, depth+1)
				next++
			} else {
				i, err = skip(data, i, it, depth+1)
			}
			if err != nil {
				return 0, err
			}
			idx++
		}
	}
}

// readMap walks a map's blocks, reading the values of the wanted keys.
func (s *Scanner) readMap(data []byte, i int, r *rnode, vals []Value, depth int) (int, error) {
	vt := r.t.items
	for {
		n, j, err := blockCount(data, i, 1+vt.min)
		if err != nil {
			return 0, err
		}
		i = j
		if n == 0 {
			return i, nil
		}
		for k := int64(0); k < n; k++ {
			var key []byte
			if key, i, err = readBytes(data, i); err != nil {
				return 0, err
			}
			var c *rnode
			for q := range r.keys {
				if r.keys[q].key == string(key) {
					c = r.keys[q].r
				}
			}
			if c != nil {
				i, err = s.read(data, i, c, vals, depth+1)
			} else {
				i, err = skip(data, i, vt, depth+1)
			}
			if err != nil {
				return 0, err
			}
		}
	}
}

// blockCount reads the item count of an array or map block (and the block's byte size, which the
// walk does not need: it checks the items instead), and checks it against the bytes left, each
// item taking at least min bytes.
func blockCount(data []byte, i int, min int) (int64, int, error) {
	n, j, err := readLong(data, i)
	if err != nil {
		return 0, 0, err
	}
	if n < 0 {
		if n == math.MinInt64 {
			return 0, 0, errAt(i, "block count out of range")
		}
		n = -n
		if _, j, err = readLong(data, j); err != nil {
			return 0, 0, err
		}
	}
	if min > 0 && n > int64(len(data)-j)/int64(min) {
		return 0, 0, errAt(i, "block of "+strconv.FormatInt(n, 10)+" items runs past the end of the record")
	}
	return n, j, nil
}

// scalar reads a value of a non-composite type into v.
func (s *Scanner) scalar(data []byte, i int, t *tnode, v *Value) (int, error) {
	switch t.kind {
	case kNull:
		*v = Value{Kind: jsonscan.Null}
		return i, nil
	case kBool:
		if i >= len(data) {
			return 0, errEOF(data)
		}
		if data[i] > 1 {
			return 0, errAt(i, "boolean byte is not 0 or 1")
		}
		*v = Value{Kind: jsonscan.Bool, Bool: data[i] == 1}
		return i + 1, nil
	case kInt, kLong:
		x, j, err := readLong(data, i)
		if err != nil {
			return 0, err
		}
		if t.kind == kInt && (x < math.MinInt32 || x > math.MaxInt32) {
			return 0, errAt(i, "int out of the 32-bit range")
		}
		off := len(s.scratch)
		s.scratch = strconv.AppendInt(s.scratch, x, 10)
		*v = Value{Kind: jsonscan.Number, Raw: s.scratch[off:len(s.scratch):len(s.scratch)], Num: float64(x)}
		return j, nil
	case kFloat:
		if len(data)-i < 4 {
			return 0, errEOF(data)
		}
		*v = Value{Kind: jsonscan.Number, Num: float64(math.Float32frombits(binary.LittleEndian.Uint32(data[i:])))}
		return i + 4, nil
	case kDouble:
		if len(data)-i < 8 {
			return 0, errEOF(data)
		}
		*v = Value{Kind: jsonscan.Number, Num: math.Float64frombits(binary.LittleEndian.Uint64(data[i:]))}
		return i + 8, nil
	case kBytes, kString:
		b, j, err := readBytes(data, i)
		if err != nil {
			return 0, err
		}
		*v = Value{Kind: jsonscan.String, Raw: b}
		return j, nil
	case kFixed:
		if len(data)-i < t.size {
			return 0, errEOF(data)
		}
		*v = Value{Kind: jsonscan.String, Raw: data[i : i+t.size : i+t.size]}
		return i + t.size, nil
	case kEnum:
		x, j, err := readLong(data, i)
		if err != nil {
			return 0, err
		}
		if x < 0 || x >= int64(len(t.symbols)) {
			return 0, errAt(i, "enum symbol "+strconv.FormatInt(x, 10)+" out of range")
		}
		sym := t.symbols[x]
		*v = Value{Kind: jsonscan.String, Raw: sym[:len(sym):len(sym)]}
		return j, nil
	}
	return 0, errAt(i, "not a scalar type")
}

// skip validates the value of type t at data[i] and returns the index past it.
func skip(data []byte, i int, t *tnode, depth int) (int, error) {
	if depth > MaxDepth {
		return 0, errAt(i, "nested deeper than "+strconv.Itoa(MaxDepth))
	}
	var err error
	switch t.kind {
	case kNull:
		return i, nil
	case kBool:
		if i >= len(data) {
			return 0, errEOF(data)
		}
		if data[i] > 1 {
			return 0, errAt(i, "boolean byte is not 0 or 1")
		}
		return i + 1, nil
	case kInt, kLong:
		var x int64
		j := i
		if x, i, err = readLong(data, i); err != nil {
			return 0, err
		}
		if t.kind == kInt && (x < math.MinInt32 || x > math.MaxInt32) {
			return 0, errAt(j, "int out of the 32-bit range")
		}
		return i, nil
	case kFloat:
		if len(data)-i < 4 {
			return 0, errEOF(data)
		}
		return i + 4, nil
	case kDouble:
		if len(data)-i < 8 {
			return 0, errEOF(data)
		}
		return i + 8, nil
	case kBytes, kString:
		_, i, err = readBytes(data, i)
		return i, err
	case kFixed:
		if len(data)-i < t.size {
			return 0, errEOF(data)
		}
		return i + t.size, nil
	case kEnum:
		j := i
		var x int64
		if x, i, err = readLong(data, i); err != nil {
			return 0, err
		}
		if x < 0 || x >= int64(len(t.symbols)) {
			return 0, errAt(j, "enum symbol "+strconv.FormatInt(x, 10)+" out of range")
		}
		return i, nil
	case kRecord:
		for _, f := range t.fields {
			if i, err = skip(data, i, f, depth+1); err != nil {
				return 0, err
			}
		}
		return i, nil
	case kUnion:
		j := i
		var b int64
		if b, i, err = readLong(data, i); err != nil {
			return 0, err
		}
		if b < 0 || b >= int64(len(t.branches)) {
			return 0, errAt(j, "union branch "+strconv.FormatInt(b, 10)+" out of range")
		}
		return skip(data, i, t.branches[b], depth+1)
	case kArray, kMap:
		for {
			var n int64
			m := t.items.min
			if t.kind == kMap {
				m++ // the key
			}
			if n, i, err = blockCount(data, i, m); err != nil {
				return 0, err
			}
			if n == 0 {
				return i, nil
			}
			if t.kind == kArray && t.items.zero {
				continue
			}
			for k := int64(0); k < n; k++ {
				if t.kind == kMap {
					if _, i, err = readBytes(data, i); err != nil {
						return 0, err
					}
				}
				if i, err = skip(data, i, t.items, depth+1); err != nil {
					return 0, err
				}
			}
		}
	}
	return 0, errAt(i, "unknown type")
}

// readLong reads a zigzag varint of at most 10 bytes.
func readLong(data []byte, i int) (int64, int, error) {
	var u uint64
	for k := uint(0); k < 10; k++ {
		if i >= len(data) {
			return 0, 0, errEOF(data)
		}
		b := data[i]
		i++
		u |= uint64(b&0x7f) << (7 * k)
		if b < 0x80 {
			return int64(u>>1) ^ -int64(u&1), i, nil
		}
	}
	return 0, 0, errAt(i, "varint longer than 10 bytes")
}

// readBytes reads a length-prefixed run of bytes (a string, bytes, a map key).
func readBytes(data []byte, i int) ([]byte, int, error) {
	n, j, err := readLong(data, i)
	if err != nil {
		return nil, 0, err
	}
	if n < 0 {
		return nil, 0, errAt(i, "negative length")
	}
	if n > int64(len(data)-j) {
		return nil, 0, errEOF(data)
	}
	e := j + int(n)
	return data[j:e:e], e, nil
}
