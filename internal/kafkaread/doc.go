// Package kafkaread reads a topic back as a read_committed consumer: every committed record up to
// the partitions' end offsets as of the call. The demo's verification (cmd/streamd) and the tests'
// broker harness (test/kafkatest) both read their outputs this way.
//
// The end offset of a partition written transactionally is usually a commit or abort marker, which
// a consumer without control records never sees; the reader keeps control records so that it
// knows when it has reached the end, and returns only data records.
package kafkaread
