package agg

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"slices"

	"github.com/cespare/xxhash/v2"
)

const (
	// ExactDistinct is the number of distinct values a Distinct block keeps exactly (as 64-bit hashes)
	// before it turns into a HyperLogLog sketch. Windows with up to this many distinct values report an
	// exact count (barring a 64-bit hash collision, probability < n²/2⁶⁵).
	ExactDistinct = 16

	hllP      = 12        // precision: 2^12 registers
	hllM      = 1 << hllP // 4096 registers
	hllQ      = 64 - hllP // hash bits left for the rank
	hllMaxRho = hllQ + 1  // largest register value (all hllQ bits zero)

	// hllSparseMax is the most non-zero registers a sketch keeps in the sparse form (sorted index/rank
	// pairs, ≤ 2 bytes each once there are more than a few dozen of them); past it the dense form (one
	// byte per register, 4 KiB) is smaller. 1800 pairs encode to at most ~3.7 KB, so sparse is never the
	// larger form; they correspond to ~2400 distinct values.
	hllSparseMax = 1800

	// DistinctStdError is the relative standard error of a Distinct count once it has left the exact
	// set: 1.04/√m with m = 4096 registers. Ertl's estimator keeps it at or below this over the whole
	// range and far below it for counts ≪ m.
	DistinctStdError = 1.04 / 64
)

// Header bytes of a distinct block: 0..ExactDistinct is the number of exact hashes that follow.
const (
	disSparse = 0x40
	disDense  = 0x41
)

type hllMode uint8

const (
	hllExact hllMode = iota
	hllSparse
	hllDense
)

// hll is the distinct-count state of one field: an exact sorted set of up to ExactDistinct hashes, then
// a HyperLogLog sketch with 4096 six-bit registers (held as bytes) in a sparse or dense form. The state
// is a function of the set of hashes added (a max per register), so adding or merging in any order gives
// the same bytes.
type hll struct {
	mode   hllMode
	k      int
	exact  [ExactDistinct]uint64 // sorted ascending, exact[:k]
	sparse []uint32              // sorted by register: idx<<8 | rho; reused across Decode
	regs   *[hllM]uint8          // dense registers; allocated on first use, then reused
	tmp    []uint32              // merge scratch
}

// hashString and hashNumber give the 64-bit hashes Distinct counts. Strings use xxHash64 (seed 0) of
// their bytes; numbers a bijective mix of their float64 bits (with -0 folded onto +0), so distinct
// numbers never collide with each other. Both are fixed functions: encoded sets and registers stay
// valid across processes and releases.
func hashString(b []byte) uint64 { return xxhash.Sum64(b) }

