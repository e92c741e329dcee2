package jsonscan

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// record is the typical input of the hot path: a compact card transaction of ~150 bytes.
const record = `{"event_id":"9f1c2a7e4b3d","card_id":"card-004211","event_time":"2026-11-25T21:18:33.123Z","amount":42.17,"merchant":"m-0193","country":"DE","channel":"online","mcc":5411}`

type outcome int

const (
	ok          outcome = iota // accepted
	syntax                     // *SyntaxError, not ErrTooDeep
	isNotObject                // ErrNotObject
	tooDeep                    // *SyntaxError wrapping ErrTooDeep
	lone                       // *SyntaxError wrapping ErrLoneSurrogate
	duplicate                  // *DuplicateKeyError
)

func (o outcome) String() string {
	return [...]string{"ok", "syntax error", "ErrNotObject", "ErrTooDeep", "ErrLoneSurrogate", "ErrDuplicateKey"}[o]
}

func classify(err error) outcome {
	var se *SyntaxError
	switch {
	case err == nil:
		return ok
	case err == ErrNotObject:
		return isNotObject
	case errors.As(err, &se) && errors.Is(err, ErrTooDeep):
		return tooDeep
	case errors.As(err, &se) && errors.Is(err, ErrLoneSurrogate):
		return lone
	case errors.Is(err, ErrDuplicateKey):
		var de *DuplicateKeyError
		if !errors.As(err, &de) {
			return -1
		}
		return duplicate
	case errors.As(err, &se):
		return syntax
	}
	return -1
}

