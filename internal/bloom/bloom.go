package bloom

import "math/bits"

// Filter is a scalable Bloom filter. Its zero value is not usable; call New.
type Filter struct {
	layers []layer
}

// layer is one fixed-size Bloom filter: nbits bits, k probes, and the number of items it takes
// before the next layer starts. A probe maps its 64-bit position onto [0, nbits) by multiplying
// (Lemire's fast range reduction), so the size need not be a power of two.
type layer struct {
	bits     []uint64
	nbits    uint64
	k        uint64
	n, limit int
}

func (l *layer) bit(h1, h2, i uint64) uint64 {
	b, _ := bits.Mul64(h1+i*h2, l.nbits)
	return b
}

// Layer parameters: the first layer's false positive rate is 2^-firstProbes, each next layer has
// one probe more (half the rate) and twice the capacity.
const (
	firstProbes = 12
	minItems    = 256
)

// New returns a filter sized for expected items in its first layer (at least 256).
func New(expected int) *Filter {
	f := &Filter{}
	f.grow(max(expected, minItems))
	return f
}

func (f *Filter) grow(items int) {
	k := uint64(firstProbes + len(f.layers))
	f.layers = append(f.layers, layer{bits: make([]uint64, layerWords(items, k)), k: k, limit: items})
	l := &f.layers[len(f.layers)-1]
	l.nbits = uint64(len(l.bits)) * 64
}

// layerWords is the size of a layer for items with k probes: an optimal filter uses k/ln 2 bits
// per item.
func layerWords(items int, k uint64) uint64 {
	return (uint64(float64(items)*float64(k)/0.6931) + 63) / 64
}

// Reset empties the filter and sizes it for expected items (at least 256), as New would, keeping
// the first layer's memory when it is large enough and at most twice the size wanted, so that a
// filter recycled between populations of about the same size allocates nothing.
func (f *Filter) Reset(expected int) {
	items := max(expected, minItems)
	words := layerWords(items, firstProbes)
	first := f.layers[0].bits
	if uint64(cap(first)) < words || uint64(cap(first)) > 2*words {
		first = make([]uint64, words)
	} else {
		first = first[:words]
		clear(first)
	}
	clear(f.layers[1:])
	f.layers = append(f.layers[:0], layer{bits: first, nbits: words * 64, k: firstProbes, limit: items})
}

// Add adds the item with hash h.
func (f *Filter) Add(h uint64) {
	l := &f.layers[len(f.layers)-1]
	if l.n >= l.limit {
		f.grow(l.limit * 2)
		l = &f.layers[len(f.layers)-1]
	}
	h1, h2 := h, bits.RotateLeft64(h, 32)|1
	for i := range l.k {
		b := l.bit(h1, h2, i)
		l.bits[b/64] |= 1 << (b % 64)
	}
	l.n++
}

// MayContain reports whether the item with hash h may have been added. False means it certainly
// was not.
func (f *Filter) MayContain(h uint64) bool {
	h1, h2 := h, bits.RotateLeft64(h, 32)|1
	for li := range f.layers {
		l := &f.layers[li]
		found := true
		for i := range l.k {
			b := l.bit(h1, h2, i)
			if l.bits[b/64]&(1<<(b%64)) == 0 {
				found = false
				break
			}
		}
		if found {
			return true
		}
	}
	return false
}

// Len returns the number of items added.
func (f *Filter) Len() int {
	n := 0
	for i := range f.layers {
		n += f.layers[i].n
	}
	return n
}

// Bytes returns the memory the filter's bits take.
func (f *Filter) Bytes() int {
	n := 0
	for i := range f.layers {
		n += len(f.layers[i].bits) * 8
	}
	return n
}
