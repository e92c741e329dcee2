// Package protoscan reads the values at a few paths of Protobuf messages, without allocating: the
// per-record decoder of streamd's protobuf source format.
//
// # Why not dynamicpb
//
// With only a descriptor known at run time (the schema comes from a registry), the standard way
// to read a message is proto.Unmarshal into a dynamicpb.Message: it builds every field, every
// nested message and every string of the record, through reflection, to read a handful of them.
// Compile instead turns the message's descriptor and the wanted paths into a plan: per field
// number, whether to read the field into a slot, descend into it (a message on a path), or skip
// it. A Scan is then one pass over the wire tags with protowire; strings and bytes point into the
// record, integers are written as decimal text into the Scanner's scratch (so that they can be
// keys and ids exactly), floats come back as float64. docs/BENCHMARKS.md compares the two.
//
// # Semantics
//
// A path is a list of segments: a field name (the .proto name), or a decimal index into a
// repeated field (items.0.price: the price of the first element of items; in a packed repeated
// scalar, the n-th packed value). As in Protobuf, the last occurrence of a non-repeated field
// wins, and occurrences of a message field merge. A field without presence (a proto3 scalar that
// is not optional, outside a oneof) that the message leaves out has its zero value: 0, "", false,
// the enum's zero value; a field with presence, or any field of an absent message, is Missing. An
// enum is the name of its value (Raw), or its number when the schema names no such value. A
// message or a group is an Object whose Raw is its encoding; a repeated field named without an
// index is an Array holding its last occurrence's encoding. Map fields are repeated entries
// (reachable by index, not by key). A known field with an unexpected wire type is skipped as an
// unknown field, as proto.Unmarshal does.
//
// # Validation
//
// Every tag, length and varint of the message is checked, and every known message-typed field
// is walked as well (read or not), so that a record passes or fails the same way whatever the
// paths: a truncated field, a length past the end, a bad tag or wire type, a group that does not
// end, and nesting deeper than MaxDepth are a *SyntaxError. A message cut exactly between two
// fields is a valid shorter message: the wire format cannot tell. Strings are not checked for
// UTF-8 here (the schema rules of the caller do, for the fields it reads).
//
// # Ownership
//
// Values point into the record and the Scanner's scratch, and are valid until the next Scan on
// that Scanner while the record is unchanged. A Plan is immutable and safe to share; a Scanner is
// one goroutine's.
package protoscan

import (
	"math"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/streamd/streamd/internal/fieldpath"
	"github.com/streamd/streamd/internal/jsonscan"
)

// Value is what Scan finds at a path: the JSON scanner's Value, which streamd's formats share.
type Value = jsonscan.Value

// MaxDepth bounds the nesting of messages and groups a Scan walks.
const MaxDepth = 100

// SyntaxError reports a record that is not a valid encoding of its message type.
type SyntaxError struct {
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return "protoscan: " + e.Msg + " at offset " + strconv.Itoa(e.Offset)
}

//go:noinline
func errAt(off int, msg string) error { return &SyntaxError{Offset: off, Msg: msg} }

// mplan is the plan of one message type. Plans without slots beneath them are shared per
// descriptor (they only validate); the graph may be cyclic for recursive messages.
type mplan struct {
	dense   []*fplan // by field number, when the numbers are small
	sparse  map[protowire.Number]*fplan
	zeroes  []*fplan // fields without presence that have a slot: their zero value when absent
	nrep    int      // repeated fields with wanted indexes: counters each occurrence needs
	hasSlot bool
}

// fplan is the plan of one field.
type fplan struct {
	kind     protoreflect.Kind
	slot     int // -1: none
	repeated bool
	sub      *mplan  // message or group: its plan (reading or validating)
	elems    []pelem // repeated: wanted indexes
	rep      int     // repeated with elems: its counter
	enum     protoreflect.EnumValueDescriptors
	names    map[int32][]byte // enum value names
}

type pelem struct {
	i    int
	slot int    // -1: none
	sub  *mplan // the element's message, on a longer path
}

