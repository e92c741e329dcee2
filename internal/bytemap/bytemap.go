// Package bytemap is a hash map from byte-string keys to byte-string values that allocates nothing
// in steady state: keys and values live in one append-only arena, entries in a flat open-addressing
// table, and Reset keeps both for reuse.
//
// It exists for the state stores' per-cycle write cache. A Go map[string][]byte would allocate a
// string per new key and a slice per value on every commit cycle — on the hot path, once per record.
// Here a value lives in a slot of the arena. An overwrite that fits the key's slot is written in
// place; one that does not appends a new slot a quarter larger than the value (the old bytes stay
// until Reset), so that a hot key, rewritten on every one of its events with a value that grows a
// little at a time (a sliding window's panes), takes a few slots per cycle instead of one per write.
// Memory is bounded by the cycle's distinct keys and their largest values, not by its write count.
//
// Iteration (Each) is in first-insertion order, so that what a cycle writes out is deterministic.
package bytemap

import (
	"bytes"
	"hash/maphash"
	"unsafe"
)

// Map is the byte map. The zero value is ready to use. Not safe for concurrent use.
type Map struct {
	seed  maphash.Seed
	init  bool
	arena []byte
	slots []int32 // index+1 into entries; 0 = empty
	ents  []entry
	seq   uint64 // counts writes; an entry's seq is the count at its latest write
	// writes logs the entry of every write since Reset, so that EachSince visits only what was
	// written after a point instead of every entry: the write numbered seq is writes[seq-base-1].
	writes []int32
	base   uint64 // seq at the last Reset
}

type entry struct {
	hash      uint64
	keyOff    int
	keyLen    int
	valOff    int
	valLen    int
	valCap    int // the slot's size: an overwrite up to this length is written in place
	seq       uint64
	tombstone bool // the key was deleted: a Delete recorded, not an absent key
}

// Len returns the number of keys set or deleted since the last Reset.
func (m *Map) Len() int { return len(m.ents) }

// Bytes returns the arena size: the memory the map holds for keys and values.
func (m *Map) Bytes() int { return len(m.arena) }

// Held returns the memory the map holds, used or kept for reuse: the arena's capacity, the entries
// and the hash slots.
func (m *Map) Held() int {
	return cap(m.arena) + cap(m.ents)*int(unsafe.Sizeof(entry{})) + (cap(m.slots)+cap(m.writes))*int(unsafe.Sizeof(int32(0)))
}

func (m *Map) grow() {
	n := 2 * len(m.slots)
	if n == 0 {
		n = 1024
	}
	m.slots = make([]int32, n)
	mask := uint64(n - 1)
	for i := range m.ents {
		h := m.ents[i].hash
		for j := h & mask; ; j = (j + 1) & mask {
			if m.slots[j] == 0 {
				m.slots[j] = int32(i + 1)
				break
			}
		}
	}
}

func (m *Map) find(key []byte) (h uint64, slot int, idx int) {
	if !m.init {
		m.seed = maphash.MakeSeed()
		m.init = true
	}
	if len(m.slots) == 0 {
		m.grow()
	}
	h = maphash.Bytes(m.seed, key)
	mask := uint64(len(m.slots) - 1)
	for j := h & mask; ; j = (j + 1) & mask {
		s := m.slots[j]
		if s == 0 {
			return h, int(j), -1
		}
		e := &m.ents[s-1]
		if e.hash == h && bytes.Equal(m.arena[e.keyOff:e.keyOff+e.keyLen], key) {
			return h, int(j), int(s - 1)
		}
	}
}

// Get returns the value stored for key and whether the key is present. A key recorded by Delete is
// present with deleted true. The value aliases the arena: valid until the next Set or Reset.
func (m *Map) Get(key []byte) (value []byte, deleted, ok bool) {
	if len(m.ents) == 0 {
		return nil, false, false
	}
	_, _, idx := m.find(key)
	if idx < 0 {
		return nil, false, false
	}
	e := &m.ents[idx]
	return m.arena[e.valOff : e.valOff+e.valLen : e.valOff+e.valLen], e.tombstone, true
}

