package stream

import (
	"math"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
)

// fuzzRegistryFormat: whatever the bytes after a known schema id, Decode either accepts the record
// with the rules met, or refuses it with a declared reason; it never fails otherwise or panics.
func fuzzRegistryFormat(f *testing.F, typ sr.SchemaType, schema string, seed []byte, wire func(*Registry) Wire) {
	fx := newRegistryFixture(f, typ, schema)
	format := avroTestFormat(fx.reg)
	format.Wire = wire(fx.reg)
	if err := format.Init(); err != nil {
		f.Fatal(err)
	}
	dec := format.NewDecoder()
	known := map[Reason]bool{}
	for _, r := range Reasons() {
		known[r] = true
	}
	f.Add(seed[5:])
	f.Add(seed[5 : len(seed)/2])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, payload []byte) {
		var ev Event
		err := dec.Decode(&kgo.Record{Value: confluent(fx.ids[0], payload)}, &ev)
		if err != nil {
			if r, ok := AsRejection(err); !ok || !known[r.Reason] {
				t.Fatalf("Decode(%x) = %v, want a rejection with a known reason", payload, err)
			}
			return
		}
		if len(ev.Key) == 0 {
			t.Fatalf("Decode(%x) accepted a record without a key", payload)
		}
		if a, ok := ev.Number(0); !ok || math.IsNaN(a) {
			t.Fatalf("Decode(%x) accepted amount %v %v", payload, a, ok)
		}
	})
}

func FuzzAvroWire(f *testing.F) {
	fuzzRegistryFormat(f, sr.TypeAvro, avroTxV1, avroRecord(f, avroTxV1, 1, avroTx(5)), func(r *Registry) Wire { return &AvroWire{Registry: r} })
}

func FuzzProtobufWire(f *testing.F) {
	fuzzRegistryFormat(f, sr.TypeProtobuf, protoTxV1, protoRecord(f, protoTxV1, 1, protoTxJSON), func(r *Registry) Wire {
		return &ProtobufWire{Registry: r}
	})
}