var validityCases = []struct {
	in   string
	want outcome
}{
	// Objects, whitespace.
	{`{}`, ok},
	{` {} `, ok},
	{"\t\r\n{\t\r\n}\t\r\n", ok},
	{`{"a":1}`, ok},
	{`{ "a" : 1 , "b" : [ 1 , { } , [ ] ] }`, ok},
	{`{"":""}`, ok},
	{`{"a":1,"a":2}`, duplicate},
	{`{"a":1,"\u0061":2}`, duplicate}, // the same key once unescaped
	{`{"a":{"x":1,"x":2}}`, ok},       // not along a wanted path: validated only
	{`{"a":1,"a":2`, syntax},          // malformed first
	{`{"a":1,"a":"\ud800"}`, lone},    // an invalid string is malformed too
	{"\v{}", syntax},                  // \v is not JSON whitespace
	{"{}\f", syntax},                  // nor is \f
	{"{}\u00a0", syntax},              // nor NBSP
	{"\xef\xbb\xbf{}", syntax},
	// Not an object, but valid JSON.
	{`[]`, isNotObject},
	{`[1,2,{"a":3}]`, isNotObject},
	{`"abc"`, isNotObject},
	{`123`, isNotObject},
	{`-0.5e+3`, isNotObject},
	{`true`, isNotObject},
	{`false`, isNotObject},
	{`null`, isNotObject},
	{` "x" `, isNotObject},
	// Not an object, and broken: a syntax error wins.
	{`[1,2`, syntax},
	{`[1,]`, syntax},
	{`"abc`, syntax},
	{`123 4`, syntax},
	{`tru`, syntax},
	{`nul`, syntax},
	{`nulll`, syntax},
	// Empty and truncated.
	{``, syntax},
	{`   `, syntax},
	{`{`, syntax},
	{`{"`, syntax},
	{`{"a`, syntax},
	{`{"a"`, syntax},
	{`{"a":`, syntax},
	{`{"a":1`, syntax},
	{`{"a":1,`, syntax},
	{`{"a":"x`, syntax},
	{`{"a":"x\`, syntax},
	{`{"a":"\u12`, syntax},
	{`{"a":[`, syntax},
	{`{"a":{`, syntax},
	{`{"a":{"b"`, syntax},
	{`{"a":t`, syntax},
	{`{"a":-`, syntax},
	{`{"a":1.`, syntax},
	{`{"a":1e`, syntax},
	{`{"a":1e+`, syntax},
	// Trailing garbage.
	{`{}x`, syntax},
	{`{}{}`, syntax},
	{`{} {}`, syntax},
	{`{}}`, syntax},
	{`{},`, syntax},
	{"{}\x00", syntax},
	// Object structure.
	{`{,}`, syntax},
	{`{"a":1,}`, syntax},
	{`{"a" 1}`, syntax},
	{`{"a"::1}`, syntax},
	{`{"a":1 "b":2}`, syntax},
	{`{a:1}`, syntax},
	{`{'a':1}`, syntax},
	{`{1:1}`, syntax},
	{`{"a"}`, syntax},
	{`{"a":}`, syntax},
	{`{"a":1]`, syntax},
	{`{"a":[1}`, syntax},
	{`{"a":{]}`, syntax},
	{`{"a":[1,]}`, syntax},
	{`{"a":[,1]}`, syntax},
	{`{"a":[1 2]}`, syntax},
	{`{"a":{"b":1,}}`, syntax},
	{`{"a":{"b" 1}}`, syntax},
	{`{"a":{1:1}}`, syntax},
	{`{"a":{"b":}}`, syntax},
	{`{"a":[[[[]]]]}`, ok},
	{`{"a":[{},{"b":[{"c":null}]}]}`, ok},
	// Numbers.
	{`{"a":0}`, ok},
	{`{"a":-0}`, ok},
	{`{"a":0.0}`, ok},
	{`{"a":-0.0e-0}`, ok},
	{`{"a":1E9}`, ok},
	{`{"a":1e+9}`, ok},
	{`{"a":123456789012345678901234567890}`, ok},
	{`{"a":1e999}`, ok}, // out of float64 range is still valid JSON
	{`{"a":01}`, syntax},
	{`{"a":-01}`, syntax},
	{`{"a":00}`, syntax},
	{`{"a":+1}`, syntax},
	{`{"a":.5}`, syntax},
	{`{"a":5.}`, syntax},
	{`{"a":1.e5}`, syntax},
	{`{"a":1e}`, syntax},
	{`{"a":1e+}`, syntax},
	{`{"a":1e+-1}`, syntax},
	{`{"a":--1}`, syntax},
	{`{"a":-}`, syntax},
	{`{"a":- 1}`, syntax},
	{`{"a":0x10}`, syntax},
	{`{"a":NaN}`, syntax},
	{`{"a":Infinity}`, syntax},
	{`{"a":-Infinity}`, syntax},
	{`{"a":1_000}`, syntax},
	{`{"a":1.5.5}`, syntax},
	// Literals.
	{`{"a":true,"b":false,"c":null}`, ok},
	{`{"a":True}`, syntax},
	{`{"a":nil}`, syntax},
	{`{"a":truee}`, syntax},
	{`{"a":fals}`, syntax},
	{`{"a":nul}`, syntax},
	// Strings.
	{`{"a":"\"\\\/\b\f\n\r\t"}`, ok},
	{`{"a":"\u0000\uFFFF\uabcd\uD83D\uDE00"}`, ok},
	{`{"a":"\ud800"}`, lone}, // valid for encoding/json, which decodes it to U+FFFD
	{`{"a":"\udc00\ud800"}`, lone},
	{`{"a":"\ud800\u0041"}`, lone},
	{`{"a":"\ud800\ud800"}`, lone},
	{`{"a":"x\udbff"}`, lone},
	{`{"\ud800":1}`, lone}, // in keys too
	{`"\ud800"`, lone},     // in a value that is not an object
	{`["\ud800\n"]`, lone},
	{`{"a":"\ud800`, syntax},
	{`{"a":"\ud83d\ude00\udbff\udfff"}`, ok},
	{`{"a":"\x"}`, syntax},
	{`{"a":"\'"}`, syntax},
	{`{"a":"\U0041"}`, syntax},
	{`{"a":"\u00G1"}`, syntax},
	{`{"a":"\u12"}`, syntax},
	{"{\"a\":\"\x00\"}", syntax},
	{"{\"a\":\"\x1f\"}", syntax},
	{"{\"a\":\"\t\"}", syntax},
	{"{\"a\":\"\n\"}", syntax},
	{"{\"a\":\"\x7f\"}", ok},
	{"{\"a\":\"\xff\xfe\"}", ok},     // invalid UTF-8 is accepted, as by encoding/json
	{"{\"\xff\":1}", ok},             // also in keys
	{"{\"a\":\"\xed\xa0\x80\"}", ok}, // encoded surrogate
	{`{"a":"é日本😀"}`, ok},
	{`{"a":'x'}`, syntax},
	{"{\"a\":\"x\"\x00}", syntax},
}

func TestValidity(t *testing.T) {
	var sc Scanner
	schema := NewSchema("a", "b")
	vals := make([]Value, 2)
	for _, tc := range validityCases {
		err := sc.Scan([]byte(tc.in), schema, vals)
		if got := classify(err); got != tc.want {
			t.Errorf("Scan(%q) = %v (%v), want %v", tc.in, got, err, tc.want)
		}
		// The table itself must agree with encoding/json, the reference for acceptance.
		valid := json.Valid([]byte(tc.in))
		if valid != (tc.want == ok || tc.want == isNotObject || tc.want == lone || tc.want == duplicate) {
			t.Errorf("table entry %q: json.Valid = %v, but the table says %v", tc.in, valid, tc.want)
		}
		if err != nil {
			for i, v := range vals {
				if v.Kind != Missing || v.Raw != nil {
					t.Errorf("Scan(%q) failed but left vals[%d] = %+v", tc.in, i, v)
				}
			}
		}
		// The result must not depend on the schema.
		if err2 := sc.Scan([]byte(tc.in), nil, nil); classify(err2) != tc.want {
			t.Errorf("Scan(%q) without schema = %v, with = %v", tc.in, err2, err)
		}
	}
}

func TestSyntaxErrorMessages(t *testing.T) {
	cases := []struct {
		in     string
		offset int
		msg    string
	}{
		{`{"a":x}`, 5, "jsonscan: invalid character 'x' looking for beginning of value at offset 5"},
		{`{"a":1 2}`, 7, "jsonscan: invalid character '2' after object key:value pair at offset 7"},
		{`{"a":1`, 6, "jsonscan: unexpected end of input"},
		{``, 0, "jsonscan: unexpected end of input"},
		{`{"a":"\q"}`, 7, `jsonscan: invalid character 'q' in string escape code at offset 7`},
		{"{\"a\":\"\x01\"}", 6, `jsonscan: invalid character '\x01' in string literal at offset 6`},
		{"{\"a\":\xff}", 5, `jsonscan: invalid character '\xff' looking for beginning of value at offset 5`},
		{`{"a":tx}`, 6, `jsonscan: invalid character 'x' in literal true (expecting 'r') at offset 6`},
		{`{"a":-x}`, 6, `jsonscan: invalid character 'x' in numeric literal at offset 6`},
		{`{"a":[1}`, 7, `jsonscan: invalid character '}' after array element at offset 7`},
		{`{} x`, 3, `jsonscan: invalid character 'x' after top-level value at offset 3`},
		{`{'a':1}`, 1, `jsonscan: invalid character '\'' looking for beginning of object key string at offset 1`},
	}
	var sc Scanner
	for _, tc := range cases {
		err := sc.Scan([]byte(tc.in), nil, nil)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Scan(%q) = %v, want a *SyntaxError", tc.in, err)
			continue
		}
		if se.Offset != tc.offset || err.Error() != tc.msg {
			t.Errorf("Scan(%q) = %q at offset %d, want %q at offset %d", tc.in, err.Error(), se.Offset, tc.msg, tc.offset)
		}
	}
}

func TestDepth(t *testing.T) {
	var sc Scanner
	nest := func(levels int) string { // an object whose field "a" holds levels-1 nested arrays
		return `{"a":` + strings.Repeat("[", levels-1) + strings.Repeat("]", levels-1) + `}`
	}
	schema := NewSchema("a")
	vals := make([]Value, 1)
	if err := sc.Scan([]byte(nest(MaxDepth)), schema, vals); err != nil {
		t.Fatalf("%d levels: %v", MaxDepth, err)
	}
	if vals[0].Kind != Array || len(vals[0].Raw) != 2*(MaxDepth-1) {
		t.Fatalf("%d levels: got %v of %d bytes", MaxDepth, vals[0].Kind, len(vals[0].Raw))
	}
	err := sc.Scan([]byte(nest(MaxDepth+1)), schema, vals)
	if !errors.Is(err, ErrTooDeep) || classify(err) != tooDeep {
		t.Fatalf("%d levels: %v, want ErrTooDeep", MaxDepth+1, err)
	}
	// Mixed objects and arrays, unwanted field, so the skip path is used.
	var b strings.Builder
	b.WriteString(`{"x":`)
	for i := 1; i < MaxDepth; i++ {
		if i%2 == 0 {
			b.WriteString(`{"k":`)
		} else {
			b.WriteString(`[`)
		}
	}
	b.WriteString(`0`)
	for i := MaxDepth - 1; i >= 1; i-- {
		if i%2 == 0 {
			b.WriteString(`}`)
		} else {
			b.WriteString(`]`)
		}
	}
	b.WriteString(`}`)
	if err := sc.Scan([]byte(b.String()), schema, vals); err != nil || !json.Valid([]byte(b.String())) {
		t.Fatalf("mixed %d levels: %v", MaxDepth, err)
	}
	// Top-level arrays count the same way.
	arr := strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth)
	if err := sc.Scan([]byte(arr), nil, nil); err != ErrNotObject {
		t.Fatalf("array of %d levels: %v, want ErrNotObject", MaxDepth, err)
	}
	arr = "[" + arr + "]"
	if err := sc.Scan([]byte(arr), nil, nil); !errors.Is(err, ErrTooDeep) {
		t.Fatalf("array of %d levels: %v, want ErrTooDeep", MaxDepth+1, err)
	}
	// Hostile input: an error, not a stack overflow.
	for _, in := range []string{
		strings.Repeat("[", 100000),
		`{"a":` + strings.Repeat("[", 100000),
		`{"a":` + strings.Repeat(`{"a":`, 100000),
		strings.Repeat("[", 100000) + strings.Repeat("]", 100000),
	} {
		err := sc.Scan([]byte(in), schema, vals)
		var se *SyntaxError
		if !errors.Is(err, ErrTooDeep) || !errors.As(err, &se) {
			t.Errorf("deep input of %d bytes: %v, want ErrTooDeep", len(in), err)
		}
	}
}

