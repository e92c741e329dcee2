package jsonscan

import (
	"errors"
	"strconv"
)

// MaxDepth is the deepest nesting of objects and arrays Scan accepts; the top-level object is level 1.
// Deeper input gives a *SyntaxError wrapping ErrTooDeep. The scanner never recurses, so the limit is
// not there to protect the goroutine stack: it bounds the fixed bit stack that tracks open containers
// (64 bytes), and no legitimate record comes near it.
const MaxDepth = 512

var (
	// ErrNotObject is returned, unwrapped, by Scan for input that is valid JSON but whose top-level value
	// is not an object. Input that is not valid JSON gives a *SyntaxError instead, whatever its shape.
	ErrNotObject = errors.New("jsonscan: top-level value is not an object")
	// ErrTooDeep is wrapped by the *SyntaxError Scan returns for nesting deeper than MaxDepth.
	ErrTooDeep = errors.New("jsonscan: exceeded maximum nesting depth")
	// ErrLoneSurrogate is wrapped by the *SyntaxError Scan returns for a string escape of one half of
	// a UTF-16 surrogate pair without the other (\ud800 alone, or \udc00 first). encoding/json
	// accepts it and decodes it to U+FFFD, silently changing the text; Scan refuses it.
	ErrLoneSurrogate = errors.New("jsonscan: lone UTF-16 surrogate in a string escape")
	// ErrDuplicateKey is matched (errors.Is) by the *DuplicateKeyError Scan returns.
	ErrDuplicateKey = errors.New("jsonscan: duplicate object key")
)

// DuplicateKeyError reports an object with the same key twice (see Scanner.Scan for which objects).
type DuplicateKeyError struct {
	Offset int    // byte offset of the second occurrence's opening quote
	Key    string // the key, unescaped
}

func (e *DuplicateKeyError) Error() string {
	return "jsonscan: duplicate key " + strconv.Quote(e.Key) + " at offset " + strconv.Itoa(e.Offset)
}

// Is makes errors.Is(err, ErrDuplicateKey) true.
func (e *DuplicateKeyError) Is(target error) bool { return target == ErrDuplicateKey }

// SyntaxError reports input that is not valid JSON.
type SyntaxError struct {
	Offset int    // byte offset of the offending character; len(input) for unexpected end of input
	Msg    string // description, without the "jsonscan: " prefix or the offset
	err    error  // wrapped sentinel (ErrTooDeep, ErrLoneSurrogate), or nil
}

const msgEOF = "unexpected end of input"

func (e *SyntaxError) Error() string {
	if e.Msg == msgEOF {
		return "jsonscan: " + msgEOF
	}
	return "jsonscan: " + e.Msg + " at offset " + strconv.Itoa(e.Offset)
}

// Unwrap returns ErrTooDeep for a nesting error and ErrLoneSurrogate for a lone surrogate, so that
// errors.Is works.
func (e *SyntaxError) Unwrap() error { return e.err }

// errAt builds the error for an unexpected byte at data[i], or for the end of input when i is past it.
// Every caller uses it on a failure path only, so the allocation is never on the hot path.
func errAt(data []byte, i int, context string) error {
	if i >= len(data) {
		return errEOF(data)
	}
	return &SyntaxError{Offset: i, Msg: "invalid character " + quoteChar(data[i]) + " " + context}
}

// errEOF and errTooDeep are kept out of line: they are called from many places in the hot
// functions, and inlining their allocation there would only bloat the loops.
//
//go:noinline
func errEOF(data []byte) error { return &SyntaxError{Offset: len(data), Msg: msgEOF} }

//go:noinline
func errLoneSurrogate(i int) error {
	return &SyntaxError{Offset: i, Msg: "lone UTF-16 surrogate in string escape", err: ErrLoneSurrogate}
}

//go:noinline
func errTooDeep(i int) error {
	return &SyntaxError{Offset: i, Msg: "exceeded maximum nesting depth of " + strconv.Itoa(MaxDepth), err: ErrTooDeep}
}

// quoteChar formats a byte for an error message: 'x', '\n', '\x01', '\xff'.
func quoteChar(c byte) string {
	if c < 0x80 {
		return strconv.QuoteRune(rune(c))
	}
	const hex = "0123456789abcdef"
	return `'\x` + string([]byte{hex[c>>4], hex[c&0xf]}) + `'`
}

