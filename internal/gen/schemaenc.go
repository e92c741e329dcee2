package gen

import (
	"encoding/binary"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// The schemas of a transaction in Avro and Protobuf: the JSON record's fields, with the same names
// and the event time as the same RFC 3339 text, so that a pipeline reads any of the three formats
// with the same source.fields.
const (
	AvroSchema = `{"type":"record","name":"Transaction","namespace":"streamd.gen","fields":[
  {"name":"event_id","type":"string"},{"name":"card_id","type":"string"},{"name":"event_time","type":"string"},
  {"name":"amount","type":"double"},{"name":"merchant","type":"string"},{"name":"country","type":"string"},
  {"name":"channel","type":"string"},{"name":"mcc","type":"int"}]}`
	ProtobufSchema = `syntax = "proto3";
package streamd.gen;

message Transaction {
  string event_id = 1;
  string card_id = 2;
  string event_time = 3;
  double amount = 4;
  string merchant = 5;
  string country = 6;
  string channel = 7;
  int32 mcc = 8;
}
`
)

// Encoding writes a valid transaction in a binary format behind Confluent's header (magic byte 0,
// the schema id; for Protobuf the message indexes [0]).
type Encoding struct {
	Protobuf bool // else Avro
	SchemaID int
}

// Append appends tx's record value to dst.
func (e Encoding) Append(dst []byte, tx Transaction) []byte {
	dst = append(dst, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(e.SchemaID))
	ts := tx.Time.UTC().Format(timeLayout)
	if e.Protobuf {
		dst = append(dst, 0) // message indexes: the first message
		str := func(n protowire.Number, s string) {
			dst = protowire.AppendTag(dst, n, protowire.BytesType)
			dst = protowire.AppendString(dst, s)
		}
		str(1, tx.EventID)
		str(2, tx.CardID)
		str(3, ts)
		dst = protowire.AppendTag(dst, 4, protowire.Fixed64Type)
		dst = protowire.AppendFixed64(dst, math.Float64bits(tx.Amount))
		str(5, tx.Merchant)
		str(6, tx.Country)
		str(7, tx.Channel)
		dst = protowire.AppendTag(dst, 8, protowire.VarintType)
		return protowire.AppendVarint(dst, uint64(int64(int32(tx.MCC))))
	}
	str := func(s string) {
		dst = binary.AppendVarint(dst, int64(len(s))) // Avro's zigzag varint
		dst = append(dst, s...)
	}
	str(tx.EventID)
	str(tx.CardID)
	str(ts)
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(tx.Amount))
	str(tx.Merchant)
	str(tx.Country)
	str(tx.Channel)
	return binary.AppendVarint(dst, int64(int32(tx.MCC)))
}
