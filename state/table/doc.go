// Package table materializes a table: a compacted Kafka topic whose records are rows (the record
// key is the row's key, the value its value, a tombstone deletes it), kept in a Pebble database on
// local disk and kept current by a consumer of its own.
//
// # What a table holds
//
// A Table holds some partitions of its topic (all of them for a global table, the task's one for
// a co-partitioned table), each partition a state.Store of its own whose recorded changelog
// offset is the offset after the last record applied. Applying a fetch writes its records and the
// new offset in one batch (state.Restorer), so that the database always holds exactly the
// partition's committed records (read_committed) up to its recorded offset, in offset order: a
// prefix of the partition. Open first replays each partition to its last stable offset with
// state.RestoreFromKafka, the changelogs' restore (the whole partition with no local state, the
// tail after a restart), then a goroutine follows the partitions as they grow.
//
// # Versions
//
// Readers never see a half-applied fetch: a View is a Pebble snapshot, with the offset vector
// (Position) it reflects read from the same snapshot, so a view is the table as of a precise
// version: every partition's records below its offset, none at or above it. A later view is never
// older (offsets only move forward while the table is open, and a restore never goes back).
//
// A key is expected to live in one partition (compaction is per partition, and every producer
// partitions by key); a key found in several is read from the highest-numbered partition that
// holds it.
package table