// isSpace is JSON's whitespace: space, tab, line feed, carriage return. A table keeps skipWS small
// enough to inline at every call site.
var isSpace = [256]bool{' ': true, '\t': true, '\n': true, '\r': true}

func skipWS(data []byte, i int) int {
	for i < len(data) && isSpace[data[i]] {
		i++
	}
	return i
}

// maxKeptScratch is the largest scratch buffer a Scanner keeps between Scans: far above what typical
// records need (only strings with escapes are copied), small enough not to matter per task.
const maxKeptScratch = 64 << 10

// Scanner holds reusable scratch memory for decoding strings with escapes and for finding duplicate
// keys. The zero value is ready to use. A Scanner is not safe for concurrent use; use one per
// goroutine.
type Scanner struct {
	scratch []byte // decoded strings of the current Scan; reset (not freed) by the next one
	keybuf  []byte // decoded keys with escapes of the current Scan
	keys    keySet
	dupAt   int    // offset of the first duplicate key of this Scan, or -1
	dupKey  []byte // that key
}

// Scan validates data and fills vals[i] for schema field i. len(vals) must be at least schema.Len()
// (Scan panics otherwise: it is a programming error); fields not present get Kind Missing, and vals
// beyond schema.Len() are not touched. A nil schema validates only.
//
// Duplicate keys are rejected (a *DuplicateKeyError) in the top-level object and in every object
// the scanner descends into to reach a wanted path: encoding/json keeps the last occurrence, other
// readers the first, so a record with both means different things to different consumers. Objects
// no wanted path goes through are validated but their keys are not compared. Keys with escapes match
// (and duplicate) after unescaping. Nested objects and arrays are validated, without recursion, up
// to MaxDepth levels, and returned as raw text when wanted.
//
// Errors: a *SyntaxError for invalid JSON (errors.Is(err, ErrTooDeep) for excessive nesting,
// errors.Is(err, ErrLoneSurrogate) for a \u escape of half a UTF-16 surrogate pair), a
// *DuplicateKeyError, or ErrNotObject for valid JSON whose top-level value is not an object. On error
// every vals[i] is Missing. See the package documentation for how long the returned Raw slices stay
// valid.
func (s *Scanner) Scan(data []byte, schema *Schema, vals []Value) error {
	nf := schema.Len()
	if len(vals) < nf {
		panic("jsonscan: Scan: len(vals) " + strconv.Itoa(len(vals)) + " < schema.Len() " + strconv.Itoa(nf))
	}
	vals = vals[:nf]
	clear(vals) // the zero Value is Kind Missing
	if cap(s.scratch) > maxKeptScratch {
		// One freak record full of escapes should not pin its buffer for the life of the task.
		// Values of the previous Scan are invalid from here on anyway.
		s.scratch = nil
	}
	if cap(s.keybuf) > maxKeptScratch {
		s.keybuf = nil
	}
	s.scratch = s.scratch[:0]
	s.keybuf = s.keybuf[:0]
	s.keys.reset()
	var root *node
	if schema != nil {
		root = &schema.root
	}
	s.dupAt, s.dupKey = -1, nil
	err := s.scanTop(data, root, vals)
	s.keys.release()
	if err == nil && s.dupAt >= 0 {
		err = &DuplicateKeyError{Offset: s.dupAt, Key: string(s.dupKey)}
	}
	s.dupKey = nil
	if err != nil {
		clear(vals) // never leave a half-filled record for a caller that forgets the error
		return err
	}
	return nil
}

// scanTop is the top level: one object surrounded by whitespace.
func (s *Scanner) scanTop(data []byte, root *node, vals []Value) error {
	i := skipWS(data, 0)
	if i >= len(data) {
		return errEOF(data)
	}
	if data[i] != '{' {
		return notObject(data, i)
	}
	i, err := s.object(data, i, root, vals, 1, 0)
	if err != nil {
		return err
	}
	if i = skipWS(data, i); i != len(data) {
		return errAt(data, i, "after top-level value")
	}
	return nil
}

// notObject validates a top-level value that does not start with '{': broken input must still be a
// SyntaxError, so ErrNotObject is only returned once the whole input is known to be valid JSON.
func notObject(data []byte, i int) error {
	i, err := skipValue(data, i, 1)
	if err != nil {
		return err
	}
	if i = skipWS(data, i); i != len(data) {
		return errAt(data, i, "after top-level value")
	}
	return ErrNotObject
}

