package agg

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"slices"

	"github.com/DataDog/sketches-go/ddsketch/mapping"
)

const (
	// ExactQuantileValues is the number of values a Quantile block keeps exactly (sorted) before it turns
	// into a DDSketch. Windows with up to this many values report exact quantiles.
	ExactQuantileValues = 16

	// QuantileAccuracy is the DDSketch relative accuracy α: once a block has left the exact form, the
	// q-quantile it reports is within α·|x| of x, the value of rank ⌊q·(n−1)⌋ (see the package doc).
	QuantileAccuracy = 0.01

	// ddMaxBins bounds each of the sketch's two bin ranges (positive and negative values). With α = 1% a
	// bin spans a factor γ = 1.0202, so 2048 bins cover a factor γ^2048 ≈ 6·10^17 between the smallest and
	// the largest magnitude of one sign; past that the lowest bins are merged (DDSketch's
	// collapsing-lowest store), which only degrades the quantiles of the smallest magnitudes. It also
	// bounds what a corrupt encoding can make Decode allocate (2 × 16 KiB).
	ddMaxBins = 2048

	quaSketch = 0x40 // header byte of a sketch-form quantile block; 0..ExactQuantileValues = exact count
)

// ddMapping is the logarithmic index mapping of every quantile sketch (sketches-go's, the part of
// DDSketch that carries its accuracy guarantee). It is immutable and shared; being fixed, it is not
// written into the encoding.
var ddMapping, ddMinIndex, ddMaxIndex = func() (*mapping.LogarithmicMapping, int, int) {
	m, err := mapping.NewLogarithmicMapping(QuantileAccuracy)
	if err != nil {
		panic(err)
	}
	return m, m.Index(m.MinIndexableValue()), m.Index(m.MaxIndexableValue())
}()

// ddIndex maps a magnitude > 0 to its bin, clamping beyond the mapping's range; ok is false for
// magnitudes the mapping folds into the zero bin (below ~2.3e-308).
func ddIndex(abs float64) (int32, bool) {
	if abs <= ddMapping.MinIndexableValue() {
		return 0, false
	}
	if abs >= ddMapping.MaxIndexableValue() {
		return int32(ddMaxIndex), true
	}
	return int32(ddMapping.Index(abs)), true
}

// ddSide holds the non-empty bins of one sign, sorted by index: cnt[j] magnitudes fell in bin idx[j].
// A sorted list rather than a dense array over the index range keeps decode, add and encode O(non-empty
// bins) and free of the unpredictable "is this bin empty" branches a dense scan takes (a window of 100
// values spans ~330 bins of which ~90 are used). The span idx[last]−idx[0] stays < ddMaxBins.
type ddSide struct {
	idx []int32
	cnt []uint64
	n   uint64

	tmpIdx []int32 // merge scratch
	tmpCnt []uint64
}

func (s *ddSide) reset() { s.idx, s.cnt, s.n = s.idx[:0], s.cnt[:0], 0 }

// add counts c magnitudes in bin i. When the span would reach ddMaxBins, the lowest bins are merged into
// the lowest bin that stays in range, as DDSketch's collapsing-lowest store does; the result depends only
// on the set of indexes ever added, not on their order.
func (s *ddSide) add(i int32, c uint64) {
	s.n += c
	n := len(s.idx)
	if n == 0 {
		s.idx, s.cnt = append(s.idx, i), append(s.cnt, c)
		return
	}
	if hi := s.idx[n-1]; i > hi {
		if int(i)-int(s.idx[0]) >= ddMaxBins {
			s.collapseBelow(i - ddMaxBins + 1)
		}
		s.idx, s.cnt = append(s.idx, i), append(s.cnt, c)
		return
	} else if t := hi - ddMaxBins + 1; i < t {
		i = t
	}
	lo, hiJ := 0, n
	for lo < hiJ {
		mid := int(uint(lo+hiJ) >> 1)
		if s.idx[mid] < i {
			lo = mid + 1
		} else {
			hiJ = mid
		}
	}
	if lo < n && s.idx[lo] == i {
		s.cnt[lo] += c
		return
	}
	s.idx, s.cnt = append(s.idx, 0), append(s.cnt, 0)
	copy(s.idx[lo+1:], s.idx[lo:n])
	copy(s.cnt[lo+1:], s.cnt[lo:n])
	s.idx[lo], s.cnt[lo] = i, c
}

