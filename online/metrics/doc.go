// Package metrics evaluates online models prequentially: each metric is
// updated with the prediction made before the model learned the example,
// and reports its value both cumulatively (since the start or the last
// Reset) and over a rolling window of the last N examples, because a
// model's recent quality is what drift alarms and champion/challenger
// choices need while the cumulative value is what is compared across runs.
//
// Every metric has AppendState/DecodeState so that it travels with its model
// through the changelog; the encoding is deterministic and DecodeState never
// panics and leaves the metric unchanged on error. Update does not allocate.
// Metrics are not safe for concurrent use.
//
// Rolling windows keep the last N per-example contributions in a ring and a
// running sum; the sum is recomputed from the ring every N updates so that
// floating-point cancellation cannot accumulate. ClassReport (a multiclass
// model's per-class recall and macro-F1) keeps integer counts, exact in both.
package metrics