func (m *mplan) field(n protowire.Number) *fplan {
	if int(n) < len(m.dense) {
		return m.dense[n]
	}
	if m.sparse != nil {
		return m.sparse[n]
	}
	return nil
}

// Plan reads the values at a fixed list of paths from messages of one type.
type Plan struct {
	root   *mplan
	n      int
	absent []int
}

// Len returns the number of paths.
func (p *Plan) Len() int { return p.n }

// Absent returns the indexes of the paths the message type does not have. The slice is the
// plan's.
func (p *Plan) Absent() []int { return p.absent }

// Compile builds the plan for reading paths (split by internal/fieldpath) from messages of md.
func Compile(md protoreflect.MessageDescriptor, paths [][]string) *Plan {
	c := &compiler{validate: map[protoreflect.FullName]*mplan{}}
	p := &Plan{n: len(paths)}
	var wants []want
	for i, segs := range paths {
		if !resolvable(md, segs, 0) {
			p.absent = append(p.absent, i)
			continue
		}
		wants = append(wants, want{segs: segs, slot: i})
	}
	p.root = c.message(md, wants)
	return p
}

type want struct {
	segs []string
	slot int
}

type compiler struct {
	validate map[protoreflect.FullName]*mplan
}

// resolvable reports whether messages of md can have a value at segs.
func resolvable(md protoreflect.MessageDescriptor, segs []string, depth int) bool {
	if depth > MaxDepth {
		return false
	}
	fd := md.Fields().ByName(protoreflect.Name(segs[0]))
	if fd == nil {
		return false
	}
	rest := segs[1:]
	if fd.IsList() || fd.IsMap() {
		if len(rest) == 0 {
			return true
		}
		if _, ok := fieldpath.Index(rest[0]); !ok {
			return false
		}
		rest = rest[1:]
	}
	if len(rest) == 0 {
		return true
	}
	if fd.Message() == nil {
		return false
	}
	return resolvable(fd.Message(), rest, depth+1)
}

// message builds the plan of md for the wanted paths (all resolvable); without wants, the shared
// validating plan.
func (c *compiler) message(md protoreflect.MessageDescriptor, wants []want) *mplan {
	if len(wants) == 0 {
		if m, ok := c.validate[md.FullName()]; ok {
			return m
		}
	}
	m := &mplan{hasSlot: len(wants) > 0}
	if len(wants) == 0 {
		c.validate[md.FullName()] = m // before the fields: a recursive message finds it
	}
	fields := md.Fields()
	maxNum := 0
	for i := 0; i < fields.Len(); i++ {
		maxNum = max(maxNum, int(fields.Get(i).Number()))
	}
	if maxNum < 256 {
		m.dense = make([]*fplan, maxNum+1)
	} else {
		m.sparse = map[protowire.Number]*fplan{}
	}
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		var mine []want
		for _, w := range wants {
			if w.segs[0] == string(fd.Name()) {
				mine = append(mine, want{segs: w.segs[1:], slot: w.slot})
			}
		}
		f := c.field(m, fd, mine)
		if f == nil {
			continue
		}
		if m.dense != nil {
			m.dense[fd.Number()] = f
		} else {
			m.sparse[fd.Number()] = f
		}
	}
	return m
}

