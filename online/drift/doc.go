// Package drift detects changes in the mean of a stream of numbers, meant
// for a model's per-example loss: when the loss of the model in production
// rises, the world has changed and the model should be reset, retrained or
// replaced by a challenger (the scoring operator decides which).
//
// ADWIN (Bifet and Gavaldà, 2007) keeps a window of recent values, as
// exponential-histogram buckets (ADWIN2), and drops its older part whenever
// the means of the two parts differ by more than a Hoeffding-style bound at
// confidence Delta. PageHinkley is a CUSUM test of the deviation from the
// running mean: cheaper, one number of state, but its threshold must be
// tuned to the scale of the input.
//
// Both can report only increases (Direction Up), which is what a loss needs:
// a model's loss falls while it learns, and that is not an alarm. ADWIN still
// shrinks its window on a decrease, so the older, worse values do not mask a
// later rise.
//
// For reports, ADWIN.LastCut and PageHinkley.LastDetection say what the
// last detection saw (the cut's two sub-windows; the test's statistics);
// they are not state.
//
// Detectors are deterministic, have AppendState/DecodeState, and are not
// safe for concurrent use. Update does not allocate in steady state.
package drift
