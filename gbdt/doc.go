// Package gbdt scores gradient-boosted tree ensembles trained offline: XGBoost models saved as JSON
// or UBJSON (gbtree; binary:logistic, reg:squarederror, multi:softprob) and LightGBM text models
// (binary, regression, multiclass), in pure Go, with the libraries' own results: every prediction
// equals the library's, and so do the TreeSHAP explanations. It has no Kafka, no state and no
// configuration of its own; the model operator plugs it in (see "How it plugs in").
//
// # Usage
//
//	m, err := gbdt.LoadFile("fraud.ubj")          // format detected; gzip'd files too
//	s, err := m.Bind(pipelineFeatureNames)        // *MissingFeaturesError names what is missing
//	out := make([]float64, m.Outputs())
//	s.Predict(x, out)                             // x in the pipeline's layout, NaN = missing
//	contribs := make([]float64, m.ContributionsLen())
//	s.Contributions(x, contribs)                  // on demand: TreeSHAP, bias last
//	top := m.TopK(contribs, 0, 5, topBuf)         // the five largest, by |value|
//
// A Model is immutable and shared; a Scorer holds scratch memory and belongs to one goroutine
// (one per task). Predict, Margin and, after its first call, Contributions allocate nothing.
//
// # Exactness: computing as the libraries compute
//
// Agreement to the last bit comes from doing each library's arithmetic, not a cleaner one:
//
//   - XGBoost works in float32. Its DMatrix stores float32 features, its split conditions are
//     float32, a row goes left when x < split (NaN: the node's default direction), and the margin
//     is a float32 sum that starts at the base score and adds each tree's leaf in tree order. The
//     Scorer converts the input to float32 and sums the same way; the sigmoid (with XGBoost's
//     clamp at 88.7 and its 1e-16) and the softmax (float32 exponentials summed in a double) are
//     XGBoost's common::Sigmoid and common::Softmax.
//   - LightGBM works in float64 with double thresholds and goes left when x <= threshold, which
//     the forest stores as x < nextafter(threshold, +Inf) so both libraries share one comparison
//     (a threshold of +Inf keeps <=, in a node kind of its own). Missing values follow the node's
//     missing type from decision_type: NaN (NaN takes the default direction), Zero (0 and NaN do)
//     or None (NaN is read as 0 and goes where 0 goes). Inputs within kZeroThreshold (1e-35) of
//     zero are read as 0, since LightGBM drops them from the row before it predicts.
//   - Categorical splits. XGBoost (split_type 1, categories per node) sends the categories in the
//     node's set right and everything else left, NaN to the default; a category is the float32
//     value truncated, valid when 0 <= x < 2^24. LightGBM (decision_type bit 0, the node's
//     threshold indexing cat_boundaries into the cat_threshold bitset words) sends categories in
//     the set left and the rest right: NaN, x <= -1, and x >= 2^31. Both become a bitset per node.
//   - Base score. XGBoost 3 writes learner_model_param.base_score as a string, "5E-1" or a vector
//     "[a,b,c]" (one intercept per class): a probability for binary:logistic, which the loader
//     turns into a margin with XGBoost's clamped float32 logit, a margin for multi:softprob, a
//     value for regression. LightGBM has no base score: boost_from_average is folded into the
//     first trees' leaves, so margins start at 0.
//   - best_iteration. An XGBoost model with a best_iteration attribute (early stopping) is scored
//     with the iterations up to it, as the scikit-learn wrapper predicts and as
//     iteration_range=(0, best_iteration+1) does; BestIteration and NumTrees say so. LightGBM
//     writes only the best iteration's trees when it saves.
//   - TreeSHAP (shap.go) is the path-dependent algorithm of Lundberg et al. that both libraries
//     implement, followed step for step in the forest's float type, with products and quotients
//     grouped as the libraries group them: reordering one product in float32 moves XGBoost's
//     regression contributions by 8e-6. Covers are XGBoost's sum_hessian and LightGBM's data
//     counts; the bias column is the tree's expected value plus the base score.
//
// The fixtures prove it: testdata/gen/gen.py trains a model per library and objective on
// scikit-learn's bundled data sets (breast cancer, diabetes with two categorical bands, wine with
// one) and writes 10,000 evaluation rows per data set, with missing cells, zeros, unseen and
// negative categories and values on split thresholds, and the libraries' predictions, margins and
// pred_contribs. TestExactness compares every row; the current fixtures (XGBoost 3.2.0, LightGBM
// 4.7.0) agree exactly for XGBoost (bit for bit in float32; 7e-9 for one softmax probability,
// where the exponential differs in its last bit) and within 2.3e-16 for LightGBM. Regenerate them
// by hand:
//
//	python3 -m venv /tmp/gbdt-venv
//	/tmp/gbdt-venv/bin/pip install xgboost==3.2.0 lightgbm==4.7.0 scikit-learn pandas
//	/tmp/gbdt-venv/bin/python gbdt/testdata/gen/gen.py
//
// The tests never need Python: they read the committed fixtures (gzip'd CSV, about 4 MB).
//
// # Layout and traversal
//
// Each tree is renumbered breadth-first into one node array for the whole forest (forest.go): a
// node holds its threshold, its left child's index, its feature and a kind, and its right child
// is always left+1, so a decision is an add, not a second load. Children come after their
// parents, which the loader checks, so every walk ends. A leaf points at itself (its value lives
// in a parallel array), so a tree of depth d is walked in exactly d steps without a leaf test, and
// several trees are walked in lock step: four at a time, or eight on the bare-comparison path,
// giving the processor independent chains of loads to overlap. A step compiles without branches
// on the data (the comparison is a coin flip a branch predictor cannot learn):
//
//   - In a simple forest (every split a plain numeric comparison, which is most models without
//     categorical features or LightGBM's zero_as_missing) on a row without NaN, a step is
//     left + (x >= thr). The Scorer reads +Inf as the largest finite float there, which no
//     finite threshold tells apart, so leaves (threshold +Inf) hold the walk in place.
//   - A row with a NaN adds the default direction: goRight = (x >= thr) &^ (isNaN & missLeft).
//   - Categorical, zero-missing and +Inf-threshold nodes take a slower path, tested per step.
//
// The 100-tree depth-6 benchmark models take 160 KB (XGBoost, 16-byte nodes) and 250 KB
// (LightGBM, 24-byte nodes) and stay in cache; docs/BENCHMARKS.md has the figures (about 1 µs of
// CPU per dense row, 0 allocations).
//
// # Hostile model files
//
// A model file is input we did not write. Load rejects, with an error naming what is wrong, every
// file that is malformed or uses what this package does not score (dart or gblinear boosters,
// vector-leaf or multi-target trees, linear trees, random-forest averaging, other objectives): it
// never panics. Allocation is bounded: the file (after gzip) is at most MaxModelBytes; the UBJSON
// decoder (internal/ubjson, fuzzed) checks every length against the input left and caps its
// output; array lengths must match the node counts before any node is built; nodes, trees,
// features, depth (256, which also bounds TreeSHAP's memory) and category bitsets are capped.
// FuzzLoad runs every loader on mutated model files.
//
// # How it plugs in
//
// The model operator (model/offline.go) serves a model of `models.list[].offline`: at start it
// calls LoadFile and Bind with the names of the pipeline's dense feature vector, so a model that
// needs a feature the pipeline does not compute is refused at start with every missing name; each
// task binds its own Scorer and calls Predict per event (no allocation on the per-record path);
// with explanations configured it calls Contributions and TopK and adds the top-k features to the
// prediction record. An offline model does not learn: labels feed its evaluation metrics and the
// drift detector, and a new model file is a new version, published to the versions topic
// (model/versions.go) and swapped in at a commit-cycle boundary.
package gbdt
