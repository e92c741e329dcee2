// Package preprocess turns raw event fields into the numbers and indexes of
// an online.Vector, learning what it needs (means, variances, vocabularies)
// from the stream itself.
//
// Everything stateful here is deterministic given the input order and has
// AppendState/DecodeState, because a preprocessor is part of its model: a
// model restored without the scaler it was trained with scores garbage.
// Nothing is safe for concurrent use; transforms do not allocate.
//
// The intended order for a numeric field is: impute a missing value, apply
// Log1p to heavy-tailed magnitudes (amounts, counts), Clip outliers, then
// standardize. Categorical fields are hashed (HashFeature: no state, unbounded
// vocabularies, collisions traded for memory) or, for small known-size
// vocabularies, one-hot encoded with a Vocabulary (no collisions, state grows
// with the vocabulary up to a cap).
package preprocess
