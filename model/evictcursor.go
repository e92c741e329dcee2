package model

import (
	"bytes"
	"slices"
)

// evictCursor finds the first key of an ordered index (the early labels' expiry index) without
// stepping over the same deleted keys again and again. The index is a queue: labels are taken and
// evicted at its front, and in an LSM every one of them leaves a tombstone there until compaction,
// so a scan from the start of the index, once per eviction, costs as many steps as labels went
// before: quadratic, seconds per commit cycle in a backlog that keeps the cap full.
//
// The cursor remembers where the last eviction found the front (from): no key of the index below
// it is live but the stragglers, keys inserted below it since (a label whose time is earlier than
// one already evicted: the labels topic is out of order by a little), which it keeps in order.
// The first key is then the smaller of the first straggler and the first live key from the
// cursor on, and a scan steps over only what was taken since the last eviction.
//
// The cursor is a cache of the store, rebuilt from nothing (from nil: every key is at or above
// it) whenever the store is rewound; it never changes what is evicted, only how it is found.
// Stragglers are capped: past maxStragglers the cursor starts again from the bottom.
type evictCursor struct {
	from       []byte   // nil: the start of the index
	stragglers [][]byte // live keys below from, sorted
}

const maxStragglers = 1024

func (c *evictCursor) reset() {
	c.from = nil
	clear(c.stragglers)
	c.stragglers = c.stragglers[:0]
}

func (c *evictCursor) find(key []byte) (int, bool) {
	return slices.BinarySearchFunc(c.stragglers, key, bytes.Compare)
}

// inserted records that key was added to the index.
func (c *evictCursor) inserted(key []byte) {
	if c.from == nil || bytes.Compare(key, c.from) >= 0 {
		return
	}
	if len(c.stragglers) == maxStragglers {
		c.reset()
		return
	}
	if i, found := c.find(key); !found {
		c.stragglers = slices.Insert(c.stragglers, i, bytes.Clone(key))
	}
}

// removed records that key left the index (taken, expired, replaced or evicted).
func (c *evictCursor) removed(key []byte) {
	if len(c.stragglers) == 0 {
		return
	}
	if i, found := c.find(key); found {
		c.stragglers = slices.Delete(c.stragglers, i, i+1)
	}
}

// first returns the first live key of the index; scan returns the first live key at or after
// its argument (nil: from the start), as a copy. The key returned stays valid until evicted is
// called with it; the caller removes it from the index and then calls evicted.
func (c *evictCursor) first(scan func(from []byte) ([]byte, bool, error)) ([]byte, bool, error) {
	k, ok, err := scan(c.from)
	if err != nil {
		return nil, false, err
	}
	if len(c.stragglers) > 0 && (!ok || bytes.Compare(c.stragglers[0], k) < 0) {
		return c.stragglers[0], true, nil
	}
	return k, ok, nil
}

// evicted records that key, returned by first, left the index: the front is past it.
func (c *evictCursor) evicted(key []byte) {
	if len(c.stragglers) > 0 && bytes.Equal(c.stragglers[0], key) {
		c.stragglers = slices.Delete(c.stragglers, 0, 1)
		return
	}
	// key was the first live key at or after from: nothing live lies between, so the next scan
	// may start just past it.
	c.from = append(append(c.from[:0], key...), 0)
}
