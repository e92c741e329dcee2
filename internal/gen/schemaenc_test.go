package gen

import (
	"context"
	"testing"
	"time"

	"github.com/bufbuild/protocompile"
	"github.com/hamba/avro/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/dynamicpb"
)

// TestEncodingMatchesTheSchemas: what Encoding writes decodes, with the published schemas, through
// hamba/avro and through protobuf's dynamicpb, to the transaction it was made from.
func TestEncodingMatchesTheSchemas(t *testing.T) {
	tx := Transaction{EventID: "00000000000000ff", CardID: "card-000042", Time: time.UnixMilli(1764105513123).UTC(),
		Amount: 12.34, Merchant: "m-0007", Country: "DE", Channel: "pos", MCC: 5411}

	b := Encoding{SchemaID: 7}.Append(nil, tx)
	if b[0] != 0 || b[4] != 7 {
		t.Fatalf("avro header % x", b[:5])
	}
	var got map[string]any
	if err := avro.Unmarshal(avro.MustParse(AvroSchema), b[5:], &got); err != nil {
		t.Fatal(err)
	}
	if got["card_id"] != tx.CardID || got["amount"] != tx.Amount || got["mcc"] != 5411 || got["event_time"] != "2025-11-25T21:18:33.123Z" {
		t.Errorf("avro decoded %v", got)
	}

	b = Encoding{Protobuf: true, SchemaID: 9}.Append(nil, tx)
	if b[0] != 0 || b[4] != 9 || b[5] != 0 {
		t.Fatalf("protobuf header % x", b[:6])
	}
	comp := protocompile.Compiler{Resolver: &protocompile.SourceResolver{Accessor: protocompile.SourceAccessorFromMap(map[string]string{"g.proto": ProtobufSchema})}}
	fds, err := comp.Compile(context.Background(), "g.proto")
	if err != nil {
		t.Fatal(err)
	}
	md := fds[0].Messages().Get(0)
	m := dynamicpb.NewMessage(md)
	if err := proto.Unmarshal(b[6:], m); err != nil {
		t.Fatal(err)
	}
	f := md.Fields()
	if m.Get(f.ByName("card_id")).String() != tx.CardID || m.Get(f.ByName("amount")).Float() != tx.Amount ||
		m.Get(f.ByName("mcc")).Int() != 5411 || m.Get(f.ByName("event_id")).String() != tx.EventID {
		t.Errorf("protobuf decoded %v", m)
	}
}