// field builds the plan of one field, or nil when a Scan can skip it without looking.
func (c *compiler) field(m *mplan, fd protoreflect.FieldDescriptor, wants []want) *fplan {
	f := &fplan{kind: fd.Kind(), slot: -1, repeated: fd.IsList() || fd.IsMap()}
	if fd.Kind() == protoreflect.EnumKind {
		f.enum = fd.Enum().Values()
		f.names = map[int32][]byte{}
		for i := 0; i < f.enum.Len(); i++ {
			v := f.enum.Get(i)
			f.names[int32(v.Number())] = []byte(v.Name())
		}
	}
	isMsg := fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind
	var deeper []want // paths into the field's message (non-repeated)
	byIndex := map[int][]want{}
	for _, w := range wants {
		switch {
		case len(w.segs) == 0:
			f.slot = w.slot
		case f.repeated:
			i, _ := fieldpath.Index(w.segs[0])
			byIndex[i] = append(byIndex[i], want{segs: w.segs[1:], slot: w.slot})
		default:
			deeper = append(deeper, w)
		}
	}
	for i, ws := range byIndex {
		e := pelem{i: i, slot: -1}
		var sub []want
		for _, w := range ws {
			if len(w.segs) == 0 {
				e.slot = w.slot
			} else {
				sub = append(sub, w)
			}
		}
		if isMsg {
			e.sub = c.message(fd.Message(), sub)
		}
		f.elems = append(f.elems, e)
	}
	if len(f.elems) > 0 {
		f.rep = m.nrep
		m.nrep++
	}
	if isMsg {
		f.sub = c.message(fd.Message(), deeper)
	}
	if f.slot >= 0 && !f.repeated && !fd.HasPresence() {
		m.zeroes = append(m.zeroes, f)
	}
	if f.slot < 0 && len(f.elems) == 0 && !isMsg {
		return nil // a scalar nobody reads: skipped as an unknown field
	}
	return f
}

// maxKeptScratch is the largest scratch a Scanner keeps between records.
const maxKeptScratch = 64 << 10

// Scanner holds a Scan's scratch: integers as text, and the counters of repeated fields. The zero
// value is ready; it is not safe for concurrent use.
type Scanner struct {
	scratch []byte
	counts  []int
}

// Scan walks b, a message of the plan's type, and fills vals[i] with the value at path i. On
// error every value is Missing.
func (s *Scanner) Scan(b []byte, p *Plan, vals []Value) error {
	vals = vals[:p.n]
	clear(vals)
	if cap(s.scratch) > maxKeptScratch {
		s.scratch = nil
	}
	s.scratch = s.scratch[:0]
	s.counts = s.counts[:0]
	if err := s.message(b, 0, p.root, vals, 0); err != nil {
		clear(vals)
		return err
	}
	return nil
}

// message walks one message (b, whose first byte is at offset off of the record).
func (s *Scanner) message(b []byte, off int, m *mplan, vals []Value, depth int) error {
	if depth > MaxDepth {
		return errAt(off, "nested deeper than "+strconv.Itoa(MaxDepth))
	}
	base := len(s.counts)
	for k := 0; k < m.nrep; k++ {
		s.counts = append(s.counts, 0)
	}
	pos := 0
	for pos < len(b) {
		num, typ, n := protowire.ConsumeTag(b[pos:])
		if n < 0 {
			return errAt(off+pos, "bad field tag: "+protowire.ParseError(n).Error())
		}
		f := m.field(num)
		if f == nil || !wireMatches(f, typ) {
			v := protowire.ConsumeFieldValue(num, typ, b[pos+n:])
			if v < 0 {
				return errAt(off+pos, "field "+strconv.Itoa(int(num))+": "+protowire.ParseError(v).Error())
			}
			pos += n + v
			continue
		}
		start := pos + n
		end, err := s.field(b, off, start, num, typ, f, m, base, vals, depth)
		if err != nil {
			return err
		}
		pos = end
	}
	for _, f := range m.zeroes {
		if v := &vals[f.slot]; v.Kind == jsonscan.Missing {
			*v = f.zero()
		}
	}
	s.counts = s.counts[:base]
	return nil
}

// wireMatches reports whether a field of f's kind may come with wire type typ (a repeated scalar
// also packed, as bytes).
func wireMatches(f *fplan, typ protowire.Type) bool {
	want := wireType(f.kind)
	return typ == want || (f.repeated && typ == protowire.BytesType && want != protowire.BytesType && want != protowire.StartGroupType)
}

func wireType(k protoreflect.Kind) protowire.Type {
	switch k {
	case protoreflect.BoolKind, protoreflect.EnumKind, protoreflect.Int32Kind, protoreflect.Int64Kind,
		protoreflect.Uint32Kind, protoreflect.Uint64Kind, protoreflect.Sint32Kind, protoreflect.Sint64Kind:
		return protowire.VarintType
	case protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind, protoreflect.FloatKind:
		return protowire.Fixed32Type
	case protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind, protoreflect.DoubleKind:
		return protowire.Fixed64Type
	case protoreflect.GroupKind:
		return protowire.StartGroupType
	}
	return protowire.BytesType // string, bytes, message
}