// object scans the object at data[i] ('{'), at nesting level level, whose keys are looked up in nd
// (nil: nothing wanted in it) and compared with each other, the key set being the one of path depth
// kd. It returns the index just past the closing brace.
func (s *Scanner) object(data []byte, i int, nd *node, vals []Value, level, kd int) (int, error) {
	n := len(data)
	i, more, err := enter(data, i, '}')
	if !more {
		return i, err
	}
	base := s.keys.open()
	defer s.keys.close(base)
	var bloom uint64
	for {
		if data[i] != '"' {
			return 0, errAt(data, i, "looking for beginning of object key string")
		}
		ks := i + 1
		ke, esc, err := scanString(data, ks)
		if err != nil {
			return 0, err
		}
		key := data[ks:ke:ke]
		if esc {
			off := len(s.keybuf)
			s.keybuf = appendUnescaped(s.keybuf, key)
			key = s.keybuf[off:len(s.keybuf):len(s.keybuf)]
		}
		if s.keys.seen(key, base, kd, &bloom) && s.dupAt < 0 {
			// Reported once the whole input is known to be valid JSON: a broken record is
			// malformed first.
			s.dupAt, s.dupKey = i, key
		}
		e := -1
		if nd != nil && len(vals) > 0 {
			e = nd.lookup(key)
		}
		i = skipWS(data, ke+1)
		if i >= n || data[i] != ':' {
			return 0, errAt(data, i, "after object key")
		}
		i = skipWS(data, i+1)
		if i >= n {
			return 0, errEOF(data)
		}
		switch {
		case e < 0:
			i, err = skipValue(data, i, level+1)
		case nd.entries[e].kid == nil: // a wanted value, the usual case, without member's call
			i, err = s.value(data, i, &vals[nd.entries[e].slot], level+1)
		default:
			i, err = s.member(data, i, &nd.entries[e], vals, level+1, kd+1)
		}
		if err != nil {
			return 0, err
		}
		if i, more, err = afterMember(data, i, '}', "after object key:value pair"); !more {
			return i, err
		}
	}
}

// array scans the array at data[i] ('['), at nesting level level, whose elements are looked up in
// nd by index, and returns the index just past the closing bracket.
func (s *Scanner) array(data []byte, i int, nd *node, vals []Value, level, kd int) (int, error) {
	i, more, err := enter(data, i, ']')
	for k := 0; more; k++ {
		if e := nd.lookupElem(k); e < 0 {
			i, err = skipValue(data, i, level+1)
		} else {
			i, err = s.member(data, i, &nd.entries[e], vals, level+1, kd+1)
		}
		if err != nil {
			return 0, err
		}
		i, more, err = afterMember(data, i, ']', "after array element")
	}
	return i, err
}

// enter steps into the object or array whose opening bracket is at data[i]. With more it returns
// the index of its first member (whitespace skipped, within data); without, the container was
// empty and i is past its closing bracket (closer), or err says why the input ended.
func enter(data []byte, i int, closer byte) (j int, more bool, err error) {
	i = skipWS(data, i+1)
	if i >= len(data) {
		return 0, false, errEOF(data)
	}
	if data[i] == closer {
		return i + 1, false, nil
	}
	return i, true, nil
}

// afterMember reads what follows a member of an object or array that ended at data[i]: a comma,
// and more with the index of the next member (whitespace skipped, within data), or the closing
// bracket (closer) and the index past it; anything else is a syntax error described by context.
//
// The compact cases come first (a comma with the next member right after it, or the closer at
// once: most records have no whitespace); whitespace and errors go through afterMemberWS.
func afterMember(data []byte, i int, closer byte, context string) (j int, more bool, err error) {
	if i+1 < len(data) && data[i] == ',' && data[i+1] > ' ' { // no JSON whitespace is above ' '
		return i + 1, true, nil
	}
	if i < len(data) && data[i] == closer {
		return i + 1, false, nil
	}
	return afterMemberWS(data, i, closer, context)
}

func afterMemberWS(data []byte, i int, closer byte, context string) (j int, more bool, err error) {
	i = skipWS(data, i)
	if i >= len(data) {
		return 0, false, errEOF(data)
	}
	switch data[i] {
	case ',':
		if i = skipWS(data, i+1); i >= len(data) {
			return 0, false, errEOF(data)
		}
		return i, true, nil
	case closer:
		return i + 1, false, nil
	}
	return 0, false, errAt(data, i, context)
}

