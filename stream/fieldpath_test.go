package stream

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/internal/fieldpath"
)

// TestHeaderFields: header: paths read the record's last header of the name, as text, or as a
// number or bool when the field is declared one; a header that is not one is wrong_type.
func TestHeaderFields(t *testing.T) {
	f := &SchemaFormat{
		Schema: Schema{KeyField: "header:tenant", Time: EventTimeSpec{Field: "header:ts", Format: TimeEpochMillis, MaxFuture: time.Hour},
			Fields: []FieldSpec{{Name: "header:n", Type: Number, Required: true}, {Name: "header:b", Type: Bool}, {Name: "amount", Type: Number}}},
		Wire: &JSONWire{},
	}
	if err := f.Init(); err != nil {
		t.Fatal(err)
	}
	dec := f.NewDecoder()
	var ev Event
	h := func(kv ...string) []kgo.RecordHeader {
		var out []kgo.RecordHeader
		for i := 0; i < len(kv); i += 2 {
			out = append(out, kgo.RecordHeader{Key: kv[i], Value: []byte(kv[i+1])})
		}
		return out
	}
	now := time.UnixMilli(1764105513123)
	rec := &kgo.Record{Value: []byte(`{"amount":2}`), Timestamp: now, Headers: h("tenant", "old", "tenant", "acme", "ts", "1764105513000", "n", "1.5", "b", "true")}
	if err := dec.Decode(rec, &ev); err != nil {
		t.Fatal(err)
	}
	if string(ev.Key) != "acme" || ev.Time != 1764105513000 || ev.Fields[0].Num != 1.5 || !ev.Fields[1].Bool || ev.Fields[2].Num != 2 {
		t.Errorf("key %q time %d fields %+v", ev.Key, ev.Time, ev.Fields)
	}
	rec.Headers = h("tenant", "acme", "ts", "1764105513000", "n", "many")
	if rj, ok := AsRejection(dec.Decode(rec, &ev)); !ok || rj.Reason != ReasonWrongType || rj.Field != "header:n" {
		t.Errorf("a header that is no number: %v", rj)
	}
	rec.Headers = h("tenant", "acme", "ts", "1764105513000")
	if rj, ok := AsRejection(dec.Decode(rec, &ev)); !ok || rj.Reason != ReasonMissingField || rj.Field != "header:n" {
		t.Errorf("a required header missing: %v", rj)
	}
	if err := (&SchemaFormat{Schema: Schema{Time: EventTimeSpec{Format: TimeKafka}, Fields: []FieldSpec{{Name: "header:", Type: String}}}, Wire: &JSONWire{}}).Init(); err == nil {
		t.Error("header: without a name was accepted")
	}
}

func TestFieldPaths(t *testing.T) {
	for path, ok := range map[string]bool{"a": true, "items.0.price": true, "a..b": false, ".a": false, "a.": false, "": false, "a. b": false} {
		if _, err := fieldpath.Parse(path); (err == nil) != ok {
			t.Errorf("Parse(%q): %v", path, err)
		}
	}
	for seg, want := range map[string]int{"0": 0, "12": 12, "01": -1, "-1": -1, "x": -1, "1234567890": -1} {
		got, ok := fieldpath.Index(seg)
		if (want >= 0) != ok || (ok && got != want) {
			t.Errorf("Index(%q) = %d, %v", seg, got, ok)
		}
	}
}