func hashNumber(x float64) uint64 {
	if x == 0 {
		x = 0
	}
	// splitmix64's finalizer: a bijection with full avalanche. The odd constant added first keeps the
	// hash of +0 from being 0.
	z := math.Float64bits(x) + 0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

func (h *hll) reset() {
	h.mode, h.k = hllExact, 0
	h.sparse = h.sparse[:0]
}

// split turns a hash into its register index (top hllP bits) and rank (1 + leading zeros of the rest,
// capped at hllMaxRho).
func split(x uint64) (idx uint32, rho uint8) {
	idx = uint32(x >> hllQ)
	w := x << hllP
	r := bits.LeadingZeros64(w) + 1
	if r > hllMaxRho {
		r = hllMaxRho
	}
	return idx, uint8(r)
}

func (h *hll) add(x uint64) {
	switch h.mode {
	case hllExact:
		lo, hi := 0, h.k
		for lo < hi {
			mid := int(uint(lo+hi) >> 1)
			if h.exact[mid] < x {
				lo = mid + 1
			} else {
				hi = mid
			}
		}
		if lo < h.k && h.exact[lo] == x {
			return
		}
		if h.k < ExactDistinct {
			copy(h.exact[lo+1:h.k+1], h.exact[lo:h.k])
			h.exact[lo] = x
			h.k++
			return
		}
		h.toSparse()
		h.addHash(x)
	default:
		h.addHash(x)
	}
}

func (h *hll) toSparse() {
	h.mode = hllSparse
	h.sparse = h.sparse[:0]
	for _, x := range h.exact[:h.k] {
		h.addHash(x)
	}
	h.k = 0
}

func (h *hll) addHash(x uint64) {
	idx, rho := split(x)
	h.setReg(idx, rho)
}

// setReg raises register idx to at least rho.
func (h *hll) setReg(idx uint32, rho uint8) {
	if h.mode == hllDense {
		if rho > h.regs[idx] {
			h.regs[idx] = rho
		}
		return
	}
	s := h.sparse
	lo, hi := 0, len(s)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if s[mid]>>8 < idx {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo < len(s) && s[lo]>>8 == idx {
		if uint8(s[lo]) < rho {
			s[lo] = idx<<8 | uint32(rho)
		}
		return
	}
	s = append(s, 0)
	copy(s[lo+1:], s[lo:])
	s[lo] = idx<<8 | uint32(rho)
	h.sparse = s
	if len(s) > hllSparseMax {
		h.toDense()
	}
}

func (h *hll) toDense() {
	if h.regs == nil {
		h.regs = new([hllM]uint8)
	} else {
		clear(h.regs[:])
	}
	for _, e := range h.sparse {
		h.regs[e>>8] = uint8(e)
	}
	h.sparse = h.sparse[:0]
	h.mode = hllDense
}

func (h *hll) merge(o *hll) {
	switch o.mode {
	case hllExact:
		for _, x := range o.exact[:o.k] {
			h.add(x)
		}
		return
	case hllDense:
		if h.mode == hllExact {
			h.toSparse()
		}
		if h.mode == hllSparse {
			h.toDense()
		}
		for i, r := range o.regs {
			if r > h.regs[i] {
				h.regs[i] = r
			}
		}
		return
	}
	// o is sparse.
	switch h.mode {
	case hllExact:
		own, k := h.exact, h.k
		h.mode, h.k = hllSparse, 0
		h.sparse = append(h.sparse[:0], o.sparse...)
		for _, x := range own[:k] {
			h.addHash(x)
		}
	case hllDense:
		for _, e := range o.sparse {
			h.setReg(e>>8, uint8(e))
		}
	case hllSparse:
		// Linear merge of two sorted lists into the scratch list, then swap.
		a, b := h.sparse, o.sparse
		out := h.tmp[:0]
		i, j := 0, 0
		for i < len(a) && j < len(b) {
			ia, ib := a[i]>>8, b[j]>>8
			switch {
			case ia < ib:
				out = append(out, a[i])
				i++
			case ia > ib:
				out = append(out, b[j])
				j++
			default:
				out = append(out, max(a[i], b[j])) // same index: the larger word has the larger rho
				i++
				j++
			}
		}
		out = append(out, a[i:]...)
		out = append(out, b[j:]...)
		h.tmp, h.sparse = a[:0], out
		if len(out) > hllSparseMax {
			h.toDense()
		}
	}
}

// estimate returns the distinct count: exact in the exact form, else Ertl's improved raw estimator
// ("New cardinality estimation algorithms for HyperLogLog sketches", 2017, algorithm 6, as in Redis),
// which needs no empirical bias tables and is unbiased from 0 to far beyond 2^64/m.
func (h *hll) estimate() float64 {
	if h.mode == hllExact {
		return float64(h.k)
	}
	var c [hllMaxRho + 1]int
	if h.mode == hllSparse {
		c[0] = hllM - len(h.sparse)
		for _, e := range h.sparse {
			c[uint8(e)]++
		}
	} else {
		for _, r := range h.regs {
			c[r]++
		}
	}
	const m = float64(hllM)
	z := m * hllTau((m-float64(c[hllQ+1]))/m)
	for k := hllQ; k >= 1; k-- {
		z += float64(c[k])
		z *= 0.5
	}
	z += m * hllSigma(float64(c[0])/m)
	return math.Round(m * m / (2 * math.Ln2) / z)
}

func hllSigma(x float64) float64 {
	if x == 1 {
		return math.Inf(1)
	}
	y, z := 1.0, x
	for {
		x *= x
		zp := z
		z += x * y
		y += y
		if z == zp {
			return z
		}
	}
}

func hllTau(x float64) float64 {
	if x == 0 || x == 1 {
		return 0
	}
	y, z := 1.0, 1-x
	for {
		x = math.Sqrt(x)
		zp := z
		y *= 0.5
		d := 1 - x
		z -= d * d * y
		if z == zp {
			return z / 3
		}
	}
}

// appendEncoded writes the block: a header byte (the exact count, disSparse or disDense) and its body.
func (h *hll) appendEncoded(dst []byte) []byte {
	switch h.mode {
	case hllExact:
		dst = append(dst, byte(h.k))
		for _, x := range h.exact[:h.k] {
			dst = binary.LittleEndian.AppendUint64(dst, x)
		}
	case hllSparse:
		dst = append(dst, disSparse)
		dst = binary.AppendUvarint(dst, uint64(len(h.sparse)))
		dst = slices.Grow(dst, 3*len(h.sparse)) // a delta < 4096 takes ≤ 2 bytes, then the rank byte
		prev := ^uint32(0)                      // -1: the first delta is index+1, so every delta is ≥ 1
		for _, e := range h.sparse {
			idx := e >> 8
			if d := idx - prev; d < 0x80 {
				dst = append(dst, byte(d), byte(e))
			} else {
				dst = append(dst, byte(d)|0x80, byte(d>>7), byte(e))
			}
			prev = idx
		}
	case hllDense:
		dst = append(dst, disDense)
		dst = append(dst, h.regs[:]...)
	}
	return dst
}

// decode reads a block written by appendEncoded from the front of src and returns the rest. events is
// the window's event count, an upper bound on the exact set's size.
func (h *hll) decode(src []byte, events int64) ([]byte, error) {
	if len(src) == 0 {
		return nil, errTruncated
	}
	hdr := src[0]
	src = src[1:]
	switch {
	case hdr <= ExactDistinct:
		k := int(hdr)
		if int64(k) > events {
			return nil, fmt.Errorf("%w: %d distinct values in %d events", ErrCorrupt, k, events)
		}
		if len(src) < 8*k {
			return nil, errTruncated
		}
		h.mode, h.k = hllExact, k
		for i := range k {
			h.exact[i] = binary.LittleEndian.Uint64(src[8*i:])
			if i > 0 && h.exact[i] <= h.exact[i-1] {
				return nil, fmt.Errorf("%w: distinct set not strictly increasing", ErrCorrupt)
			}
		}
		return src[8*k:], nil
	case hdr == disSparse:
		n, w := binary.Uvarint(src)
		if w <= 0 {
			return nil, errTruncated
		}
		src = src[w:]
		if n > uint64(events) {
			return nil, errTooMany
		}
		if n == 0 || n > hllM || n > uint64(len(src))/2 {
			return nil, fmt.Errorf("%w: sparse sketch of %d registers", ErrCorrupt, n)
		}
		h.mode, h.k = hllSparse, 0
		s := slices.Grow(h.sparse[:0], int(n))[:n]
		idx := -1
		for i := range s {
			if len(src) < 2 {
				return nil, errTruncated
			}
			d, rho := int(src[0]), src[1]
			src = src[2:]
			if d >= 0x80 { // two-byte delta (indexes are < 2^14)
				if rho >= 0x80 || len(src) == 0 {
					return nil, fmt.Errorf("%w: sparse register delta", ErrCorrupt)
				}
				d = d&0x7f | int(rho)<<7
				rho, src = src[0], src[1:]
			}
			idx += d
			if d == 0 || idx >= hllM || rho-1 >= hllMaxRho {
				return nil, fmt.Errorf("%w: sparse register out of order or range", ErrCorrupt)
			}
			s[i] = uint32(idx)<<8 | uint32(rho)
		}
		h.sparse = s
		return src, nil
	case hdr == disDense:
		if len(src) < hllM {
			return nil, errTruncated
		}
		if !regsValid(src[:hllM]) {
			return nil, fmt.Errorf("%w: dense register above %d", ErrCorrupt, hllMaxRho)
		}
		if h.regs == nil {
			h.regs = new([hllM]uint8)
		}
		copy(h.regs[:], src)
		h.mode, h.k = hllDense, 0
		h.sparse = h.sparse[:0]
		return src[hllM:], nil
	}
	return nil, fmt.Errorf("%w: distinct block header %#x", ErrCorrupt, hdr)
}

// regsValid reports whether every byte of b (len a multiple of 8) is ≤ hllMaxRho, eight bytes at a time:
// with its high bit cleared a byte is ≤ 0x7f, and adding 0x80−(hllMaxRho+1) = 0x4a to it sets its high
// bit exactly when it exceeds hllMaxRho and never carries into the next byte (0x7f+0x4a < 0x100); a byte
// whose own high bit is set is ≥ 0x80 and invalid anyway.
func regsValid(b []byte) bool {
	const add = 0x80 - (hllMaxRho + 1)
	const addW = add * 0x0101010101010101
	const high = 0x8080808080808080
	for len(b) >= 8 {
		w := binary.LittleEndian.Uint64(b)
		if (w|(w&^high+addW))&high != 0 {
			return false
		}
		b = b[8:]
	}
	return true
}