// member scans a wanted value at data[i] (not whitespace, i < len(data)), at nesting level level:
// into its slot when the value itself is wanted, and into the paths under it when it is an object
// or an array and some are wanted there. The recursion is bounded by the schema's deepest path,
// not by the input.
func (s *Scanner) member(data []byte, i int, e *entry, vals []Value, level, kd int) (int, error) {
	c := data[i]
	if e.kid == nil || (c != '{' && c != '[') {
		if e.slot < 0 {
			return skipValue(data, i, level)
		}
		return s.value(data, i, &vals[e.slot], level)
	}
	if level > MaxDepth {
		return 0, errTooDeep(i)
	}
	var end int
	var err error
	k := Object
	if c == '{' {
		end, err = s.object(data, i, e.kid, vals, level, kd)
	} else {
		k = Array
		end, err = s.array(data, i, e.kid, vals, level, kd)
	}
	if err != nil {
		return 0, err
	}
	if e.slot >= 0 {
		vals[e.slot] = Value{Kind: k, Raw: data[i:end:end]}
	}
	return end, nil
}

// value parses a wanted value starting at data[i] (not whitespace, i < len(data)), at nesting
// level level, into v and returns the index just past it. Raw slices get cap == len so a caller's
// append cannot write into the input or into a later value in scratch.
func (s *Scanner) value(data []byte, i int, v *Value, level int) (int, error) {
	switch data[i] {
	case '"':
		end, esc, err := scanString(data, i+1)
		if err != nil {
			return 0, err
		}
		raw := data[i+1 : end : end]
		if esc {
			off := len(s.scratch)
			s.scratch = appendUnescaped(s.scratch, raw)
			raw = s.scratch[off:len(s.scratch):len(s.scratch)]
		}
		*v = Value{Kind: String, Raw: raw}
		return end + 1, nil
	case '{', '[':
		end, err := skipComposite(data, i, level)
		if err != nil {
			return 0, err
		}
		k := Object
		if data[i] == '[' {
			k = Array
		}
		*v = Value{Kind: k, Raw: data[i:end:end]}
		return end, nil
	case 't':
		end, err := scanLiteral(data, i, "true")
		if err != nil {
			return 0, err
		}
		*v = Value{Kind: Bool, Raw: data[i:end:end], Bool: true}
		return end, nil
	case 'f':
		end, err := scanLiteral(data, i, "false")
		if err != nil {
			return 0, err
		}
		*v = Value{Kind: Bool, Raw: data[i:end:end]}
		return end, nil
	case 'n':
		end, err := scanLiteral(data, i, "null")
		if err != nil {
			return 0, err
		}
		*v = Value{Kind: Null, Raw: data[i:end:end]}
		return end, nil
	}
	end, err := scanNumber(data, i)
	if err != nil {
		return 0, err
	}
	*v = Value{Kind: Number, Raw: data[i:end:end]}
	return end, nil
}

// skipValue validates the value starting at data[i] (not whitespace, i < len(data)), at nesting level
// depth if it is an object or array, and returns the index just past it.
func skipValue(data []byte, i, depth int) (int, error) {
	switch data[i] {
	case '"':
		end, _, err := scanString(data, i+1)
		return end + 1, err
	case '{', '[':
		return skipComposite(data, i, depth)
	case 't':
		return scanLiteral(data, i, "true")
	case 'f':
		return scanLiteral(data, i, "false")
	case 'n':
		return scanLiteral(data, i, "null")
	}
	return scanNumber(data, i)
}

