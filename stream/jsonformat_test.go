package stream

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// decodeCaseFormat declares every kind of rule, so that each rejection path has a case below.
func decodeCaseFormat(tf TimeFormat) *JSONFormat {
	lo, hi := 0.0, 1000.0
	return &JSONFormat{
		KeyField: "card_id", IDField: "event_id",
		Time: EventTimeSpec{Field: "ts", Format: tf, MaxFuture: time.Hour, NotBefore: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)},
		Fields: []FieldSpec{
			{Name: "amount", Type: Number, Required: true, Min: &lo, Max: &hi},
			{Name: "country", Type: String, MaxLength: 2},
			{Name: "channel", Type: String, Values: []string{"pos", "online"}},
			{Name: "flag", Type: Bool},
		},
		MaxRecordBytes: 256,
	}
}

var decodeNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// TestJSONFormatRejections pins the reason, field and detail of every way a record can be refused:
// they are what an operator reads in a dead letter's headers, and what alerts count, so they must
// not change when the decoding code does.
func TestJSONFormatRejections(t *testing.T) {
	const ok = `"card_id":"c1","event_id":"e1","ts":"2026-03-01T11:00:00Z","amount":12.5`
	cases := []struct {
		name   string
		tf     TimeFormat
		value  string
		key    string // the Kafka record key
		reason Reason
		field  string
		detail string
	}{
		{name: "too large", value: `{` + ok + `,"pad":"` + strings.Repeat("x", 300) + `"}`,
			reason: ReasonTooLarge, detail: "value is 383 bytes, source.max_record_bytes is 256"},
		{name: "malformed", value: `{` + ok, reason: ReasonMalformedJSON,
			detail: "unexpected end of input"},
		{name: "malformed value", value: `{` + ok + `,"x":tru}`, reason: ReasonMalformedJSON,
			detail: "invalid character '}' in literal true (expecting 'e') at offset 81"},
		{name: "not an object", value: `[1,2]`, reason: ReasonNotAnObject, detail: "the value is JSON but not an object"},
		{name: "duplicate key", value: `{"card_id":"c1","event_id":"e1","ts":"2026-03-01T11:00:00Z","amount":-7,"amount":5}`,
			reason: ReasonDuplicateField, detail: `key "amount" twice in one object (again at offset 72)`},
		{name: "duplicate unread key", value: `{` + ok + `,"x":1,"\u0078":2}`,
			reason: ReasonDuplicateField, detail: `key "x" twice in one object (again at offset 80)`},
		{name: "lone surrogate", value: `{` + ok + `,"country":"\ud800"}`,
			reason: ReasonInvalidString, detail: `lone UTF-16 surrogate in string escape at offset 85`},
		{name: "lone surrogate in an unread field", value: `{` + ok + `,"note":"a\udc00"}`,
			reason: ReasonInvalidString, detail: `lone UTF-16 surrogate in string escape at offset 83`},
		{name: "control character", value: `{` + ok + `,"channel":"po\u001b"}`,
			reason: ReasonControlCharacters, field: "channel", detail: "control character U+001B at byte 2 (allow_control_characters accepts it)"},
		{name: "NUL", value: `{` + ok + `,"country":"\u0000"}`,
			reason: ReasonControlCharacters, field: "country", detail: "control character U+0000 at byte 0 (allow_control_characters accepts it)"},
		{name: "control character in the key", value: `{"card_id":"c\u0007","event_id":"e1","ts":"2026-03-01T11:00:00Z","amount":1}`,
			reason: ReasonControlCharacters, field: "card_id", detail: "control character U+0007 at byte 1"},
		{name: "control character in the id", value: `{"card_id":"c1","event_id":"\u0001","ts":"2026-03-01T11:00:00Z","amount":1}`,
			reason: ReasonControlCharacters, field: "event_id", detail: "control character U+0001 at byte 0"},
		{name: "key mismatch", value: `{` + ok + `}`, key: "c2",
			reason: ReasonKeyMismatch, field: "card_id", detail: `"c1", but the Kafka record key is "c2" (set source.rekey to re-derive keys on purpose)`},
		{name: "required missing", value: `{"card_id":"c1","event_id":"e1","ts":"2026-03-01T11:00:00Z"}`,
			reason: ReasonMissingField, field: "amount", detail: "required field is missing"},
		{name: "required null", value: `{"card_id":"c1","event_id":"e1","ts":"2026-03-01T11:00:00Z","amount":null}`,
			reason: ReasonMissingField, field: "amount", detail: "required field is null"},
		{name: "number wrong type", value: `{"card_id":"c1","event_id":"e1","ts":"2026-03-01T11:00:00Z","amount":"12"}`,
			reason: ReasonWrongType, field: "amount", detail: "want a number, got string"},
		{name: "number object", value: `{"card_id":"c1","event_id":"e1","ts":"2026-03-01T11:00:00Z","amount":{"v":1}}`,
			reason: ReasonWrongType, field: "amount", detail: "want a number, got object"},
		{name: "not finite", value: `{"card_id":"c1","event_id":"e1","ts":"2026-03-01T11:00:00Z","amount":1e999}`,
			reason: ReasonNotFinite, field: "amount", detail: "1e999 does not fit a 64-bit float"},
		{name: "below min", value: `{"card_id":"c1","event_id":"e1","ts":"2026-03-01T11:00:00Z","amount":-0.5}`,
			reason: ReasonOutOfRange, field: "amount", detail: "-0.5 is below the minimum 0"},
		{name: "above max", value: `{"card_id":"c1","event_id":"e1","ts":"2026-03-01T11:00:00Z","amount":1e4}`,
			reason: ReasonOutOfRange, field: "amount", detail: "10000 is above the maximum 1000"},
		{name: "string wrong type", value: `{` + ok + `,"country":7}`,
			reason: ReasonWrongType, field: "country", detail: "want a string, got number"},
		{name: "string bad utf8", value: "{" + ok + ",\"country\":\"\xff\"}",
			reason: ReasonWrongType, field: "country", detail: "not valid UTF-8"},
		{name: "string too long", value: `{` + ok + `,"country":"DEU"}`,
			reason: ReasonOutOfRange, field: "country", detail: "3 bytes long, the maximum is 2"},
		{name: "value not allowed", value: `{` + ok + `,"channel":"atm"}`,
			reason: ReasonOutOfRange, field: "channel", detail: `"atm" is not one of the allowed values`},
		{name: "bool wrong type", value: `{` + ok + `,"flag":"yes"}`,
			reason: ReasonWrongType, field: "flag", detail: "want true or false, got string"},
		{name: "key missing", value: `{"event_id":"e1","ts":"2026-03-01T11:00:00Z","amount":1}`,
			reason: ReasonMissingKey, field: "card_id", detail: "missing"},
		{name: "key null", value: `{"card_id":null,"event_id":"e1","ts":"2026-03-01T11:00:00Z","amount":1}`,
			reason: ReasonMissingKey, field: "card_id", detail: "missing"},
		{name: "key empty", value: `{"card_id":"","event_id":"e1","ts":"2026-03-01T11:00:00Z","amount":1}`,
			reason: ReasonMissingKey, field: "card_id", detail: "empty"},
		{name: "key fraction", value: `{"card_id":1.5,"event_id":"e1","ts":"2026-03-01T11:00:00Z","amount":1}`,
			reason: ReasonWrongType, field: "card_id", detail: "a number that is not an integer: 1.5"},
		{name: "key bool", value: `{"card_id":true,"event_id":"e1","ts":"2026-03-01T11:00:00Z","amount":1}`,
			reason: ReasonWrongType, field: "card_id", detail: "want a string or an integer, got bool"},
		{name: "key bad utf8", value: "{\"card_id\":\"\xfe\",\"event_id\":\"e1\",\"ts\":\"2026-03-01T11:00:00Z\",\"amount\":1}",
			reason: ReasonWrongType, field: "card_id", detail: "not valid UTF-8"},
		{name: "id missing", value: `{"card_id":"c1","ts":"2026-03-01T11:00:00Z","amount":1}`,
			reason: ReasonMissingField, field: "event_id", detail: "missing"},
		{name: "id array", value: `{"card_id":"c1","event_id":[1],"ts":"2026-03-01T11:00:00Z","amount":1}`,
			reason: ReasonWrongType, field: "event_id", detail: "want a string or an integer, got array"},
		{name: "time missing", value: `{"card_id":"c1","event_id":"e1","amount":1}`,
			reason: ReasonBadEventTime, field: "ts", detail: "missing"},
		{name: "time not rfc3339", value: `{"card_id":"c1","event_id":"e1","ts":"yesterday","amount":1}`,
			reason: ReasonBadEventTime, field: "ts", detail: "yesterday: not an RFC 3339 time"},
		{name: "time number for rfc3339", value: `{"card_id":"c1","event_id":"e1","ts":17,"amount":1}`,
			reason: ReasonBadEventTime, field: "ts", detail: "17: want an RFC 3339 string, got number"},
		{name: "time before not_before", value: `{"card_id":"c1","event_id":"e1","ts":"1970-01-01T00:00:00Z","amount":1}`,
			reason: ReasonEventTimeOutOfSpan, field: "ts", detail: "1970-01-01T00:00:00.000Z is before 2000-01-01T00:00:00Z"},
		{name: "time too far ahead", value: `{"card_id":"c1","event_id":"e1","ts":"2026-03-01T14:30:00+01:00","amount":1}`,
			reason: ReasonEventTimeOutOfSpan, field: "ts",
			detail: "2026-03-01T13:30:00.000Z is more than 1h0m0s ahead of the record timestamp 2026-03-01T12:00:00.000Z"},
		{name: "epoch_ms bool", tf: TimeEpochMillis, value: `{"card_id":"c1","event_id":"e1","ts":false,"amount":1}`,
			reason: ReasonBadEventTime, field: "ts", detail: "false: want a number, got bool"},
		{name: "epoch_ms bad string", tf: TimeEpochMillis, value: `{"card_id":"c1","event_id":"e1","ts":"12a","amount":1}`,
			reason: ReasonBadEventTime, field: "ts", detail: "12a: not a number"},
		{name: "epoch_ms overflow", tf: TimeEpochMillis, value: `{"card_id":"c1","event_id":"e1","ts":1e999,"amount":1}`,
			reason: ReasonBadEventTime, field: "ts", detail: "1e999: not a finite number"},
		{name: "epoch_s beyond 9999", tf: TimeEpochSeconds, value: `{"card_id":"c1","event_id":"e1","ts":1e12,"amount":1}`,
			reason: ReasonBadEventTime, field: "ts", detail: "1e12: outside the years 1 to 9999"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tf := c.tf
			if tf == 0 {
				tf = TimeRFC3339
			}
			f := decodeCaseFormat(tf)
			if err := f.Init(); err != nil {
				t.Fatal(err)
			}
			rec := &kgo.Record{Topic: "tx", Partition: 3, Offset: 9, Key: []byte(c.key), Value: []byte(c.value), Timestamp: decodeNow}
			var ev Event
			err := f.NewDecoder().Decode(rec, &ev)
			r, ok := AsRejection(err)
			if !ok {
				t.Fatalf("Decode(%s) = %v, want a rejection", c.value, err)
			}
			if r.Reason != c.reason || r.Field != c.field || r.Detail != c.detail {
				t.Errorf("Decode(%s):\n got (%s, %q, %q)\nwant (%s, %q, %q)", c.value, r.Reason, r.Field, r.Detail, c.reason, c.field, c.detail)
			}
		})
	}
}

