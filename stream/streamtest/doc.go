// Package streamtest runs a pipeline's operators in-process, without Kafka, for unit tests of
// operators: records in, committed outputs out, with real Pebble state on disk, the operators'
// metrics in a Prometheus registry, and restarts that restore state from the changelog. It plays
// the part Kafka Streams' TopologyTestDriver and goka's tester play: the runtime minus the broker.
//
// A Driver builds its task with the runtime's own constructor (stream.OpenLocalTask), so operators
// see the same Task, decoders, watermark and commit protocol they see in production. Kafka's part
// is played by the driver: it keeps every produced record, gives each a per-topic offset, shows
// outputs only once their cycle commits (as a read_committed consumer sees them) and keeps the
// committed changelog records, from which a task that lost its disk is restored through
// state.Store.NewRestorer, the restore path of the runtime.
package streamtest
