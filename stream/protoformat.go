package stream

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/bufbuild/protocompile"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/streamd/streamd/internal/fieldpath"
	"github.com/streamd/streamd/internal/protoscan"
)

// ProtobufWire reads Protobuf records in Confluent's wire format (magic byte 0, the schema's id,
// the message indexes that pick the message type in the schema's .proto file, the message), their
// schemas from a schema registry (registry.go). A path is a dotted path through messages (by
// field name) and repeated fields (by index). Each schema id is compiled once (the .proto text and
// the files it imports, through protocompile) into one plan per message type that reads only the
// declared paths (internal/protoscan). Use a new ProtobufWire for each format.
type ProtobufWire struct {
	Registry *Registry

	paths    [][]string
	names    []string
	required []bool
	cache    *schemaCache[*protoSchema]
}

// protoSchema is one schema id compiled: a plan per message type of its file.
type protoSchema struct {
	id    int
	types []protoType
}

type protoType struct {
	indexes []int // the message indexes of the type: [0] is the file's first message
	name    protoreflect.FullName
	plan    *protoscan.Plan
	rej     *Rejection // the type lacks a required path
}

// maxMessageIndexes bounds the message indexes of a record (the nesting of its message type).
const maxMessageIndexes = 32

// Init implements Wire.
func (w *ProtobufWire) Init(paths []WirePath) error {
	if err := w.Registry.check(); err != nil {
		return fmt.Errorf("protobuf: %w", err)
	}
	for _, p := range paths {
		segs, err := fieldpath.Parse(p.Path)
		if err != nil {
			return fmt.Errorf("protobuf: %w", err)
		}
		w.paths = append(w.paths, segs)
		w.names = append(w.names, p.Path)
		w.required = append(w.required, p.Required)
	}
	w.cache = newSchemaCache(w.Registry, w.compile)
	return nil
}

// compile parses the .proto of a schema id, with the files it imports (its references, and
// Google's well-known types), and plans every message type in it.
func (w *ProtobufWire) compile(id int, s sr.Schema, refs []namedSchema) (*protoSchema, *Rejection) {
	if s.Type != sr.TypeProtobuf {
		return nil, reject(ReasonUnknownSchema, "", "schema id %d is a %s schema, not Protobuf", id, s.Type)
	}
	files := map[string]string{}
	for _, ref := range refs {
		files[ref.Name] = ref.Schema.Schema
	}
	main := fmt.Sprintf("streamd-schema-%d.proto", id)
	files[main] = s.Schema
	comp := protocompile.Compiler{
		Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{Accessor: protocompile.SourceAccessorFromMap(files)}),
	}
	fds, err := comp.Compile(context.Background(), main)
	if err != nil {
		return nil, reject(ReasonUnknownSchema, "", "schema id %d does not compile as Protobuf: %s", id, clip([]byte(err.Error())))
	}
	ps := &protoSchema{id: id}
	var plan func(msgs protoreflect.MessageDescriptors, prefix []int)
	plan = func(msgs protoreflect.MessageDescriptors, prefix []int) {
		for i := 0; i < msgs.Len(); i++ {
			md := msgs.Get(i)
			if md.IsMapEntry() {
				continue
			}
			idx := append(append([]int(nil), prefix...), i)
			p := protoscan.Compile(md, w.paths)
			t := protoType{indexes: idx, name: md.FullName(), plan: p}
			if rj := schemaLacks(id, p.Absent(), w.names, w.required); rj != nil {
				rj.Detail = strings.Replace(rj.Detail, "has no field", "("+string(md.FullName())+") has no field", 1)
				t.rej = rj
			}
			ps.types = append(ps.types, t)
			if len(idx) < maxMessageIndexes {
				plan(md.Messages(), idx)
			}
		}
	}
	plan(fds[0].Messages(), nil)
	if len(ps.types) == 0 {
		return nil, reject(ReasonUnknownSchema, "", "schema id %d defines no message", id)
	}
	return ps, nil
}

// NewDecoder implements Wire.
func (w *ProtobufWire) NewDecoder() WireDecoder {
	return &protoDecoder{schemas: localSchemas[*protoSchema]{shared: w.cache}}
}

type protoDecoder struct {
	schemas localSchemas[*protoSchema]
	sc      protoscan.Scanner
	indexes []int
}

func (d *protoDecoder) Decode(rec *kgo.Record, vals []Value) error {
	id, body, rj := confluentHeader(rec.Value)
	if rj != nil {
		return rj
	}
	body, rj = d.messageIndexes(body)
	if rj != nil {
		return rj
	}
	e, err := d.schemas.get(id)
	if err != nil {
		return err
	}
	if e.rej != nil {
		return e.rej
	}
	t := e.plan.find(d.indexes)
	if t == nil {
		return reject(ReasonUnknownSchema, "", "schema id %d has no message type at indexes %v", id, d.indexes)
	}
	if t.rej != nil {
		return t.rej
	}
	if err := d.sc.Scan(body, t.plan, vals); err != nil {
		var se *protoscan.SyntaxError
		if errors.As(err, &se) {
			return reject(ReasonMalformedProtobuf, "", "schema id %d (%s): %s at byte %d of the message", id, t.name, se.Msg, se.Offset)
		}
		return reject(ReasonMalformedProtobuf, "", "schema id %d (%s): %v", id, t.name, err)
	}
	return nil
}

// messageIndexes reads the message indexes after the schema id into d.indexes: a zigzag varint
// count, then that many zigzag varints; a count of 0 is the common shorthand for [0].
func (d *protoDecoder) messageIndexes(b []byte) ([]byte, *Rejection) {
	d.indexes = d.indexes[:0]
	n, k := protowire.ConsumeVarint(b)
	if k < 0 {
		return nil, reject(ReasonBadWireFormat, "", "no Protobuf message indexes after the schema id")
	}
	b = b[k:]
	count := protowire.DecodeZigZag(n)
	if count == 0 {
		d.indexes = append(d.indexes, 0)
		return b, nil
	}
	if count < 0 || count > maxMessageIndexes {
		return nil, reject(ReasonBadWireFormat, "", "%d Protobuf message indexes (at most %d)", count, maxMessageIndexes)
	}
	for i := int64(0); i < count; i++ {
		v, k := protowire.ConsumeVarint(b)
		if k < 0 {
			return nil, reject(ReasonBadWireFormat, "", "truncated Protobuf message indexes")
		}
		b = b[k:]
		x := protowire.DecodeZigZag(v)
		if x < 0 || x > 1<<20 {
			return nil, reject(ReasonBadWireFormat, "", "Protobuf message index %d out of range", x)
		}
		d.indexes = append(d.indexes, int(x))
	}
	return b, nil
}

// find returns the message type at indexes, or nil.
func (s *protoSchema) find(indexes []int) *protoType {
	for i := range s.types {
		t := &s.types[i]
		if len(t.indexes) != len(indexes) {
			continue
		}
		same := true
		for k, x := range indexes {
			if t.indexes[k] != x {
				same = false
				break
			}
		}
		if same {
			return t
		}
	}
	return nil
}
