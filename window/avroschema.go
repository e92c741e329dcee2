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
