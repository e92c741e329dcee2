package stream

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/bufbuild/protocompile"
	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

// The benchmark record of BenchmarkJSONDecode (cardRecord), in Avro and Protobuf: the same eight
// fields, the same five read, the same rules (benchFormat's schema), so that the three decoders
// compare like for like.
const (
	benchAvroSchema = `{"type":"record","name":"Card","fields":[{"name":"event_id","type":"string"},
	  {"name":"card_id","type":"string"},{"name":"event_time","type":"string"},{"name":"amount","type":"double"},
	  {"name":"merchant","type":"string"},{"name":"country","type":"string"},{"name":"channel","type":"string"},
	  {"name":"mcc","type":"int"}]}`
	benchProtoSchema = `syntax = "proto3"; package b;
	  message Card { string event_id = 1; string card_id = 2; string event_time = 3; double amount = 4;
	  string merchant = 5; string country = 6; string channel = 7; int32 mcc = 8; }`
)

func benchCard(i int, now time.Time) map[string]any {
	return map[string]any{"event_id": fmt.Sprintf("%016x", i), "card_id": fmt.Sprintf("card-%06d", i%10000),
		"event_time": now.UTC().Format("2006-01-02T15:04:05.000Z"), "amount": float64(i%900) + 0.17,
		"merchant": fmt.Sprintf("m-%04d", i%3000), "country": "DE", "channel": "online", "mcc": 5411}
}

func benchRecords(b *testing.B, encode func(map[string]any) []byte) []*kgo.Record {
	now := time.Now()
	recs := make([]*kgo.Record, 1024)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: "tx", Offset: int64(i), Value: encode(benchCard(i, now)), Timestamp: now}
	}
	return recs
}

func benchDecode(b *testing.B, f Format, recs []*kgo.Record) {
	if err := f.Init(); err != nil {
		b.Fatal(err)
	}
	dec := f.NewDecoder()
	var ev Event
	if err := dec.Decode(recs[0], &ev); err != nil { // the schema is fetched once
		b.Fatal(err)
	}
	b.SetBytes(int64(len(recs[0].Value)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := dec.Decode(recs[i%len(recs)], &ev); err != nil {
			b.Fatal(err)
		}
	}
}

func benchSchema() Schema {
	jf := benchFormat()
	return Schema{KeyField: jf.KeyField, IDField: jf.IDField, Time: jf.Time, Fields: jf.Fields, MaxRecordBytes: jf.MaxRecordBytes}
}

// BenchmarkAvroDecode: decoding and validating one Avro record, as BenchmarkJSONDecode does JSON.
func BenchmarkAvroDecode(b *testing.B) {
	fx := newRegistryFixture(b, sr.TypeAvro, benchAvroSchema)
	schema := avro.MustParse(benchAvroSchema)
	recs := benchRecords(b, func(v map[string]any) []byte {
		p, err := avro.Marshal(schema, v)
		if err != nil {
			b.Fatal(err)
		}
		return confluent(fx.ids[0], p)
	})
	benchDecode(b, &SchemaFormat{Schema: benchSchema(), Wire: &AvroWire{Registry: fx.reg}}, recs)
}

// BenchmarkAvroGeneric is the generic way, for comparison: hamba/avro decodes the whole record
// into a map, from which the five fields are read (no rules applied).
func BenchmarkAvroGeneric(b *testing.B) {
	schema := avro.MustParse(benchAvroSchema)
	recs := benchRecords(b, func(v map[string]any) []byte {
		p, err := avro.Marshal(schema, v)
		if err != nil {
			b.Fatal(err)
		}
		return p
	})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var m map[string]any
		if err := avro.Unmarshal(schema, recs[i%len(recs)].Value, &m); err != nil {
			b.Fatal(err)
		}
		if m["amount"] == nil || m["card_id"] == nil {
			b.Fatal("fields missing")
		}
	}
}

func benchProtoDescriptor(b *testing.B) protoreflect.MessageDescriptor {
	comp := protocompile.Compiler{Resolver: &protocompile.SourceResolver{
		Accessor: protocompile.SourceAccessorFromMap(map[string]string{"b.proto": benchProtoSchema})}}
	fds, err := comp.Compile(context.Background(), "b.proto")
	if err != nil {
		b.Fatal(err)
	}
	return fds[0].Messages().Get(0)
}

func benchProtoRecords(b *testing.B, md protoreflect.MessageDescriptor, frame func([]byte) []byte) []*kgo.Record {
	return benchRecords(b, func(v map[string]any) []byte {
		m := dynamicpb.NewMessage(md)
		js := fmt.Sprintf(`{"event_id":%q,"card_id":%q,"event_time":%q,"amount":%v,"merchant":%q,"country":%q,"channel":%q,"mcc":%d}`,
			v["event_id"], v["card_id"], v["event_time"], v["amount"], v["merchant"], v["country"], v["channel"], v["mcc"])
		if err := protojson.Unmarshal([]byte(js), m); err != nil {
			b.Fatal(err)
		}
		p, err := proto.Marshal(m)
		if err != nil {
			b.Fatal(err)
		}
		return frame(p)
	})
}

// BenchmarkProtobufDecode: decoding and validating one Protobuf record with the plan walker.
func BenchmarkProtobufDecode(b *testing.B) {
	fx := newRegistryFixture(b, sr.TypeProtobuf, benchProtoSchema)
	recs := benchProtoRecords(b, benchProtoDescriptor(b), func(p []byte) []byte { return confluent(fx.ids[0], append([]byte{0}, p...)) })
	benchDecode(b, &SchemaFormat{Schema: benchSchema(), Wire: &ProtobufWire{Registry: fx.reg}}, recs)
}

// BenchmarkProtobufDynamicpb is the alternative the plan walker was measured against:
// proto.Unmarshal into a reused dynamicpb message, then the five fields read through reflection
// (no rules applied).
func BenchmarkProtobufDynamicpb(b *testing.B) {
	md := benchProtoDescriptor(b)
	recs := benchProtoRecords(b, md, func(p []byte) []byte { return p })
	fields := []protoreflect.FieldDescriptor{md.Fields().ByName("card_id"), md.Fields().ByName("event_id"),
		md.Fields().ByName("event_time"), md.Fields().ByName("amount"), md.Fields().ByName("mcc")}
	m := dynamicpb.NewMessage(md)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m.Reset()
		if err := (proto.UnmarshalOptions{Merge: true}).Unmarshal(recs[i%len(recs)].Value, m); err != nil {
			b.Fatal(err)
		}
		for _, fd := range fields {
			_ = m.Get(fd)
		}
	}
}
