package stream

import (
	"errors"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/internal/jsonscan"
)

// JSONWire reads JSON object records (internal/jsonscan): a path is a top-level key, matched exactly
// (a name with a dot is a key with a dot; dotted paths into nested objects, which the Avro and
// Protobuf wires read, are not implemented for JSON yet). The whole record is validated as JSON, the fields nobody
// reads included, so a record passes or fails the same way whatever the schema. Use a new JSONWire
// (&JSONWire{}) for each format.
type JSONWire struct {
	schema *jsonscan.Schema
}

// Init implements Wire.
func (w *JSONWire) Init(paths []WirePath) error {
	names := make([]string, len(paths))
	for i, p := range paths {
		names[i] = p.Path
	}
	w.schema = jsonscan.NewSchema(names...)
	return nil
}

// NewDecoder implements Wire.
func (w *JSONWire) NewDecoder() WireDecoder { return &jsonDecoder{schema: w.schema} }

type jsonDecoder struct {
	schema *jsonscan.Schema
	sc     jsonscan.Scanner
}

// Decode scans the record straight into vals: stream's Value is the scanner's.
func (d *jsonDecoder) Decode(rec *kgo.Record, vals []Value) error {
	if err := d.sc.Scan(rec.Value, d.schema, vals); err != nil {
		if errors.Is(err, jsonscan.ErrNotObject) {
			return reject(ReasonNotAnObject, "", "the value is JSON but not an object")
		}
		return reject(ReasonMalformedJSON, "", "%s", strings.TrimPrefix(err.Error(), "jsonscan: "))
	}
	return nil
}

// JSONFormat is the Format of JSON object records: a SchemaFormat over a JSONWire, with the
// schema's declarations written in place (so that a Go pipeline reads as its YAML config does).
type JSONFormat struct {
	// KeyField names the entity key field (a string or an integer). Empty: the Kafka record key.
	KeyField string
	// IDField names the event id field (a string or an integer). Empty: "topic/partition/offset".
	IDField string
	Time    EventTimeSpec
	Fields  []FieldSpec
	// MaxRecordBytes rejects larger record values before parsing. Zero means no limit.
	MaxRecordBytes int

	f *SchemaFormat
}

func (f *JSONFormat) schema() Schema {
	return Schema{KeyField: f.KeyField, IDField: f.IDField, Time: f.Time, Fields: f.Fields, MaxRecordBytes: f.MaxRecordBytes}
}

// Init implements Format. It must be called once before NewDecoder; the config compiler and
// NewRuntime do.
func (f *JSONFormat) Init() error {
	if f.f != nil {
		return nil
	}
	sf := &SchemaFormat{Schema: f.schema(), Wire: &JSONWire{}}
	if err := sf.Init(); err != nil {
		return err
	}
	f.f = sf
	return nil
}

// FieldIndex implements Format.
func (f *JSONFormat) FieldIndex(name string) (int, bool) {
	s := f.schema()
	return s.FieldIndex(name)
}

// FieldNames implements Format.
func (f *JSONFormat) FieldNames() []string {
	s := f.schema()
	return s.FieldNames()
}

// NewDecoder implements Format. Init must have succeeded.
func (f *JSONFormat) NewDecoder() Decoder {
	if f.f == nil {
		panic("stream: JSONFormat.NewDecoder before a successful Init")
	}
	return f.f.NewDecoder()
}