type want struct {
	kind Kind
	raw  string
	b    bool
}

func TestExtract(t *testing.T) {
	cases := []struct {
		name  string
		in    string
		names []string
		want  []want
	}{
		{
			name:  "record",
			in:    record,
			names: []string{"card_id", "event_time", "amount", "merchant", "country", "nope"},
			want: []want{
				{String, "card-004211", false}, {String, "2026-11-25T21:18:33.123Z", false},
				{Number, "42.17", false}, {String, "m-0193", false}, {String, "DE", false}, {Missing, "", false},
			},
		},
		{
			name:  "kinds",
			in:    `{"n":null,"t":true,"f":false,"i":-12,"x":1.5e-3,"s":"hi","o":{"a": [1, 2]},"a":[ {} , "]" ]}`,
			names: []string{"n", "t", "f", "i", "x", "s", "o", "a"},
			want: []want{
				{Null, "null", false}, {Bool, "true", true}, {Bool, "false", false}, {Number, "-12", false},
				{Number, "1.5e-3", false}, {String, "hi", false}, {Object, `{"a": [1, 2]}`, false},
				{Array, `[ {} , "]" ]`, false},
			},
		},
		{
			name:  "empty object",
			in:    `{}`,
			names: []string{"a", ""},
			want:  []want{{Missing, "", false}, {Missing, "", false}},
		},
		{
			name:  "empty key and empty string",
			in:    `{"":"","a":""}`,
			names: []string{"", "a"},
			want:  []want{{String, "", false}, {String, "", false}},
		},
		{
			name:  "whitespace everywhere",
			in:    " \n{ \"a\" :\t\"x y\" ,\r\n \"b\"\n:\n[ ] } \n",
			names: []string{"a", "b"},
			want:  []want{{String, "x y", false}, {Array, "[ ]", false}},
		},
		{
			name:  "escapes",
			in:    `{"a":"q\"b\\s\/\b\f\n\r\t.","b":"\u0041\u00e9\u65E5\ud83d\ude00","c":"tail\\"}`,
			names: []string{"a", "b", "c"},
			want: []want{
				{String, "q\"b\\s/\b\f\n\r\t.", false}, {String, "Aé日😀", false}, {String, `tail\`, false},
			},
		},
		{
			name:  "surrogate pairs",
			in:    `{"pair":"\ud83d\ude00x","max":"\udbff\udfff","nul":"\u0000"}`,
			names: []string{"pair", "max", "nul"},
			want:  []want{{String, "\U0001f600x", false}, {String, "\U0010ffff", false}, {String, "\x00", false}},
		},
		{
			name:  "unicode unescaped",
			in:    `{"a":"é日本😀","日本":"x"}`,
			names: []string{"a", "日本"},
			want:  []want{{String, "é日本😀", false}, {String, "x", false}},
		},
		{
			name:  "invalid UTF-8 passes through",
			in:    "{\"a\":\"x\xffy\",\"b\":\"\\n\xc3\",\"\xff\":1,\"\ufffd\":2}",
			names: []string{"a", "b", "\ufffd"},
			want:  []want{{String, "x\xffy", false}, {String, "\n\xc3", false}, {Number, "2", false}},
		},
		{
			name:  "escaped keys",
			in:    `{"\u0061":1,"b\"":2,"\u00e9":3,"\ud83d\ude00":4,"c\\d":5}`,
			names: []string{"a", `b"`, "é", "😀", `c\d`},
			want:  []want{{Number, "1", false}, {Number, "2", false}, {Number, "3", false}, {Number, "4", false}, {Number, "5", false}},
		},
		{
			name:  "keys are case-sensitive",
			in:    `{"Amount":1,"amount":2}`,
			names: []string{"AMOUNT", "amount"},
			want:  []want{{Missing, "", false}, {Number, "2", false}},
		},
		{
			name:  "nested keys are not top-level",
			in:    `{"o":{"a":1},"l":[{"a":2}]}`,
			names: []string{"a"},
			want:  []want{{Missing, "", false}},
		},
		{
			name:  "numbers",
			in:    `{"a":0,"b":-0,"c":1E+2,"d":123456789012345678901234567890,"e":1e999,"f":-0.000}`,
			names: []string{"a", "b", "c", "d", "e", "f"},
			want: []want{{Number, "0", false}, {Number, "-0", false}, {Number, "1E+2", false},
				{Number, "123456789012345678901234567890", false}, {Number, "1e999", false}, {Number, "-0.000", false}},
		},
		{
			name:  "long strings cross the 8-byte steps",
			in:    `{"a":"` + strings.Repeat("abcdefg", 9) + `","b":"` + strings.Repeat(`x\n`, 20) + `"}`,
			names: []string{"a", "b"},
			want:  []want{{String, strings.Repeat("abcdefg", 9), false}, {String, strings.Repeat("x\n", 20), false}},
		},
		{
			name:  "many fields use the map lookup",
			in:    `{"f0":0,"f1":1,"f2":2,"f3":3,"f4":4,"f5":5,"f6":6,"f7":7,"f8":8,"f9":9,"\u0066\u0031\u0030":10}`,
			names: []string{"f9", "f8", "f7", "f6", "f5", "f4", "f3", "f2", "f1", "f0", "f10", "f11"},
			want: []want{{Number, "9", false}, {Number, "8", false}, {Number, "7", false}, {Number, "6", false},
				{Number, "5", false}, {Number, "4", false}, {Number, "3", false}, {Number, "2", false},
				{Number, "1", false}, {Number, "0", false}, {Number, "10", false}, {Missing, "", false}},
		},
	}
	var sc Scanner
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			schema := NewSchema(tc.names...)
			vals := make([]Value, schema.Len()+1)
			vals[len(vals)-1] = Value{Kind: Bool, Bool: true} // beyond Len: must be left alone
			data := []byte(tc.in)
			if err := sc.Scan(data, schema, vals); err != nil {
				t.Fatalf("Scan: %v", err)
			}
			for i, w := range tc.want {
				v := vals[i]
				if v.Kind != w.kind || string(v.Raw) != w.raw || v.Bool != w.b {
					t.Errorf("%q = {%v %q %v}, want {%v %q %v}", tc.names[i], v.Kind, v.Raw, v.Bool, w.kind, w.raw, w.b)
				}
				if v.Kind == Missing && v.Raw != nil {
					t.Errorf("%q: Missing with non-nil Raw", tc.names[i])
				}
				if len(v.Raw) != cap(v.Raw) {
					t.Errorf("%q: cap(Raw) = %d, want len %d", tc.names[i], cap(v.Raw), len(v.Raw))
				}
			}
			if v := vals[len(vals)-1]; v.Kind != Bool {
				t.Errorf("vals beyond schema.Len() were overwritten: %+v", v)
			}
		})
	}
}

