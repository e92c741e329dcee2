package model

// PredictionAvroSchema is the Avro schema of a prediction record with outputs.format avro: the
// fields of the JSON record (docs/config.md), features as a map (their set is the pipeline's, and
// a map keeps one schema, hence one registered subject version, across feature changes). A JSON
// null (a missing feature, a non-finite score) is the union's null; an absent optional part
// (label, overflow, explanation, challengers) is its default. A cold prediction's class is the
// union's null.
const PredictionAvroSchema = `{"type":"record","name":"Prediction","namespace":"streamd","fields":[
{"name":"event_id","type":"string"},
{"name":"key","type":"string"},
{"name":"model","type":"string"},
{"name":"version","type":"long"},
{"name":"warm","type":"boolean","default":true},
{"name":"score","type":["null","double"]},
{"name":"class","type":["null","long"]},
{"name":"label","type":["null","boolean","long","string"],"default":null},
{"name":"event_time","type":"long"},
{"name":"source","type":{"type":"record","name":"Source","fields":[
  {"name":"topic","type":"string"},{"name":"partition","type":"int"},{"name":"offset","type":"long"}]}},
{"name":"features","type":{"type":"map","values":["null","boolean","double","string"]}},
{"name":"overflow","type":{"type":"array","items":"string"},"default":[]},
{"name":"explanation","type":["null",{"type":"record","name":"Explanation","fields":[
  {"name":"bias","type":["null","double"]},
  {"name":"top","type":{"type":"array","items":{"type":"record","name":"Contribution","fields":[
    {"name":"feature","type":"string"},{"name":"contribution","type":["null","double"]}]}}}]}],"default":null},
{"name":"challengers","type":{"type":"map","values":["null","double"]},"default":{}},
{"name":"probabilities","type":{"type":"map","values":["null","double"]},"default":{}}]}`

// PredictionProtoSchema is the Protobuf schema of a prediction record with outputs.format protobuf:
// the JSON record's fields by name. A JSON null is an absent field (score, a feature's value, a
// label not yet named); FeatureValue and Label hold the JSON scalar by its kind.
const PredictionProtoSchema = `syntax = "proto3";
package streamd;

message Prediction {
  string event_id = 1;
  string key = 2;
  string model = 3;
  int64 version = 4;
  optional double score = 5;
  optional int64 class = 6;
  Label label = 7;
  int64 event_time = 8;
  Source source = 9;
  map<string, FeatureValue> features = 10;
  repeated string overflow = 11;
  Explanation explanation = 12;
  map<string, OptionalDouble> challengers = 13;
  bool warm = 14;
  map<string, OptionalDouble> probabilities = 15;
}

message Label {
  oneof kind {
    bool flag = 1;
    int64 index = 2;
    string name = 3;
  }
}

message Source {
  string topic = 1;
  int32 partition = 2;
  int64 offset = 3;
}

message FeatureValue {
  oneof kind {
    bool flag = 1;
    double number = 2;
    string text = 3;
  }
}

message OptionalDouble {
  optional double value = 1;
}

message Explanation {
  optional double bias = 1;
  repeated Contribution top = 2;
}

message Contribution {
  string feature = 1;
  optional double contribution = 2;
}
`
