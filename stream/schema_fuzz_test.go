package stream

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"
)

// fuzzSchemas are the schemas FuzzSchemaFormat decodes with, chosen by the input: together they use
// every time format, the key from a field and from the Kafka key, the id from a field and from the
// lineage, and every field rule.
var fuzzSchemas = func() []Schema {
	lo, hi, minus1, one := 0.0, 1000.0, -1.0, 1.0
	notBefore := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	return []Schema{
		{KeyField: "card_id", IDField: "event_id", MaxRecordBytes: 512,
			Time: EventTimeSpec{Field: "ts", Format: TimeRFC3339, MaxFuture: time.Hour, NotBefore: notBefore},
			Fields: []FieldSpec{
				{Name: "amount", Type: Number, Required: true, Min: &lo, Max: &hi},
				{Name: "country", Type: String, MaxLength: 2},
				{Name: "channel", Type: String, Values: []string{"pos", "online"}},
				{Name: "flag", Type: Bool},
			}},
		{Time: EventTimeSpec{Field: "t", Format: TimeEpochMillis, NotBefore: notBefore},
			Fields: []FieldSpec{
				{Name: "n", Type: Number},
				{Name: "s", Type: String, Required: true, MaxLength: 8},
			}},
		{KeyField: "k", IDField: "id", Time: EventTimeSpec{Field: "t", Format: TimeEpochSeconds, MaxFuture: time.Minute},
			Fields: []FieldSpec{
				{Name: "b", Type: Bool, Required: true},
				{Name: "x", Type: Number, Min: &minus1, Max: &one},
			}},
		{Time: EventTimeSpec{Format: TimeKafka, NotBefore: notBefore},
			Fields: []FieldSpec{{Name: "v", Type: String, Values: []string{"a", "b", "é"}}}},
	}
}()

// decoded is what one Decode gave, copied out of the reused Event.
type decoded struct {
	err      string
	key, id  string
	time     int64
	fields   []Field
	rejected *Rejection
}

func snapshot(ev *Event, err error) decoded {
	d := decoded{key: string(ev.Key), id: string(ev.ID), time: ev.Time}
	if err != nil {
		d = decoded{err: err.Error()}
		d.rejected, _ = AsRejection(err)
		return d
	}
	for _, f := range ev.Fields {
		f.Str = bytes.Clone(f.Str)
		d.fields = append(d.fields, f)
	}
	return d
}

