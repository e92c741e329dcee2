// Package wire is the byte encoding shared by the state codecs of the online
// packages: little-endian fixed-width floats (so a value comes back
// bit-identical, NaN payloads included) and varints for counts and indexes.
//
// Reader never panics on malformed input: the first error sticks, every later
// read returns a zero value, and lengths are checked against the bytes left
// before anything is allocated, so a corrupt length cannot make a decoder
// allocate gigabytes.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// ErrCorrupt is wrapped by every decoding error.
var ErrCorrupt = errors.New("online: corrupt state")

// AppendUvarint appends v as an unsigned varint.
func AppendUvarint(dst []byte, v uint64) []byte { return binary.AppendUvarint(dst, v) }

// AppendVarint appends v as a zig-zag varint.
func AppendVarint(dst []byte, v int64) []byte { return binary.AppendVarint(dst, v) }

// AppendFloat appends the IEEE-754 bits of v, little-endian.
func AppendFloat(dst []byte, v float64) []byte {
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(v))
}

// AppendFloats appends a length and the values.
func AppendFloats(dst []byte, vs []float64) []byte {
	dst = AppendUvarint(dst, uint64(len(vs)))
	for _, v := range vs {
		dst = AppendFloat(dst, v)
	}
	return dst
}

// AppendBool appends one byte, 0 or 1.
func AppendBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, 1)
	}
	return append(dst, 0)
}

// AppendHeader starts every encoding: a magic byte naming the type and a
// format version, so a decoder refuses another type's state instead of
// misreading it, and a future format can still read old changelogs.
func AppendHeader(dst []byte, magic, version byte) []byte { return append(dst, magic, version) }

// Reader decodes what the Append functions wrote.
type Reader struct {
	b   []byte
	err error
}

// NewReader reads b; it does not copy it.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

// Err returns the first error met, or nil.
func (r *Reader) Err() error { return r.err }

// Fail records err (wrapped in ErrCorrupt) unless an error is already recorded.
func (r *Reader) Fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
	}
}

// Len is the number of bytes not yet read.
func (r *Reader) Len() int { return len(r.b) }

// Header checks the magic byte and returns the version.
func (r *Reader) Header(magic byte, name string) byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 2 {
		r.Fail("%s: truncated header", name)
		return 0
	}
	if r.b[0] != magic {
		r.Fail("%s: magic byte %#x, want %#x", name, r.b[0], magic)
		return 0
	}
	v := r.b[1]
	r.b = r.b[2:]
	return v
}

// Uvarint reads an unsigned varint.
func (r *Reader) Uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.Fail("bad uvarint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// Varint reads a zig-zag varint.
func (r *Reader) Varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.Fail("bad varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// Int reads a varint that must lie in [lo, hi].
func (r *Reader) Int(name string, lo, hi int64) int64 {
	v := r.Varint()
	if r.err == nil && (v < lo || v > hi) {
		r.Fail("%s = %d out of [%d, %d]", name, v, lo, hi)
		return 0
	}
	return v
}

// Count reads a length that must be at most max and that leaves at least
// count*minBytes bytes to read, so that no allocation exceeds the input size.
func (r *Reader) Count(name string, max int, minBytes int) int {
	v := r.Uvarint()
	if r.err != nil {
		return 0
	}
	if v > uint64(max) {
		r.Fail("%s = %d exceeds %d", name, v, max)
		return 0
	}
	if minBytes > 0 && v > uint64(len(r.b)/minBytes) {
		r.Fail("%s = %d exceeds remaining input", name, v)
		return 0
	}
	return int(v)
}

// Float reads 8 bytes.
func (r *Reader) Float() float64 {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 8 {
		r.Fail("truncated float")
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(r.b))
	r.b = r.b[8:]
	return v
}

// Finite reads a float that must be finite; state holding NaN or Inf would
// poison every later prediction.
func (r *Reader) Finite(name string) float64 {
	v := r.Float()
	if r.err == nil && (math.IsNaN(v) || math.IsInf(v, 0)) {
		r.Fail("%s is %v", name, v)
		return 0
	}
	return v
}

// NonNeg reads a finite float that must be >= 0.
func (r *Reader) NonNeg(name string) float64 {
	v := r.Finite(name)
	if r.err == nil && v < 0 {
		r.Fail("%s = %v is negative", name, v)
		return 0
	}
	return v
}

// Floats reads what AppendFloats wrote into dst (reused if large enough),
// requiring exactly want values when want >= 0, at most max otherwise.
func (r *Reader) Floats(name string, dst []float64, want, max int) []float64 {
	n := r.Count(name, max, 8)
	if r.err != nil {
		return dst[:0]
	}
	if want >= 0 && n != want {
		r.Fail("%s has %d values, want %d", name, n, want)
		return dst[:0]
	}
	if cap(dst) < n {
		dst = make([]float64, n)
	}
	dst = dst[:n]
	for i := range dst {
		dst[i] = r.Finite(name)
	}
	return dst
}

// Bool reads one byte that must be 0 or 1.
func (r *Reader) Bool() bool {
	if r.err != nil {
		return false
	}
	if len(r.b) < 1 {
		r.Fail("truncated bool")
		return false
	}
	v := r.b[0]
	r.b = r.b[1:]
	if v > 1 {
		r.Fail("bool byte %d", v)
	}
	return v == 1
}

// Bytes reads a length-prefixed byte string (aliasing the input).
func (r *Reader) Bytes(name string, max int) []byte {
	n := r.Count(name, max, 1)
	if r.err != nil {
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// Raw reads n bytes without a length prefix (aliasing the input).
func (r *Reader) Raw(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.Fail("truncated: want %d bytes, have %d", n, len(r.b))
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// AppendBytes appends a length-prefixed byte string.
func AppendBytes(dst, v []byte) []byte {
	dst = AppendUvarint(dst, uint64(len(v)))
	return append(dst, v...)
}

// End fails unless every byte was read: trailing bytes mean the state was
// written by something else.
func (r *Reader) End(name string) error {
	if r.err == nil && len(r.b) != 0 {
		r.Fail("%s: %d trailing bytes", name, len(r.b))
	}
	return r.err
}
