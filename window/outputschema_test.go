package window

import (
	"testing"

	"github.com/streamd/streamd/stream"
)

// TestResultSchemasTakeEveryShape encodes window results of every shape emit writes (a null
// aggregate, overflow) with the Avro and the Protobuf schema.
func TestResultSchemasTakeEveryShape(t *testing.T) {
	avroEnc, err := stream.NewAvroOutput(nil, ResultAvroSchema)
	if err != nil {
		t.Fatal(err)
	}
	protoEnc, err := stream.NewProtobufOutput(nil, ResultProtoSchema)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{
		`{"window":"w","key":"card-1","start":0,"end":60000,"emit":"final","count":3,"aggs":{"count":3,"sum_amount":12.5,"p99_amount":null}}`,
		`{"window":"w","key":"card-1","start":0,"end":60000,"emit":"update","count":2,"aggs":{"sum_amount":null},"overflow":["sum_amount"]}`,
	} {
		if _, err := avroEnc.Encode(nil, []byte(in)); err != nil {
			t.Errorf("avro: %v\n%s", err, in)
		}
		if _, err := protoEnc.Encode(nil, []byte(in)); err != nil {
			t.Errorf("protobuf: %v\n%s", err, in)
		}
	}
}