// FuzzSchemaFormat decodes arbitrary records (value, Kafka key, timestamp) with the validating
// decoder (SchemaFormat over the JSON wire) and checks what it promises:
//
//   - every record is accepted or refused with a Rejection of a known reason, naming a declared
//     field, the key, id or time field, or none;
//   - an accepted record meets every rule: required fields present, each field of its declared
//     kind, numbers finite and within bounds, strings valid UTF-8 within max_length and the allowed
//     values, a non-empty key and id, an event time within its span;
//   - for valid UTF-8 JSON with distinct top-level keys, every field equals what encoding/json
//     reads, and the key is the record key or the key field's text;
//   - the decoder and Event are reused across records: decoding another record in between does not
//     change the result of decoding this one.
func FuzzSchemaFormat(f *testing.F) {
	f.Add(uint8(0), []byte(`{"card_id":"c1","event_id":"e1","ts":"2026-03-01T11:00:00Z","amount":12.5,"country":"DE","channel":"pos","flag":true}`), []byte("c1"), int64(1772366400000))
	f.Add(uint8(1), []byte(`{"t":1772362800000,"n":-3e2,"s":"abc"}`), []byte("key-1"), int64(1772366400000))
	f.Add(uint8(1), []byte(`{"t":"1772362800000","s":"\u00e9\u00e9\u00e9\u00e9x"}`), []byte(""), int64(1772366400000))
	f.Add(uint8(2), []byte(`{"k":42,"id":7,"t":1772362800.5,"b":false,"x":-1}`), []byte(nil), int64(1772366400000))
	f.Add(uint8(2), []byte(`{"k":"","id":"x","t":1e300,"b":true}`), []byte(nil), int64(0))
	f.Add(uint8(3), []byte(`{"v":"é"}`), []byte("k"), int64(1772366400000))
	f.Add(uint8(3), []byte(`{"v":"a","v":"c"}`), []byte("k"), int64(-1))
	f.Add(uint8(0), []byte(`{"amount":1e999`), []byte("k"), int64(1772366400000))

	formats := make([]*SchemaFormat, len(fuzzSchemas))
	decoders := make([]Decoder, len(fuzzSchemas))
	for i, s := range fuzzSchemas {
		formats[i] = &SchemaFormat{Schema: s, Wire: &JSONWire{}}
		if err := formats[i].Init(); err != nil {
			f.Fatal(err)
		}
		decoders[i] = formats[i].NewDecoder()
	}
	known := map[Reason]bool{}
	for _, r := range Reasons() {
		known[r] = true
	}
	other := &kgo.Record{Topic: "tx", Key: []byte("other"), Timestamp: time.UnixMilli(1772366400000),
		Value: []byte(`{"card_id":"zz","event_id":"zz","ts":"2026-03-01T11:30:00Z","amount":999,"country":"FR","channel":"online","flag":false,"k":"zz","id":"zz","t":1772366000000,"s":"zzzzzzzz","b":true,"x":1,"n":5,"v":"b"}`)}

	f.Fuzz(func(t *testing.T, which uint8, value, key []byte, tsMillis int64) {
		i := int(which) % len(fuzzSchemas)
		schema, dec := &fuzzSchemas[i], decoders[i]
		// Kafka timestamps are milliseconds between 1970 and 9999.
		tsMillis = int64(uint64(tsMillis) % uint64(maxEventMillis))
		rec := &kgo.Record{Topic: "tx", Partition: 3, Offset: 17, Key: key, Value: value, Timestamp: time.UnixMilli(tsMillis)}
		var ev Event
		first := snapshot(&ev, dec.Decode(rec, &ev))
		_ = dec.Decode(other, &ev)
		if again := snapshot(&ev, dec.Decode(rec, &ev)); !reflect.DeepEqual(first, again) {
			t.Fatalf("schema %d, %q: decoding another record in between changed the result:\nfirst %+v\nagain %+v", i, value, first, again)
		}
		if first.err != "" {
			r := first.rejected
			if r == nil || !known[r.Reason] {
				t.Fatalf("schema %d, %q: %s, want a rejection with a known reason", i, value, first.err)
			}
			names := append(schema.FieldNames(), schema.KeyField, schema.IDField, schema.Time.Field, "kafka timestamp", "")
			if !slices.Contains(names, r.Field) && r.Field != "key" {
				t.Fatalf("schema %d, %q: rejection %v names field %q, which the schema does not read", i, value, r, r.Field)
			}
			return
		}
		checkAccepted(t, i, schema, rec, first)
	})
}

