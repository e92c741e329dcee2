package stream

import (
	"bytes"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// kvWire is a second encoding, as a new format would add one: "name=value&..." where a value is
// s:text, i:123 (an integer, given as text), f:1.5 (a float, given in Num as a binary encoding
// would), b:true or null. It shows that the schema's rules do not depend on JSON.
type kvWire struct{ paths []string }

func (w *kvWire) Init(paths []WirePath) error {
	for _, p := range paths {
		if bytes.ContainsAny([]byte(p.Path), "=&") {
			return errors.New("kv: a path cannot hold = or &")
		}
		w.paths = append(w.paths, p.Path)
	}
	return nil
}

func (w *kvWire) NewDecoder() WireDecoder { return &kvDecoder{paths: w.paths} }

type kvDecoder struct{ paths []string }

func (d *kvDecoder) Decode(rec *kgo.Record, vals []Value) error {
	for i := range vals {
		vals[i] = Value{}
	}
	for _, pair := range bytes.Split(rec.Value, []byte("&")) {
		name, v, ok := bytes.Cut(pair, []byte("="))
		if !ok {
			return reject(ReasonMalformedJSON, "", "no = in %q", pair)
		}
		slot := -1
		for i, p := range d.paths {
			if p == string(name) {
				slot = i
			}
		}
		if slot < 0 {
			continue
		}
		out := &vals[slot]
		switch {
		case string(v) == "null":
			out.Kind = ValueNull
		case bytes.HasPrefix(v, []byte("s:")):
			*out = Value{Kind: ValueString, Raw: v[2:]}
		case bytes.HasPrefix(v, []byte("i:")):
			*out = Value{Kind: ValueNumber, Raw: v[2:]}
		case bytes.HasPrefix(v, []byte("f:")):
			x, err := strconv.ParseFloat(string(v[2:]), 64)
			if err != nil {
				return reject(ReasonMalformedJSON, string(name), "bad float")
			}
			*out = Value{Kind: ValueNumber, Num: x}
		case bytes.HasPrefix(v, []byte("b:")):
			*out = Value{Kind: ValueBool, Bool: string(v[2:]) == "true"}
		default:
			*out = Value{Kind: ValueObject, Raw: v}
		}
	}
	return nil
}

func kvFormat() *SchemaFormat {
	lo := 0.0
	return &SchemaFormat{
		Schema: Schema{
			KeyField: "card", IDField: "id",
			Time:   EventTimeSpec{Field: "ts", Format: TimeEpochMillis, MaxFuture: time.Hour},
			Fields: []FieldSpec{{Name: "amount", Type: Number, Required: true, Min: &lo}, {Name: "ok", Type: Bool}, {Name: "cc", Type: String, MaxLength: 2}},
		},
		Wire: &kvWire{},
	}
}

// TestSchemaFormatOverAnotherWire: a non-JSON wire gets the same typing, rules, key, id and event
// time handling, with the same reasons and details, and binary numbers (Num) are checked too.
func TestSchemaFormatOverAnotherWire(t *testing.T) {
	f := kvFormat()
	if err := f.Init(); err != nil {
		t.Fatal(err)
	}
	ts := decodeNow.UnixMilli()
	tsv := "ts=i:" + strconv.FormatInt(ts, 10)
	dec := f.NewDecoder()
	var ev Event
	rec := &kgo.Record{Value: []byte("card=i:77&id=s:e1&amount=f:2.5&ok=b:true&cc=s:DE&" + tsv), Timestamp: decodeNow}
	if err := dec.Decode(rec, &ev); err != nil {
		t.Fatal(err)
	}
	if string(ev.Key) != "77" || string(ev.ID) != "e1" || ev.Time != ts || ev.Fields[0].Num != 2.5 || !ev.Fields[1].Bool || string(ev.Fields[2].Str) != "DE" {
		t.Errorf("event key %q id %q time %d fields %+v", ev.Key, ev.ID, ev.Time, ev.Fields)
	}
	for _, c := range []struct {
		value  string
		reason Reason
		field  string
		detail string
	}{
		{"card=i:1&id=s:e&" + tsv, ReasonMissingField, "amount", "required field is missing"},
		{"card=i:1&id=s:e&amount=null&" + tsv, ReasonMissingField, "amount", "required field is null"},
		{"card=i:1&id=s:e&amount=s:3&" + tsv, ReasonWrongType, "amount", "want a number, got string"},
		{"card=i:1&id=s:e&amount=f:NaN&" + tsv, ReasonNotFinite, "amount", "NaN does not fit a 64-bit float"},
		{"card=i:1&id=s:e&amount=f:-1&" + tsv, ReasonOutOfRange, "amount", "-1 is below the minimum 0"},
		{"card=i:1&id=s:e&amount=i:1&cc=s:DEU&" + tsv, ReasonOutOfRange, "cc", "3 bytes long, the maximum is 2"},
		{"card=i:1&id=s:e&amount=i:1&ok=s:yes&" + tsv, ReasonWrongType, "ok", "want true or false, got string"},
		{"card=f:1.5&id=s:e&amount=i:1&" + tsv, ReasonWrongType, "card", "a number that is not an integer: 1.5"},
		{"card=i:1.5&id=s:e&amount=i:1&" + tsv, ReasonWrongType, "card", "a number that is not an integer: 1.5"},
		{"card=x&id=s:e&amount=i:1&" + tsv, ReasonWrongType, "card", "want a string or an integer, got object"},
		{"id=s:e&amount=i:1&" + tsv, ReasonMissingKey, "card", "missing"},
		{"card=i:1&amount=i:1&" + tsv, ReasonMissingField, "id", "missing"},
		{"card=i:1&id=s:e&amount=i:1&ts=f:Inf", ReasonBadEventTime, "ts", "+Inf: outside the years 1 to 9999"},
		{"card=i:1&id=s:e&amount=i:1&ts=f:" + strconv.FormatInt(ts+2*3600e3, 10), ReasonEventTimeOutOfSpan, "ts",
			"2026-03-01T14:00:00.000Z is more than 1h0m0s ahead of the record timestamp 2026-03-01T12:00:00.000Z"},
		{"card", ReasonMalformedJSON, "", `no = in "card"`},
	} {
		rec := &kgo.Record{Value: []byte(c.value), Timestamp: decodeNow}
		r, ok := AsRejection(dec.Decode(rec, &ev))
		if !ok || r.Reason != c.reason || r.Field != c.field || r.Detail != c.detail {
			t.Errorf("Decode(%s) = %v, want (%s, %q, %q)", c.value, r, c.reason, c.field, c.detail)
		}
	}
}

// TestSchemaFormatInit: Init refuses a missing wire and wraps a wire's own refusal in ErrBadFormat;
// once it has succeeded it does nothing, so a prepared format is not rebuilt under its decoders.
func TestSchemaFormatInit(t *testing.T) {
	f := kvFormat()
	f.Wire = nil
	if err := f.Init(); !errors.Is(err, ErrBadFormat) {
		t.Errorf("no wire: %v, want ErrBadFormat", err)
	}
	f = kvFormat()
	f.Fields = append(f.Fields, FieldSpec{Name: "a=b", Type: Number})
	if err := f.Init(); !errors.Is(err, ErrBadFormat) || f.rules != nil {
		t.Errorf("a path the wire refuses: %v, want ErrBadFormat", err)
	}
	f = kvFormat()
	if err := f.Init(); err != nil {
		t.Fatal(err)
	}
	r := f.rules
	f.Fields = nil
	if err := f.Init(); err != nil || f.rules != r {
		t.Errorf("second Init: %v, rules rebuilt: %v", err, f.rules != r)
	}
	defer func() {
		if recover() == nil {
			t.Error("NewDecoder before Init did not panic")
		}
	}()
	kvFormat().NewDecoder()
}

// TestValueKindNames: rejection details print the kinds by these names.
func TestValueKindNames(t *testing.T) {
	want := map[ValueKind]string{ValueMissing: "missing", ValueNull: "null", ValueNumber: "number", ValueString: "string",
		ValueBool: "bool", ValueObject: "object", ValueArray: "array"}
	for k, name := range want {
		if got := k.String(); got != name {
			t.Errorf("kind %d prints %q, want %q", k, got, name)
		}
	}
	if got := ValueKind(200).String(); got != "Kind(200)" {
		t.Errorf("unknown kind prints %s", got)
	}
}
