// Package online holds streamd's online learners: models that score every
// event and learn from each label as it arrives, prequentially (test, then
// train), inside a stream task.
//
// # Learners
//
// New(Spec) builds one of:
//
//   - "ftrl_logistic": FTRL-Proximal logistic regression (McMahan et al.,
//     "Ad click prediction: a view from the trenches", KDD 2013), Binary.
//   - "adagrad_linear" (or "linear"): least-squares regression with AdaGrad
//     on the online-standardized target, Regression.
//   - "softmax": multinomial logistic regression with AdaGrad, Multiclass.
//   - "kmeans": sequential k-means with a decay factor, Anomaly (the score is
//     the distance to the nearest centroid).
//   - "hoeffding_tree": a Hoeffding tree (VFDT) with Gaussian split
//     estimators and naive-Bayes-adaptive leaves, Binary or Multiclass; its
//     split rules are River's (compared in docs/BENCHMARKS.md).
//   - "hoeffding_tree_regressor": a Hoeffding tree regressor (variance
//     reduction over truncated per-value target statistics, linear or mean
//     leaves chosen adaptively), Regression; River's HoeffdingTreeRegressor
//     to the fourth decimal (docs/BENCHMARKS.md).
//   - "arf_classifier", "arf_regressor": Adaptive Random Forests of those
//     trees (online bagging with Poisson weights, random feature subsets per
//     leaf, per-tree ADWIN warning and drift detectors that start and swap
//     in background trees), Binary/Multiclass and Regression. They draw from
//     their own seeded splitmix64 generator, whose state is model state.
//   - "half_space_trees" (or "hst"): Half-Space Trees, Anomaly, unsupervised
//     (the score needs no label).
//
// All implement Learner. Spec carries every hyperparameter; EnsureDefaults
// fills zero fields in one place and Validate names every bad field. FTRL and
// softmax also implement WeightedLearner (an example learned as w examples:
// class weights for imbalanced classes).
//
// # Why FTRL for fraud and click models
//
// Fraud and click data are sparse (a few dozen non-zero features out of
// hundreds of thousands of hashed ones), heavily imbalanced, and shift over
// time. FTRL-Proximal was built for exactly that: it is an online method
// with a per-coordinate learning rate alpha/(beta+sqrt(sum of squared
// gradients)), so a merchant seen twice still learns fast while a feature
// seen a million times settles; and its L1 term, applied in closed form to
// the accumulated gradient, produces exact zeros, so a model over 2^18 hashed
// buckets stays small to score, ship and merge. Its log-loss outputs are
// calibrated probabilities, which a fraud threshold or a bid needs. A cost
// of about 20 sqrt/divisions per example keeps it well above a million
// updates per second per core (see docs/BENCHMARKS.md).
//
// # The hashing trick
//
// The scoring operator (package model) maps a categorical value to a bucket
// with preprocess.HashFeature(name, value, Dim) instead of a dictionary:
// memory is fixed by Dim whatever the vocabulary, there is no dictionary to
// store, restore or reconcile between replicas, and replicas on different
// partitions agree on every index without talking. Collisions add a little
// noise; Dim trades that noise against memory (16 bytes per bucket for the
// linear learners). Numeric fields get fixed indexes assigned by the caller.
//
// # State, determinism and recovery
//
// A model is task state: it goes through the task's changelog, and after a
// crash the restored model must be exactly the model behind the committed
// predictions. Therefore:
//
//   - AppendState encodes everything that influences a future prediction or
//     update (spec, counters, parameters, accumulators, tree statistics),
//     starting with a magic byte and a format version. Floats are written
//     as their IEEE-754 bits, so decoding is bit-exact, and dense parameter
//     arrays are written sparsely (only touched coordinates, in index order).
//   - Learning is deterministic given the input order: no randomness but a
//     seeded generator whose state is encoded (forests), no map iteration,
//     no concurrency; sums run in a fixed order. The same
//     history gives the same bytes, and restoring then continuing gives
//     bit-identical predictions to never having stopped (tested).
//   - DecodeState never panics on corrupt input and leaves the learner
//     unchanged on error; every length is checked against the input size
//     before it is allocated, and every float must be finite (fuzzed).
//   - Decode builds a learner of whatever kind the bytes hold.
//
// # Merging replicas
//
// One model runs as a replica in each task. Periodically model/ merges the
// replicas by weighted parameter averaging into a new version (weights are
// typically the examples each replica saw since the last merge) and hands
// the result back to every task. Merge is defined per learner:
//
//   - FTRL: n (squared-gradient sums) is averaged, and z is solved for so
//     that each merged weight is the weighted mean of the replicas' weights.
//     The merged margin w·x is then exactly the weighted mean of the
//     replicas' margins, and coordinates that are zero in every replica stay
//     zero. Averaging z itself would not give that: weights are not linear
//     in (z, n).
//   - Linear and softmax: weights and AdaGrad accumulators are averaged, so
//     predictions (logits) are averaged.
//   - K-means: centroids are matched one-to-one to the heaviest replica's by
//     increasing distance, then averaged with weights merge weight × cluster
//     weight.
//   - Hoeffding trees (classifier and regressor) and the adaptive random
//     forests: trees with different splits cannot be averaged meaningfully
//     (nor can a forest's detectors and per-tree accuracies), so the replica
//     with the largest merge weight is kept, byte for byte, and spread to the
//     others. Replicas must share the spec (a forest's seed included).
//   - Half-Space Trees: the spec fixes the trees, so the node masses are
//     averaged.
//
// After a merge Updates is the largest replica's count (replicas share the
// history before the last merge; summing would count it repeatedly).
//
// # Performance and concurrency
//
// Predict and Learn do not allocate in steady state and touch only the
// coordinates present in x. A Learner is not safe for concurrent use: a task
// owns it on one goroutine, as DESIGN.md prescribes.
//
// Subpackages: preprocess (scaling, imputation, hashing, one-hot), metrics
// (cumulative and rolling evaluation), drift (ADWIN, Page-Hinkley).
package online
