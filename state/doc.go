// Package state keeps a task's state in Pebble on local disk, replicated through Kafka changelog
// topics, so that it survives crashes and moves with its partition.
//
// # Layout
//
// Each task has one DB (one Pebble database in its own directory) holding all of the task's stores,
// each under its own key prefix, and, beside the data, the changelog offset each store's committed
// state reflects. A store's changelog is the compacted topic <app>-<store>-changelog
// (ChangelogTopic), partition = the task's partition.
//
// # A commit cycle
//
// Writes of the open cycle go into the store's cycle cache, an arena hash map that coalesces them
// per key: reads see them at once, and at the end of the cycle only the latest value of each
// changed key becomes a changelog record (Store.Changes), however often it was written. Range scans
// see the cycle's writes through an indexed Pebble batch. When the Kafka transaction holding the
// changelog records has committed, DB.Commit writes the cycle and every store's new changelog offset
// in one atomic Pebble batch; DB.Abort forgets the cycle. After a crash the database holds a whole
// cycle or none of it, and its offsets say which, so the restore replays exactly the changelog
// records after them.
//
// # Restore
//
// RestoreFromKafka replays a store's changelog partition (read_committed) from the store's offset
// to the end: the tail after a restart, everything when there is no local state. Local state that
// is ahead of its changelog (the topic was deleted or recreated) is refused with
// ErrChangelogBehind rather than silently diverging.
//
// # Faults
//
// A disk that refuses a write fails the DB with a DiskError (ErrDiskFull, ErrWriteFailed) instead
// of letting Pebble panic (diskfault.go says why a guard file system is needed); local state that
// cannot be trusted is a CorruptError, and OpenOrRebuild moves such a directory aside, kept for
// inspection, and opens an empty one, which the restore rebuilds from the changelog (corrupt.go).
//
// # Memory and ownership
//
// A process shares one Pebble block cache among its tasks (Options.Cache). In front of Pebble each
// store keeps a record cache of committed values, bounded in bytes. Values returned by Get and
// Iter are owned by the store and valid only as their doc comments say; copy them to keep them. A
// DB is used from its task's goroutine only.
package state
