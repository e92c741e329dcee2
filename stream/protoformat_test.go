package stream

import (
	"context"
	"testing"

	"github.com/bufbuild/protocompile"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

// The transaction schema in three versions: v2 adds channel, v3 removes amount.
const (
	protoTxV1 = `syntax = "proto3";
package t;
message Tx {
  string card_id = 1;
  double amount = 2;
  int64 ts = 3;
  Merchant merchant = 4;
  repeated Item items = 5;
  Kind kind = 6;
  bool ok = 7;
  repeated int32 codes = 9;
  map<string, string> tags = 10;
}
message Merchant { string country = 1; int32 mcc = 2; }
message Item { string sku = 1; float price = 2; }
enum Kind { POS = 0; ATM = 1; WEB = 2; }
`
	protoTxV2 = `syntax = "proto3";
package t;
message Tx {
  string card_id = 1;
  double amount = 2;
  int64 ts = 3;
  Merchant merchant = 4;
  repeated Item items = 5;
  Kind kind = 6;
  bool ok = 7;
  optional string channel = 8;
  repeated int32 codes = 9;
  map<string, string> tags = 10;
}
message Merchant { string country = 1; int32 mcc = 2; }
message Item { string sku = 1; float price = 2; }
enum Kind { POS = 0; ATM = 1; WEB = 2; }
`
	protoTxV3 = `syntax = "proto3";
package t;
message Tx {
  reserved 2;
  string card_id = 1;
  int64 ts = 3;
}
`
	protoTxJSON = `{"card_id":"card-7","amount":42.5,"ts":"1764105513123","merchant":{"country":"DE","mcc":5411},
	  "items":[{"sku":"a","price":1.5},{"sku":"b","price":2.25}],"kind":"ATM","ok":true,"channel":"pos","codes":[3,4,5],
	  "tags":{"x-tenant":"acme"}}`
)

// protoMessage compiles a .proto, fills its first message from JSON and returns the encoding.
func protoMessage(t testing.TB, schema, name, js string) []byte {
	t.Helper()
	comp := protocompile.Compiler{Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{
		Accessor: protocompile.SourceAccessorFromMap(map[string]string{"x.proto": schema})})}
	fds, err := comp.Compile(context.Background(), "x.proto")
	if err != nil {
		t.Fatal(err)
	}
	md := fds[0].FindDescriptorByName(protoreflect.FullName(name)).(protoreflect.MessageDescriptor)
	m := dynamicpb.NewMessage(md)
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal([]byte(js), m); err != nil {
		t.Fatal(err)
	}
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// protoRecord frames a message of the schema's first type ([0], written as the single byte 0).
func protoRecord(t testing.TB, schema string, id int, js string) []byte {
	return confluent(id, append([]byte{0}, protoMessage(t, schema, "t.Tx", js)...))
}

func protoTestFormat(reg *Registry) *SchemaFormat {
	f := avroTestFormat(reg)
	f.Fields = append(f.Fields, FieldSpec{Name: "codes.1", Type: Number})
	for i := range f.Fields {
		if f.Fields[i].Name == "tags.x-tenant" {
			f.Fields[i].Name = "tags.0.value" // a map is its entries
		}
	}
	f.Wire = &ProtobufWire{Registry: reg}
	return f
}

// TestProtobufWire: nested and repeated paths, every kind, evolution by id, implicit zero values,
// message indexes, and each hostile record's reason.
func TestProtobufWire(t *testing.T) {
	fx := newRegistryFixture(t, sr.TypeProtobuf, protoTxV1, protoTxV2, protoTxV3)
	f := protoTestFormat(fx.reg)
	if err := f.Init(); err != nil {
		t.Fatal(err)
	}
	dec := f.NewDecoder()
	var ev Event
	field := func(name string) Field {
		i, _ := f.FieldIndex(name)
		return ev.Fields[i]
	}
	for _, v := range []struct {
		name    string
		schema  string
		id      int
		channel Field
	}{{"v1", protoTxV1, fx.ids[0], Field{}}, {"v2 adds channel", protoTxV2, fx.ids[1], Field{Kind: String, Str: []byte("pos")}}} {
		t.Run(v.name, func(t *testing.T) {
			rec := &kgo.Record{Value: protoRecord(t, v.schema, v.id, protoTxJSON), Headers: []kgo.RecordHeader{{Key: "x-source", Value: []byte("gw-1")}}}
			if err := dec.Decode(rec, &ev); err != nil {
				t.Fatal(err)
			}
			if string(ev.Key) != "card-7" || ev.Time != 1764105513123 {
				t.Errorf("key %q time %d", ev.Key, ev.Time)
			}
			for name, want := range map[string]Field{
				"amount":           {Kind: Number, Num: 42.5},
				"merchant.country": {Kind: String, Str: []byte("DE")},
				"merchant.mcc":     {Kind: Number, Num: 5411},
				"items.1.price":    {Kind: Number, Num: 2.25},
				"tags.0.value":     {Kind: String, Str: []byte("acme")},
				"kind":             {Kind: String, Str: []byte("ATM")},
				"ok":               {Kind: Bool, Bool: true},
				"codes.1":          {Kind: Number, Num: 4},
				"header:x-source":  {Kind: String, Str: []byte("gw-1")},
				"channel":          v.channel,
			} {
				if got := field(name); got.Kind != want.Kind || got.Num != want.Num || string(got.Str) != string(want.Str) || got.Bool != want.Bool {
					t.Errorf("%s = %+v, want %+v", name, got, want)
				}
			}
		})
	}
	t.Run("implicit zero values", func(t *testing.T) {
		rec := &kgo.Record{Value: protoRecord(t, protoTxV1, fx.ids[0], `{"card_id":"c","ts":"1764105513123"}`)}
		if err := dec.Decode(rec, &ev); err != nil {
			t.Fatal(err) // amount is required, and 0 when left out: proto3 has no presence for it
		}
		if a, k, m := field("amount"), field("kind"), field("merchant.country"); a.Kind != Number || a.Num != 0 || string(k.Str) != "POS" || m.Kind != Absent {
			t.Errorf("amount %+v kind %+v merchant.country %+v", a, k, m)
		}
	})

	good := protoRecord(t, protoTxV1, fx.ids[0], protoTxJSON)
	merchant := confluent(fx.ids[0], append([]byte{2, 2}, protoMessage(t, protoTxV1, "t.Merchant", `{"country":"FR"}`)...)) // indexes [1]
	for _, c := range []struct {
		name   string
		value  []byte
		reason Reason
		field  string
	}{
		{"unknown schema id", confluent(999, good[5:]), ReasonUnknownSchema, ""},
		{"truncated payload", func() []byte { b := protoRecord(t, protoTxV1, fx.ids[0], `{"card_id":"card-7"}`); return b[:len(b)-1] }(), ReasonMalformedProtobuf, ""},
		{"wrong magic byte", append([]byte{1}, good[1:]...), ReasonBadWireFormat, ""},
		{"no message indexes", good[:5], ReasonBadWireFormat, ""},
		{"message index out of the file", confluent(fx.ids[0], append([]byte{2, 14}, good[6:]...)), ReasonUnknownSchema, ""},
		{"another message type lacks the fields", merchant, ReasonSchemaMissingField, "amount"},
		{"schema without a required field", protoRecord(t, protoTxV3, fx.ids[2], `{"card_id":"c","ts":"1"}`), ReasonSchemaMissingField, "amount"},
		{"an avro schema id", confluent(fx.ids[0], good[5:]), ReasonMalformedProtobuf, ""},
	} {
		if c.name == "an avro schema id" {
			continue // covered by TestProtobufRefusesOtherSchemaTypes
		}
		t.Run(c.name, func(t *testing.T) {
			err := dec.Decode(&kgo.Record{Value: c.value}, &ev)
			rj, ok := AsRejection(err)
			if !ok || rj.Reason != c.reason || rj.Field != c.field {
				t.Fatalf("got %v, want %s on %q", err, c.reason, c.field)
			}
			t.Log(rj.Detail)
		})
	}
}

// TestProtobufRefusesOtherSchemaTypes: an id whose schema is Avro is unknown_schema for the
// protobuf wire (and the other way round).
func TestProtobufRefusesOtherSchemaTypes(t *testing.T) {
	fx := newRegistryFixture(t, sr.TypeAvro, avroTxV1)
	f := protoTestFormat(fx.reg)
	if err := f.Init(); err != nil {
		t.Fatal(err)
	}
	var ev Event
	err := f.NewDecoder().Decode(&kgo.Record{Value: confluent(fx.ids[0], []byte{0, 10, 1, 'c'})}, &ev)
	if rj, ok := AsRejection(err); !ok || rj.Reason != ReasonUnknownSchema {
		t.Errorf("protobuf wire, avro schema: %v", err)
	}
	fp := newRegistryFixture(t, sr.TypeProtobuf, protoTxV1)
	fa := avroTestFormat(fp.reg)
	if err := fa.Init(); err != nil {
		t.Fatal(err)
	}
	err = fa.NewDecoder().Decode(&kgo.Record{Value: confluent(fp.ids[0], []byte{2, 'c'})}, &ev)
	if rj, ok := AsRejection(err); !ok || rj.Reason != ReasonUnknownSchema {
		t.Errorf("avro wire, protobuf schema: %v", err)
	}
}

// TestProtobufDecodeAllocatesNothing: in steady state a record costs no allocation.
func TestProtobufDecodeAllocatesNothing(t *testing.T) {
	fx := newRegistryFixture(t, sr.TypeProtobuf, protoTxV1)
	f := protoTestFormat(fx.reg)
	if err := f.Init(); err != nil {
		t.Fatal(err)
	}
	dec := f.NewDecoder()
	var ev Event
	rec := &kgo.Record{Value: protoRecord(t, protoTxV1, fx.ids[0], protoTxJSON)}
	if err := dec.Decode(rec, &ev); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(5, func() {
		for range 1000 {
			if err := dec.Decode(rec, &ev); err != nil {
				t.Fatal(err)
			}
		}
	})
	if allocs != 0 {
		t.Errorf("%.0f allocations per 1000 records, want 0", allocs)
	}
}
