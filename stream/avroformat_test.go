package stream

import (
	"encoding/binary"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// The transaction schema of the tests, in three versions of one subject: v2 adds channel (with a
// default), v3 removes amount.
const (
	avroTxV1 = `{"type":"record","name":"Tx","namespace":"t","fields":[
		{"name":"card_id","type":"string"},
		{"name":"amount","type":"double"},
		{"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}},
		{"name":"merchant","type":{"type":"record","name":"Merchant","fields":[
			{"name":"country","type":["null","string"],"default":null},
			{"name":"mcc","type":"int"}]}},
		{"name":"items","type":{"type":"array","items":{"type":"record","name":"Item","fields":[
			{"name":"sku","type":"string"},{"name":"price","type":"float"}]}}},
		{"name":"tags","type":{"type":"map","values":"string"}},
		{"name":"kind","type":{"type":"enum","name":"Kind","symbols":["POS","ATM","WEB"]}},
		{"name":"ok","type":"boolean"}]}`
	avroTxV2 = `{"type":"record","name":"Tx","namespace":"t","fields":[
		{"name":"card_id","type":"string"},
		{"name":"channel","type":"string","default":"web"},
		{"name":"amount","type":"double"},
		{"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}},
		{"name":"merchant","type":{"type":"record","name":"Merchant","fields":[
			{"name":"country","type":["null","string"],"default":null},
			{"name":"mcc","type":"int"}]}},
		{"name":"items","type":{"type":"array","items":{"type":"record","name":"Item","fields":[
			{"name":"sku","type":"string"},{"name":"price","type":"float"}]}}},
		{"name":"tags","type":{"type":"map","values":"string"}},
		{"name":"kind","type":{"type":"enum","name":"Kind","symbols":["POS","ATM","WEB"]}},
		{"name":"ok","type":"boolean"}]}`
	avroTxV3 = `{"type":"record","name":"Tx","namespace":"t","fields":[
		{"name":"card_id","type":"string"},
		{"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}}]}`
)

func avroTx(amount float64) map[string]any {
	return map[string]any{
		"card_id":  "card-7",
		"channel":  "pos",
		"amount":   amount,
		"ts":       time.UnixMilli(1764105513123).UTC(),
		"merchant": map[string]any{"country": "DE", "mcc": 5411},
		"items":    []any{map[string]any{"sku": "a", "price": float32(1.5)}, map[string]any{"sku": "b", "price": float32(2.25)}},
		"tags":     map[string]any{"x-tenant": "acme", "other": "1"},
		"kind":     "ATM",
		"ok":       true,
	}
}

// confluent frames an Avro payload with the Confluent header.
func confluent(id int, payload []byte) []byte {
	out := []byte{0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(out[1:], uint32(id))
	return append(out, payload...)
}

func avroRecord(t testing.TB, schema string, id int, v map[string]any) []byte {
	t.Helper()
	b, err := avro.Marshal(avro.MustParse(schema), v)
	if err != nil {
		t.Fatal(err)
	}
	return confluent(id, b)
}

type registryFixture struct {
	fake *srfake.Registry
	reg  *Registry
	ids  [3]int
}

func newRegistryFixture(t testing.TB, typ sr.SchemaType, versions ...string) *registryFixture {
	t.Helper()
	fake := srfake.New()
	t.Cleanup(fake.Close)
	f := &registryFixture{fake: fake}
	for i, s := range versions {
		id, _, err := fake.RegisterSchema("tx-value", sr.Schema{Schema: s, Type: typ})
		if err != nil {
			t.Fatal(err)
		}
		f.ids[i] = id
	}
	cl, err := sr.NewClient(sr.URLs(fake.URL()))
	if err != nil {
		t.Fatal(err)
	}
	f.reg = &Registry{Client: cl, Timeout: time.Second}
	return f
}

func avroTestFormat(reg *Registry) *SchemaFormat {
	return &SchemaFormat{
		Schema: Schema{
			KeyField: "card_id",
			Time:     EventTimeSpec{Field: "ts", Format: TimeEpochMillis},
			Fields: []FieldSpec{
				{Name: "amount", Type: Number, Required: true},
				{Name: "merchant.country", Type: String},
				{Name: "merchant.mcc", Type: Number},
				{Name: "items.1.price", Type: Number},
				{Name: "tags.x-tenant", Type: String},
				{Name: "kind", Type: String, Values: []string{"POS", "ATM"}},
				{Name: "ok", Type: Bool},
				{Name: "channel", Type: String},
				{Name: "header:x-source", Type: String},
			},
		},
		Wire: &AvroWire{Registry: reg},
	}
}

// TestAvroWire: nested paths, every scalar kind, schema evolution by id, and each hostile record's
// reason.
func TestAvroWire(t *testing.T) {
	fx := newRegistryFixture(t, sr.TypeAvro, avroTxV1, avroTxV2, avroTxV3)
	f := avroTestFormat(fx.reg)
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
		channel string
	}{{"v1", avroTxV1, fx.ids[0], ""}, {"v2 adds channel", avroTxV2, fx.ids[1], "pos"}} {
		t.Run(v.name, func(t *testing.T) {
			rec := &kgo.Record{Value: avroRecord(t, v.schema, v.id, avroTx(42.5)), Headers: []kgo.RecordHeader{{Key: "x-source", Value: []byte("gw-1")}}}
			if err := dec.Decode(rec, &ev); err != nil {
				t.Fatal(err)
			}
			if string(ev.Key) != "card-7" || ev.Time != 1764105513123 {
				t.Errorf("key %q time %d", ev.Key, ev.Time)
			}
			if f := field("amount"); f.Num != 42.5 {
				t.Errorf("amount %+v", f)
			}
			if f := field("merchant.country"); string(f.Str) != "DE" {
				t.Errorf("merchant.country %+v", f)
			}
			if f := field("merchant.mcc"); f.Num != 5411 {
				t.Errorf("merchant.mcc %+v", f)
			}
			if f := field("items.1.price"); f.Num != 2.25 {
				t.Errorf("items.1.price %+v", f)
			}
			if f := field("tags.x-tenant"); string(f.Str) != "acme" {
				t.Errorf("tags.x-tenant %+v", f)
			}
			if f := field("kind"); string(f.Str) != "ATM" {
				t.Errorf("kind %+v", f)
			}
			if f := field("ok"); f.Kind != Bool || !f.Bool {
				t.Errorf("ok %+v", f)
			}
			if f := field("channel"); string(f.Str) != v.channel {
				t.Errorf("channel %+v, want %q", f, v.channel)
			}
			if f := field("header:x-source"); string(f.Str) != "gw-1" {
				t.Errorf("header:x-source %+v", f)
			}
		})
	}

	good := avroRecord(t, avroTxV1, fx.ids[0], avroTx(1))
	for _, c := range []struct {
		name   string
		value  []byte
		reason Reason
		field  string
	}{
		{"unknown schema id", confluent(999, good[5:]), ReasonUnknownSchema, ""},
		{"truncated payload", good[:len(good)-3], ReasonMalformedAvro, ""},
		{"trailing bytes", append(append([]byte(nil), good...), 7), ReasonMalformedAvro, ""},
		{"wrong magic byte", append([]byte{1}, good[1:]...), ReasonBadWireFormat, ""},
		{"no header", []byte{0, 0}, ReasonBadWireFormat, ""},
		{"schema without a required field", avroRecord(t, avroTxV3, fx.ids[2], avroTx(1)), ReasonSchemaMissingField, "amount"},
		{"a value outside the allowed ones", avroRecord(t, avroTxV1, fx.ids[0], func() map[string]any { m := avroTx(1); m["kind"] = "WEB"; return m }()), ReasonOutOfRange, "kind"},
	} {
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

// TestAvroRegistryUnavailable: while the registry does not answer, a record of a new schema id is
// not a dead letter but an error wrapping ErrUnavailable; once it answers, the record decodes.
func TestAvroRegistryUnavailable(t *testing.T) {
	fx := newRegistryFixture(t, sr.TypeAvro, avroTxV1)
	down := true
	fx.fake.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		if down {
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	f := avroTestFormat(fx.reg)
	if err := f.Init(); err != nil {
		t.Fatal(err)
	}
	dec := f.NewDecoder()
	var ev Event
	rec := &kgo.Record{Value: avroRecord(t, avroTxV1, fx.ids[0], avroTx(3))}
	err := dec.Decode(rec, &ev)
	if _, ok := AsRejection(err); ok || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("registry down: %v, want an ErrUnavailable that is no rejection", err)
	}
	down = false
	if err := dec.Decode(rec, &ev); err != nil {
		t.Fatalf("registry back: %v", err)
	}
	// A refusal of our credentials is neither: it stops the runtime.
	fx2 := newRegistryFixture(t, sr.TypeAvro, avroTxV1)
	fx2.fake.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		w.WriteHeader(http.StatusUnauthorized)
		return true
	})
	f2 := avroTestFormat(fx2.reg)
	if err := f2.Init(); err != nil {
		t.Fatal(err)
	}
	err = f2.NewDecoder().Decode(rec, &ev)
	if _, ok := AsRejection(err); ok || err == nil || errors.Is(err, ErrUnavailable) {
		t.Fatalf("credentials refused: %v, want a permanent error", err)
	}
}

// TestAvroPinnedSubject: with a pinned subject (and version), ids of other subjects or versions
// are dead letters.
func TestAvroPinnedSubject(t *testing.T) {
	fx := newRegistryFixture(t, sr.TypeAvro, avroTxV1, avroTxV2)
	const other = `{"type":"record","name":"O","fields":[{"name":"card_id","type":"string"},{"name":"amount","type":"double"},{"name":"ts","type":"long"}]}`
	otherID, _, err := fx.fake.RegisterSchema("other-value", sr.Schema{Schema: other})
	if err != nil {
		t.Fatal(err)
	}
	fx.reg.Subject, fx.reg.Version = "tx-value", 2
	f := avroTestFormat(fx.reg)
	if err := f.Init(); err != nil {
		t.Fatal(err)
	}
	dec := f.NewDecoder()
	var ev Event
	if err := dec.Decode(&kgo.Record{Value: avroRecord(t, avroTxV2, fx.ids[1], avroTx(1))}, &ev); err != nil {
		t.Fatalf("pinned version: %v", err)
	}
	for _, v := range []struct {
		value []byte
		id    int
	}{
		{avroRecord(t, avroTxV1, fx.ids[0], avroTx(1)), fx.ids[0]},
		{avroRecord(t, other, otherID, map[string]any{"card_id": "c", "amount": 1.0, "ts": int64(1764105513123)}), otherID},
	} {
		err := dec.Decode(&kgo.Record{Value: v.value}, &ev)
		if rj, ok := AsRejection(err); !ok || rj.Reason != ReasonUnknownSchema {
			t.Errorf("schema id %d: %v, want unknown_schema", v.id, err)
		}
	}
}

// TestAvroDecodeAllocatesNothing: in steady state (the schema known) a record costs no allocation.
func TestAvroDecodeAllocatesNothing(t *testing.T) {
	fx := newRegistryFixture(t, sr.TypeAvro, avroTxV1)
	f := avroTestFormat(fx.reg)
	if err := f.Init(); err != nil {
		t.Fatal(err)
	}
	dec := f.NewDecoder()
	var ev Event
	recs := make([]*kgo.Record, 1000)
	for i := range recs {
		recs[i] = &kgo.Record{Value: avroRecord(t, avroTxV1, fx.ids[0], avroTx(float64(i)))}
	}
	if err := dec.Decode(recs[0], &ev); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(5, func() {
		for _, r := range recs {
			if err := dec.Decode(r, &ev); err != nil {
				t.Fatal(err)
			}
		}
	})
	if allocs != 0 {
		t.Errorf("%.0f allocations per 1000 records, want 0", allocs)
	}
}