// TestJSONFormatAccepts checks the values of accepted records: typed fields, integer keys and ids
// kept as written, the lineage id and Kafka key when no field names them, and each time format.
func TestJSONFormatAccepts(t *testing.T) {
	t.Run("fields", func(t *testing.T) {
		f := decodeCaseFormat(TimeRFC3339)
		if err := f.Init(); err != nil {
			t.Fatal(err)
		}
		rec := &kgo.Record{Topic: "tx", Value: []byte(`{"card_id":12345,"event_id":"e\u00e9","ts":"2026-03-01T11:00:00.25Z","amount":12.5,` +
			`"country":"DE","channel":"pos","flag":true,"other":[1,{"a":null}]}`), Timestamp: decodeNow}
		var ev Event
		if err := f.NewDecoder().Decode(rec, &ev); err != nil {
			t.Fatal(err)
		}
		want := time.Date(2026, 3, 1, 11, 0, 0, 250e6, time.UTC).UnixMilli()
		if string(ev.Key) != "12345" || string(ev.ID) != "eé" || ev.Time != want || ev.Record != rec {
			t.Errorf("key %q id %q time %d, want 12345 eé %d", ev.Key, ev.ID, ev.Time, want)
		}
		if len(ev.Fields) != 4 || ev.Fields[0].Kind != Number || ev.Fields[0].Num != 12.5 || string(ev.Fields[1].Str) != "DE" ||
			string(ev.Fields[2].Str) != "pos" || ev.Fields[3].Kind != Bool || !ev.Fields[3].Bool {
			t.Errorf("fields %+v", ev.Fields)
		}
		// The event is reused: an absent optional field must not keep the previous record's value.
		rec2 := &kgo.Record{Topic: "tx", Value: []byte(`{"card_id":"c","event_id":1,"ts":"2026-03-01T11:00:00Z","amount":0}`), Timestamp: decodeNow}
		if err := f.NewDecoder().Decode(rec2, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Fields[1].Kind != Absent || ev.Fields[3].Kind != Absent || string(ev.ID) != "1" {
			t.Errorf("second record: fields %+v id %q", ev.Fields, ev.ID)
		}
	})
	t.Run("kafka key and lineage", func(t *testing.T) {
		f := &JSONFormat{Time: EventTimeSpec{Format: TimeKafka}, Fields: []FieldSpec{{Name: "x", Type: Number}}}
		if err := f.Init(); err != nil {
			t.Fatal(err)
		}
		rec := &kgo.Record{Topic: "tx", Partition: 3, Offset: 9, Key: []byte("k"), Value: []byte(`{}`), Timestamp: decodeNow}
		var ev Event
		if err := f.NewDecoder().Decode(rec, &ev); err != nil {
			t.Fatal(err)
		}
		if string(ev.Key) != "k" || string(ev.ID) != "tx/3/9" || ev.Time != decodeNow.UnixMilli() {
			t.Errorf("key %q id %q time %d", ev.Key, ev.ID, ev.Time)
		}
		rec.Key = nil
		err := f.NewDecoder().Decode(rec, &ev)
		if r, ok := AsRejection(err); !ok || r.Reason != ReasonMissingKey || r.Detail != "the Kafka record has no key and source.key names no field" {
			t.Errorf("no key: %v", err)
		}
		// Kafka time takes the record timestamp even when it is far from now: MaxFuture is not checked.
		f.Time.MaxFuture = time.Second
		rec.Key = []byte("k")
		if err := f.NewDecoder().Decode(rec, &ev); err != nil {
			t.Error(err)
		}
	})
	for _, c := range []struct {
		tf   TimeFormat
		ts   string
		want int64
	}{
		{TimeEpochMillis, `1772362800123`, 1772362800123},
		{TimeEpochMillis, `"1772362800123"`, 1772362800123},
		{TimeEpochMillis, `1772362800123.9`, 1772362800123},
		{TimeEpochSeconds, `1772362800.5`, 1772362800500},
		{TimeRFC3339, `"2026-03-01T12:00:00+01:00"`, 1772362800000},
	} {
		t.Run("time "+c.ts, func(t *testing.T) {
			f := decodeCaseFormat(c.tf)
			if err := f.Init(); err != nil {
				t.Fatal(err)
			}
			rec := &kgo.Record{Value: []byte(`{"card_id":"c","event_id":"e","amount":1,"ts":` + c.ts + `}`), Timestamp: decodeNow}
			var ev Event
			if err := f.NewDecoder().Decode(rec, &ev); err != nil {
				t.Fatal(err)
			}
			if ev.Time != c.want {
				t.Errorf("time %d, want %d", ev.Time, c.want)
			}
		})
	}
}

// TestJSONFormatInitErrors: Init names every inconsistency at once.
func TestJSONFormatInitErrors(t *testing.T) {
	f := &JSONFormat{
		KeyField: "a",
		Time:     EventTimeSpec{Format: TimeRFC3339},
		Fields:   []FieldSpec{{Name: "a", Type: Number}, {Name: "b"}, {Name: "", Type: String}, {Name: "b", Type: Bool}},
	}
	err := f.Init()
	if !errors.Is(err, ErrBadFormat) {
		t.Fatalf("Init = %v, want ErrBadFormat", err)
	}
	want := []string{
		`stream: bad format: field "b" has no type`,
		`stream: bad format: a field has no name`,
		`stream: bad format: field "b" declared twice`,
		`stream: bad format: key field "a" is also declared as a plain field`,
		`stream: bad format: event time needs a field unless its format is kafka_timestamp`,
	}
	if got := strings.Split(err.Error(), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Init errors:\n%s\nwant\n%s", err, strings.Join(want, "\n"))
	}
	if (&JSONFormat{Fields: []FieldSpec{{Name: "x", Type: Number}}}).Init() == nil {
		t.Error("Init without an event time format succeeded")
	}
}

// BenchmarkJSONDecode measures decoding and validating one record, without the task around it.
func BenchmarkJSONDecode(b *testing.B) {
	f := benchFormat()
	if err := f.Init(); err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	recs := make([]*kgo.Record, 1024)
	for i := range recs {
		recs[i] = cardRecord(i, now)
	}
	dec := f.NewDecoder()
	var ev Event
	b.SetBytes(int64(len(recs[0].Value)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := dec.Decode(recs[i%len(recs)], &ev); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzJSONFormat: whatever the bytes, Decode either accepts the record with every rule met, or
// refuses it with a *Rejection whose reason streamd declares; it never fails otherwise or panics.
func FuzzJSONFormat(f *testing.F) {
	f.Add([]byte(`{"card_id":"c1","event_id":"e1","ts":"2026-03-01T11:00:00Z","amount":12.5,"country":"DE","channel":"pos","flag":true}`))
	f.Add([]byte(`{"card_id":7,"event_id":1e3,"ts":"2026-03-01T11:00:00Z","amount":-1}`))
	f.Add([]byte(`{"card_id":"\ud800","event_id":"e","ts":"2026-03-01T11:00:00.123456789+14:00","amount":1000,"channel":"online"}`))
	f.Add([]byte(`[{"a":1}]`))
	f.Add([]byte(`{"amount":1e999`))
	format := decodeCaseFormat(TimeRFC3339)
	if err := format.Init(); err != nil {
		f.Fatal(err)
	}
	dec := format.NewDecoder()
	known := map[Reason]bool{}
	for _, r := range Reasons() {
		known[r] = true
	}
	f.Fuzz(func(t *testing.T, value []byte) {
		var ev Event
		err := dec.Decode(&kgo.Record{Topic: "tx", Value: value, Timestamp: decodeNow}, &ev)
		if err != nil {
			r, ok := AsRejection(err)
			if !ok || !known[r.Reason] {
				t.Fatalf("Decode(%q) = %v, want a rejection with a known reason", value, err)
			}
			return
		}
		amount, ok := ev.Number(0)
		if !ok || amount < 0 || amount > 1000 || len(ev.Key) == 0 || len(ev.ID) == 0 {
			t.Fatalf("Decode(%q) accepted amount %v (%v) key %q id %q", value, amount, ok, ev.Key, ev.ID)
		}
		if c, ok := ev.String(1); ok && len(c) > 2 {
			t.Fatalf("Decode(%q) accepted country %q", value, c)
		}
		if ch, ok := ev.String(2); ok && string(ch) != "pos" && string(ch) != "online" {
			t.Fatalf("Decode(%q) accepted channel %q", value, ch)
		}
		if ev.Time < time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli() || ev.Time > decodeNow.Add(time.Hour).UnixMilli() {
			t.Fatalf("Decode(%q) accepted time %d", value, ev.Time)
		}
	})
}

// TestJSONNestedAndEdges: nested paths for every named field (key, id, time, plain fields), a
// duplicate along a nested path, the control-character opt-out, allowed whitespace controls, and
// source.rekey.
func TestJSONNestedAndEdges(t *testing.T) {
	format := func(rekey bool) *JSONFormat {
		return &JSONFormat{
			KeyField: "card.id", IDField: "meta.ids.0",
			Time: EventTimeSpec{Field: "meta.ts", Format: TimeEpochMillis},
			Fields: []FieldSpec{
				{Name: "payment.amount", Type: Number, Required: true},
				{Name: "items.1.sku", Type: String},
				{Name: "note", Type: String, AllowControlCharacters: true},
				{Name: "memo", Type: String},
			},
			Rekey: rekey,
		}
	}
	const base = `"card":{"id":"c1"},"meta":{"ids":["e1","e0"],"ts":1772366400000},"payment":{"amount":42.5,"currency":"EUR"},"items":[{"sku":"a"},{"sku":"b"}]`
	cases := []struct {
		name   string
		value  string
		key    string
		rekey  bool
		reason Reason // "" accepted
	}{
		{name: "nested", value: `{` + base + `}`, key: "c1"},
		{name: "keyless record is not compared", value: `{` + base + `}`},
		{name: "opt-out and whitespace controls", value: `{` + base + `,"note":"a\u001bb","memo":"l1\n\tl2\r"}`, key: "c1"},
		{name: "control character without the opt-out", value: `{` + base + `,"memo":"a\u0000"}`, key: "c1", reason: ReasonControlCharacters},
		{name: "duplicate along a path", value: `{` + base + `,"x":{"amount":1,"amount":2}}`, key: "c1"},
		{name: "duplicate in a declared object", value: `{"payment":{"amount":-7,"amount":5},` + base[strings.Index(base, `"card"`):strings.Index(base, `,"payment"`)] + `}`, key: "c1", reason: ReasonDuplicateField},
		{name: "mismatch", value: `{` + base + `}`, key: "c9", reason: ReasonKeyMismatch},
		{name: "mismatch rekeyed on purpose", value: `{` + base + `}`, key: "c9", rekey: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := format(c.rekey)
			if err := f.Init(); err != nil {
				t.Fatal(err)
			}
			var key []byte
			if c.key != "" {
				key = []byte(c.key)
			}
			rec := &kgo.Record{Topic: "tx", Key: key, Value: []byte(c.value), Timestamp: decodeNow}
			var ev Event
			err := f.NewDecoder().Decode(rec, &ev)
			if c.reason != "" {
				if r, ok := AsRejection(err); !ok || r.Reason != c.reason {
					t.Fatalf("Decode(%s) = %v, want %s", c.value, err, c.reason)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode(%s): %v", c.value, err)
			}
			if string(ev.Key) != "c1" || string(ev.ID) != "e1" || ev.Time != 1772366400000 || ev.Fields[0].Num != 42.5 || string(ev.Fields[1].Str) != "b" {
				t.Errorf("Decode(%s) = key %q id %q time %d amount %v sku %q", c.value, ev.Key, ev.ID, ev.Time, ev.Fields[0].Num, ev.Fields[1].Str)
			}
		})
	}
}

// nestedBenchFormat is benchFormat with the same five fields, key, id and time read from nested
// objects (cardRecordNested).
func nestedBenchFormat() *JSONFormat {
	f := benchFormat()
	f.KeyField = "card.id"
	names := map[string]string{"amount": "payment.amount", "merchant": "payment.merchant.id", "country": "payment.merchant.country",
		"channel": "payment.channel", "mcc": "payment.merchant.mcc"}
	for i := range f.Fields {
		f.Fields[i].Name = names[f.Fields[i].Name]
	}
	return f
}

func cardRecordNested(i int, now time.Time) *kgo.Record {
	v := fmt.Sprintf(`{"event_id":"%016x","card":{"id":"card-%06d"},"event_time":%q,"payment":{"amount":%d.17,"channel":"online","merchant":{"id":"m-%04d","country":"DE","mcc":5411}}}`,
		i, i%10000, now.UTC().Format("2006-01-02T15:04:05.000Z"), i%900, i%3000)
	return &kgo.Record{Topic: "tx", Offset: int64(i), Key: []byte(fmt.Sprintf("card-%06d", i%10000)), Value: []byte(v), Timestamp: now}
}

// BenchmarkJSONDecodeNested is BenchmarkJSONDecode with every field nested one or two levels deep.
func BenchmarkJSONDecodeNested(b *testing.B) {
	now := time.Now()
	recs := make([]*kgo.Record, 1024)
	for i := range recs {
		recs[i] = cardRecordNested(i, now)
	}
	benchDecode(b, nestedBenchFormat(), recs)
}

// TestJSONNestedDecodeAllocatesNothing: 1,000 nested records per run, so that one allocation every
// few records would show.
func TestJSONNestedDecodeAllocatesNothing(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("coverage instrumentation allocates")
	}
	f := nestedBenchFormat()
	if err := f.Init(); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	recs := make([]*kgo.Record, 1000)
	for i := range recs {
		recs[i] = cardRecordNested(i, now)
	}
	dec := f.NewDecoder()
	var ev Event
	if n := testing.AllocsPerRun(20, func() {
		for _, r := range recs {
			if err := dec.Decode(r, &ev); err != nil {
				t.Fatal(err)
			}
		}
	}); n != 0 {
		t.Errorf("%v allocations per 1,000 nested records, want 0", n)
	}
}

// TestControlChar checks the 8-bytes-at-a-time scan against a byte loop, at every position.
func TestControlChar(t *testing.T) {
	naive := func(s []byte) int {
		for i, c := range s {
			if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
				return i
			}
		}
		return -1
	}
	for n := 0; n <= 20; n++ {
		for at := 0; at < n; at++ {
			for _, c := range []byte{0, 1, '\t', '\n', '\r', 0x1b, 0x1f, 0x20, 0x7f, 0x80, 0xff} {
				s := []byte(strings.Repeat("a\x80\t", n)[:n])
				s[at] = c
				if got, want := controlChar(s), naive(s); got != want {
					t.Fatalf("controlChar(%q) = %d, want %d", s, got, want)
				}
			}
		}
	}
}
