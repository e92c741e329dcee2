package avroscan

import (
	"fmt"

	"github.com/hamba/avro/v2"

	"github.com/streamd/streamd/internal/fieldpath"
)

// kind is an Avro type, as the scanner walks it.
type kind uint8

const (
	kNull kind = iota
	kBool
	kInt
	kLong
	kFloat
	kDouble
	kBytes
	kString
	kFixed
	kEnum
	kRecord
	kArray
	kMap
	kUnion
)

// tnode is a type of the writer's schema. Recursive schemas give a cyclic graph.
type tnode struct {
	kind     kind
	fields   []*tnode // record
	names    []string // record: field names
	items    *tnode   // array items, map values
	branches []*tnode // union
	size     int      // fixed
	symbols  [][]byte // enum
	// zero: every encoding of the type is 0 bytes (null, fixed(0), a record of such); min is the
	// fewest bytes an encoding takes, at least 1 unless zero, so that a count of items can be
	// checked against the bytes left.
	zero bool
	min  int
}

// rnode is a node of the plan: a type, the slot its value goes to (-1: none), and the parts of
// it on the way to other slots.
type rnode struct {
	t        *tnode
	slot     int
	fields   []*rnode // record: one per field, nil for the fields to skip; nil: skip them all
	elems    []elem   // array: the wanted indexes, ascending
	keys     []keyed  // map: the wanted keys
	branches []*rnode // union: one per branch, nil to skip it; nil: skip every branch
	maxElem  int      // array: the largest wanted index
}

type elem struct {
	i int
	r *rnode
}

type keyed struct {
	key string
	r   *rnode
}

// Plan reads the values at a fixed list of paths from the records of one writer schema. It is
// immutable and safe for concurrent use.
type Plan struct {
	root   *rnode
	n      int
	absent []int
}

// Len returns the number of paths: the length of the vals a Scan fills.
func (p *Plan) Len() int { return p.n }

// Absent returns the indexes of the paths that the writer's schema does not have, in any union
// branch: no record of this schema has a value there. The slice is the plan's; do not modify it.
func (p *Plan) Absent() []int { return p.absent }

// Compile builds the plan for reading paths (split by internal/fieldpath) from records written
// with schema. It fails only for a schema the scanner cannot walk, which hamba/avro's parser does
// not produce.
func Compile(schema avro.Schema, paths [][]string) (*Plan, error) {
	c := compiler{memo: map[avro.Schema]*tnode{}}
	t, err := c.typeOf(schema)
	if err != nil {
		return nil, err
	}
	c.sizes(t, map[*tnode]bool{})
	p := &Plan{root: &rnode{t: t, slot: -1}, n: len(paths)}
	for i, segs := range paths {
		if !resolvable(t, segs) {
			p.absent = append(p.absent, i)
			continue
		}
		insert(p.root, segs, i)
	}
	return p, nil
}

type compiler struct {
	memo map[avro.Schema]*tnode
}

func (c *compiler) typeOf(s avro.Schema) (*tnode, error) {
	if ref, ok := s.(*avro.RefSchema); ok {
		s = ref.Schema()
	}
	if t, ok := c.memo[s]; ok {
		return t, nil
	}
	t := &tnode{}
	c.memo[s] = t // before the parts: a recursive reference finds it
	switch s := s.(type) {
	case *avro.NullSchema:
		t.kind = kNull
	case *avro.PrimitiveSchema:
		switch s.Type() {
		case avro.Null:
			t.kind = kNull
		case avro.Boolean:
			t.kind = kBool
		case avro.Int:
			t.kind = kInt
		case avro.Long:
			t.kind = kLong
		case avro.Float:
			t.kind = kFloat
		case avro.Double:
			t.kind = kDouble
		case avro.Bytes:
			t.kind = kBytes
		case avro.String:
			t.kind = kString
		default:
			return nil, fmt.Errorf("avroscan: unknown primitive type %s", s.Type())
		}
	case *avro.RecordSchema:
		t.kind = kRecord
		for _, f := range s.Fields() {
			ft, err := c.typeOf(f.Type())
			if err != nil {
				return nil, err
			}
			t.fields = append(t.fields, ft)
			t.names = append(t.names, f.Name())
		}
	case *avro.EnumSchema:
		t.kind = kEnum
		for _, sym := range s.Symbols() {
			t.symbols = append(t.symbols, []byte(sym))
		}
	case *avro.FixedSchema:
		t.kind = kFixed
		t.size = s.Size()
	case *avro.ArraySchema:
		t.kind = kArray
		it, err := c.typeOf(s.Items())
		if err != nil {
			return nil, err
		}
		t.items = it
	case *avro.MapSchema:
		t.kind = kMap
		vt, err := c.typeOf(s.Values())
		if err != nil {
			return nil, err
		}
		t.items = vt
	case *avro.UnionSchema:
		t.kind = kUnion
		for _, b := range s.Types() {
			bt, err := c.typeOf(b)
			if err != nil {
				return nil, err
			}
			t.branches = append(t.branches, bt)
		}
		if len(t.branches) == 0 {
			return nil, fmt.Errorf("avroscan: a union without branches")
		}
	default:
		return nil, fmt.Errorf("avroscan: unsupported schema %T", s)
	}
	return t, nil
}

