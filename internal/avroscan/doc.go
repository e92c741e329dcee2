// Package avroscan reads the values at a few paths of Avro binary records, without allocating:
// the per-record decoder of streamd's avro source format.
//
// # Why a plan per schema
//
// A generic Avro decoder (hamba/avro into a map or a struct, or its reflection-free generic
// reader) builds the whole record: every string, every nested record, every array, into values
// the pipeline then mostly throws away. A source task needs a handful of fields. Compile takes the
// writer's schema (parsed by hamba/avro, which owns the schema language: names, namespaces,
// references, logical types) and the wanted paths, and builds a plan: a tree over the schema's
// types that says, for each field of each record, whether to skip it (and how: a fixed width, a
// length-prefixed run, a union branch, array and map blocks, whose byte sizes are used when the
// writer gave them) or to read it into a slot. Decoding a record is then one walk over its
// bytes, with no allocation: strings, bytes, enums and fixed values point into the record (or, for
// enums, into the plan), integers are written as decimal text into the Scanner's scratch so that
// they can be keys and ids exactly, floats are returned as float64.
//
// One plan serves one writer schema. Records written with a newer schema of the same subject (a
// field added or removed) get their own plan; a path the writer's schema does not have is
// reported by Plan.Absent, so that the caller can reject such records for their schema rather
// than for their contents.
//
// # Paths
//
// A path is a list of segments: a record's field name, an array index (a decimal number), or a
// map key. Through a union, a path goes into every branch that has it; a record whose branch lacks
// it (a null) has no value there. The value at a path is the value of its type: null, boolean,
// int and long (decimal text in Value.Raw), float and double (Value.Num), string, bytes and fixed
// (their bytes), enum (its symbol), record and map (an Object whose Raw is its encoding), array
// (an Array). Logical types are their underlying type: timestamp-millis is a long, a decimal is
// bytes.
//
// # Validation
//
// Every record is walked to its end, the fields nobody reads included, so that a record passes
// or fails the same way whatever the paths: a length or a count that runs past the end, a varint
// longer than 10 bytes, a boolean other than 0 or 1, a union branch or an enum symbol out of
// range, bytes left after the record, and nesting deeper than MaxDepth are a *SyntaxError with the
// offset. Lengths and counts are checked against what is left of the input before they are used,
// so a hostile record cannot make the scanner allocate or loop beyond its size.
//
// # Ownership
//
// Values point into the record and into the Scanner's scratch, and are valid until the next Scan
// on that Scanner while the record is unchanged. A Plan is immutable and safe to share; a
// Scanner is one goroutine's.
package avroscan