// Set records key = value, copying both.
func (m *Map) Set(key, value []byte) { m.put(key, value, false) }

// Delete records that key was deleted.
func (m *Map) Delete(key []byte) { m.put(key, nil, true) }

func (m *Map) put(key, value []byte, tombstone bool) {
	h, slot, idx := m.find(key)
	rewrite := idx >= 0
	if idx < 0 {
		if 2*(len(m.ents)+1) > len(m.slots) { // keep the load factor under 1/2
			m.grow()
			h, slot, _ = m.find(key)
		}
		m.ents = append(m.ents, entry{hash: h, keyOff: len(m.arena), keyLen: len(key)})
		m.arena = append(m.arena, key...)
		idx = len(m.ents) - 1
		m.slots[slot] = int32(idx + 1)
	}
	e := &m.ents[idx]
	m.seq++
	m.writes = append(m.writes, int32(idx))
	e.tombstone, e.seq = tombstone, m.seq
	if len(value) <= e.valCap {
		// copy, not append: value may alias the slot itself (a Get of this key, edited).
		e.valLen = copy(m.arena[e.valOff:e.valOff+e.valCap], value)
		return
	}
	size := len(value)
	if rewrite {
		// The key is hot in this cycle: leave it room to grow.
		size += len(value) / 4
	}
	e.valOff, e.valLen, e.valCap = len(m.arena), len(value), size
	m.arena = append(m.arena, value...)
	if extra := size - len(value); extra > 0 {
		m.arena = append(m.arena, make([]byte, extra)...)
	}
}

// Each calls fn for every key in first-insertion order, with its latest value (nil and deleted true
// for a deleted key). The slices alias the arena; fn must not call Set or Delete.
func (m *Map) Each(fn func(key, value []byte, deleted bool)) {
	for i := range m.ents {
		e := &m.ents[i]
		fn(m.arena[e.keyOff:e.keyOff+e.keyLen:e.keyOff+e.keyLen], m.arena[e.valOff:e.valOff+e.valLen:e.valOff+e.valLen], e.tombstone)
	}
}

// Reserve makes room for n more bytes of keys and values without growing the arena, so that a map
// kept under a byte budget does not overshoot it by the doubling of append.
func (m *Map) Reserve(n int) {
	if cap(m.arena)-len(m.arena) < n {
		a := make([]byte, len(m.arena), len(m.arena)+n)
		copy(a, m.arena)
		m.arena = a
	}
}

// Seq returns the number of writes since the map was created; EachSince(Seq()) later visits
// exactly the keys written in between.
func (m *Map) Seq() uint64 { return m.seq }

// EachSince is Each restricted to keys whose latest write came after the write count seq, in the
// order of those latest writes (not first-insertion order). It costs the number of writes since
// seq, not the number of keys.
func (m *Map) EachSince(seq uint64, fn func(key, value []byte, deleted bool)) {
	from := 0
	if seq > m.base {
		from = int(seq - m.base)
	}
	for p := from; p < len(m.writes); p++ {
		e := &m.ents[m.writes[p]]
		if e.seq != m.base+uint64(p)+1 {
			continue // the key was written again later: visited there
		}
		fn(m.arena[e.keyOff:e.keyOff+e.keyLen:e.keyOff+e.keyLen], m.arena[e.valOff:e.valOff+e.valLen:e.valOff+e.valLen], e.tombstone)
	}
}

// Reset empties the map, keeping its memory. A map that holds more than maxKeep bytes (Held: the
// arena, the entries and the slots) gives the memory back instead, so that one huge cycle does not
// pin it forever.
func (m *Map) Reset(maxKeep int) {
	if m.Held() > maxKeep {
		*m = Map{seed: m.seed, init: m.init, seq: m.seq, base: m.seq}
		return
	}
	m.arena = m.arena[:0]
	m.ents = m.ents[:0]
	m.writes = m.writes[:0]
	m.base = m.seq
	clear(m.slots)
}
