package jsonscan

import (
	"strconv"
	"strings"
)

// linearMax is the largest set of names looked up by a linear scan. Up to about this size, comparing
// the key with each name (lengths first, so most comparisons are a single integer compare) beats
// hashing the key; beyond it a map keeps lookup cost flat.
const linearMax = 8

// Schema maps the wanted fields to slot indexes 0..n-1, in the order they were given. A field is a
// path: a top-level key, or a key of an object nested in it, or an element of an array, to any
// depth (NewPathSchema). It is immutable after construction and safe to share between goroutines
// and Scanners.
type Schema struct {
	paths []string // the paths, segments joined by dots, for Index
	index map[string]int
	root  node
}

// node is one level of the wanted paths: the names wanted in an object (or indexes in an array)
// there, what each is wanted for (a value, deeper paths, or both).
type node struct {
	names   []string
	index   map[string]int // nil when len(names) <= linearMax
	entries []entry
}

// entry is a wanted name of a node.
type entry struct {
	slot int   // the slot of the value at this name, or -1 when only deeper paths are wanted
	kid  *node // the wanted names under this one, or nil
	elem int   // the name as an array index (decimal, no sign or leading zero), or -1
}

// NewSchema returns a schema for top-level field names, matched exactly (case-sensitive) against
// keys after their escapes are decoded: a name with a dot is a key with a dot. It panics on a
// duplicate name: that is a programming error, and silently dropping a slot would leave a field
// forever Missing.
func NewSchema(names ...string) *Schema {
	paths := make([][]string, len(names))
	for i, n := range names {
		paths[i] = []string{n}
	}
	return NewPathSchema(paths...)
}

// NewPathSchema returns a schema for paths, each the list of its segments: a segment is matched
// exactly against an object's keys (after their escapes are decoded) and, when it is a decimal
// index without a sign or a leading zero (0, 7, 12), against an array's elements, so that
// {"items":[{"price":1}]} has the value 1 at [items 0 price]. A path and a path under it may both
// be wanted (items and items.0.price). It panics on an empty path and on a duplicate path.
func NewPathSchema(paths ...[]string) *Schema {
	s := &Schema{paths: make([]string, len(paths)), index: make(map[string]int, len(paths))}
	for slot, segs := range paths {
		if len(segs) == 0 {
			panic("jsonscan: empty schema path at index " + strconv.Itoa(slot))
		}
		joined := strings.Join(segs, ".")
		// Duplicates are checked on the segments, not on the joined text: the top-level keys
		// "a.b" and ["a", "b"] are different fields.
		nd := &s.root
		for d, seg := range segs {
			e := nd.add(seg)
			if d == len(segs)-1 {
				if e.slot >= 0 {
					panic("jsonscan: duplicate schema field " + strconv.Quote(joined) + " at indexes " +
						strconv.Itoa(e.slot) + " and " + strconv.Itoa(slot))
				}
				e.slot = slot
				break
			}
			if e.kid == nil {
				e.kid = &node{}
			}
			nd = e.kid
		}
		s.paths[slot] = joined
		if _, ok := s.index[joined]; !ok {
			s.index[joined] = slot
		}
	}
	return s
}

// add returns the entry of name, adding it if it is new.
func (n *node) add(name string) *entry {
	if i := n.lookup([]byte(name)); i >= 0 {
		return &n.entries[i]
	}
	elem := -1
	if isIndex(name) {
		elem, _ = strconv.Atoi(name)
	}
	n.names = append(n.names, name)
	n.entries = append(n.entries, entry{slot: -1, elem: elem})
	if len(n.names) > linearMax {
		n.index = make(map[string]int, len(n.names))
		for i, nm := range n.names {
			n.index[nm] = i
		}
	}
	return &n.entries[len(n.entries)-1]
}

// isIndex reports whether a segment can name an array element: decimal digits without a sign or a
// leading zero, at most 9 of them (internal/fieldpath's rule).
func isIndex(seg string) bool {
	if seg == "" || len(seg) > 9 || (len(seg) > 1 && seg[0] == '0') {
		return false
	}
	for i := 0; i < len(seg); i++ {
		if seg[i] < '0' || seg[i] > '9' {
			return false
		}
	}
	return true
}

// Len returns the number of fields, the minimum length of the vals slice passed to Scan. A nil
// Schema has no fields (Scan then only validates).
func (s *Schema) Len() int {
	if s == nil {
		return 0
	}
	return len(s.paths)
}

// Index returns the slot of a field, its path's segments joined by dots. When two paths join to
// the same text (the key "a.b", and b under a) it returns the first.
func (s *Schema) Index(path string) (int, bool) {
	if s == nil {
		return 0, false
	}
	i, ok := s.index[path]
	return i, ok
}

// lookup returns the entry index of key, or -1. It must not allocate: string(key) in a comparison
// or a map index is not materialised by the compiler.
func (n *node) lookup(key []byte) int {
	if n.index != nil {
		if i, ok := n.index[string(key)]; ok {
			return i
		}
		return -1
	}
	// The string comparison checks lengths before calling memequal. (Adding a first-byte check
	// measured slower: it stops lookup from being inlined.)
	for i, name := range n.names {
		if name == string(key) {
			return i
		}
	}
	return -1
}

// lookupElem returns the entry index of array element k, or -1.
func (n *node) lookupElem(k int) int {
	for i := range n.entries {
		if n.entries[i].elem == k {
			return i
		}
	}
	return -1
}
