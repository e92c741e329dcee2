// Package ubjson transcodes Universal Binary JSON (UBJSON, draft 12) into JSON text, so that a
// reader of a JSON schema needs one decoder for both encodings. XGBoost saves its models in either;
// the gbdt package reads both through encoding/json after this transcoding.
//
// # Why transcode instead of decoding into values
//
// The one consumer (gbdt) decodes a fixed schema into Go structs, and encoding/json already does
// that well, strictly and without panics. A UBJSON document maps one to one onto JSON text, apart
// from the number types, which carry their exact value across: integers print in decimal, float32
// and float64 print as the shortest decimal that reads back to the same value at that precision
// (strconv's 'g', -1), so a float32 read back with ParseFloat(s, 32) — as encoding/json does for a
// float32 field — is bit-identical. Loading a model is not on a hot path; clarity wins here.
//
// # Format
//
// Supported: null Z, no-op N (skipped where a value may start), true T, false F, int8 i, uint8 U,
// int16 I, int32 l, int64 L (big-endian), float32 d, float64 D, high-precision number H (its text
// must be a JSON number), char C (ASCII), string S, arrays [ ] and objects { } with keys written as
// length-prefixed strings, and the optimized container forms with a count (#) and optionally a
// type ($) before it, which have no closing marker. A non-finite float (NaN, ±Inf) has no JSON form
// and is an error, as is a string that is not valid UTF-8, a negative length, or trailing bytes
// after the top-level value.
//
// # Hostile input
//
// Every input is treated as hostile: ToJSON returns an error for any malformed document and never
// panics, and it allocates at most Limits.MaxOutput bytes of output (plus the output buffer's growth
// slack) whatever the document claims: a count or length is checked against the bytes left in the
// input where its elements need input bytes, and the output size is checked before every write, so
// a typed container of a billion nulls fails quickly instead of growing without bound. Nesting is
// limited by Limits.MaxDepth, so the recursion depth is bounded too.
package ubjson
