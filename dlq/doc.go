// Package dlq re-injects dead letters into a topic, exactly once: streamd dlq replay.
//
// # What a dead letter holds
//
// A dead letter (stream's dead-letter topic) is the rejected record itself — key, value, record
// timestamp and the record's own headers — followed by streamd's headers: the lineage
// (streamd-source-topic, -partition, -offset) and the rejection (streamd-reason, streamd-error,
// streamd-field, streamd-operator, and streamd-original-bytes when the value was truncated). Replay
// splits them by position (leading lineage, trailing rejection), not by name, because a record read
// from another streamd pipeline's output carries lineage headers of its own, which it keeps.
//
// # Replay
//
// Replay reads the dead-letter topic from its start up to its end offsets as of the start of the
// run (read_committed), picks the dead letters the Selection asks for (reasons; a window of record
// timestamps, which are the original records' timestamps), and produces each as the record it was:
// same key, value, timestamp and headers, with streamd's dead-letter headers removed and two added:
// streamd-replay-count (one more than the record carried) and streamd-replayed-from (the dead
// letter's topic/partition/offset). By default a record goes back to its source topic and
// partition (the lineage headers), so that it reaches the task that owns its key; Options.Target
// sends every one to another topic instead, partitioned by key as Kafka's producers do.
//
// A record that has been replayed MaxReplays times and is a dead letter again is not replayed
// (counted in Summary.TooOften): a record that no config accepts cannot loop forever.
//
// # Exactly once
//
// Each replayed record is produced in a Kafka transaction together with an entry in the replay
// ledger, the compacted topic <app>-dlq-replayed keyed by the dead letter's position
// (topic/partition/offset). A run first initializes its transactional producer, whose id is fixed
// per app (<app>-dlq-replay): that fences any earlier run still alive and makes the broker abort
// its open transaction. Only then does it read the ledger (read_committed), and it skips every dead
// letter the ledger names. So:
//
//   - a replay committed in an earlier run is in the ledger, and is skipped: running the same replay
//     twice, or an overlapping one, re-injects nothing twice;
//   - a run killed midway leaves at most one open transaction; the next run's initialization aborts
//     it, so neither its records nor its ledger entries become visible, and the next run replays
//     them again;
//   - the pipeline reads its source read_committed, so it never sees an aborted replay.
//
// Two runs at the same time fence each other: the older one fails at its next commit. The ledger
// grows by one small record per replayed dead letter and is compacted, never deleted.
package dlq
