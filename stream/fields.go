package stream

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/internal/jsonscan"
)

// Schema declares what a pipeline reads from its input records, whatever their encoding: the fields
// and the rules each must meet, where the entity key, the event id and the event time come from, and
// the largest record accepted. SchemaFormat applies it after a Wire has found the values.
type Schema struct {
	// KeyField names the entity key field (a string or an integer). Empty: the Kafka record key.
	KeyField string
	// IDField names the event id field (a string or an integer). Empty: "topic/partition/offset".
	IDField string
	Time    EventTimeSpec
	Fields  []FieldSpec
	// MaxRecordBytes rejects larger record values before they are decoded. Zero means no limit.
	MaxRecordBytes int
	// Rekey accepts a KeyField that differs from the Kafka record key: the key is re-derived from
	// the value on purpose. Otherwise such a record is a key_mismatch dead letter, because its
	// entity's state would live in the partition of another key. Records without a Kafka key are
	// not compared.
	Rekey bool
}

// FieldSpec declares one field the pipeline reads, and the rules a record must meet.
type FieldSpec struct {
	Name     string
	Type     FieldKind // Number, String or Bool
	Required bool
	// Min and Max bound numbers (inclusive); nil means unbounded.
	Min, Max *float64
	// MaxLength bounds strings in bytes; 0 means unbounded.
	MaxLength int
	// Values, when not empty, is the closed set of allowed strings.
	Values []string
	// AllowControlCharacters accepts a string with C0 control characters (U+0000–U+001F) other
	// than tab, LF and CR, which are otherwise a control_characters dead letter.
	AllowControlCharacters bool
}

// ErrBadFormat is returned by Format.Init for an inconsistent schema or wire encoding.
var ErrBadFormat = errors.New("stream: bad format")

// FieldIndex returns the index in Event.Fields of a declared field.
func (s *Schema) FieldIndex(name string) (int, bool) {
	for i, fs := range s.Fields {
		if fs.Name == name {
			return i, true
		}
	}
	return 0, false
}

// FieldNames lists the declared fields in index order.
func (s *Schema) FieldNames() []string {
	out := make([]string, len(s.Fields))
	for i, fs := range s.Fields {
		out[i] = fs.Name
	}
	return out
}

// rules is a checked Schema, ready for the hot path. Slots index the values a wire decoder fills:
// the declared fields first (so that slot i is Event.Fields[i]), then the key, id and time fields.
type rules struct {
	fields         []FieldSpec
	keyField       string
	idField        string
	time           EventTimeSpec
	maxRecordBytes int
	rekey          bool

	paths   []string
	keySlot int // -1: the Kafka record key
	idSlot  int // -1: the lineage id
	tSlot   int // -1: the Kafka timestamp
	allowed []map[string]struct{}
	// headers are the slots whose path names a Kafka header; wireSlots the others, in the order
	// the wire reads them.
	headers   []headerSlot
	wireSlots []int
}