// skipComposite validates the object or array starting at data[i] ('{' or '['), which sits at nesting
// level depth, and returns the index just past its closing bracket.
//
// It is an explicit state machine rather than a recursive descent so that hostile input (100000 '[')
// costs a bounded, fixed amount of stack: the only per-level state is one bit, object or array, kept
// in a small bit array on the stack. The states are the labels; goto keeps each transition a jump
// instead of a switch on a state variable per token.
func skipComposite(data []byte, i, depth int) (int, error) {
	var (
		stack [MaxDepth/64 + 1]uint64 // bit d set: the d-th container opened here is an object
		d     int                     // containers currently open in this call
		limit = MaxDepth - depth + 1
		n     = len(data)
		err   error
	)
open: // data[i] is '{' or '['
	if d >= limit {
		return 0, errTooDeep(i)
	}
	if data[i] == '{' {
		stack[d>>6] |= 1 << (d & 63)
		d++
		i = skipWS(data, i+1)
		if i >= n {
			return 0, errEOF(data)
		}
		if data[i] == '}' {
			i++
			goto closed
		}
		goto key
	}
	stack[d>>6] &^= 1 << (d & 63)
	d++
	i = skipWS(data, i+1)
	if i >= n {
		return 0, errEOF(data)
	}
	if data[i] == ']' {
		i++
		goto closed
	}
	goto value

key: // data[i] should start an object key; whitespace skipped, i < n
	if data[i] != '"' {
		return 0, errAt(data, i, "looking for beginning of object key string")
	}
	if i, _, err = scanString(data, i+1); err != nil {
		return 0, err
	}
	i = skipWS(data, i+1)
	if i >= n || data[i] != ':' {
		return 0, errAt(data, i, "after object key")
	}
	i = skipWS(data, i+1)
	if i >= n {
		return 0, errEOF(data)
	}

value: // data[i] should start a value; whitespace skipped, i < n
	if c := data[i]; c == '{' || c == '[' {
		goto open
	}
	if i, err = skipValue(data, i, 0); err != nil { // a scalar: depth is unused
		return 0, err
	}

next: // a value inside container d-1 has just ended at i
	i = skipWS(data, i)
	if i >= n {
		return 0, errEOF(data)
	}
	if stack[(d-1)>>6]&(1<<((d-1)&63)) != 0 {
		switch data[i] {
		case ',':
			if i = skipWS(data, i+1); i >= n {
				return 0, errEOF(data)
			}
			goto key
		case '}':
			i++
			goto closed
		}
		return 0, errAt(data, i, "after object key:value pair")
	}
	switch data[i] {
	case ',':
		if i = skipWS(data, i+1); i >= n {
			return 0, errEOF(data)
		}
		goto value
	case ']':
		i++
		goto closed
	}
	return 0, errAt(data, i, "after array element")

closed: // container d-1 has just been closed; i is past its bracket
	d--
	if d == 0 {
		return i, nil
	}
	goto next
}

// scanLiteral checks that data[i:] starts with lit (true, false or null; data[i] == lit[0]).
func scanLiteral(data []byte, i int, lit string) (int, error) {
	if len(data)-i >= len(lit) && string(data[i:i+len(lit)]) == lit {
		return i + len(lit), nil
	}
	for k := 1; k < len(lit); k++ {
		if i+k >= len(data) || data[i+k] != lit[k] {
			return 0, errAt(data, i+k, "in literal "+lit+" (expecting "+quoteChar(lit[k])+")")
		}
	}
	return i + len(lit), nil // not reached: the fast path matched
}

// scanNumber validates the number starting at data[i] against the JSON grammar
//
//	-? (0 | [1-9][0-9]*) (\.[0-9]+)? ([eE][+-]?[0-9]+)?
//
// and returns the index just past it. What follows is the caller's business: in "01" the number is
// "0" and the caller rejects the '1' where it expects a delimiter, as encoding/json does.
func scanNumber(data []byte, i int) (int, error) {
	n, start := len(data), i
	if data[i] == '-' {
		i++
		if i >= n {
			return 0, errEOF(data)
		}
	}
	switch c := data[i]; {
	case c == '0':
		i++
	case '1' <= c && c <= '9':
		i++
		for i < n && isDigit(data[i]) {
			i++
		}
	default:
		if i > start { // after '-'
			return 0, errAt(data, i, "in numeric literal")
		}
		return 0, errAt(data, i, "looking for beginning of value")
	}
	if i < n && data[i] == '.' {
		i++
		if i >= n {
			return 0, errEOF(data)
		}
		if !isDigit(data[i]) {
			return 0, errAt(data, i, "after decimal point in numeric literal")
		}
		for i < n && isDigit(data[i]) {
			i++
		}
	}
	if i < n && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < n && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= n {
			return 0, errEOF(data)
		}
		if !isDigit(data[i]) {
			return 0, errAt(data, i, "in exponent of numeric literal")
		}
		for i < n && isDigit(data[i]) {
			i++
		}
	}
	return i, nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
