// Package jsonscan is the per-record JSON decoder of the stream hot path: a single-pass, validating
// scanner that checks that a record is exactly one JSON object and extracts the values of a few
// configured fields (top-level keys, or paths into nested objects and arrays), without allocating.
//
// # Why not encoding/json
//
// A source task decodes every Kafka record (typically ~150 bytes, a flat object of 5–15 fields) and
// needs only the handful of fields the pipeline declares. encoding/json has to validate the whole
// input in one pass (its scanner, a state machine driven through a function pointer per byte) and then
// decode it in a second; decoding into a map allocates the map, its keys and its values, and decoding
// into a struct needs a struct type known at compile time and still allocates every string. At
// hundreds of thousands of records per second per core that is most of the CPU and a steady stream of
// garbage. This package makes one pass over the bytes with plain loops, compares each top-level key
// against the wanted names, and hands back slices of the input instead of copies: the benchmark record
// (171 bytes, 8 fields, 5 wanted) takes under 200 ns on a server core, about a tenth of
// json.Unmarshal into a struct, and allocates nothing.
//
// # Usage
//
//	schema := jsonscan.NewSchema("card_id", "amount") // once; safe to share
//	var sc jsonscan.Scanner                           // one per goroutine
//	vals := make([]jsonscan.Value, schema.Len())      // one per goroutine
//	for _, rec := range records {
//		if err := sc.Scan(rec, schema, vals); err != nil {
//			// not JSON (*jsonscan.SyntaxError), or JSON but not an object (jsonscan.ErrNotObject)
//			continue
//		}
//		cardID, amount := vals[0], vals[1] // Kind Missing when absent
//		if amount.Kind == jsonscan.Number {
//			x, err := amount.Float()
//			...
//		}
//		_ = cardID.Raw // valid until the next sc.Scan
//	}
//
// # Paths
//
// NewSchema names top-level keys; NewPathSchema names paths, each a list of segments: an object key,
// or a decimal index into an array ([payment amount], [items 0 price]). The schema is a small tree
// of the wanted names; the scanner descends (recursively, bounded by the schema's deepest path, not
// by the input) only into the objects and arrays that some path goes through, and skips everything
// else with the non-recursive validator, so a nested path costs about what a top-level key costs plus
// the keys it passes.
//
// # Duplicate keys
//
// The top-level object and every object a wanted path goes through are checked for a key given
// twice, wanted or not (a *DuplicateKeyError, errors.Is ErrDuplicateKey): encoding/json keeps the
// last value and other readers the first, so such a record means different things downstream. It is
// reported only for input that is otherwise valid. An object's keys are compared linearly (lengths
// first) up to 32 keys and hashed into a per-Scanner table beyond, so a hostile record with 100,000
// keys costs linear time; the buffers are reused, so steady-state Scans still allocate nothing.
//
// # Ownership of Value.Raw
//
// Raw is never a copy made for the caller. For numbers, literals, objects, arrays and strings
// without escape sequences it is a sub-slice of the input; for strings with escapes it points into the
// Scanner's scratch buffer, which is reset (and overwritten) by the next Scan. Scratch grows to the
// largest decoded strings of a record and is then reused, so steady-state Scans allocate nothing
// (a buffer above 64 KiB, left by a freak record, is dropped rather than kept forever). A Value is therefore
// valid until the next Scan on the same Scanner, and only while the caller leaves the input unchanged;
// copy what must live longer. Raw slices have their capacity clipped to their length, so appending to
// one reallocates instead of overwriting the input or a neighbouring value.
//
// # Validation guarantees
//
// Scan accepts exactly the inputs that encoding/json's Valid accepts and whose top-level value is an
// object, with surrounding JSON whitespace allowed, except for duplicate keys and lone surrogates
// (above) and that nesting deeper than MaxDepth (512)
// levels is rejected (encoding/json's limit is 10000; 512 is far beyond any real record and bounds the
// scanner's fixed-size stack). Unwanted fields and wanted nested values are validated as thoroughly as
// wanted scalars: a record with a broken value in a field nobody reads is still rejected, so an input
// passes or fails the same way whatever the schema.
//
// Like encoding/json, Scan accepts bytes that are not valid UTF-8 inside strings. Unlike
// encoding/json, which replaces each such byte with U+FFFD when it decodes, Scan passes them through
// unchanged in String values (escape sequences are decoded; other bytes are copied as they are), so
// the caller can decide to reject the record instead of silently storing altered text; call
// utf8.Valid on Raw where that matters. The same holds for keys: a key containing invalid UTF-8
// matches no schema name. A \u escape of a UTF-16 surrogate that does not form a pair with the next
// escape (\ud800 alone, \udc00 first) is rejected with a *SyntaxError wrapping ErrLoneSurrogate,
// anywhere in the input: encoding/json accepts it and decodes it to U+FFFD, changing the text
// silently.
//
// Errors: invalid JSON gives a *SyntaxError with the byte offset of the problem; nesting deeper than
// MaxDepth gives a *SyntaxError that wraps ErrTooDeep; well-formed JSON whose top-level value is not an
// object (an array, a string, a number...) gives ErrNotObject itself, so callers can tell a record
// that is not JSON from one that is JSON of the wrong shape. On any error every value is reset to
// Missing.
//
// # Writing
//
// AppendString is the matching writer: it appends a string as a JSON string literal, byte for byte as
// encoding/json would write it with HTML escaping off, so outputs can be built without reflection.
package jsonscan
