package jsonscan

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
	"unsafe"
)

// FuzzScan checks Scan against encoding/json, the reference:
//
//   - acceptance: Scan accepts exactly when json.Valid accepts, the top-level value is an object and
//     the nesting is at most MaxDepth; valid JSON of another shape gives ErrNotObject, deeper nesting
//     ErrTooDeep, and everything else a *SyntaxError;
//   - extraction: for accepted input, every top-level key that json.Unmarshal puts in a
//     map[string]json.RawMessage is requested, and Kind and Raw must agree with the RawMessage
//     (literally for numbers, literals, objects and arrays; after json.Unmarshal into a string for
//     strings). Numbers are also checked through Float and Int against decoding into float64/int64.
//
// Invalid UTF-8 (where the two differ on purpose): encoding/json replaces each byte that is not part
// of valid UTF-8 with U+FFFD, Scan passes it through. String contents are therefore compared after
// applying encoding/json's replacement to Scan's output (replaceInvalid), which must then be equal:
// both decode escapes identically and an escape always decodes to whole runes, so the byte runs line
// up. When the whole input is valid UTF-8 the comparison is exact. Keys: encoding/json's map key for
// a key with invalid UTF-8 contains U+FFFD while Scan's decoded key keeps the raw bytes and matches
// no valid name, so names containing U+FFFD are only requested when the input is valid UTF-8.
func FuzzScan(f *testing.F) {
	for _, tc := range validityCases {
		f.Add([]byte(tc.in))
	}
	for _, s := range []string{
		record,
		`{"a":"\ud83d\ude00","b":"\ud800\u0041","c":"\udc00\ud800\udc00"}`,
		"{\"a\":\"x\xff\\n\",\"\xff\":1,\"\ufffd\":2,\"\\ufffd\":3}",
		`{"a":1,"a":"two","\u0061":[3]}`,
		`{"x":[{"y":{"z":[1,2,{"w":null}]}}],"n":-0.5e-7,"t":true}`,
		`{"f0":0,"f1":1,"f2":2,"f3":3,"f4":4,"f5":5,"f6":6,"f7":7,"f8":8,"f9":9}`,
		`{"big":123456789012345678901234567890,"inf":1e999,"tiny":1e-999,"int":-9223372036854775808}`,
		`{"a":` + strings.Repeat("[", MaxDepth-1) + strings.Repeat("]", MaxDepth-1) + `}`,
		`{"a":` + strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth) + `}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkScan(t, data)
		// Random bytes rarely form an object; wrapping them as a field value makes the mutator
		// spend more of its time on the extraction paths.
		checkScan(t, append(append([]byte(`{"k":`), data...), '}'))
	})
}

// TestPrefixesAndBytes runs the fuzz oracle over every prefix of every seed, and over every
// single-byte substitution of a few records with interesting bytes, so the cheap systematic cases are
// checked on every go test run, not only when fuzzing.
func TestPrefixesAndBytes(t *testing.T) {
	seeds := []string{
		record,
		`{"a":"q\"\u00e9\ud83d\ude00","b":[1,-2.5e+3,{"c":null}],"d":true,"e":false}`,
		"{ \"a\" : [ ] , \"b\" : { } }",
	}
	for _, tc := range validityCases {
		seeds = append(seeds, tc.in)
	}
	for _, s := range seeds {
		for i := 0; i <= len(s); i++ {
			checkScan(t, []byte(s[:i]))
		}
	}
	for _, s := range seeds[:3] {
		for i := 0; i < len(s); i++ {
			for _, c := range []byte("\x00\t \"\\/,:[]{}-+.0159eEtfnuxA\x7f\x80\xff") {
				b := []byte(s)
				b[i] = c
				checkScan(t, b)
			}
		}
	}
}

func checkScan(t *testing.T, data []byte) {
	orig := bytes.Clone(data)
	var sc Scanner
	err := sc.Scan(data, nil, nil)
	valid := json.Valid(data)
	top := bytes.TrimLeft(data, " \t\r\n")
	isObject := valid && len(top) > 0 && top[0] == '{'
	deep := valid && nestingDepth(data) > MaxDepth
	want := syntax
	switch {
	case deep:
		want = tooDeep
	case isObject:
		want = ok
	case valid:
		want = isNotObject
	}
	if want == ok || want == tooDeep || want == isNotObject {
		// Where Scan is stricter than encoding/json on purpose: lone surrogates anywhere, duplicate
		// keys in the top-level object (the only one a top-level schema descends into). A
		// malformed string comes first; of two problems of valid JSON, whichever comes first.
		if hasLoneSurrogate(data) {
			if want != tooDeep || classify(err) == lone {
				want = lone
			}
		} else if want == ok {
			if dup, exact := topLevelDuplicate(data); dup && (exact || classify(err) == duplicate) {
				want = duplicate
			}
		}
	}
	got := classify(err)
	if want == syntax && (got == tooDeep || got == lone) {
		// Invalid input that also nests too deeply, or has a lone surrogate: whichever problem
		// comes first is reported, and both are *SyntaxErrors.
		got = syntax
	}
	if got != want {
		t.Fatalf("Scan(%q) = %v (%v), want %v (json.Valid = %v)", data, got, err, want, valid)
	}
	var se *SyntaxError
	if errors.As(err, &se) && (se.Offset < 0 || se.Offset > len(data)) {
		t.Fatalf("Scan(%q): offset %d out of range", data, se.Offset)
	}
	if want != ok {
		return
	}

	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("json.Unmarshal(%q) into a map failed on input json.Valid accepts: %v", data, err)
	}
	validUTF8 := utf8.Valid(data)
	var names []string
	for k := range m {
		if validUTF8 || !strings.ContainsRune(k, utf8.RuneError) {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	names = append(names, "\x00absent")
	// Once with a small schema (linear lookup) and once padded past linearMax (map lookup).
	padded := slices.Clone(names)
	for len(padded) <= linearMax {
		padded = append(padded, "\x00pad"+string(rune('a'+len(padded))))
	}
	for _, ns := range [][]string{names, padded} {
		schema := NewSchema(ns...)
		vals := make([]Value, schema.Len())
		if err := sc.Scan(data, schema, vals); err != nil {
			t.Fatalf("Scan(%q) with schema %q: %v; without schema it succeeded", data, ns, err)
		}
		for i, name := range ns {
			checkValue(t, data, name, vals[i], m, validUTF8)
		}
	}
	if !bytes.Equal(data, orig) {
		t.Fatalf("Scan modified its input")
	}
}

func checkValue(t *testing.T, data []byte, name string, v Value, m map[string]json.RawMessage, validUTF8 bool) {
	raw, present := m[name]
	if !present {
		if v.Kind != Missing || v.Raw != nil {
			t.Fatalf("%q: field %q absent per encoding/json, got %v %q", data, name, v.Kind, v.Raw)
		}
		return
	}
	var k Kind
	switch raw[0] {
	case '{':
		k = Object
	case '[':
		k = Array
	case '"':
		k = String
	case 't', 'f':
		k = Bool
	case 'n':
		k = Null
	default:
		k = Number
	}
	if v.Kind != k {
		t.Fatalf("%q: field %q is %v, encoding/json says %v (%s)", data, name, v.Kind, k, raw)
	}
	if k != String {
		if !bytes.Equal(v.Raw, raw) {
			t.Fatalf("%q: field %q raw %q, encoding/json %q", data, name, v.Raw, raw)
		}
		if v.Bool != (k == Bool && raw[0] == 't') {
			t.Fatalf("%q: field %q Bool = %v", data, name, v.Bool)
		}
		if k == Number {
			checkNumber(t, v, raw)
		}
		return
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("json.Unmarshal(%q) into a string: %v", raw, err)
	}
	got := string(v.Raw)
	if !validUTF8 {
		got = replaceInvalid(v.Raw)
	}
	if got != s {
		t.Fatalf("%q: field %q = %q, encoding/json %q", data, name, v.Raw, s)
	}
	// No escapes: Raw must alias the input (the zero-copy promise).
	if !bytes.ContainsRune(raw, '\\') && len(v.Raw) > 0 {
		p, lo := uintptr(unsafe.Pointer(unsafe.SliceData(v.Raw))), uintptr(unsafe.Pointer(unsafe.SliceData(data)))
		if p < lo || p >= lo+uintptr(len(data)) {
			t.Fatalf("%q: field %q has no escapes but does not alias the input", data, name)
		}
	}
}

func checkNumber(t *testing.T, v Value, raw []byte) {
	f, err := v.Float()
	var jf float64
	if jerr := json.Unmarshal(raw, &jf); jerr == nil {
		if err != nil || math.Float64bits(f) != math.Float64bits(jf) {
			t.Fatalf("Float(%s) = %v, %v; encoding/json %v", raw, f, err, jf)
		}
	} else if err == nil || !math.IsInf(f, 0) {
		// encoding/json refuses only out-of-range numbers.
		t.Fatalf("Float(%s) = %v, %v; encoding/json failed: %v", raw, f, err, jerr)
	}
	i, err := v.Int()
	var ji int64
	jerr := json.Unmarshal(raw, &ji)
	if (err == nil) != (jerr == nil) || (err == nil && i != ji) {
		t.Fatalf("Int(%s) = %v, %v; encoding/json %v, %v", raw, i, err, ji, jerr)
	}
}

// replaceInvalid is encoding/json's decoding of raw string bytes: each byte that is not part of valid
// UTF-8 becomes U+FFFD. (Not strings.ToValidUTF8, which replaces a whole run of bad bytes with one.)
func replaceInvalid(b []byte) string {
	var sb strings.Builder
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r == utf8.RuneError && size == 1 {
			sb.WriteRune(utf8.RuneError)
		} else {
			sb.Write(b[:size])
		}
		b = b[size:]
	}
	return sb.String()
}

// hasLoneSurrogate reports whether a valid JSON text has a \u escape of a UTF-16 surrogate that is
// not the high half immediately followed by the escape of a low half.
func hasLoneSurrogate(data []byte) bool {
	inString := false
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch {
		case c == '"':
			inString = !inString
		case inString && c == '\\':
			if data[i+1] != 'u' {
				i++
				continue
			}
			r, _ := strconv.ParseUint(string(data[i+2:i+6]), 16, 32)
			i += 5
			switch {
			case r < 0xd800 || r >= 0xe000:
			case r >= 0xdc00:
				return true
			default:
				if i+6 >= len(data) || data[i+1] != '\\' || data[i+2] != 'u' {
					return true
				}
				r2, _ := strconv.ParseUint(string(data[i+3:i+7]), 16, 32)
				if r2 < 0xdc00 || r2 >= 0xe000 {
					return true
				}
				i += 6
			}
		}
	}
	return false
}

// topLevelDuplicate reports whether the top-level object of a valid JSON text has a key twice, as
// encoding/json decodes keys. exact is false when the input is not valid UTF-8: encoding/json then
// turns distinct bytes into the same U+FFFD, which Scan keeps apart.
func topLevelDuplicate(data []byte) (dup, exact bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil {
		return false, true
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return false, true
		}
		k, _ := tok.(string)
		if seen[k] {
			return true, utf8.Valid(data)
		}
		seen[k] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return false, true
		}
	}
	return false, true
}

// nestingDepth returns the maximum nesting of a valid JSON text, ignoring brackets inside strings.
func nestingDepth(data []byte) int {
	depth, deepest, inString := 0, 0, false
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}

// FuzzAppendString checks the writer against encoding/json: the literal must be valid JSON, identical
// to what json.Encoder writes with SetEscapeHTML(false), and decode (with encoding/json and with Scan)
// to the input with each invalid UTF-8 byte replaced by U+FFFD.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", `q"b\`, "\x00\x1f\x7f\b\f\n\r\t", "é日😀", "a\xffb\xc3", "\xed\xa0\x80",
		"\u2028\u2029", "<&>", "\ufffd", strings.Repeat("long string ", 10)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, s []byte) {
		orig := bytes.Clone(s)
		out := AppendString([]byte("pre"), s)
		if !bytes.Equal(s, orig) {
			t.Fatal("AppendString modified its input")
		}
		if string(out[:3]) != "pre" {
			t.Fatalf("AppendString clobbered dst: %q", out)
		}
		lit := out[3:]
		if !json.Valid(lit) {
			t.Fatalf("AppendString(%q) = %s, not valid JSON", s, lit)
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(string(s)); err != nil {
			t.Fatal(err)
		}
		if want := bytes.TrimSuffix(buf.Bytes(), []byte("\n")); !bytes.Equal(lit, want) {
			t.Fatalf("AppendString(%q) = %s, encoding/json writes %s", s, lit, want)
		}
		want := replaceInvalid(s)
		var got string
		if err := json.Unmarshal(lit, &got); err != nil || got != want {
			t.Fatalf("AppendString(%q) = %s decodes to %q, %v; want %q", s, lit, got, err, want)
		}
		var sc Scanner
		vals := make([]Value, 1)
		if err := sc.Scan(append(append([]byte(`{"k":`), lit...), '}'), NewSchema("k"), vals); err != nil ||
			vals[0].Kind != String || string(vals[0].Raw) != want {
			t.Fatalf("Scan of AppendString(%q) = %v %q, %v; want %q", s, vals[0].Kind, vals[0].Raw, err, want)
		}
	})
}
