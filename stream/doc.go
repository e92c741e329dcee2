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
// # Shutdown
//
// Cancelling Run's context stops polling, commits the open cycle (bounded by ShutdownTimeout),
// closes every task, then closes the client. With static membership (Config.InstanceID) the member
// does not leave the group, so a restart takes its partitions back without a rebalance.
package stream