// TestAliasing pins down where Raw points: into the input for unescaped strings and other kinds, into
// scratch for escaped strings, and that a value decoded into scratch survives later decodes in the
// same Scan (scratch growth must not clobber it).
func TestAliasing(t *testing.T) {
	var sc Scanner
	in := []byte(`{"plain":"abc","esc":"a\nb","num":12,"big":"` + strings.Repeat(`\t`, 5000) + `","esc2":"\u00e9"}`)
	schema := NewSchema("plain", "esc", "num", "big", "esc2")
	vals := make([]Value, schema.Len())
	if err := sc.Scan(in, schema, vals); err != nil {
		t.Fatal(err)
	}
	inside := func(b []byte) bool {
		p, lo := uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(unsafe.Pointer(&in[0]))
		return p >= lo && p < lo+uintptr(len(in))
	}
	if !inside(vals[0].Raw) || !inside(vals[2].Raw) {
		t.Error("unescaped string or number does not alias the input")
	}
	if inside(vals[1].Raw) || inside(vals[3].Raw) || inside(vals[4].Raw) {
		t.Error("escaped string aliases the input")
	}
	if string(vals[1].Raw) != "a\nb" || string(vals[3].Raw) != strings.Repeat("\t", 5000) || string(vals[4].Raw) != "é" {
		t.Errorf("decoded strings corrupted: %q %q", vals[1].Raw, vals[4].Raw)
	}
	// Appending to a Raw must not write into the input.
	_ = append(vals[0].Raw, 'X')
	if string(in[10:14]) != `abc"` {
		t.Errorf("append to Raw overwrote the input: %q", in[10:14])
	}
}