// compile checks the schema, naming every inconsistency, and builds its rules.
func (s *Schema) compile() (*rules, error) {
	var errs []error
	r := &rules{fields: s.Fields, keyField: s.KeyField, idField: s.IDField, time: s.Time, maxRecordBytes: s.MaxRecordBytes, rekey: s.Rekey}
	seen := map[string]bool{}
	add := func(n string) int {
		if err := CheckPath(n); err != nil {
			errs = append(errs, fmt.Errorf("%w: field %q: %v", ErrBadFormat, n, err))
		}
		r.paths = append(r.paths, n)
		return len(r.paths) - 1
	}
	for _, fs := range s.Fields {
		if fs.Name == "" {
			errs = append(errs, fmt.Errorf("%w: a field has no name", ErrBadFormat))
			continue
		}
		if seen[fs.Name] {
			errs = append(errs, fmt.Errorf("%w: field %q declared twice", ErrBadFormat, fs.Name))
			continue
		}
		seen[fs.Name] = true
		if fs.Type != Number && fs.Type != String && fs.Type != Bool {
			errs = append(errs, fmt.Errorf("%w: field %q has no type", ErrBadFormat, fs.Name))
		}
		add(fs.Name)
	}
	special := func(name, what string) int {
		if name == "" {
			return -1
		}
		if seen[name] {
			errs = append(errs, fmt.Errorf("%w: %s field %q is also declared as a plain field", ErrBadFormat, what, name))
			return -1
		}
		seen[name] = true
		return add(name)
	}
	r.keySlot = special(s.KeyField, "key")
	r.idSlot = special(s.IDField, "event id")
	r.tSlot = -1
	switch s.Time.Format {
	case TimeKafka:
	case TimeRFC3339, TimeEpochMillis, TimeEpochSeconds:
		if s.Time.Field == "" {
			errs = append(errs, fmt.Errorf("%w: event time needs a field unless its format is kafka_timestamp", ErrBadFormat))
		}
		r.tSlot = special(s.Time.Field, "event time")
	default:
		errs = append(errs, fmt.Errorf("%w: event time format is not set", ErrBadFormat))
	}
	r.allowed = make([]map[string]struct{}, len(s.Fields))
	for i, fs := range s.Fields {
		if len(fs.Values) > 0 {
			r.allowed[i] = make(map[string]struct{}, len(fs.Values))
			for _, v := range fs.Values {
				r.allowed[i][v] = struct{}{}
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r, nil
}

// apply turns the wire decoder's values into ev's fields, key, id and time, in that order: the
// first broken rule is the rejection.
func (r *rules) apply(rec *kgo.Record, vals []Value, ev *Event) error {
	for i := range r.fields {
		if err := r.field(i, &vals[i], &ev.Fields[i]); err != nil {
			return err
		}
	}
	// Entity key.
	if r.keySlot >= 0 {
		k, err := idLike(&vals[r.keySlot], r.keyField, ReasonMissingKey)
		if err != nil {
			return err
		}
		if !r.rekey && len(rec.Key) > 0 && string(rec.Key) != string(k) {
			return reject(ReasonKeyMismatch, r.keyField, "%q, but the Kafka record key is %q (set source.rekey to re-derive keys on purpose)", clip(k), clip(rec.Key))
		}
		ev.Key = k
	} else {
		if len(rec.Key) == 0 {
			return reject(ReasonMissingKey, "", "the Kafka record has no key and source.key names no field")
		}
		ev.Key = rec.Key
	}
	// Event id.
	if r.idSlot >= 0 {
		id, err := idLike(&vals[r.idSlot], r.idField, ReasonMissingField)
		if err != nil {
			return err
		}
		ev.ID = id
	} else {
		ev.idBuf = appendLineageID(ev.idBuf[:0], rec)
		ev.ID = ev.idBuf
	}
	t, err := r.eventTime(rec, vals)
	if err != nil {
		return err
	}
	ev.Time = t
	return nil
}

// appendLineageID writes "topic/partition/offset".
func appendLineageID(dst []byte, rec *kgo.Record) []byte {
	dst = append(dst, rec.Topic...)
	dst = append(dst, '/')
	dst = strconv.AppendInt(dst, int64(rec.Partition), 10)
	dst = append(dst, '/')
	return strconv.AppendInt(dst, rec.Offset, 10)
}

// idLike reads a key or id field: a non-empty string or an integer, kept as written.
func idLike(v *Value, name string, missing Reason) ([]byte, error) {
	switch v.Kind {
	case ValueString:
		if len(v.Raw) == 0 {
			return nil, reject(missing, name, "empty")
		}
		if !utf8.Valid(v.Raw) {
			return nil, reject(ReasonWrongType, name, "not valid UTF-8")
		}
		if i := controlChar(v.Raw); i >= 0 {
			return nil, reject(ReasonControlCharacters, name, "control character U+%04X at byte %d", v.Raw[i], i)
		}
		return v.Raw, nil
	case ValueNumber:
		if v.Raw == nil {
			return nil, reject(ReasonWrongType, name, "a number that is not an integer: %s", valueText(v))
		}
		if _, err := (jsonscan.Value{Kind: jsonscan.Number, Raw: v.Raw}).Int(); err != nil {
			return nil, reject(ReasonWrongType, name, "a number that is not an integer: %s", clip(v.Raw))
		}
		return v.Raw, nil
	case ValueMissing, ValueNull:
		return nil, reject(missing, name, "missing")
	}
	return nil, reject(ReasonWrongType, name, "want a string or an integer, got %s", v.Kind)
}

// field applies field i's type and rules to its value.
func (r *rules) field(i int, v *Value, out *Field) error {
	fs := &r.fields[i]
	if v.Kind == ValueMissing || v.Kind == ValueNull {
		if fs.Required {
			return reject(ReasonMissingField, fs.Name, "required field is %s", v.Kind)
		}
		return nil
	}
	switch fs.Type {
	case Number:
		if v.Kind != ValueNumber {
			return reject(ReasonWrongType, fs.Name, "want a number, got %s", v.Kind)
		}
		x, err := valueFloat(v)
		if err != nil || math.IsInf(x, 0) || math.IsNaN(x) {
			return reject(ReasonNotFinite, fs.Name, "%s does not fit a 64-bit float", valueText(v))
		}
		if fs.Min != nil && x < *fs.Min {
			return reject(ReasonOutOfRange, fs.Name, "%g is below the minimum %g", x, *fs.Min)
		}
		if fs.Max != nil && x > *fs.Max {
			return reject(ReasonOutOfRange, fs.Name, "%g is above the maximum %g", x, *fs.Max)
		}
		*out = Field{Kind: Number, Num: x}
	case String:
		if v.Kind != ValueString {
			return reject(ReasonWrongType, fs.Name, "want a string, got %s", v.Kind)
		}
		if !utf8.Valid(v.Raw) {
			return reject(ReasonWrongType, fs.Name, "not valid UTF-8")
		}
		if !fs.AllowControlCharacters {
			if i := controlChar(v.Raw); i >= 0 {
				return reject(ReasonControlCharacters, fs.Name, "control character U+%04X at byte %d (allow_control_characters accepts it)", v.Raw[i], i)
			}
		}
		if fs.MaxLength > 0 && len(v.Raw) > fs.MaxLength {
			return reject(ReasonOutOfRange, fs.Name, "%d bytes long, the maximum is %d", len(v.Raw), fs.MaxLength)
		}
		if m := r.allowed[i]; m != nil {
			if _, ok := m[unsafe.String(unsafe.SliceData(v.Raw), len(v.Raw))]; !ok {
				return reject(ReasonOutOfRange, fs.Name, "%q is not one of the allowed values", clip(v.Raw))
			}
		}
		*out = Field{Kind: String, Str: v.Raw}
	case Bool:
		if v.Kind != ValueBool {
			return reject(ReasonWrongType, fs.Name, "want true or false, got %s", v.Kind)
		}
		*out = Field{Kind: Bool, Bool: v.Bool}
	}
	return nil
}

// controlChar returns the index of the first C0 control character of s other than tab, LF and CR,
// or -1. It runs on every string of every record, so it tests 8 bytes at a time for a byte below
// 0x20 ((x - 0x20..) &^ x & 0x80.. is nonzero when one is, with no false negatives), and looks
// byte by byte only from a block that has one (or at the short tail).
func controlChar(s []byte) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := binary.LittleEndian.Uint64(s[i:])
		if (x-ones*0x20)&^x&highs != 0 {
			break
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c < 0x20 && !allowedControl[c] {
			return i
		}
	}
	return -1
}

var allowedControl = [0x20]bool{'\t': true, '\n': true, '\r': true}

// valueFloat returns a ValueNumber's value. Raw is parsed with the JSON number grammar (jsonscan), so a
// text that is not a JSON number is an error rather than Go's looser float syntax.
func valueFloat(v *Value) (float64, error) {
	if v.Raw == nil {
		return v.Num, nil
	}
	// As a number whatever the kind: an epoch time may come as a string of digits.
	return jsonscan.Value{Kind: jsonscan.Number, Raw: v.Raw}.Float()
}

// valueText quotes the value in a rejection detail.
func valueText(v *Value) string {
	if v.Kind == ValueNumber && v.Raw == nil {
		return strconv.FormatFloat(v.Num, 'g', -1, 64)
	}
	return clip(v.Raw)
}

// clip quotes at most 64 bytes of input in a rejection detail, so a dead letter's header stays small.
func clip(b []byte) string {
	const max = 64
	if len(b) > max {
		return string(b[:max]) + "..."
	}
	return string(b)
}
