package model

// PredictionAvroSchema is the Avro schema of a prediction record with outputs.format avro: the
// fields of the JSON record (docs/config.md), features as a map (their set is the pipeline's, and
// a map keeps one schema, hence one registered subject version, across feature changes). A JSON
// null (a missing feature, a non-finite score) is the union's null; an absent optional part
// (label, overflow, explanation, challengers) is its default.
const PredictionAvroSchema = `{"type":"record","name":"Prediction","namespace":"streamd","fields":[
{"name":"event_id","type":"string"},
{"name":"key","type":"string"},
{"name":"model","type":"string"},
{"name":"version","type":"long"},
{"name":"score","type":["null","double"]},
{"name":"class","type":"long"},
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
{"name":"challengers","type":{"type":"map","values":["null","double"]},"default":{}}]}`
