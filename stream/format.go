package stream

import (
	"errors"
	"fmt"

	"github.com/streamd/streamd/internal/jsonscan"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Format turns source records into events. A Format is shared by all tasks; each task gets its own
// Decoder, which need not be safe for concurrent use.
//
// SchemaFormat is the Format streamd builds: a Schema (the declared fields and their rules) over a
// Wire (how the bytes are encoded). A new wire encoding is a new Wire, not a new Format.
type Format interface {
	// Init checks the format and prepares its shared tables. The runtime calls it before
	// NewDecoder; once it has succeeded, later calls do nothing and return nil, so that a format
	// prepared by the config compiler is not prepared again (and is not rebuilt under a running
	// runtime that shares it). It is not safe for concurrent use.
	Init() error
	// NewDecoder returns a decoder for one task. Init must have succeeded.
	NewDecoder() Decoder
	// FieldIndex returns the index in Event.Fields of a declared field.
	FieldIndex(name string) (int, bool)
	// FieldNames lists the declared fields in index order.
	FieldNames() []string
}

// Decoder decodes one record into ev, reusing ev's buffers. It returns a *Rejection for a record that
// cannot be accepted; any other error is a bug or an I/O failure and stops the task.
type Decoder interface {
	Decode(rec *kgo.Record, ev *Event) error
}

// Wire is a wire encoding (JSON, Avro, Protobuf...): it finds the values at a fixed list of paths in
// a record, and knows nothing of what the pipeline requires of them. Typing, required fields, ranges,
// allowed values, the key, the event id and the event time are applied afterwards by SchemaFormat,
// the same way for every encoding, so that a record is accepted or rejected, with the same reason
// and detail, whatever its encoding.
//
// A Wire is shared by all tasks: Init is called once, then NewDecoder once per task.
type Wire interface {
	// Init prepares decoding of paths: slot i of the values a decoder fills is the value at
	// paths[i]. Paths are distinct and not empty; what a path means (a top-level key, a dotted
	// path into nested records) is the encoding's to define and document.
	Init(paths []string) error
	// NewDecoder returns a decoder for one task; it need not be safe for concurrent use.
	NewDecoder() WireDecoder
}

// WireDecoder reads one record's values.
type WireDecoder interface {
	// Decode fills vals[i] with the value at path i (len(vals) is the number of paths), or sets it
	// to ValueMissing when the record has no such value. It returns a *Rejection for a record that
	// is not well formed in the encoding; the record's size has already been checked. Values may
	// point into rec and into the decoder's own scratch, and need only stay valid until the next
	// Decode.
	Decode(rec *kgo.Record, vals []Value) error
}

// ValueKind says what a wire decoder found at a path. The names match JSON's; encodings map their
// types onto them (an Avro record or map is an Object, a Protobuf repeated field an Array). It is
// the JSON scanner's kind, so that the JSON wire decodes straight into the format's values.
type ValueKind = jsonscan.Kind

const (
	// ValueMissing: the record has no value at the path (the zero Value).
	ValueMissing = jsonscan.Missing
	// ValueNull: an explicit null (JSON null, an Avro null branch).
	ValueNull = jsonscan.Null
	// ValueNumber: a number; see Value.Raw and Value.Num.
	ValueNumber = jsonscan.Number
	// ValueString: a string; Raw holds its decoded bytes, which may not be valid UTF-8 (the schema
	// checks).
	ValueString = jsonscan.String
	// ValueBool: true or false; see Value.Bool.
	ValueBool = jsonscan.Bool
	// ValueObject: a nested object, record or map; Raw is its encoding, quoted only in details.
	ValueObject = jsonscan.Object
	// ValueArray: an array or repeated value; Raw is its encoding, quoted only in details.
	ValueArray = jsonscan.Array
)

// Value is one value a wire decoder found, before the schema's rules are applied:
//
//   - Kind is what was found (ValueMissing for the zero Value).
//   - Bool is a ValueBool's value.
//   - Raw: for ValueString the decoded bytes; for ValueNumber the number's text in JSON number
//     syntax (a text encoding passes its literal as written; a binary one writes integers with
//     strconv.AppendInt into its scratch, so that they can be keys and ids exactly), or nil when
//     the number is in Num; for other kinds the value's encoding, quoted in rejection details.
//   - Num is a ValueNumber's value when Raw is nil: a binary float (NaN and ±Inf included, which
//     the schema rejects as not finite).
//
// It is the JSON scanner's Value (internal/jsonscan), shared so that the JSON wire needs no copy.
type Value = jsonscan.Value

// SchemaFormat is a Format made of a Schema and a Wire: the wire decoder reads the declared paths,
// then the schema's rules turn the values into the Event's typed fields, key, id and time. Every
// encoding therefore gets the same checks, reasons and details; an encoding adds only its Wire.
type SchemaFormat struct {
	Schema
	Wire Wire

	rules *rules
}

// Init implements Format: it checks the schema, naming every inconsistency, and prepares the wire
// decoder for the schema's paths.
func (f *SchemaFormat) Init() error {
	if f.rules != nil {
		return nil
	}
	r, err := f.Schema.compile()
	if f.Wire == nil {
		err = errors.Join(err, fmt.Errorf("%w: no wire encoding", ErrBadFormat))
	}
	if err != nil {
		return err
	}
	if err := f.Wire.Init(r.paths); err != nil {
		return fmt.Errorf("%w: %w", ErrBadFormat, err)
	}
	f.rules = r
	return nil
}

// NewDecoder implements Format. Init must have succeeded.
func (f *SchemaFormat) NewDecoder() Decoder {
	if f.rules == nil {
		panic("stream: NewDecoder before a successful Init")
	}
	return &schemaDecoder{r: f.rules, wire: f.Wire.NewDecoder(), vals: make([]Value, len(f.rules.paths))}
}

// schemaDecoder is one task's decoder: the size limit, then the wire, then the rules.
type schemaDecoder struct {
	r    *rules
	wire WireDecoder
	vals []Value
}

func (d *schemaDecoder) Decode(rec *kgo.Record, ev *Event) error {
	r := d.r
	ev.reset(rec, len(r.fields))
	if r.maxRecordBytes > 0 && len(rec.Value) > r.maxRecordBytes {
		return reject(ReasonTooLarge, "", "value is %d bytes, source.max_record_bytes is %d", len(rec.Value), r.maxRecordBytes)
	}
	if err := d.wire.Decode(rec, d.vals); err != nil {
		return err
	}
	return r.apply(rec, d.vals, ev)
}
