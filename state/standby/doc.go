// Package standby keeps standby replicas: warm copies, on this instance, of the state of source
// partitions that other instances own, so that when one of them fails and its partitions are
// assigned here the restore replays only the changelog's tail instead of all of it.
//
// # What a replica is
//
// A replica of partition p is p's task database in the directory its task would use
// (<state.dir>/<app>/<topic>-<p>), fed by a consumer of p's changelog partitions (one per store,
// read_committed, control records kept) that applies each record through state's Restorer and
// records each store's changelog offset with the records, in the same atomic batch. That is
// exactly what a restore writes, so a replica is a restore that never ends: its database is the
// committed changelog up to its recorded offsets. Processing never writes it; only the replica's
// goroutine holds it.
//
// # Promotion
//
// When p is assigned here the runtime calls Replicas.Take, which stops the consumer and closes
// the database, keeping the directory; the task then opens it as after a restart of its own, and
// state.RestoreFromKafka replays only the records after the recorded offsets, up to the last
// stable offset. The exactly-once rule is the restore's: state equals the committed changelog to
// its last stable offset.
//
// A replica that cannot be continued is wiped and restored from the start: its recorded offset is
// past the changelog's end (the topic was truncated or recreated) or before its first offset
// (records it never saw were deleted), or the consumer is told the offset is out of range. A
// database found corrupt is moved aside by state.OpenOrRebuild and rebuilt the same way. A replica
// that lags is not wiped: the tail from any offset the changelog still holds gives the same state
// (compaction keeps the last value of every key after any offset), and it is never more to read
// than the whole changelog. The one exception is a tombstone compacted away after
// delete.retention.ms (24h on changelogs): a replica, like a stopped instance's directory, that
// stays more than that far behind may keep a deleted key. A running replica is seconds behind.
//
// # Which partitions
//
// Every instance decides its own replicas from the group's assignment after each rebalance (the
// runtime describes the group, and again every few seconds; a group with partitions left
// unassigned between the two rounds of a cooperative rebalance is not acted on): Choose gives each member the
// partitions owned by the n members that follow it in the order of their instance ids, so every
// partition has min(n, members-1) replicas on instances other than its owner. With two instances
// and n = 1 each has a warm copy of everything the other owns.
//
// The group's balancer (cooperative-sticky, or range with a labels topic) does not know where the
// replicas are. With n+1 instances or fewer every survivor stands by for every partition of every
// other instance, so a failed instance's partitions always land on warm copies. With more
// instances, a failed instance's partitions are spread over the survivors by the balancer, and
// only those that land on one of their n replicas are warm; the others restore from whatever
// directory their new owner has (the tail if it owned or stood by for them before, else the whole
// changelog). Making the balancer prefer warm instances, as Kafka Streams does with task lags in
// its assignor, needs a balancer whose member metadata carries the replicas' positions; that is
// not built.
//
// # Disk
//
// Set stops and removes the directory of every partition that is no longer wanted, and the
// runtime removes, after each settled assignment, the directories of partitions it neither owns
// nor stands by for (left from an earlier ownership): an instance's disk holds the state of its
// own partitions and its replicas, nothing more. Take and Close keep directories.
package standby
