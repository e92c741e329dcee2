package stream

import (
	"errors"
	"fmt"
	"strings"

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
	// paths[i].Path. Paths are distinct and not empty, and never name a Kafka header (SchemaFormat
	// reads those); a dotted path (items.0.price) names a value nested in records, messages or
	// objects, a numeric segment an element of an array, as internal/fieldpath splits it. Required says
	// that the pipeline rejects a record without the value: a wire whose records carry a schema
	// (Avro, Protobuf) rejects a record whose schema lacks a required path with
	// ReasonSchemaMissingField, the schema being at fault rather than the record.
	Init(paths []WirePath) error
	// NewDecoder returns a decoder for one task; it need not be safe for concurrent use.
	NewDecoder() WireDecoder
}

// WirePath is one path a Wire reads.
type WirePath struct {
	Path     string
	Required bool
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
	var wp []WirePath
	for slot, p := range r.paths {
		if name, ok := strings.CutPrefix(p, HeaderPrefix); ok {
			r.headers = append(r.headers, headerSlot{name: name, slot: slot})
			continue
		}
		r.wireSlots = append(r.wireSlots, slot)
		wp = append(wp, WirePath{Path: p, Required: r.required(slot)})
	}
	if err := f.Wire.Init(wp); err != nil {
		return fmt.Errorf("%w: %w", ErrBadFormat, err)
	}
	f.rules = r
	return nil
}

// HeaderPrefix starts a path that names a Kafka header of the record rather than a value in its
// body: header:x-tenant is the value of the header x-tenant (the last one, when the record has
// several), a string; declared as a number or a bool, its text is read as one (42, 1.5, true).
const HeaderPrefix = "header:"

// NewDecoder implements Format. Init must have succeeded.
func (f *SchemaFormat) NewDecoder() Decoder {
	if f.rules == nil {
		panic("stream: NewDecoder before a successful Init")
	}
	d := &schemaDecoder{r: f.rules, wire: f.Wire.NewDecoder(), vals: make([]Value, len(f.rules.paths))}
	d.wvals = d.vals
	if len(f.rules.headers) > 0 {
		d.wvals = make([]Value, len(f.rules.wireSlots))
	}
	return d
}

// schemaDecoder is one task's decoder: the size limit, then the wire, then the rules.
type schemaDecoder struct {
	r    *rules
	wire WireDecoder
	vals []Value
	// wvals are the wire's values: vals itself when no path names a header, else the body's
	// paths only, copied into their slots of vals after the wire has read them.
	wvals []Value
}

func (d *schemaDecoder) Decode(rec *kgo.Record, ev *Event) error {
	r := d.r
	ev.reset(rec, len(r.fields))
	if r.maxRecordBytes > 0 && len(rec.Value) > r.maxRecordBytes {
		return reject(ReasonTooLarge, "", "value is %d bytes, source.max_record_bytes is %d", len(rec.Value), r.maxRecordBytes)
	}
	if err := d.wire.Decode(rec, d.wvals); err != nil {
		return err
	}
	if len(r.headers) > 0 {
		for i, slot := range r.wireSlots {
			d.vals[slot] = d.wvals[i]
		}
		for _, h := range r.headers {
			d.vals[h.slot] = r.headerValue(rec, h)
		}
	}
	return r.apply(rec, d.vals, ev)
}
