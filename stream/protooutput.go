package stream

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"sort"

	"github.com/bufbuild/protocompile"
	"github.com/twmb/franz-go/pkg/sr"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// ProtobufOutput writes values in Confluent's Protobuf wire format: magic byte 0, the schema id,
// the message indexes ([0], the file's first message, written as the single byte 0), then the
// message, under the .proto schema registered as `<topic>-value`. The JSON value is read into
// generic values and written by walking the first message's descriptor: a JSON field is the
// message field of its name; null is an absent field (an `optional` scalar, a message); a message
// whose fields are all one oneof (a "choice", such as a label that is a bool, a number or a string)
// takes a JSON scalar in the first of its fields that fits, and null as the empty message; so
// does a message of one field (OptionalDouble).
type ProtobufOutput struct {
	Registry *Registry
	text     string
	md       protoreflect.MessageDescriptor
	header   [6]byte
}

// NewProtobufOutput compiles the .proto schema text of an output (no imports).
func NewProtobufOutput(reg *Registry, schemaText string) (*ProtobufOutput, error) {
	const name = "output.proto"
	comp := protocompile.Compiler{Resolver: &protocompile.SourceResolver{
		Accessor: protocompile.SourceAccessorFromMap(map[string]string{name: schemaText})}}
	fds, err := comp.Compile(context.Background(), name)
	if err != nil {
		return nil, fmt.Errorf("stream: output protobuf schema: %w", err)
	}
	if fds[0].Messages().Len() == 0 {
		return nil, fmt.Errorf("stream: output protobuf schema defines no message")
	}
	return &ProtobufOutput{Registry: reg, text: schemaText, md: fds[0].Messages().Get(0)}, nil
}

// Schema is the schema text the encoder registers.
func (p *ProtobufOutput) Schema() string { return p.text }

// Register registers the schema under `<topic>-value`, as AvroOutput.Register.
func (p *ProtobufOutput) Register(ctx context.Context, topic string) error {
	id, err := registerOutput(ctx, p.Registry, topic, sr.Schema{Schema: p.text, Type: sr.TypeProtobuf}, "Protobuf")
	if err != nil {
		return err
	}
	binary.BigEndian.PutUint32(p.header[1:5], uint32(id))
	p.header[5] = 0 // message indexes [0]
	return nil
}

// ID is the registered schema id (after Register).
func (p *ProtobufOutput) ID() int { return int(binary.BigEndian.Uint32(p.header[1:5])) }

// Encode appends the wire-format encoding of the JSON object value to dst.
func (p *ProtobufOutput) Encode(dst, value []byte) ([]byte, error) {
	v, err := readOutputJSON(value)
	if err != nil {
		return dst, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return dst, fmt.Errorf("stream: output value is not a JSON object")
	}
	dst = append(dst, p.header[:]...)
	return appendProtoMessage(dst, p.md, m, "")
}

// choice reports whether md is a wrapper of a JSON scalar: a message of one field (an optional
// double, say), or every field in one (non-synthetic) oneof.
func choice(md protoreflect.MessageDescriptor) bool {
	fs := md.Fields()
	if fs.Len() == 0 {
		return false
	}
	if fs.Len() == 1 {
		return true
	}
	o := fs.Get(0).ContainingOneof()
	if o == nil || o.IsSynthetic() {
		return false
	}
	for i := 0; i < fs.Len(); i++ {
		if fs.Get(i).ContainingOneof() != o {
			return false
		}
	}
	return true
}