// field reads one occurrence of a known field whose value starts at b[start:], and returns the
// position past it.
func (s *Scanner) field(b []byte, off, start int, num protowire.Number, typ protowire.Type, f *fplan, m *mplan, base int, vals []Value, depth int) (int, error) {
	if f.repeated && typ == protowire.BytesType && wireType(f.kind) != protowire.BytesType {
		// Packed scalars: each is one element.
		data, n := protowire.ConsumeBytes(b[start:])
		if n < 0 {
			return 0, errAt(off+start, "field "+strconv.Itoa(int(num))+": "+protowire.ParseError(n).Error())
		}
		inner := start + n - len(data)
		for q := 0; q < len(data); {
			var v Value
			k, err := s.scalar(data[q:], off+inner+q, wireType(f.kind), f, &v)
			if err != nil {
				return 0, err
			}
			s.element(f, base, v, nil, 0, vals, depth)
			if f.slot >= 0 {
				vals[f.slot] = Value{Kind: jsonscan.Array, Raw: data[:len(data):len(data)]}
			}
			q += k
		}
		return start + n, nil
	}
	var v Value
	var sub []byte
	subOff := 0
	var n int
	switch f.kind {
	case protoreflect.MessageKind:
		sub, n = protowire.ConsumeBytes(b[start:])
		if n < 0 {
			return 0, errAt(off+start, "field "+strconv.Itoa(int(num))+": "+protowire.ParseError(n).Error())
		}
		subOff = off + start + n - len(sub)
		v = Value{Kind: jsonscan.Object, Raw: sub[:len(sub):len(sub)]}
	case protoreflect.GroupKind:
		sub, n = protowire.ConsumeGroup(num, b[start:])
		if n < 0 {
			return 0, errAt(off+start, "group "+strconv.Itoa(int(num))+": "+protowire.ParseError(n).Error())
		}
		subOff = off + start
		v = Value{Kind: jsonscan.Object, Raw: sub[:len(sub):len(sub)]}
	default:
		k, err := s.scalar(b[start:], off+start, typ, f, &v)
		if err != nil {
			return 0, err
		}
		n = k
	}
	if f.repeated {
		if len(f.elems) > 0 {
			if err := s.element(f, base, v, sub, subOff, vals, depth); err != nil {
				return 0, err
			}
		} else if f.sub != nil && sub != nil {
			if err := s.message(sub, subOff, f.sub, vals, depth+1); err != nil {
				return 0, err
			}
		}
		if f.slot >= 0 {
			vals[f.slot] = Value{Kind: jsonscan.Array, Raw: v.Raw}
		}
		return start + n, nil
	}
	if f.slot >= 0 {
		vals[f.slot] = v
	}
	if f.sub != nil && sub != nil {
		if err := s.message(sub, subOff, f.sub, vals, depth+1); err != nil {
			return 0, err
		}
	}
	return start + n, nil
}

// element counts one element of a repeated field and reads it when its index is wanted; an
// unwanted message element is still walked, to validate it.
func (s *Scanner) element(f *fplan, base int, v Value, sub []byte, subOff int, vals []Value, depth int) error {
	idx := -1
	if len(f.elems) > 0 {
		idx = s.counts[base+f.rep]
		s.counts[base+f.rep]++
	}
	for _, e := range f.elems {
		if e.i != idx {
			continue
		}
		if e.slot >= 0 {
			vals[e.slot] = v
		}
		if e.sub != nil && sub != nil {
			return s.message(sub, subOff, e.sub, vals, depth+1)
		}
		return nil
	}
	if f.sub != nil && sub != nil {
		return s.message(sub, subOff, f.sub, vals, depth+1)
	}
	return nil
}

