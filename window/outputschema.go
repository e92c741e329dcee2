package window

// ResultAvroSchema is the Avro schema of a window result with outputs.format avro: the fields of
// the JSON result (docs/config.md), aggregates as a map by name (null: no value, or overflowed and
// named in overflow).
const ResultAvroSchema = `{"type":"record","name":"WindowResult","namespace":"streamd","fields":[
{"name":"window","type":"string"},
{"name":"key","type":"string"},
{"name":"start","type":"long"},
{"name":"end","type":"long"},
{"name":"emit","type":"string"},
{"name":"count","type":"long"},
{"name":"aggs","type":{"type":"map","values":["null","double"]}},
{"name":"overflow","type":{"type":"array","items":"string"},"default":[]}]}`

// ResultProtoSchema is the Protobuf schema of a window result with outputs.format protobuf: the
// JSON result's fields by name; an aggregate without a value is an entry with no value.
const ResultProtoSchema = `syntax = "proto3";
package streamd;

message WindowResult {
  string window = 1;
  string key = 2;
  int64 start = 3;
  int64 end = 4;
  string emit = 5;
  int64 count = 6;
  map<string, OptionalDouble> aggs = 7;
  repeated string overflow = 8;
}

message OptionalDouble {
  optional double value = 1;
}
`
