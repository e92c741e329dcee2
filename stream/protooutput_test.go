package stream

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/dynamicpb"
)

const testProtoOutputSchema = `syntax = "proto3";
package t;
message Out {
  string key = 1;
  int64 n = 2;
  int32 p = 3;
  optional double score = 4;
  Label label = 5;
  map<string, V> features = 6;
  repeated string overflow = 7;
  map<string, D> aggs = 8;
  Src src = 9;
}
message Label { oneof kind { bool flag = 1; int64 index = 2; string name = 3; } }
message V { oneof kind { bool flag = 1; double number = 2; string text = 3; } }
message D { optional double value = 1; }
message Src { string topic = 1; }
`

func TestProtobufOutputEncodesJSONValues(t *testing.T) {
	fake := srfake.New()
	t.Cleanup(fake.Close)
	cl, err := sr.NewClient(sr.URLs(fake.URL()))
	if err != nil {
		t.Fatal(err)
	}
	enc, err := NewProtobufOutput(&Registry{Client: cl, Timeout: time.Second}, testProtoOutputSchema)
	if err != nil {
		t.Fatal(err)
	}
	if err := enc.Register(context.Background(), "out"); err != nil {
		t.Fatal(err)
	}
	id := enc.ID()
	if err := enc.Register(context.Background(), "out"); err != nil || enc.ID() != id {
		t.Fatalf("second registration: id %d, first %d, %v", enc.ID(), id, err)
	}
	b, err := enc.Encode(nil, []byte(`{"key":"k","n":9007199254740993,"p":-3,"score":null,"label":"fraud",
		"features":{"a":1.5,"b":"x","c":true,"d":null},"overflow":["s"],"aggs":{"sum":2,"max":null},"src":{"topic":"tx"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != 0 || int(binary.BigEndian.Uint32(b[1:5])) != id || b[5] != 0 {
		t.Fatalf("header % x, want 0, id %d, message indexes [0]", b[:6], id)
	}
	m := dynamicpb.NewMessage(enc.md)
	if err := proto.Unmarshal(b[6:], m); err != nil {
		t.Fatal(err)
	}
	got := protojson.Format(m)
	want := dynamicpb.NewMessage(enc.md)
	if err := protojson.Unmarshal([]byte(`{"key":"k","n":"9007199254740993","p":-3,"label":{"name":"fraud"},
		"features":{"a":{"number":1.5},"b":{"text":"x"},"c":{"flag":true},"d":{}},"overflow":["s"],
		"aggs":{"sum":{"value":2},"max":{}},"src":{"topic":"tx"}}`), want); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(m, want) {
		t.Fatalf("decoded %s\nwant %s", got, protojson.Format(want))
	}

	for _, in := range []string{
		`{"key":"k","p":4294967296}`, // int32 overflow
		`{"key":"k","n":1.5}`,        // not an integer
		`{"key":"k","nope":1}`,       // not in the message
		`{"key":null}`,               // implicit field cannot be null
		`{"key":"k","label":[1]}`,    // fits no field of Label
		`[1]`,
	} {
		if _, err := enc.Encode(nil, []byte(in)); err == nil {
			t.Errorf("Encode(%s) = nil error", in)
		}
	}
}

func BenchmarkProtobufOutputEncode(b *testing.B) {
	enc, err := NewProtobufOutput(nil, testProtoOutputSchema)
	if err != nil {
		b.Fatal(err)
	}
	in := []byte(`{"key":"card-004211","n":1764105513123,"p":2,"score":0.0213,"label":0,"src":{"topic":"transactions"},
		"features":{"amount_log":3.74,"country":"DE","tx_count_10m":3}}`)
	var dst []byte
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if dst, err = enc.Encode(dst[:0], in); err != nil {
			b.Fatal(err)
		}
	}
}
