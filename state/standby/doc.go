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
// # The warm balancer
//
// Balancer is the group's balancer when replicas are configured (protocol "streamd-warm",
// cooperative), in the manner of Kafka Streams' HighAvailabilityTaskAssignor, which reads task
// lags from the subscriptions' user data. Every member's JoinGroup metadata is the consumer
// protocol's (topics, owned partitions, generation) with, as user data, the position of each of
// its replicas: the sum over the partition's stores of the changelog offset its state reflects
// (Replicas.Positions). Positions of one partition are comparable across members, being offsets
// in the same changelogs, so the highest is the least lag; a member's own partitions count as
// warmest. The leader decides everything with Assign, a pure function:
//
//   - active partitions: counts within one; owners keep theirs up to their share; a partition
//     without an owner goes to a member holding a replica of it (a maximum matching of free
//     partitions to holders with room, so that no partition is left cold for want of a better
//     order), the most advanced holder with room; the rest to the least loaded members;
//   - standby roles: min(n, members-1) per partition, never on its owner, an even share per
//     member, one owner's partitions spread over different members (a failed owner's partitions
//     then land warm on several survivors; all on one, as Choose puts them, and that one has room
//     for only a share), preferring members that run the replica already.
//
// Partition p of every consumed topic goes to the same member, so a labels topic stays with its
// events as under the range balancer. The plan then passes franz-go's
// BalancePlan.AdjustCooperative, as its cooperative-sticky balancer's does: a partition moving
// between members is only taken from its owner in one round and assigned in the next, after the
// owner revoked it. The standby roles travel in each member's assignment user data; the runtime
// reads its own from the group's description (ParseStandby).
//
// # Which partitions
//
// Every instance sets its replicas from the group's assignment after each rebalance (the runtime
// describes the group, and again every few seconds; a group with partitions left unassigned
// between the two rounds of a cooperative rebalance is not acted on): under Balancer, the standby
// partitions the leader put in its assignment; under another protocol (a rolling upgrade, whose
// older members do not offer Balancer's), Choose gives each member the partitions owned by the n
// members that follow it in the order of their instance ids. Either way every partition has
// min(n, members-1) replicas on instances other than its owner.
//
// Under Balancer, a failed instance's partitions resume on their replicas whenever the survivors'
// shares leave room (for any one failure in a group the leader balanced). Under another balancer
// with more than n+1 instances, only those that happen to land on one of their n replicas are
// warm. A partition whose only replica was on a member that restarts is cold until that member's
// replicas run again (a restarted member advertises none at its first join): its new owner
// restores from whatever directory it has (the tail if it owned or stood by for it before, else
// the whole changelog).
//
// # Disk
//
// Set stops and removes the directory of every partition that is no longer wanted, and the
// runtime removes, after each settled assignment, the directories of partitions it neither owns
// nor stands by for (left from an earlier ownership): an instance's disk holds the state of its
// own partitions and its replicas, nothing more. Take and Close keep directories.
package standby