// collapseBelow merges every bin below t into bin t.
func (s *ddSide) collapseBelow(t int32) {
	k := 0
	var sum uint64
	for k < len(s.idx) && s.idx[k] < t {
		sum += s.cnt[k]
		k++
	}
	if k == 0 {
		return
	}
	if k < len(s.idx) && s.idx[k] == t {
		s.cnt[k] += sum
	} else {
		k--
		s.idx[k], s.cnt[k] = t, sum
	}
	s.idx = s.idx[:copy(s.idx, s.idx[k:])]
	s.cnt = s.cnt[:copy(s.cnt, s.cnt[k:])]
}

func (s *ddSide) merge(o *ddSide) {
	if len(o.idx) == 0 {
		return
	}
	if len(s.idx) == 0 {
		s.idx = append(s.idx[:0], o.idx...)
		s.cnt = append(s.cnt[:0], o.cnt...)
		s.n = o.n
		return
	}
	// Linear merge into the scratch lists, then swap, then collapse to the new span.
	ai, ac, bi, bc := s.idx, s.cnt, o.idx, o.cnt
	oi, oc := s.tmpIdx[:0], s.tmpCnt[:0]
	i, j := 0, 0
	for i < len(ai) && j < len(bi) {
		switch {
		case ai[i] < bi[j]:
			oi, oc = append(oi, ai[i]), append(oc, ac[i])
			i++
		case ai[i] > bi[j]:
			oi, oc = append(oi, bi[j]), append(oc, bc[j])
			j++
		default:
			oi, oc = append(oi, ai[i]), append(oc, ac[i]+bc[j])
			i++
			j++
		}
	}
	oi, oc = append(oi, ai[i:]...), append(oc, ac[i:]...)
	oi, oc = append(oi, bi[j:]...), append(oc, bc[j:]...)
	s.tmpIdx, s.tmpCnt = ai[:0], ac[:0]
	s.idx, s.cnt = oi, oc
	s.n += o.n
	if hi := oi[len(oi)-1]; int(hi)-int(oi[0]) >= ddMaxBins {
		s.collapseBelow(hi - ddMaxBins + 1)
	}
}

// keyAtRank returns the bin of the value of 0-based rank r (< s.n) in ascending order of magnitude.
func (s *ddSide) keyAtRank(r uint64) int {
	var cum uint64
	for j, c := range s.cnt {
		cum += c
		if cum > r {
			return int(s.idx[j])
		}
	}
	return int(s.idx[len(s.idx)-1])
}

func uvarintLen(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }

// appendEncoded writes the side as uvarint(n<<1|form): form 1 is contiguous (varint index of the first
// bin, then the counts of n consecutive bins, empty ones as 0), form 0 is sparse (n non-empty bins: varint
// index and uvarint count of the first, then uvarint index delta and count of each next); uvarint(0) is an
// empty side. The smaller form is written, contiguous on a tie.
func (s *ddSide) appendEncoded(dst []byte) []byte {
	if len(s.idx) == 0 {
		return append(dst, 0)
	}
	counts := len(s.cnt)
	for _, c := range s.cnt {
		if c >= 0x80 {
			counts += uvarintLen(c) - 1
		}
	}
	lo, hi := s.idx[0], s.idx[len(s.idx)-1]
	span := int(hi-lo) + 1
	dense := counts + span - len(s.idx) // one zero byte per empty bin
	sparse := counts
	for j := 1; j < len(s.idx); j++ {
		sparse += 1 + int(uint32(s.idx[j]-s.idx[j-1])>>7&1) // deltas are < ddMaxBins < 2^14: 1 or 2 bytes
	}
	dst = slices.Grow(dst, 2*binary.MaxVarintLen64+min(dense, sparse))
	if dense <= sparse {
		dst = binary.AppendUvarint(dst, uint64(span)<<1|1)
		dst = binary.AppendVarint(dst, int64(lo))
		prev := lo - 1
		for j, c := range s.cnt {
			for z := s.idx[j] - prev - 1; z > 0; z-- {
				dst = append(dst, 0)
			}
			prev = s.idx[j]
			dst = appendUvarint(dst, c)
		}
		return dst
	}
	dst = binary.AppendUvarint(dst, uint64(len(s.idx))<<1)
	dst = binary.AppendVarint(dst, int64(lo))
	prev := lo
	for j, c := range s.cnt {
		if j > 0 {
			dst = appendUvarint(dst, uint64(s.idx[j]-prev))
			prev = s.idx[j]
		}
		dst = appendUvarint(dst, c)
	}
	return dst
}

