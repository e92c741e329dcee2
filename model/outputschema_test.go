package model

import (
	"testing"

	"github.com/streamd/streamd/stream"
)

// TestPredictionSchemasTakeEveryShape encodes predictions of every shape appendPrediction writes
// (docs/config.md: string, bool, index and null labels, overflow, explanation, challengers, null
// score and features) with the Avro and the Protobuf schema.
func TestPredictionSchemasTakeEveryShape(t *testing.T) {
	avroEnc, err := stream.NewAvroOutput(nil, PredictionAvroSchema)
	if err != nil {
		t.Fatal(err)
	}
	protoEnc, err := stream.NewProtobufOutput(nil, PredictionProtoSchema)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{
		`{"event_id":"9f1c2a7e4b3d","key":"card-004211","model":"fraud_ftrl","version":1,"score":0.0213,"class":0,"label":0,
		 "event_time":1764105513123,"source":{"topic":"transactions","partition":2,"offset":48213},
		 "features":{"amount_log":3.74,"country":"DE","tx_count_10m":3},"challengers":{"fraud_tree":0.018}}`,
		`{"event_id":"9f1c2a7e4b3d","key":"card-004211","model":"nightly","version":3,"score":0.91,"class":1,
		 "event_time":1764105513123,"source":{"topic":"transactions","partition":2,"offset":48213},
		 "features":{"amount":812.5,"channel":"online","tx_count_10m":9},
		 "explanation":{"bias":-2.61,"top":[{"feature":"amount","contribution":2.48},{"feature":"channel","contribution":null}]}}`,
		`{"event_id":"e","key":"k","model":"m","version":0,"score":null,"class":2,"label":"fraud","event_time":1,
		 "source":{"topic":"t","partition":0,"offset":0},"features":{"a":null,"sum":null},"overflow":["sum"],"challengers":{"x":null}}`,
		`{"event_id":"e","key":"k","model":"m","version":0,"score":0.5,"class":1,"label":true,"event_time":1,
		 "source":{"topic":"t","partition":0,"offset":0},"features":{}}`,
		`{"event_id":"e","key":"k","model":"m","version":0,"score":0.5,"class":1,"label":null,"event_time":1,
		 "source":{"topic":"t","partition":0,"offset":0},"features":{}}`,
		`{"event_id":"e","key":"k","model":"m","version":1,"warm":false,"score":0.5,"class":null,"label":null,"event_time":1,
		 "source":{"topic":"t","partition":0,"offset":0},"features":{"x":0.25}}`,
		`{"event_id":"e","key":"k","model":"m","version":1,"warm":true,"score":0.5,"class":1,"label":1,"event_time":1,
		 "source":{"topic":"t","partition":0,"offset":0},"features":{"x":0.25}}`,
		`{"event_id":"e","key":"k","model":"sm","version":1,"warm":true,"score":0.7,"class":2,"label":"chargeback",
		 "probabilities":{"chargeback":0.7,"legit":0.2,"fraud":null},"event_time":1,
		 "source":{"topic":"t","partition":0,"offset":0},"features":{"x":0.25}}`,
		`{"event_id":"e","key":"k","model":"reg","version":0,"score":-12.5,"class":0,"event_time":1,
		 "source":{"topic":"t","partition":0,"offset":0},"features":{"x":1}}`,
	} {
		if _, err := avroEnc.Encode(nil, []byte(in)); err != nil {
			t.Errorf("avro: %v\n%s", err, in)
		}
		if _, err := protoEnc.Encode(nil, []byte(in)); err != nil {
			t.Errorf("protobuf: %v\n%s", err, in)
		}
	}
}