func TestFloatInt(t *testing.T) {
	num := func(s string) Value { return Value{Kind: Number, Raw: []byte(s)} }
	for _, tc := range []struct {
		in string
		f  float64
	}{
		{"0", 0}, {"-0", math.Copysign(0, -1)}, {"42.17", 42.17}, {"1e3", 1000}, {"-1.5E-2", -0.015},
		{"1e-400", 0}, {"123456789012345678901234567890", 1.2345678901234568e29},
	} {
		f, err := num(tc.in).Float()
		if err != nil || f != tc.f || math.Signbit(f) != math.Signbit(tc.f) {
			t.Errorf("Float(%s) = %v, %v; want %v", tc.in, f, err, tc.f)
		}
	}
	f, err := num("1e999").Float()
	if !math.IsInf(f, 1) || !errors.Is(err, strconv.ErrRange) {
		t.Errorf("Float(1e999) = %v, %v; want +Inf, ErrRange", f, err)
	}
	f, err = num("-1e999").Float()
	if !math.IsInf(f, -1) || !errors.Is(err, strconv.ErrRange) {
		t.Errorf("Float(-1e999) = %v, %v; want -Inf, ErrRange", f, err)
	}
	for _, v := range []Value{
		{Kind: String, Raw: []byte("1")}, {Kind: Missing}, {Kind: Null, Raw: []byte("null")},
		num("NaN"), num("Inf"), num("0x10"), num("1_0"), num("+1"), num(""), num(" 1"), num("1 "),
	} {
		if _, err := v.Float(); !errors.Is(err, ErrNotNumber) {
			t.Errorf("Float(%v %q) = %v, want ErrNotNumber", v.Kind, v.Raw, err)
		}
		if _, err := v.Int(); !errors.Is(err, ErrNotNumber) {
			t.Errorf("Int(%v %q) = %v, want ErrNotNumber", v.Kind, v.Raw, err)
		}
	}
	for _, tc := range []struct {
		in string
		i  int64
	}{
		{"0", 0}, {"-0", 0}, {"5411", 5411}, {"-42", -42}, {"999999999999999999", 999999999999999999},
		{"9223372036854775807", math.MaxInt64}, {"-9223372036854775808", math.MinInt64},
	} {
		i, err := num(tc.in).Int()
		if err != nil || i != tc.i {
			t.Errorf("Int(%s) = %v, %v; want %v", tc.in, i, err, tc.i)
		}
	}
	for _, s := range []string{"9223372036854775808", "-9223372036854775809", "100000000000000000000000"} {
		if _, err := num(s).Int(); !errors.Is(err, strconv.ErrRange) {
			t.Errorf("Int(%s) = %v, want ErrRange", s, err)
		}
	}
	for _, s := range []string{"1.0", "1e2", "-1E0", "0.5"} {
		if _, err := num(s).Int(); !errors.Is(err, ErrNotInteger) {
			t.Errorf("Int(%s) = %v, want ErrNotInteger", s, err)
		}
	}
}

