// Package model is streamd's scoring operator: it turns each accepted event into a feature vector,
// scores it with every configured model (a champion and its challengers), publishes the champion's
// prediction with its lineage, and learns prequentially once the event's label is known.
//
// # Features
//
// A FeatureSpec names a raw source field (numeric, with imputation, optional transforms and online
// standardization; or categorical, hashed or one-hot) or a computed feature that an earlier operator
// wrote into Event.Features (window aggregates as of the event, the event included). The layout
// built at New fixes each feature's place in the vector once, so the per-event path only fills a
// reused vector.
//
// # Scoring and learning
//
// Process scores the event with every model, emits the champion's prediction (score, class, model
// name and version, event id and time, feature values) to the predictions topic, and either learns
// at once when the label is a field of the same record, or keeps the raw features and the scores
// under the event id in the operator's store until the label arrives from the labels topic
// (OnLabel) or its TTL, measured in event time by the task's watermark, runs out (OnWatermark:
// counted, never silently dropped). Learning is test-then-train: the evaluation metrics and the
// drift detector see the score the model gave before it learned the label.
//
// # State
//
// A task's models are task state, kept in the operator's Pebble store and replicated through its
// changelog like window state: a full snapshot every SnapshotEvery learned examples, and between
// snapshots a log of the learned examples. Open loads the last snapshot and replays the log after
// it; Rewind does the same after an aborted cycle. Learning is deterministic in its inputs, so
// after any crash a task's models are exactly the models behind its committed predictions.
//
// # Replicas and versions
//
// Each partition trains its own replica of every model; merge.go describes how replicas are merged
// through the compacted <app>-models topic into new, monotonically increasing versions.
//
// # Observability
//
// The operator's registry gathers what every task of the instance publishes when its cycle
// commits (cumulative counts and each partition's model figures). It is both the operator's
// Prometheus collector and the source of the admin API's /v1/models. Only committed work is
// counted, so an aborted and replayed cycle counts once.
package model
