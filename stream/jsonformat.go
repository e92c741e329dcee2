package stream

import (
	"errors"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/internal/fieldpath"
	"github.com/streamd/streamd/internal/jsonscan"
)

// JSONWire reads JSON object records (internal/jsonscan). A path is split at its dots into
// segments (internal/fieldpath), each a key of an object or, when it is a decimal index, an element
// of an array: payment.amount is the key amount of the object under payment, items.0.price the
// price of the first item. A dotted path always means nesting, as in Avro and Protobuf; a key that
// itself contains a dot cannot be named (rename it upstream). The whole record is validated as
// JSON, the fields nobody reads included, so a record passes or fails the same way whatever the
// schema; a key repeated in the top-level object or in an object along a declared path is a
// duplicate_field dead letter, and a lone UTF-16 surrogate escape anywhere an invalid_string one.
// Use a new JSONWire (&JSONWire{}) for each format.
type JSONWire struct {
	schema *jsonscan.Schema
}

// Init implements Wire.
func (w *JSONWire) Init(paths []WirePath) error {
	segs := make([][]string, len(paths))
	for i, p := range paths {
		s, err := fieldpath.Parse(p.Path)
		if err != nil {
			return err
		}
		segs[i] = s
	}
	w.schema = jsonscan.NewPathSchema(segs...)
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
		var de *jsonscan.DuplicateKeyError
		if errors.As(err, &de) {
			// The key is named in the detail, not as the field: it may be a key no path reads.
			return reject(ReasonDuplicateField, "", "key %q twice in one object (again at offset %d)", clip([]byte(de.Key)), de.Offset)
		}
		if errors.Is(err, jsonscan.ErrLoneSurrogate) {
			return reject(ReasonInvalidString, "", "%s", strings.TrimPrefix(err.Error(), "jsonscan: "))
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
	// Rekey accepts a KeyField that differs from the Kafka record key (see Schema.Rekey).
	Rekey bool

	f *SchemaFormat
}

func (f *JSONFormat) schema() Schema {
	return Schema{KeyField: f.KeyField, IDField: f.IDField, Time: f.Time, Fields: f.Fields, MaxRecordBytes: f.MaxRecordBytes, Rekey: f.Rekey}
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