func appendProtoMessage(dst []byte, md protoreflect.MessageDescriptor, m map[string]any, path string) ([]byte, error) {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fd := md.Fields().ByName(protoreflect.Name(k))
		if fd == nil {
			return dst, fmt.Errorf("stream: output field %s: not in message %s", join(path, k), md.FullName())
		}
		var err error
		if dst, err = appendProtoField(dst, fd, m[k], join(path, k)); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

func appendProtoField(dst []byte, fd protoreflect.FieldDescriptor, v any, path string) ([]byte, error) {
	switch {
	case fd.IsMap():
		m, ok := v.(map[string]any)
		if v == nil {
			return dst, nil
		}
		if !ok {
			return dst, fmt.Errorf("stream: output field %s: want an object for a map", path)
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			var entry []byte
			entry = protowire.AppendTag(entry, 1, protowire.BytesType)
			entry = protowire.AppendString(entry, k)
			var err error
			if entry, err = appendProtoValue(entry, fd.MapValue(), m[k], join(path, k), true); err != nil {
				return dst, err
			}
			dst = protowire.AppendTag(dst, fd.Number(), protowire.BytesType)
			dst = protowire.AppendBytes(dst, entry)
		}
		return dst, nil
	case fd.IsList():
		xs, ok := v.([]any)
		if v == nil {
			return dst, nil
		}
		if !ok {
			return dst, fmt.Errorf("stream: output field %s: want an array", path)
		}
		var err error
		for i, x := range xs {
			if dst, err = appendProtoValue(dst, fd, x, fmt.Sprintf("%s.%d", path, i), true); err != nil {
				return dst, err
			}
		}
		return dst, nil
	}
	return appendProtoValue(dst, fd, v, path, false)
}

// appendProtoValue appends one value of fd (an element of a list, a map value, or the field). In
// a list or a map a value is always written; elsewhere null is an absent field.
func appendProtoValue(dst []byte, fd protoreflect.FieldDescriptor, v any, path string, always bool) ([]byte, error) {
	if v == nil {
		switch {
		case fd.Kind() == protoreflect.MessageKind && always:
			dst = protowire.AppendTag(dst, fd.Number(), protowire.BytesType)
			return protowire.AppendBytes(dst, nil), nil
		case fd.Kind() == protoreflect.MessageKind || (fd.HasPresence() && !always):
			return dst, nil
		}
		return dst, fmt.Errorf("stream: output field %s: null for a field that cannot be absent", path)
	}
	switch fd.Kind() {
	case protoreflect.MessageKind:
		md := fd.Message()
		var body []byte
		var err error
		if m, ok := v.(map[string]any); ok {
			body, err = appendProtoMessage(nil, md, m, path)
		} else if choice(md) {
			body, err = appendProtoChoice(nil, md, v, path)
		} else {
			err = fmt.Errorf("stream: output field %s: want an object for message %s", path, md.FullName())
		}
		if err != nil {
			return dst, err
		}
		dst = protowire.AppendTag(dst, fd.Number(), protowire.BytesType)
		return protowire.AppendBytes(dst, body), nil
	case protoreflect.StringKind:
		s, ok := v.(string)
		if !ok {
			return dst, fmt.Errorf("stream: output field %s: %v is not a string", path, v)
		}
		dst = protowire.AppendTag(dst, fd.Number(), protowire.BytesType)
		return protowire.AppendString(dst, s), nil
	case protoreflect.BoolKind:
		b, ok := v.(bool)
		if !ok {
			return dst, fmt.Errorf("stream: output field %s: %v is not a bool", path, v)
		}
		dst = protowire.AppendTag(dst, fd.Number(), protowire.VarintType)
		return protowire.AppendVarint(dst, protowire.EncodeBool(b)), nil
	case protoreflect.Int64Kind, protoreflect.Int32Kind:
		n, ok := v.(json.Number)
		i, err := n.Int64()
		if !ok || err != nil || (fd.Kind() == protoreflect.Int32Kind && i != int64(int32(i))) {
			return dst, fmt.Errorf("stream: output field %s: %v is not an integer of %s", path, v, fd.Kind())
		}
		dst = protowire.AppendTag(dst, fd.Number(), protowire.VarintType)
		return protowire.AppendVarint(dst, uint64(i)), nil
	case protoreflect.DoubleKind:
		x, ok := number(v)
		if !ok {
			return dst, fmt.Errorf("stream: output field %s: %v is not a number", path, v)
		}
		dst = protowire.AppendTag(dst, fd.Number(), protowire.Fixed64Type)
		return protowire.AppendFixed64(dst, math.Float64bits(x)), nil
	}
	return dst, fmt.Errorf("stream: output field %s: Protobuf kind %s is not supported in outputs", path, fd.Kind())
}

// appendProtoChoice writes the JSON scalar v as the first field of the oneof wrapper md it fits.
func appendProtoChoice(dst []byte, md protoreflect.MessageDescriptor, v any, path string) ([]byte, error) {
	fs := md.Fields()
	for i := 0; i < fs.Len(); i++ {
		fd := fs.Get(i)
		if fd.Kind() == protoreflect.MessageKind {
			continue
		}
		if b, err := appendProtoValue(dst, fd, v, path, true); err == nil {
			return b, nil
		}
	}
	return dst, fmt.Errorf("stream: output field %s: %v fits no field of %s", path, v, md.FullName())
}
