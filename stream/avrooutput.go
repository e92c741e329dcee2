package stream

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"
)

// OutputEncoder turns the JSON value an operator emits into the wire format of its topic. The
// operators keep writing JSON (one encoding to test and document); an encoder set on
// Pipeline.OutputEncoders for a topic rewrites every value emitted to it, in Task.Emit and
// Task.EmitRecord, so every output operator gets the format without knowing of it.
type OutputEncoder interface {
	// Register makes the encoder's schema known for topic (at start-up, before any record).
	Register(ctx context.Context, topic string) error
	// Encode appends the encoding of the JSON value to dst.
	Encode(dst, value []byte) ([]byte, error)
}

// registerOutputs registers the schema of every output encoder, in topic order, so that a
// registry refusing one stops start-up before any record is read.
func (p *Pipeline) registerOutputs(ctx context.Context) error {
	topics := make([]string, 0, len(p.OutputEncoders))
	for t := range p.OutputEncoders {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	for _, t := range topics {
		if err := p.OutputEncoders[t].Register(ctx, t); err != nil {
			return err
		}
	}
	return nil
}

// registerOutput registers s under `<topic>-value` and returns its id. Registering a schema the
// subject already has returns its id; every failure stops start-up, an output nobody can decode
// being worse than none. The registry's answer (HTTP 409 for an incompatible schema, 401/403 for
// credentials) is in the error.
func registerOutput(ctx context.Context, reg *Registry, topic string, s sr.Schema, kind string) (int, error) {
	if err := reg.check(); err != nil {
		return 0, fmt.Errorf("stream: output %s: %w", topic, err)
	}
	subject := topic + "-value"
	timeout := reg.Timeout
	if timeout == 0 {
		timeout = DefaultRegistryTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ss, err := reg.Client.CreateSchema(ctx, subject, s)
	if err != nil {
		return 0, fmt.Errorf("stream: output %s: registering its %s schema under subject %s: %w", topic, kind, subject, err)
	}
	return ss.ID, nil
}

// AvroOutput writes values in Confluent's Avro wire format: magic byte 0, the schema id (big
// endian, 4 bytes), then the Avro binary encoding of the value under the schema registered as
// `<topic>-value` (TopicNameStrategy). The JSON value is read into generic values and written
// by walking the schema, so a field the JSON lacks is null (or the empty array or map) when the
// schema allows it and an error otherwise.
type AvroOutput struct {
	Registry *Registry
	text     string
	schema   avro.Schema
	header   [5]byte
}

// NewAvroOutput parses the Avro schema text of an output.
func NewAvroOutput(reg *Registry, schemaText string) (*AvroOutput, error) {
	s, err := avro.Parse(schemaText)
	if err != nil {
		return nil, fmt.Errorf("stream: output avro schema: %w", err)
	}
	return &AvroOutput{Registry: reg, text: schemaText, schema: s}, nil
}

// Schema is the schema text the encoder registers.
func (a *AvroOutput) Schema() string { return a.text }

// Register registers the schema under `<topic>-value`. Registering a schema the subject already
// has returns its id; a registry that refuses it (incompatible with the subject's earlier
// versions, say) is an error naming the subject.
func (a *AvroOutput) Register(ctx context.Context, topic string) error {
	id, err := registerOutput(ctx, a.Registry, topic, sr.Schema{Schema: a.text, Type: sr.TypeAvro}, "Avro")
	if err != nil {
		return err
	}
	a.header[0] = 0
	binary.BigEndian.PutUint32(a.header[1:], uint32(id))
	return nil
}

// ID is the registered schema id (after Register).
func (a *AvroOutput) ID() int { return int(binary.BigEndian.Uint32(a.header[1:])) }

// Encode appends the wire-format encoding of the JSON object value to dst.
func (a *AvroOutput) Encode(dst, value []byte) ([]byte, error) {
	v, err := readOutputJSON(value)
	if err != nil {
		return dst, err
	}
	dst = append(dst, a.header[:]...)
	return appendAvro(dst, a.schema, v, "")
}

// readOutputJSON reads an output's JSON value into generic values, numbers as json.Number so that
// integers stay exact until the schema says what they are.
func readOutputJSON(value []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(value))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("stream: output value is not JSON: %w", err)
	}
	return v, nil
}

