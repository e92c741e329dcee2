// Package stream is streamd's runtime: it runs a Pipeline (a source topic, a format, operators and a
// dead-letter topic) over Kafka exactly once.
//
// # Processing model
//
// The Runtime is one consumer-group member with one transactional producer (franz-go's
// GroupTransactSession, EOS v2 / KIP-447, read_committed fetches). Each assigned source partition is
// a Task: it owns its decoder, its operator instances (Processors) and its outputs, and runs on its
// own goroutine, so processors need no locks. The poll loop hands each partition's records to its
// task in order.
//
// # Commit cycle
//
// Every CommitInterval (or CommitRecords records) the loop closes the cycle: it waits at a barrier
// until every task has processed what it was given, then ends the transaction. The transaction holds
// the cycle's outputs, dead letters and consumer offsets, so they become visible together or not at
// all. An aborted cycle rewinds the consumer to the last committed offsets and its records are
// processed again; tasks keep nothing of an aborted cycle. Rebalance callbacks run only between
// cycles (BlockRebalanceOnPoll), so a partition never changes owner in the middle of one.
//
// # Formats
//
// A Format turns a source record into an Event. The one streamd builds is a SchemaFormat, in two
// layers, so that what a pipeline requires of its input does not depend on how the input is encoded:
//
//   - a Wire (format.go) knows the encoding. Given the list of declared paths once (Wire.Init), its
//     per-task WireDecoder fills one Value per path for each record: a kind (missing, null, number,
//     string, bool, object, array) and the raw bytes or number. JSONWire (jsonformat.go, over
//     internal/jsonscan) is the model: it allocates nothing and points into the record.
//   - a Schema (fields.go, eventtime.go) is applied after it, the same for every encoding: the size
//     limit before decoding, then each field's type, required, min, max, max_length and allowed
//     values, then the entity key, the event id and the event time with its not_before and
//     max_future limits. The reasons and details of rejected records therefore read the same
//     whatever the encoding.
//
// JSONFormat is the shorthand for a SchemaFormat over a JSONWire, with the schema's declarations
// written in place. The config compiler looks source.format up in config/formats.go.
//
// Adding an encoding (Avro or Protobuf behind a schema registry, say) is one file in this package
// with its Wire and WireDecoder, an entry in config/formats.go's table, and the encoding's config
// block if it has settings. Its paths are the declared field names; dotted paths into nested records
// are the wire's to resolve, and binary numbers come back in Value.Num (integers also as text in
// Value.Raw, so that they can be keys and ids exactly). Values that are not in the record body,
// such as Kafka headers as fields, belong in SchemaFormat's decoder, which has the record and can
// fill their slots before or after the wire, so that every encoding gets them.
//
// # Bad input
//
// A record the format cannot accept (malformed JSON, a missing key, a value out of range, an event
// time from 1970 or 2100, a record over the size limit) is not an error: it goes to the dead-letter
// topic in the same transaction, with its Reason and a human-readable detail in headers, and
// streamd_dead_letters_total{reason} counts it. A Processor refuses an event the same way by
// returning Reject(...). Any other error from a processor is fatal: the cycle aborts and Run returns
// it, so that nothing is half done.
//
// # Memory
//
// The per-record path allocates nothing in steady state: the Event is reused, the JSON scanner
// keeps its scratch, and every produced record, header and copied byte comes from the task's
// outbox, whose slabs are reused once the cycle has ended (when franz-go no longer holds them).
//
// The process as a whole keeps to Config.MemoryBudget (memory.go): every buffer that grows with
// the input has a share of it, a commit cycle ends once its tasks hold their share (each task
// publishes what its outbox and state writes hold), the Go memory limit is set from the budget,
// and the poll loop pauses, ending the open cycle, while the live heap is over a high-water mark.
//
// # Shutdown
//
// Cancelling Run's context stops polling, commits the open cycle (bounded by ShutdownTimeout),
// closes every task, then closes the client. With static membership (Config.InstanceID) the member
// does not leave the group, so a restart takes its partitions back without a rebalance.
package stream
