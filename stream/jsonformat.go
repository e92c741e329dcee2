package stream

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/internal/jsonscan"
)

// Format turns source records into events. A Format is shared by all tasks; each task gets its own
// Decoder, which need not be safe for concurrent use.
type Format interface {
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

// TimeFormat says how the event time is written.
type TimeFormat uint8

const (
	// TimeRFC3339 is a JSON string such as "2026-11-25T21:18:33.123Z" (any offset; sub-second digits
	// optional).
	TimeRFC3339 TimeFormat = iota + 1
	// TimeEpochMillis is a JSON number (or a string of digits) of milliseconds since 1970.
	TimeEpochMillis
	// TimeEpochSeconds is a JSON number of seconds since 1970, fractions allowed.
	TimeEpochSeconds
	// TimeKafka takes the Kafka record timestamp; no field is read.
	TimeKafka
)

// ParseTimeFormat maps the config names rfc3339, epoch_ms, epoch_s and kafka_timestamp to formats.
func ParseTimeFormat(s string) (TimeFormat, bool) {
	switch s {
	case "rfc3339":
		return TimeRFC3339, true
	case "epoch_ms":
		return TimeEpochMillis, true
	case "epoch_s":
		return TimeEpochSeconds, true
	case "kafka_timestamp":
		return TimeKafka, true
	}
	return 0, false
}

// EventTimeSpec says where an event's time comes from and which times are believable.
type EventTimeSpec struct {
	Field  string // required unless Format is TimeKafka
	Format TimeFormat
	// MaxFuture rejects an event whose time is further than this ahead of its Kafka record timestamp.
	// Measuring against the record timestamp rather than the wall clock keeps the decision the same
	// when the record is reprocessed after a crash. Zero disables the check.
	MaxFuture time.Duration
	// NotBefore rejects events older than this instant (a 1970 timestamp is almost always a missing
	// value, and would otherwise be a late record forever). Zero disables the check.
	NotBefore time.Time
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
}

// JSONFormat decodes JSON object records. Only the declared top-level fields are read; others are
// validated as JSON and ignored.
type JSONFormat struct {
	// KeyField names the entity key field (a string or an integer). Empty: the Kafka record key.
	KeyField string
	// IDField names the event id field (a string or an integer). Empty: "topic/partition/offset".
	IDField string
	Time    EventTimeSpec
	Fields  []FieldSpec
	// MaxRecordBytes rejects larger record values before parsing. Zero means no limit.
	MaxRecordBytes int

	schema  *jsonscan.Schema
	keySlot int
	idSlot  int
	tSlot   int
	allowed []map[string]struct{}
}

// ErrBadFormat is returned by JSONFormat.Init for an inconsistent format.
var ErrBadFormat = errors.New("stream: bad format")

// Init checks the format and prepares the shared parsing tables. It must be called once before
// NewDecoder; the config compiler and NewRuntime do.
func (f *JSONFormat) Init() error {
	var errs []error
	names := []string{}
	seen := map[string]bool{}
	add := func(n string) int {
		names = append(names, n)
		return len(names) - 1
	}
	for _, fs := range f.Fields {
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
	f.keySlot, f.idSlot, f.tSlot = -1, -1, -1
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
	f.keySlot = special(f.KeyField, "key")
	f.idSlot = special(f.IDField, "event id")
	switch f.Time.Format {
	case TimeKafka:
	case TimeRFC3339, TimeEpochMillis, TimeEpochSeconds:
		if f.Time.Field == "" {
			errs = append(errs, fmt.Errorf("%w: event time needs a field unless its format is kafka_timestamp", ErrBadFormat))
		}
		f.tSlot = special(f.Time.Field, "event time")
	default:
		errs = append(errs, fmt.Errorf("%w: event time format is not set", ErrBadFormat))
	}
	f.allowed = make([]map[string]struct{}, len(f.Fields))
	for i, fs := range f.Fields {
		if len(fs.Values) > 0 {
			f.allowed[i] = make(map[string]struct{}, len(fs.Values))
			for _, v := range fs.Values {
				f.allowed[i][v] = struct{}{}
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	f.schema = jsonscan.NewSchema(names...)
	return nil
}

// FieldIndex implements Format.
func (f *JSONFormat) FieldIndex(name string) (int, bool) {
	for i, fs := range f.Fields {
		if fs.Name == name {
			return i, true
		}
	}
	return 0, false
}

// FieldNames implements Format.
func (f *JSONFormat) FieldNames() []string {
	out := make([]string, len(f.Fields))
	for i, fs := range f.Fields {
		out[i] = fs.Name
	}
	return out
}

// NewDecoder implements Format. Init must have succeeded.
func (f *JSONFormat) NewDecoder() Decoder {
	if f.schema == nil {
		panic("stream: JSONFormat.NewDecoder before a successful Init")
	}
	return &jsonDecoder{f: f, vals: make([]jsonscan.Value, f.schema.Len())}
}

type jsonDecoder struct {
	f    *JSONFormat
	sc   jsonscan.Scanner
	vals []jsonscan.Value
}

func (d *jsonDecoder) Decode(rec *kgo.Record, ev *Event) error {
	f := d.f
	ev.reset(rec, len(f.Fields))
	if f.MaxRecordBytes > 0 && len(rec.Value) > f.MaxRecordBytes {
		return reject(ReasonTooLarge, "", "value is %d bytes, source.max_record_bytes is %d", len(rec.Value), f.MaxRecordBytes)
	}
	if err := d.sc.Scan(rec.Value, f.schema, d.vals); err != nil {
		if errors.Is(err, jsonscan.ErrNotObject) {
			return reject(ReasonNotAnObject, "", "the value is JSON but not an object")
		}
		return reject(ReasonMalformedJSON, "", "%s", strings.TrimPrefix(err.Error(), "jsonscan: "))
	}
	for i := range f.Fields {
		if err := d.field(i, &ev.Fields[i]); err != nil {
			return err
		}
	}
	// Entity key.
	if f.keySlot >= 0 {
		k, err := d.idLike(f.keySlot, f.KeyField, ReasonMissingKey)
		if err != nil {
			return err
		}
		ev.Key = k
	} else {
		if len(rec.Key) == 0 {
			return reject(ReasonMissingKey, "", "the Kafka record has no key and source.key names no field")
		}
		ev.Key = rec.Key
	}
	// Event id.
	if f.idSlot >= 0 {
		id, err := d.idLike(f.idSlot, f.IDField, ReasonMissingField)
		if err != nil {
			return err
		}
		ev.ID = id
	} else {
		ev.idBuf = appendLineageID(ev.idBuf[:0], rec)
		ev.ID = ev.idBuf
	}
	// Event time.
	t, err := d.eventTime(rec)
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

// idLike reads a key or id field: a non-empty string or an integer literal.
func (d *jsonDecoder) idLike(slot int, name string, missing Reason) ([]byte, error) {
	v := d.vals[slot]
	switch v.Kind {
	case jsonscan.String:
		if len(v.Raw) == 0 {
			return nil, reject(missing, name, "empty")
		}
		if !utf8.Valid(v.Raw) {
			return nil, reject(ReasonWrongType, name, "not valid UTF-8")
		}
		return v.Raw, nil
	case jsonscan.Number:
		if _, err := v.Int(); err != nil {
			return nil, reject(ReasonWrongType, name, "a number that is not an integer: %s", clip(v.Raw))
		}
		return v.Raw, nil
	case jsonscan.Missing, jsonscan.Null:
		return nil, reject(missing, name, "missing")
	}
	return nil, reject(ReasonWrongType, name, "want a string or an integer, got %s", v.Kind)
}

func (d *jsonDecoder) field(i int, out *Field) error {
	fs := &d.f.Fields[i]
	v := d.vals[i]
	if v.Kind == jsonscan.Missing || v.Kind == jsonscan.Null {
		if fs.Required {
			return reject(ReasonMissingField, fs.Name, "required field is %s", v.Kind)
		}
		return nil
	}
	switch fs.Type {
	case Number:
		if v.Kind != jsonscan.Number {
			return reject(ReasonWrongType, fs.Name, "want a number, got %s", v.Kind)
		}
		x, err := v.Float()
		if err != nil || math.IsInf(x, 0) || math.IsNaN(x) {
			return reject(ReasonNotFinite, fs.Name, "%s does not fit a 64-bit float", clip(v.Raw))
		}
		if fs.Min != nil && x < *fs.Min {
			return reject(ReasonOutOfRange, fs.Name, "%g is below the minimum %g", x, *fs.Min)
		}
		if fs.Max != nil && x > *fs.Max {
			return reject(ReasonOutOfRange, fs.Name, "%g is above the maximum %g", x, *fs.Max)
		}
		*out = Field{Kind: Number, Num: x}
	case String:
		if v.Kind != jsonscan.String {
			return reject(ReasonWrongType, fs.Name, "want a string, got %s", v.Kind)
		}
		if !utf8.Valid(v.Raw) {
			return reject(ReasonWrongType, fs.Name, "not valid UTF-8")
		}
		if fs.MaxLength > 0 && len(v.Raw) > fs.MaxLength {
			return reject(ReasonOutOfRange, fs.Name, "%d bytes long, the maximum is %d", len(v.Raw), fs.MaxLength)
		}
		if m := d.f.allowed[i]; m != nil {
			if _, ok := m[unsafe.String(unsafe.SliceData(v.Raw), len(v.Raw))]; !ok {
				return reject(ReasonOutOfRange, fs.Name, "%q is not one of the allowed values", clip(v.Raw))
			}
		}
		*out = Field{Kind: String, Str: v.Raw}
	case Bool:
		if v.Kind != jsonscan.Bool {
			return reject(ReasonWrongType, fs.Name, "want true or false, got %s", v.Kind)
		}
		*out = Field{Kind: Bool, Bool: v.Bool}
	}
	return nil
}

func (d *jsonDecoder) eventTime(rec *kgo.Record) (int64, error) {
	ts := &d.f.Time
	var ms int64
	name := ts.Field
	if ts.Format == TimeKafka {
		ms = rec.Timestamp.UnixMilli()
		name = "kafka timestamp"
	} else {
		v := d.vals[d.f.tSlot]
		switch v.Kind {
		case jsonscan.Missing, jsonscan.Null:
			return 0, reject(ReasonBadEventTime, name, "missing")
		}
		var err error
		ms, err = parseEventTime(v, ts.Format)
		if err != nil {
			return 0, reject(ReasonBadEventTime, name, "%s: %v", clip(v.Raw), err)
		}
	}
	if !ts.NotBefore.IsZero() && ms < ts.NotBefore.UnixMilli() {
		return 0, reject(ReasonEventTimeOutOfSpan, name, "%s is before %s", fmtMillis(ms), ts.NotBefore.UTC().Format(time.RFC3339))
	}
	if ts.MaxFuture > 0 && ts.Format != TimeKafka {
		if limit := rec.Timestamp.UnixMilli() + ts.MaxFuture.Milliseconds(); ms > limit {
			return 0, reject(ReasonEventTimeOutOfSpan, name, "%s is more than %s ahead of the record timestamp %s",
				fmtMillis(ms), ts.MaxFuture, fmtMillis(rec.Timestamp.UnixMilli()))
		}
	}
	return ms, nil
}

// Event times are kept in milliseconds; a year beyond ±292 million would overflow, so bound the
// accepted span to what time.Time and milliseconds both represent.
const (
	minEventMillis = -62135596800000 // 0001-01-01
	maxEventMillis = 253402300799999 // 9999-12-31
)

func parseEventTime(v jsonscan.Value, format TimeFormat) (int64, error) {
	switch format {
	case TimeRFC3339:
		if v.Kind != jsonscan.String {
			return 0, fmt.Errorf("want an RFC 3339 string, got %s", v.Kind)
		}
		t, err := time.Parse(time.RFC3339Nano, unsafe.String(unsafe.SliceData(v.Raw), len(v.Raw)))
		if err != nil {
			return 0, errors.New("not an RFC 3339 time")
		}
		return t.UnixMilli(), nil
	case TimeEpochMillis, TimeEpochSeconds:
		var x float64
		switch v.Kind {
		case jsonscan.Number:
			f, err := v.Float()
			if err != nil {
				return 0, errors.New("not a finite number")
			}
			x = f
		case jsonscan.String:
			f, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(v.Raw), len(v.Raw)), 64)
			if err != nil {
				return 0, errors.New("not a number")
			}
			x = f
		default:
			return 0, fmt.Errorf("want a number, got %s", v.Kind)
		}
		if format == TimeEpochSeconds {
			x *= 1000
		}
		if math.IsNaN(x) || x < minEventMillis || x > maxEventMillis {
			return 0, errors.New("outside the years 1 to 9999")
		}
		return int64(math.Floor(x)), nil
	}
	return 0, errors.New("no event time format")
}

func fmtMillis(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// clip quotes at most 64 bytes of input in a rejection detail, so a dead letter's header stays small.
func clip(b []byte) string {
	const max = 64
	if len(b) > max {
		return string(b[:max]) + "..."
	}
	return string(b)
}