func TestSchema(t *testing.T) {
	for _, n := range []int{0, 1, linearMax, linearMax + 1, 40} {
		names := make([]string, n)
		for i := range names {
			names[i] = "field_" + strconv.Itoa(i)
		}
		s := NewSchema(names...)
		if s.Len() != n {
			t.Errorf("Len = %d, want %d", s.Len(), n)
		}
		for i, name := range names {
			if j, ok := s.Index(name); !ok || j != i {
				t.Errorf("Index(%q) = %d, %v; want %d", name, j, ok, i)
			}
		}
		if _, ok := s.Index("absent"); ok {
			t.Error("Index(absent) found")
		}
	}
	var nilSchema *Schema
	if nilSchema.Len() != 0 {
		t.Error("nil schema has fields")
	}
	if _, ok := nilSchema.Index("a"); ok {
		t.Error("nil schema found a field")
	}
	names := []string{"a", "b"}
	s := NewSchema(names...)
	names[0] = "z" // the schema must have copied the names
	if _, ok := s.Index("a"); !ok {
		t.Error("NewSchema kept the caller's slice")
	}
	for _, dup := range [][]string{{"a", "a"}, {"a", "b", "c", "d", "e", "f", "g", "h", "i", "a"}, {"", ""}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewSchema(%q) did not panic", dup)
				}
			}()
			NewSchema(dup...)
		}()
	}
}