// appendAvro appends the Avro binary encoding of the generic JSON value v under s.
func appendAvro(dst []byte, s avro.Schema, v any, path string) ([]byte, error) {
	switch s := s.(type) {
	case *avro.RecordSchema:
		m, ok := v.(map[string]any)
		if !ok {
			return dst, fmt.Errorf("stream: output field %s: want an object for record %s", orRoot(path), s.Name())
		}
		var err error
		for _, f := range s.Fields() {
			fv, ok := m[f.Name()]
			if !ok && f.HasDefault() {
				fv = f.Default()
			}
			if dst, err = appendAvro(dst, f.Type(), fv, join(path, f.Name())); err != nil {
				return dst, err
			}
		}
		return dst, nil
	case *avro.UnionSchema:
		for i, t := range s.Types() {
			if fits(t, v) {
				dst = binary.AppendVarint(dst, int64(i))
				return appendAvro(dst, t, v, path)
			}
		}
		return dst, fmt.Errorf("stream: output field %s: %v fits no branch of %s", orRoot(path), v, s.String())
	case *avro.MapSchema:
		m, ok := v.(map[string]any)
		if v == nil {
			m, ok = nil, true
		}
		if !ok {
			return dst, fmt.Errorf("stream: output field %s: want an object for a map", orRoot(path))
		}
		if len(m) > 0 {
			dst = binary.AppendVarint(dst, int64(len(m)))
			// In key order, so that one value always has one encoding (Go's map order is random).
			keys := make([]string, 0, len(m))
			for k := range m {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			var err error
			for _, k := range keys {
				dst = appendAvroString(dst, k)
				if dst, err = appendAvro(dst, s.Values(), m[k], join(path, k)); err != nil {
					return dst, err
				}
			}
		}
		return append(dst, 0), nil
	case *avro.ArraySchema:
		xs, ok := v.([]any)
		if v == nil {
			xs, ok = nil, true
		}
		if !ok {
			return dst, fmt.Errorf("stream: output field %s: want an array", orRoot(path))
		}
		if len(xs) > 0 {
			dst = binary.AppendVarint(dst, int64(len(xs)))
			var err error
			for i, x := range xs {
				if dst, err = appendAvro(dst, s.Items(), x, join(path, strconv.Itoa(i))); err != nil {
					return dst, err
				}
			}
		}
		return append(dst, 0), nil
	case *avro.NullSchema:
		if v != nil {
			return dst, fmt.Errorf("stream: output field %s: %v is not null", orRoot(path), v)
		}
		return dst, nil
	case *avro.PrimitiveSchema:
		if !fits(s, v) {
			return dst, fmt.Errorf("stream: output field %s: %v is not a %s", orRoot(path), v, s.Type())
		}
		switch s.Type() {
		case avro.Boolean:
			if v.(bool) {
				return append(dst, 1), nil
			}
			return append(dst, 0), nil
		case avro.Int, avro.Long:
			n, _ := v.(json.Number).Int64()
			return binary.AppendVarint(dst, n), nil
		case avro.Double:
			x, _ := number(v)
			return binary.LittleEndian.AppendUint64(dst, math.Float64bits(x)), nil
		case avro.String:
			return appendAvroString(dst, v.(string)), nil
		}
	}
	return dst, fmt.Errorf("stream: output field %s: Avro type %s is not supported in outputs", orRoot(path), s.Type())
}

// fits reports whether the JSON value v can be written as s: the test that picks a union's
// branch. An integral number fits int and long (int within 32 bits) and every number fits
// double, so a union listing long before double keeps integers exact.
func fits(s avro.Schema, v any) bool {
	switch s.Type() {
	case avro.Null:
		return v == nil
	case avro.Boolean:
		_, ok := v.(bool)
		return ok
	case avro.Int, avro.Long:
		n, ok := v.(json.Number)
		if !ok {
			return false
		}
		i, err := n.Int64()
		return err == nil && (s.Type() == avro.Long || i == int64(int32(i)))
	case avro.Double:
		_, ok := number(v)
		return ok
	case avro.String:
		_, ok := v.(string)
		return ok
	case avro.Record, avro.Map:
		_, ok := v.(map[string]any)
		return ok
	case avro.Array:
		_, ok := v.([]any)
		return ok
	}
	return false
}

func number(v any) (float64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	x, err := n.Float64()
	return x, err == nil
}

func appendAvroString(dst []byte, s string) []byte {
	dst = binary.AppendVarint(dst, int64(len(s)))
	return append(dst, s...)
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func orRoot(path string) string {
	if path == "" {
		return "(the value)"
	}
	return path
}
