package preprocess

import (
	"fmt"
	"math/bits"

	"github.com/streamd/streamd/online/internal/wire"
)

// HashSeed is the fixed seed of HashFeature. It is part of every hashed
// model's meaning: changing it reshuffles every feature, so it never
// changes.
const HashSeed uint64 = 0x73747265616d6431 // "streamd1"

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// HashFeature maps a (field name, value) pair to a bucket in [0, dim): the
// hashing trick, which gives a categorical field of unbounded vocabulary a
// fixed-size parameter vector with no dictionary to store or merge across
// replicas. It is 64-bit FNV-1a over the seed, the name, a 0xff separator
// (which cannot occur in UTF-8, so ("ab","c") and ("a","bc") differ) and the
// value; the 64-bit hash is reduced by multiply-high, which is unbiased for
// any dim and needs no division. The result depends only on the bytes, so it
// is the same on every platform and run. dim must be in [1, 2^32]; HashFeature
// panics otherwise, a programmer error caught by the spec's validation.
func HashFeature(name string, value []byte, dim int) uint32 {
	if dim < 1 || uint64(dim) > 1<<32 {
		panic(fmt.Sprintf("preprocess: HashFeature dim %d", dim))
	}
	h := uint64(fnvOffset)
	for i := 0; i < 8; i++ {
		h ^= (HashSeed >> (8 * i)) & 0xff
		h *= fnvPrime
	}
	for i := 0; i < len(name); i++ {
		h ^= uint64(name[i])
		h *= fnvPrime
	}
	h ^= 0xff
	h *= fnvPrime
	for _, c := range value {
		h ^= uint64(c)
		h *= fnvPrime
	}
	// FNV's low bits mix poorly; a final avalanche (from MurmurHash3's
	// fmix64) spreads every input bit before the reduction.
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	hi, _ := bits.Mul64(h, uint64(dim))
	return uint32(hi)
}

// MaxVocabulary bounds a Vocabulary.
const MaxVocabulary = 1 << 16

// Vocabulary assigns one-hot indexes to the values of a small categorical
// field in order of first appearance: value k seen first gets Base+k. Once
// Size values are known, every new value maps to the overflow index
// Base+Size, so the index range [Base, Base+Size] is fixed in advance and a
// model can reserve it. First-appearance order is deterministic given the
// input order and is kept in the state.
type Vocabulary struct {
	base  uint32
	size  int
	index map[string]uint32
	order []string
}

// NewVocabulary returns a vocabulary of at most size values, indexes
// starting at base.
func NewVocabulary(base uint32, size int) (*Vocabulary, error) {
	if size < 1 || size > MaxVocabulary {
		return nil, fmt.Errorf("preprocess: vocabulary size %d, want in [1, %d]", size, MaxVocabulary)
	}
	if uint64(base)+uint64(size) > 1<<32-1 {
		return nil, fmt.Errorf("preprocess: vocabulary base %d + size %d overflows uint32", base, size)
	}
	return &Vocabulary{base: base, size: size, index: make(map[string]uint32)}, nil
}

// Index returns value's index, assigning the next one if the value is new
// and there is room. The lookup does not allocate; only a new value does.
func (v *Vocabulary) Index(value []byte) uint32 {
	if i, ok := v.index[string(value)]; ok {
		return i
	}
	if len(v.order) == v.size {
		return v.base + uint32(v.size)
	}
	s := string(value)
	i := v.base + uint32(len(v.order))
	v.index[s] = i
	v.order = append(v.order, s)
	return i
}

// Lookup returns value's index without assigning one; ok is false for an
// unknown value (whose index would be the overflow index once full).
func (v *Vocabulary) Lookup(value []byte) (uint32, bool) {
	i, ok := v.index[string(value)]
	return i, ok
}

// Overflow returns the index shared by values past the size.
func (v *Vocabulary) Overflow() uint32 { return v.base + uint32(v.size) }

// Len returns the number of values known.
func (v *Vocabulary) Len() int { return len(v.order) }

func (v *Vocabulary) Reset() {
	clear(v.index)
	v.order = v.order[:0]
}

func (v *Vocabulary) AppendState(dst []byte) []byte {
	dst = wire.AppendHeader(dst, 'v', 1)
	dst = wire.AppendUvarint(dst, uint64(v.base))
	dst = wire.AppendUvarint(dst, uint64(v.size))
	dst = wire.AppendUvarint(dst, uint64(len(v.order)))
	for _, s := range v.order {
		dst = wire.AppendBytes(dst, []byte(s))
	}
	return dst
}

// MaxValueBytes bounds one vocabulary value in a decoded state.
const MaxValueBytes = 1 << 16

func (v *Vocabulary) DecodeState(b []byte) error {
	r := wire.NewReader(b)
	if ver := r.Header('v', "vocabulary"); r.Err() == nil && ver != 1 {
		r.Fail("vocabulary: version %d", ver)
	}
	base := r.Uvarint()
	size := r.Count("size", MaxVocabulary, 0)
	n := r.Count("values", size, 1)
	if r.Err() == nil && (size < 1 || base+uint64(size) > 1<<32-1) {
		r.Fail("vocabulary: base %d size %d", base, size)
	}
	if r.Err() != nil {
		return r.Err()
	}
	d := &Vocabulary{base: uint32(base), size: size, index: make(map[string]uint32, n), order: make([]string, 0, n)}
	for i := 0; i < n && r.Err() == nil; i++ {
		s := string(r.Bytes("value", MaxValueBytes))
		if _, dup := d.index[s]; dup && r.Err() == nil {
			r.Fail("vocabulary: duplicate value")
		}
		d.index[s] = d.base + uint32(i)
		d.order = append(d.order, s)
	}
	if err := r.End("vocabulary"); err != nil {
		return err
	}
	*v = *d
	return nil
}