// sizes computes zero and min. A type met again while it is being computed (a recursive record)
// counts as 0 bytes and not zero: an underestimate, which only loosens the count check.
func (c *compiler) sizes(t *tnode, busy map[*tnode]bool) (zero bool, min int) {
	if t.min > 0 || t.zero {
		return t.zero, t.min
	}
	if busy[t] {
		return false, 0
	}
	busy[t] = true
	defer delete(busy, t)
	switch t.kind {
	case kNull:
		zero = true
	case kFixed:
		zero, min = t.size == 0, t.size
	case kFloat:
		min = 4
	case kDouble:
		min = 8
	case kRecord:
		zero = true
		for _, f := range t.fields {
			z, m := c.sizes(f, busy)
			zero = zero && z
			min += m
		}
	case kArray, kMap:
		c.sizes(t.items, busy)
		min = 1
	case kUnion:
		best := -1
		for _, b := range t.branches {
			if _, m := c.sizes(b, busy); best < 0 || m < best {
				best = m
			}
		}
		min = 1 + best
	default: // bool, int, long, bytes, string, enum
		min = 1
	}
	if !zero && min == 0 {
		min = 1 // only an endless recursive type gets here; 1 keeps the count check sound
	}
	t.zero, t.min = zero, min
	return zero, min
}

// resolvable reports whether a record of type t can have a value at segs.
func resolvable(t *tnode, segs []string) bool {
	return resolvableDepth(t, segs, 0)
}

func resolvableDepth(t *tnode, segs []string, depth int) bool {
	if len(segs) == 0 {
		return true
	}
	if depth > MaxDepth {
		return false
	}
	switch t.kind {
	case kRecord:
		for j, n := range t.names {
			if n == segs[0] {
				return resolvableDepth(t.fields[j], segs[1:], depth+1)
			}
		}
	case kArray:
		if _, ok := fieldpath.Index(segs[0]); ok {
			return resolvableDepth(t.items, segs[1:], depth+1)
		}
	case kMap:
		return resolvableDepth(t.items, segs[1:], depth+1)
	case kUnion:
		for _, b := range t.branches {
			if resolvableDepth(b, segs, depth+1) {
				return true
			}
		}
	}
	return false
}

// insert adds the path segs, which resolvable accepted, to r, its value going to slot.
func insert(r *rnode, segs []string, slot int) {
	t := r.t
	if t.kind == kUnion {
		// The union's value is its branch's: every branch that has the path gets it.
		if r.branches == nil {
			r.branches = make([]*rnode, len(t.branches))
		}
		for j, b := range t.branches {
			if !resolvable(b, segs) {
				continue
			}
			if r.branches[j] == nil {
				r.branches[j] = &rnode{t: b, slot: -1}
			}
			insert(r.branches[j], segs, slot)
		}
		return
	}
	if len(segs) == 0 {
		r.slot = slot
		return
	}
	var child **rnode
	switch t.kind {
	case kRecord:
		if r.fields == nil {
			r.fields = make([]*rnode, len(t.fields))
		}
		for j, n := range t.names {
			if n == segs[0] {
				child = &r.fields[j]
				break
			}
		}
	case kArray:
		i, _ := fieldpath.Index(segs[0])
		k := 0
		for k < len(r.elems) && r.elems[k].i < i {
			k++
		}
		if k == len(r.elems) || r.elems[k].i != i {
			r.elems = append(r.elems, elem{})
			copy(r.elems[k+1:], r.elems[k:])
			r.elems[k] = elem{i: i}
		}
		r.maxElem = max(r.maxElem, i)
		child = &r.elems[k].r
	case kMap:
		for k := range r.keys {
			if r.keys[k].key == segs[0] {
				child = &r.keys[k].r
			}
		}
		if child == nil {
			r.keys = append(r.keys, keyed{key: segs[0]})
			child = &r.keys[len(r.keys)-1].r
		}
	}
	if *child == nil {
		*child = &rnode{t: t.items, slot: -1}
		if t.kind == kRecord {
			for j, n := range t.names {
				if n == segs[0] {
					(*child).t = t.fields[j]
				}
			}
		}
	}
	insert(*child, segs[1:], slot)
}
