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
// AvroWire (avroformat.go) and ProtobufWire (protoformat.go) read Confluent's wire format, their
// schemas from a schema registry (registry.go): each schema id is fetched once, compiled into a
// plan for the declared paths (internal/avroscan, internal/protoscan) and kept, so that a producer
// moving to a new schema version is read at once, without a restart, and without allocating.
// Binary numbers come back in Value.Num (integers also as text in Value.Raw, so that they can be
// keys and ids exactly). A schema that lacks a path the pipeline requires is the record's fault
// only in that the schema is: WirePath.Required tells the wire, which rejects such records with
// ReasonSchemaMissingField. Paths are dotted (items.0.price, internal/fieldpath); header:NAME
// paths are read by SchemaFormat's decoder itself from the Kafka headers, the same for every
// encoding, and never reach the wire.
//
// # A registry that does not answer
//
// A record whose schema id the registry does not know (HTTP 404) is a dead letter; a record
// whose schema id cannot be looked up because the registry is unreachable must not be: it is the
// registry's outage, not the record's fault, and a dead letter then would lose a good record for
// ever. The decoder returns an *UnavailableError (wrapping ErrUnavailable) instead of a
// Rejection. To the task that is a fatal error, so the cycle aborts: nothing of it is committed,
// no dead letter, no offset. Run treats it like a broker outage (outage.go): it closes the
// session, waits with a growing backoff (250 ms to 10 s), and starts a new one, which processes
// the same records again from the committed offsets; the instance is not ready meanwhile and says
// why in WARN logs. That reuses the one recovery path the crash tests prove exactly once, rather
// than a second way to rewind a cycle inside a session. Its costs are a new session per attempt
// (fencing, rejoining the group: quick with static membership) and that the other partitions'
// tasks wait too; a registry outage only matters for schema ids not seen before, as every plan
// is kept, so a running pipeline rides through one unless its producers change schema meanwhile.
// Blocking the task inside the cycle instead would hold the transaction open against its timeout.
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
// # Dedup by event id
//
// Dedup (dedup.go), the first operator when source.dedup is set, drops an event whose id was
// already accepted within a TTL of event time, judged against the task's watermark, so that the
// decision is the same on every replay; its ids are task state like window state. A processor
// that drops an event returns ErrDrop: later operators do not see it, it does not move the
// watermark, and the operator counts it.
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
// # Tables
//
// An EnrichedFormat joins tables (Table, tables.go, over package state/table) to the source: a
// global table, held whole by every instance and opened before the group is joined, is joined by
// an event field; a co-partitioned one, with the source's partition count, is opened per task and
// joined by the entity key. The task fills each event's NAME.FIELD fields before the operators
// see it. Each commit cycle reads one version (a snapshot and its offset vector) of each table;
// the version is committed in the task store with the cycle and written on every output as the
// header streamd-table-NAME, and a task opens only once its tables have reached the versions its
// last committed cycle read. An output's table values are thus those of a replay of the table's
// topic in offset order up to its header's version, and versions never go back along a
// partition's committed outputs, crashes included (docs/architecture.md, Tables, says exactly
// what is and is not promised).
//
// # Standby replicas
//
// With Config.StandbyReplicas each instance keeps warm copies of partitions other members own
// (standby.go, package state/standby): after every rebalance it describes the group, follows the
// changelogs of the partitions the leader gave it as standby roles (standby.Choose's pick under
// another balancer) into their task directories, and when one of them is assigned here its task
// opens the warm directory, so the restore replays only the tail. The group's balancer is then
// standby.Balancer (runtime.go balancers): it knows every member's replicas and gives a lost
// partition to the member holding its most advanced one.
//
// # Output formats
//
// Operators emit JSON. Pipeline.OutputEncoders rewrites the values emitted to a topic (in
// Task.Emit and Task.EmitRecord) into Confluent's Avro (avrooutput.go) or Protobuf
// (protooutput.go) wire format, by walking the schema over the JSON value; Run registers each
// encoder's schema under `<topic>-value` before it consumes, and a refusal stops start-up. A value
// the schema does not describe stops the task rather than publish what consumers cannot read.
//
// # Output timestamps and topic settings
//
// Every record an operator emits carries its event time in the streamd-event-time header and is
// stamped, by default, with processing time (the producer's clock when it takes the record); dead
// letters and late records likewise, with the rejected record's own timestamp in
// streamd-source-timestamp. Pipeline.Topics (TopicSettings, topicsettings.go) asks for event-time
// timestamps per topic, and gives the configs (retention, cleanup policy, ...) and replication
// factor of each output topic Run creates. Processing time is the default because the broker's
// time-based retention judges a segment by its newest timestamp: outputs stamped with the event
// times of old history are deleted at its next retention check, committed or not.
//
// # Shutdown
//
// Cancelling Run's context stops polling, commits the open cycle (bounded by ShutdownTimeout),
// closes every task, then closes the client; the standby replicas stop after the last session,
// keeping their directories. With static membership (Config.InstanceID) the member
// does not leave the group, so a restart takes its partitions back without a rebalance.
package stream