func checkAccepted(t *testing.T, i int, schema *Schema, rec *kgo.Record, d decoded) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("schema %d, value %q key %q: accepted, but "+format, append([]any{i, rec.Value, rec.Key}, args...)...)
	}
	if schema.MaxRecordBytes > 0 && len(rec.Value) > schema.MaxRecordBytes {
		fail("it is %d bytes, over %d", len(rec.Value), schema.MaxRecordBytes)
	}
	if d.key == "" {
		fail("the key is empty")
	}
	if schema.KeyField == "" && d.key != string(rec.Key) {
		fail("the key is %q, not the record key", d.key)
	}
	if d.id == "" {
		fail("the id is empty")
	}
	if schema.IDField == "" && d.id != fmt.Sprintf("%s/%d/%d", rec.Topic, rec.Partition, rec.Offset) {
		fail("the lineage id is %q", d.id)
	}
	ts := schema.Time
	if !ts.NotBefore.IsZero() && d.time < ts.NotBefore.UnixMilli() {
		fail("its time %d is before %s", d.time, ts.NotBefore)
	}
	if ts.MaxFuture > 0 && ts.Format != TimeKafka && d.time > rec.Timestamp.UnixMilli()+ts.MaxFuture.Milliseconds() {
		fail("its time %d is more than %s after the record's %d", d.time, ts.MaxFuture, rec.Timestamp.UnixMilli())
	}
	if ts.Format == TimeKafka && d.time != rec.Timestamp.UnixMilli() {
		fail("its time %d is not the record timestamp %d", d.time, rec.Timestamp.UnixMilli())
	}
	if len(d.fields) != len(schema.Fields) {
		fail("%d fields, the schema has %d", len(d.fields), len(schema.Fields))
	}
	for j, fs := range schema.Fields {
		fv := d.fields[j]
		switch {
		case fv.Kind == Absent:
			if fs.Required {
				fail("required field %s is absent", fs.Name)
			}
			continue
		case fv.Kind != fs.Type:
			fail("field %s is a %s, declared %s", fs.Name, fv.Kind, fs.Type)
		}
		switch fs.Type {
		case Number:
			if math.IsNaN(fv.Num) || math.IsInf(fv.Num, 0) || (fs.Min != nil && fv.Num < *fs.Min) || (fs.Max != nil && fv.Num > *fs.Max) {
				fail("field %s is %v, outside its bounds", fs.Name, fv.Num)
			}
		case String:
			if !utf8.Valid(fv.Str) || (fs.MaxLength > 0 && len(fv.Str) > fs.MaxLength) ||
				(len(fs.Values) > 0 && !slices.Contains(fs.Values, string(fv.Str))) {
				fail("field %s is %q, which breaks its rules", fs.Name, fv.Str)
			}
		}
	}

	// The reference: encoding/json, where the two must agree (valid UTF-8, no repeated key).
	top, ok := distinctTopLevel(rec.Value)
	if !ok {
		return
	}
	for j, fs := range schema.Fields {
		raw, present := top[fs.Name]
		got := d.fields[j]
		if !present || string(raw) == "null" {
			if got.Kind != Absent {
				fail("field %s is %+v; encoding/json finds none", fs.Name, got)
			}
			continue
		}
		switch fs.Type {
		case Number:
			var want float64
			if err := json.Unmarshal(raw, &want); err != nil || want != got.Num {
				fail("field %s is %v; encoding/json reads %s (%v)", fs.Name, got.Num, raw, err)
			}
		case String:
			var want string
			if err := json.Unmarshal(raw, &want); err != nil || want != string(got.Str) {
				fail("field %s is %q; encoding/json reads %s (%v)", fs.Name, got.Str, raw, err)
			}
		case Bool:
			var want bool
			if err := json.Unmarshal(raw, &want); err != nil || want != got.Bool {
				fail("field %s is %v; encoding/json reads %s (%v)", fs.Name, got.Bool, raw, err)
			}
		}
	}
	for field, got := range map[string]string{schema.KeyField: d.key, schema.IDField: d.id} {
		if field == "" {
			continue
		}
		raw := top[field]
		var s string
		if json.Unmarshal(raw, &s) == nil {
			if s != got {
				fail("%s is %q; encoding/json reads %s", field, got, raw)
			}
			continue
		}
		// An integer key or id is its decimal text.
		n, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil || strconv.FormatInt(n, 10) != got {
			fail("%s is %q, from %s", field, got, raw)
		}
	}
}

// distinctTopLevel returns the members of a JSON object as encoding/json reads them, when the value
// is valid UTF-8, valid JSON, an object, and no key repeats (where decoders may differ on which
// occurrence wins).
func distinctTopLevel(value []byte) (map[string]json.RawMessage, bool) {
	if !utf8.Valid(value) || !json.Valid(value) {
		return nil, false
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(value, &top) != nil {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(value))
	if _, err := dec.Token(); err != nil {
		return nil, false
	}
	n := 0
	for dec.More() {
		if _, err := dec.Token(); err != nil { // the key
			return nil, false
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, false
		}
		n++
	}
	return top, n == len(top)
}