// appendUvarint is binary.AppendUvarint with the one-byte case inlined.
func appendUvarint(dst []byte, x uint64) []byte {
	if x < 0x80 {
		return append(dst, byte(x))
	}
	return binary.AppendUvarint(dst, x)
}

// decode reads a side from the front of src. limit bounds its total count.
func (s *ddSide) decode(src []byte, limit uint64) ([]byte, error) {
	s.reset()
	h, w := binary.Uvarint(src)
	if w <= 0 {
		return nil, errTruncated
	}
	src = src[w:]
	n := h >> 1
	if n == 0 {
		if h != 0 {
			return nil, fmt.Errorf("%w: empty bin run", ErrCorrupt)
		}
		return src, nil
	}
	if n > ddMaxBins || n > uint64(len(src)) {
		return nil, fmt.Errorf("%w: %d quantile bins", ErrCorrupt, n)
	}
	lo, w := binary.Varint(src)
	if w <= 0 {
		return nil, errTruncated
	}
	src = src[w:]
	if lo < int64(ddMinIndex) || lo > int64(ddMaxIndex)-int64(n)+1 {
		return nil, fmt.Errorf("%w: quantile bin index %d", ErrCorrupt, lo)
	}
	dense := h&1 == 1
	i := int32(lo)
	// Local slices: appending through s's fields would store the headers back to memory each time.
	idx, cnt, total := slices.Grow(s.idx[:0], int(n)), slices.Grow(s.cnt[:0], int(n)), uint64(0)
	for k := uint64(0); k < n; k++ {
		if k > 0 {
			if dense {
				i++
			} else {
				d, w := binary.Uvarint(src)
				if w <= 0 {
					return nil, errTruncated
				}
				src = src[w:]
				if d == 0 || d >= ddMaxBins || int(i-int32(lo))+int(d) >= ddMaxBins || int64(i)+int64(d) > int64(ddMaxIndex) {
					return nil, fmt.Errorf("%w: quantile bin delta %d", ErrCorrupt, d)
				}
				i += int32(d)
			}
		}
		var c uint64
		if len(src) > 0 && src[0] < 0x80 {
			c, src = uint64(src[0]), src[1:]
		} else {
			c, w = binary.Uvarint(src)
			if w <= 0 {
				return nil, errTruncated
			}
			src = src[w:]
		}
		if c > limit-total {
			return nil, errTooMany
		}
		if c == 0 {
			if !dense || k == 0 || k == n-1 {
				return nil, fmt.Errorf("%w: empty quantile bin at an end or in sparse form", ErrCorrupt)
			}
			continue
		}
		total += c
		idx, cnt = append(idx, i), append(cnt, c)
	}
	s.idx, s.cnt, s.n = idx, cnt, total
	return src, nil
}

// quant is the quantile state of one field: up to ExactQuantileValues sorted values, then a DDSketch:
// sketches-go's logarithmic mapping with a zero count and two collapsing-lowest dense bin ranges, kept
// here as integer counts so that decode and encode are single tight loops (see the package doc for why
// not the library's stores). Both forms are functions of the multiset of values added, so adding or
// merging in any order gives the same bytes.
type quant struct {
	sketch   bool
	k        int
	vals     [ExactQuantileValues]float64 // sorted ascending, vals[:k]
	zero     uint64
	pos, neg ddSide // magnitudes of positive and negative values
}

func (s *quant) reset() {
	s.sketch, s.k, s.zero = false, 0, 0
	s.pos.reset()
	s.neg.reset()
}

func (s *quant) count() uint64 {
	if s.sketch {
		return s.zero + s.pos.n + s.neg.n
	}
	return uint64(s.k)
}

