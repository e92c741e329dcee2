// Package export turns a topic of streamd's JSON outputs (training rows, predictions, window
// results) into files a data scientist loads into pandas: Parquet with typed columns, or JSON
// lines, one file per period of event time (streamd export).
//
// # What it reads
//
// Run reads the topic as a read_committed consumer sees it when the export begins
// (internal/topicread): each partition up to its last stable offset then, so that an export is a
// snapshot of committed records, and a transaction still open is left for the next export. Each
// record's value must be a JSON object (outputs.format json); anything else stops the export with
// the record's position, rather than leave a hole in the files.
//
// # Files
//
// A record belongs to the period (Options.Roll: an hour or a day, UTC) of its event time: the
// streamd-event-time header streamd writes on every output, else a top-level event_time in
// Unix milliseconds, else the record timestamp. Each period is one file,
// <dir>/<topic>-<period>.parquet (or .jsonl), written under a temporary name and renamed when
// complete, so that a reader never sees half a file. Records arrive in offset order per partition,
// not in event time, so every period met stays open until the end; each Parquet writer flushes
// a row group every 10,000 rows, which bounds what it holds.
//
// # Parquet schema
//
// The columns are the JSON records flattened, in two passes over the snapshot: the first infers
// each column's type from every value it holds, the second writes. An object's fields become
// columns named by their dotted path (features.amount_log, source.offset); an array of objects
// that each have a string "name" (a training row's models) becomes columns by that name
// (models.ftrl.score); any other array is a string column holding its JSON. A column whose values
// are all integers is INT64, or TIMESTAMP(MILLIS) for event_time, label_time, start and end at the
// top level; numbers that are not all integers are DOUBLE; booleans BOOLEAN; anything else (or a
// mix) STRING. Every column is optional: a record without the field, or with null, has a null.
package export