// scalar reads a scalar of f's kind with wire type typ from b into v and returns its length.
func (s *Scanner) scalar(b []byte, off int, typ protowire.Type, f *fplan, v *Value) (int, error) {
	switch typ {
	case protowire.VarintType:
		x, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return 0, errAt(off, "varint: "+protowire.ParseError(n).Error())
		}
		switch f.kind {
		case protoreflect.BoolKind:
			*v = Value{Kind: jsonscan.Bool, Bool: x != 0}
		case protoreflect.EnumKind:
			if name, ok := f.names[int32(x)]; ok {
				*v = Value{Kind: jsonscan.String, Raw: name[:len(name):len(name)]}
			} else {
				s.int(v, int64(int32(x)))
			}
		case protoreflect.Int32Kind:
			s.int(v, int64(int32(x)))
		case protoreflect.Int64Kind:
			s.int(v, int64(x))
		case protoreflect.Uint32Kind:
			s.int(v, int64(uint32(x)))
		case protoreflect.Uint64Kind:
			s.uint(v, x)
		case protoreflect.Sint32Kind:
			s.int(v, int64(int32(protowire.DecodeZigZag(x&math.MaxUint32))))
		case protoreflect.Sint64Kind:
			s.int(v, protowire.DecodeZigZag(x))
		}
		return n, nil
	case protowire.Fixed32Type:
		x, n := protowire.ConsumeFixed32(b)
		if n < 0 {
			return 0, errAt(off, "fixed32: "+protowire.ParseError(n).Error())
		}
		switch f.kind {
		case protoreflect.FloatKind:
			*v = Value{Kind: jsonscan.Number, Num: float64(math.Float32frombits(x))}
		case protoreflect.Sfixed32Kind:
			s.int(v, int64(int32(x)))
		default:
			s.int(v, int64(x))
		}
		return n, nil
	case protowire.Fixed64Type:
		x, n := protowire.ConsumeFixed64(b)
		if n < 0 {
			return 0, errAt(off, "fixed64: "+protowire.ParseError(n).Error())
		}
		switch f.kind {
		case protoreflect.DoubleKind:
			*v = Value{Kind: jsonscan.Number, Num: math.Float64frombits(x)}
		case protoreflect.Sfixed64Kind:
			s.int(v, int64(x))
		default:
			s.uint(v, x)
		}
		return n, nil
	case protowire.BytesType:
		data, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return 0, errAt(off, "length-delimited: "+protowire.ParseError(n).Error())
		}
		*v = Value{Kind: jsonscan.String, Raw: data[:len(data):len(data)]}
		return n, nil
	}
	return 0, errAt(off, "unexpected wire type")
}

func (s *Scanner) int(v *Value, x int64) {
	off := len(s.scratch)
	s.scratch = strconv.AppendInt(s.scratch, x, 10)
	*v = Value{Kind: jsonscan.Number, Raw: s.scratch[off:len(s.scratch):len(s.scratch)], Num: float64(x)}
}

func (s *Scanner) uint(v *Value, x uint64) {
	off := len(s.scratch)
	s.scratch = strconv.AppendUint(s.scratch, x, 10)
	*v = Value{Kind: jsonscan.Number, Raw: s.scratch[off:len(s.scratch):len(s.scratch)], Num: float64(x)}
}

var (
	zeroText  = []byte("0")
	emptyText = []byte{}
)

// zero is the value of a field without presence that a message leaves out.
func (f *fplan) zero() Value {
	switch f.kind {
	case protoreflect.BoolKind:
		return Value{Kind: jsonscan.Bool}
	case protoreflect.StringKind, protoreflect.BytesKind:
		return Value{Kind: jsonscan.String, Raw: emptyText[:0:0]}
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		return Value{Kind: jsonscan.Number}
	case protoreflect.EnumKind:
		if name, ok := f.names[0]; ok {
			return Value{Kind: jsonscan.String, Raw: name[:len(name):len(name)]}
		}
	}
	return Value{Kind: jsonscan.Number, Raw: zeroText[:1:1]}
}