func TestScanShortVals(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Scan with len(vals) < schema.Len() did not panic")
		}
	}()
	var sc Scanner
	sc.Scan([]byte(`{}`), NewSchema("a", "b"), make([]Value, 1))
}

func TestKindString(t *testing.T) {
	want := []string{"missing", "null", "number", "string", "bool", "object", "array"}
	for k, w := range want {
		if got := Kind(k).String(); got != w {
			t.Errorf("Kind(%d) = %q, want %q", k, got, w)
		}
	}
	if got := Kind(42).String(); got != "Kind(42)" {
		t.Errorf("Kind(42) = %q", got)
	}
}

func TestAppendString(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", `""`},
		{"plain", `"plain"`},
		{`q"b\s/`, `"q\"b\\s/"`},
		{"\b\f\n\r\t", `"\b\f\n\r\t"`},
		{"\x00\x01\x1f\x7f", `"\u0000\u0001\u001f` + "\x7f" + `"`},
		{"<&>", `"<&>"`},
		{"é日😀", `"é日😀"`},
		{"a\xffb\xc3", `"a\ufffdb\ufffd"`},
		{"\xed\xa0\x80", `"\ufffd\ufffd\ufffd"`},
		{"\u2028\u2029", `"\u2028\u2029"`},
	}
	for _, tc := range cases {
		if got := string(AppendString([]byte("pre:"), []byte(tc.in))); got != "pre:"+tc.want {
			t.Errorf("AppendString(%q) = %s, want pre:%s", tc.in, got, tc.want)
		}
	}
}