func (s *quant) add(x float64) {
	if x == 0 {
		x = 0 // -0 → +0
	}
	if !s.sketch {
		if s.k < ExactQuantileValues {
			i := s.k
			for i > 0 && s.vals[i-1] > x {
				s.vals[i] = s.vals[i-1]
				i--
			}
			s.vals[i] = x
			s.k++
			return
		}
		s.toSketch()
	}
	s.sketchAdd(x)
}

func (s *quant) sketchAdd(x float64) {
	side := &s.pos
	if x < 0 {
		side, x = &s.neg, -x
	}
	if idx, ok := ddIndex(x); ok {
		side.add(idx, 1)
	} else {
		s.zero++
	}
}

func (s *quant) toSketch() {
	s.sketch, s.zero = true, 0
	s.pos.reset()
	s.neg.reset()
	for _, v := range s.vals[:s.k] {
		s.sketchAdd(v)
	}
	s.k = 0
}

func (s *quant) merge(o *quant) {
	if !o.sketch {
		for _, v := range o.vals[:o.k] {
			s.add(v)
		}
		return
	}
	if !s.sketch {
		s.toSketch()
	}
	s.zero += o.zero
	s.pos.merge(&o.pos)
	s.neg.merge(&o.neg)
}

// result returns the value of rank ⌊q·(n−1)⌋ (0-based, ascending): exactly in the exact form, within
// QuantileAccuracy relative error in the sketch form (each bin's value is within α of every magnitude
// the bin holds, and bins are ranked in value order).
func (s *quant) result(q float64) (float64, bool) {
	n := s.count()
	if n == 0 {
		return 0, false
	}
	r := uint64(math.Floor(float64(q * float64(n-1)))) // explicit conversion: no fused multiply-add
	if !s.sketch {
		return s.vals[r], true
	}
	switch {
	case r < s.neg.n: // negatives ascend as their magnitudes descend
		return -ddMapping.Value(s.neg.keyAtRank(s.neg.n - 1 - r)), true
	case r < s.neg.n+s.zero:
		return 0, true
	default:
		return ddMapping.Value(s.pos.keyAtRank(r - s.neg.n - s.zero)), true
	}
}

// appendEncoded writes the block: a header byte, the exact count (then the values as 8-byte
// little-endian floats) or quaSketch (then uvarint zero count, the negative side, the positive side).
func (s *quant) appendEncoded(dst []byte) []byte {
	if !s.sketch {
		dst = append(dst, byte(s.k))
		for _, v := range s.vals[:s.k] {
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(v))
		}
		return dst
	}
	dst = append(dst, quaSketch)
	dst = binary.AppendUvarint(dst, s.zero)
	dst = s.neg.appendEncoded(dst)
	return s.pos.appendEncoded(dst)
}

// decode reads a block from the front of src and returns the rest. events bounds the number of values.
func (s *quant) decode(src []byte, events int64) ([]byte, error) {
	if len(src) == 0 {
		return nil, errTruncated
	}
	hdr := src[0]
	src = src[1:]
	if hdr <= ExactQuantileValues {
		k := int(hdr)
		if int64(k) > events {
			return nil, errTooMany
		}
		if len(src) < 8*k {
			return nil, errTruncated
		}
		s.sketch, s.k = false, k
		for i := range k {
			v := math.Float64frombits(binary.LittleEndian.Uint64(src[8*i:]))
			if !finite(v) || (i > 0 && v < s.vals[i-1]) || (v == 0 && math.Signbit(v)) {
				return nil, fmt.Errorf("%w: quantile values not finite and sorted", ErrCorrupt)
			}
			s.vals[i] = v
		}
		return src[8*k:], nil
	}
	if hdr != quaSketch {
		return nil, fmt.Errorf("%w: quantile block header %#x", ErrCorrupt, hdr)
	}
	s.sketch, s.k = true, 0
	limit := uint64(events)
	z, w := binary.Uvarint(src)
	if w <= 0 {
		return nil, errTruncated
	}
	if z > limit {
		return nil, errTooMany
	}
	s.zero = z
	var err error
	if src, err = s.neg.decode(src[w:], limit-z); err != nil {
		return nil, err
	}
	if src, err = s.pos.decode(src, limit-z-s.neg.n); err != nil {
		return nil, err
	}
	if s.count() <= ExactQuantileValues {
		return nil, fmt.Errorf("%w: quantile sketch of %d values", ErrCorrupt, s.count())
	}
	return src, nil
}
