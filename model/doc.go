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
// # What a prediction says
//
// A prediction carries "warm": whether its model had learned its ModelSpec.MinExamples when it
// scored the event. A cold model decides nothing: its score is published as it is, but its class
// and label are null, so that an unlearned model (an FTRL without a label scores 0.5, which is
// class 1) never publishes a decision; a reset by drift makes it cold again. Its "features" are
// what the champion received, under the features' names: numbers after their transforms (for an
// online learner: log1p, clip, standardize by the scaler as it was at scoring; an offline model
// reads raw values), categories as the event's values. A multiclass prediction carries the
// probabilities of its ModelSpec.TopK most probable classes, named as its label is. All of it is
// written without allocating (TestOnlineScoringAllocs, TestMulticlassScoringAllocs).
//
// # Drift and class weights
//
// The champion's per-example loss or error (DriftSpec.Signal) feeds a detector; a detection is
// logged, counted per model and written to DriftSpec.Topic in the cycle's transaction, and the
// action says in the log what it did (driftreport.go). Class weights (ModelSpec.ClassWeights, or
// ClassBalanced by the running class frequency) weigh each learned example by its class for
// learners that take weights (online.WeightedLearner); evaluation counts every example once.
//
// # Labels
//
// A label must suit every model, since all of them learn it: 0 or 1 (or a bool) for binary models,
// an integer class 0..K-1 for multiclass ones, any finite number for regression. Any other value is
// a dead letter with reason label_out_of_range that names the value, the model and what it allows
// (labels.go). A label record from the labels topic is rejected on its own, and its prediction
// keeps waiting. An event whose own label is out of range is rejected as a whole before it is
// scored: a stream.Rejection from Process dead-letters the record and keeps it from later operators
// and the watermark, so a prediction published for it would belong to an event the task did not
// accept. Every accepted event gets exactly one prediction; a rejected one none, and no model
// learns from it, until a corrected record is replayed.
//
// A label from the topic whose event has not been scored yet (an early label, common in catch-up
// runs) waits in the store under the event id, with an expiry by the labels TTL from the label's
// time in event time, and at most LabelSpec.MaxWaiting per task; Process scores the event, then
// learns the waiting label at once. An early label that expires or is evicted by the cap counts as
// unmatched. Early labels and their count are task state like the pending predictions, so aborted
// cycles and restarts keep them exact.
//
// # Training rows
//
// With Spec.Training the operator writes, once per labelled event, the row the models saw to that
// topic in the cycle's transaction (training.go): the features are the bytes of the event's own
// prediction, so that a row and its prediction cannot disagree, and a pending prediction carries
// them (with every model's score and version) until its label comes. A row is committed exactly
// when the learning step it records is; aborted cycles and restarts give the same rows.
//
// # State
//
// A task's models are task state, kept in the operator's Pebble store and replicated through its
// changelog like window state: a full snapshot every SnapshotEvery learned examples, and between
// snapshots a log of the learned examples. Open loads the last snapshot and replays the log after
// it; Rewind does the same after an aborted cycle. Learning is deterministic in its inputs, so
// after any crash a task's models are exactly the models behind its committed predictions.
//
// # Offline models
//
// A model can also be trained offline (XGBoost, LightGBM; package gbdt): it scores every event on
// the dense feature vector, by feature name, takes part in champion and challenger, evaluation and
// promotion, explains its predictions on demand (TreeSHAP top-k), and lends its margin to online
// learners as a feature (stacking); it does not learn. Its versions come from a compacted versions
// topic, are checked by every instance, and are swapped in at commit-cycle boundaries, so that each
// prediction names the version that made it (offline.go, versions.go).
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