// TestScanAllocs is the zero-allocation contract of the hot path.
func TestScanAllocs(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("coverage instrumentation allocates")
	}
	var sc Scanner
	schema := NewSchema("card_id", "event_time", "amount", "merchant", "country")
	vals := make([]Value, schema.Len())
	data := []byte(record)
	if n := testing.AllocsPerRun(1000, func() {
		if err := sc.Scan(data, schema, vals); err != nil {
			t.Fatal(err)
		}
		if _, err := vals[2].Float(); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Scan of a typical record: %v allocs/op, want 0", n)
	}
	// Escaped strings and keys use scratch, which must be reused once grown; the map lookup of a large
	// schema must not allocate either.
	big := NewSchema("a", "b", "c", "d", "e", "f", "g", "h", "i", "j\n")
	vals = make([]Value, big.Len())
	data = []byte(`{"a":"\u00e9\n","b":[1,{"x":"y"}],"j\n":"x\ty","c":true,"zz":"\ud83d\ude00","i":-1.5e3}`)
	if n := testing.AllocsPerRun(1000, func() {
		if err := sc.Scan(data, big, vals); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Scan with escapes and a large schema: %v allocs/op, want 0", n)
	}
	if n := testing.AllocsPerRun(1000, func() {
		if _, err := (Value{Kind: Number, Raw: []byte("5411")}).Int(); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Int: %v allocs/op, want 0", n)
	}
	buf := make([]byte, 0, 256)
	s := []byte("card-004211 \"quoted\"\n é")
	if n := testing.AllocsPerRun(1000, func() { buf = AppendString(buf[:0], s) }); n != 0 {
		t.Errorf("AppendString into a large enough buffer: %v allocs/op, want 0", n)
	}
}

// TestScratchReuse checks that a Value from one Scan is (only) invalidated by the next, and that a
// Scanner can be reused indefinitely after errors.
func TestScratchReuse(t *testing.T) {
	var sc Scanner
	schema := NewSchema("a")
	vals := make([]Value, 1)
	for i := 0; i < 100; i++ {
		in := `{"a":"` + strconv.Itoa(i) + `\n"}`
		if i%3 == 0 {
			if err := sc.Scan([]byte(in[:len(in)-3]), schema, vals); err == nil {
				t.Fatal("truncated input accepted")
			}
		}
		if err := sc.Scan([]byte(in), schema, vals); err != nil {
			t.Fatal(err)
		}
		if got, want := string(vals[0].Raw), strconv.Itoa(i)+"\n"; got != want {
			t.Fatalf("scan %d: %q, want %q", i, got, want)
		}
	}
	// A huge escaped value grows scratch past maxKeptScratch; the next Scan drops it.
	huge := `{"a":"` + strings.Repeat(`\n`, maxKeptScratch+1) + `"}`
	if err := sc.Scan([]byte(huge), schema, vals); err != nil || len(vals[0].Raw) != maxKeptScratch+1 {
		t.Fatalf("huge: %v, %d bytes", err, len(vals[0].Raw))
	}
	if err := sc.Scan([]byte(`{"a":"\t"}`), schema, vals); err != nil || string(vals[0].Raw) != "\t" {
		t.Fatalf("after huge: %v, %q", err, vals[0].Raw)
	}
	if cap(sc.scratch) > maxKeptScratch {
		t.Errorf("scratch of %d bytes kept", cap(sc.scratch))
	}
}
