package jsonscan

import "hash/maphash"

// keySet finds duplicate keys in the objects a Scan descends into, without allocating once its
// buffers have grown to the records' shape.
//
// The keys of the objects open along the current path are kept in one slice, each object's from
// its base. A small object (the usual record: 5–15 keys) is searched linearly, comparing lengths
// first, which costs less than hashing each key. From tableMin keys on, an object gets an
// open-addressing hash table, one per path depth (an object's nested objects are at a greater
// depth, and its siblings come after it is closed), so that a hostile record with 100,000 keys
// costs linear time, not quadratic.
type keySet struct {
	keys   []keyRef
	tables [][]int32 // per path depth: 1 + the key's index from its object's base; 0 is empty
	seed   maphash.Seed
	seeded bool
	hi     int // the most keys held at once in this Scan, for release
}

type keyRef struct {
	b []byte // the key: input bytes, or a Scanner's keybuf for a key with escapes
	h uint64 // its hash, set once its object has a table
}

// tableMin is the number of keys from which an object's keys are hashed.
const tableMin = 32

func (k *keySet) reset() { k.keys = k.keys[:0] }

// release drops the references to the input held by the keys of the Scan just done, so that a
// Scanner kept between records does not pin the last record's buffer.
func (k *keySet) release() {
	clear(k.keys[:k.hi])
	k.keys, k.hi = k.keys[:0], 0
}

// open starts an object and returns its base, for seen and close.
func (k *keySet) open() int { return len(k.keys) }

// close ends the object of base.
func (k *keySet) close(base int) {
	k.hi = max(k.hi, len(k.keys))
	k.keys = k.keys[:base]
}

// seen reports whether key is already a key of the object of base (at path depth kd), and adds it
// if not. bloom is the object's own filter of its small-object keys, kept by the caller: a bit per
// (length, first and last byte), so that distinct keys, the usual case, are told apart without
// comparing bytes; only a bit already set sends the key to the linear comparison.
func (k *keySet) seen(key []byte, base, kd int, bloom *uint64) bool {
	n := len(k.keys) - base
	if n < tableMin {
		h := uint(len(key)) * 7
		if len(key) > 0 {
			h += uint(key[0]) + uint(key[len(key)-1])*3
		}
		bit := uint64(1) << (h & 63)
		if *bloom&bit != 0 {
			for _, o := range k.keys[base:] {
				if string(o.b) == string(key) {
					return true
				}
			}
		}
		*bloom |= bit
		k.keys = append(k.keys, keyRef{b: key})
		return false
	}
	if !k.seeded {
		k.seed, k.seeded = maphash.MakeSeed(), true
	}
	for len(k.tables) <= kd {
		k.tables = append(k.tables, nil)
	}
	if n == tableMin || 2*(n+1) > len(k.tables[kd]) {
		k.rebuild(base, kd, n)
	}
	t := k.tables[kd]
	h := maphash.Bytes(k.seed, key)
	mask := len(t) - 1
	for p := int(h) & mask; ; p = (p + 1) & mask {
		j := t[p]
		if j == 0 {
			t[p] = int32(n + 1)
			k.keys = append(k.keys, keyRef{b: key, h: h})
			return false
		}
		if o := &k.keys[base+int(j)-1]; o.h == h && string(o.b) == string(key) {
			return true
		}
	}
}

// rebuild (re)makes the table of depth kd for the n keys of the object of base, with room for
// twice as many.
func (k *keySet) rebuild(base, kd, n int) {
	size := 4 * tableMin
	for size < 4*(n+1) {
		size *= 2
	}
	t := k.tables[kd]
	if cap(t) >= size {
		t = t[:size]
		clear(t)
	} else {
		t = make([]int32, size)
	}
	mask := size - 1
	for j := 0; j < n; j++ {
		o := &k.keys[base+j]
		if o.h == 0 {
			o.h = maphash.Bytes(k.seed, o.b)
		}
		p := int(o.h) & mask
		for t[p] != 0 {
			p = (p + 1) & mask
		}
		t[p] = int32(j + 1)
	}
	k.tables[kd] = t
}
