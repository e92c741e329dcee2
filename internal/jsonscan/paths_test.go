package jsonscan

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

// nestedRecord is the benchmark record with its payment and device nested, and a list of items.
const nestedRecord = `{"event_id":"9f1c2a7e4b3d","card_id":"card-004211","event_time":"2026-11-25T21:18:33.123Z",` +
	`"payment":{"amount":42.17,"currency":"EUR","merchant":{"id":"m-0193","mcc":5411}},` +
	`"device":{"os":"ios","ip":"10.0.0.1"},"items":[{"sku":"a","price":10.5},{"sku":"b","price":31.67}],"country":"DE"}`

func TestPaths(t *testing.T) {
	type want struct {
		kind Kind
		raw  string
	}
	cases := []struct {
		name  string
		in    string
		paths []string
		want  []want
	}{
		{
			name:  "nested objects and arrays",
			in:    nestedRecord,
			paths: []string{"payment.amount", "payment.merchant.id", "device.os", "items.1.price", "items.0.sku", "card_id", "items.2.price", "payment.nope"},
			want: []want{{Number, "42.17"}, {String, "m-0193"}, {String, "ios"}, {Number, "31.67"}, {String, "a"},
				{String, "card-004211"}, {Missing, ""}, {Missing, ""}},
		},
		{
			name:  "a path and a path under it",
			in:    `{"p":{"a":1,"b":[true]},"q":2}`,
			paths: []string{"p", "p.b.0", "p.a"},
			want:  []want{{Object, `{"a":1,"b":[true]}`}, {Bool, "true"}, {Number, "1"}},
		},
		{
			name:  "a path through a scalar or null finds nothing",
			in:    `{"p":5,"q":null,"r":"s","t":[1]}`,
			paths: []string{"p.a", "q.a", "r.0", "t.a", "t.0"},
			want:  []want{{Missing, ""}, {Missing, ""}, {Missing, ""}, {Missing, ""}, {Number, "1"}},
		},
		{
			name:  "a numeric segment is an object key too",
			in:    `{"m":{"0":"zero","10":"ten"}}`,
			paths: []string{"m.0", "m.10"},
			want:  []want{{String, "zero"}, {String, "ten"}},
		},
		{
			name:  "escaped keys along a path",
			in:    `{"p\u0061y":{"\u0061mount":"\u0031"}}`,
			paths: []string{"pay.amount"},
			want:  []want{{String, "1"}},
		},
		{
			name:  "a dotted top-level key is not a path",
			in:    `{"a.b":1,"a":{"b":2}}`,
			paths: []string{"a.b"},
			want:  []want{{Number, "2"}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			segs := make([][]string, len(tc.paths))
			for i, p := range tc.paths {
				segs[i] = strings.Split(p, ".")
			}
			schema := NewPathSchema(segs...)
			vals := make([]Value, schema.Len())
			var sc Scanner
			if err := sc.Scan([]byte(tc.in), schema, vals); err != nil {
				t.Fatal(err)
			}
			for i, w := range tc.want {
				if vals[i].Kind != w.kind || string(vals[i].Raw) != w.raw {
					t.Errorf("%s = %v %q, want %v %q", tc.paths[i], vals[i].Kind, vals[i].Raw, w.kind, w.raw)
				}
				if j, ok := schema.Index(tc.paths[i]); !ok || j != i {
					t.Errorf("Index(%q) = %d, %v", tc.paths[i], j, ok)
				}
			}
		})
	}
}

func TestDuplicateKeys(t *testing.T) {
	wide := func(n int, dup bool) string {
		var b strings.Builder
		b.WriteString(`{`)
		for i := range n {
			b.WriteString(`"k` + strconv.Itoa(i) + `":` + strconv.Itoa(i) + `,`)
		}
		if dup {
			b.WriteString(`"k` + strconv.Itoa(n/2) + `":0,`)
		}
		b.WriteString(`"end":1}`)
		return b.String()
	}
	payment := NewPathSchema([]string{"payment", "amount"})
	cases := []struct {
		name   string
		in     string
		schema *Schema
		key    string // "" for no duplicate
	}{
		{"top level", `{"amount":-7,"amount":5}`, nil, "amount"},
		{"top level, one escaped", `{"amount":-7,"\u0061mount":5}`, nil, "amount"},
		{"along a path", `{"payment":{"amount":-7,"amount":5}}`, payment, "amount"},
		{"along a path, an unwanted key", `{"payment":{"x":1,"amount":5,"x":2}}`, payment, "x"},
		{"off the path: validated only", `{"device":{"os":1,"os":2},"payment":{"amount":1}}`, payment, ""},
		{"the same key in two objects", `{"amount":1,"payment":{"amount":2}}`, payment, ""},
		{"wide object, hashed", wide(1000, true), nil, "k500"},
		{"wide object, no duplicate", wide(1000, false), nil, ""},
		{"just past the hashing threshold", wide(tableMin, true), nil, "k" + strconv.Itoa(tableMin/2)},
	}
	var sc Scanner
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			vals := make([]Value, tc.schema.Len())
			err := sc.Scan([]byte(tc.in), tc.schema, vals)
			var de *DuplicateKeyError
			if tc.key == "" {
				if err != nil {
					t.Fatalf("Scan: %v, want no error", err)
				}
				return
			}
			if !errors.As(err, &de) || !errors.Is(err, ErrDuplicateKey) || de.Key != tc.key {
				t.Fatalf("Scan: %v, want a duplicate key %q", err, tc.key)
			}
		})
	}
}

func TestPathScanAllocs(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("coverage instrumentation allocates")
	}
	var sc Scanner
	schema := NewPathSchema([]string{"card_id"}, []string{"payment", "amount"}, []string{"payment", "merchant", "id"},
		[]string{"device", "os"}, []string{"items", "1", "price"})
	vals := make([]Value, schema.Len())
	records := [][]byte{[]byte(nestedRecord), []byte(`{"payment":{` + wideKeys(100) + `"amount":1}}`)}
	if n := testing.AllocsPerRun(1000, func() {
		for _, r := range records {
			if err := sc.Scan(r, schema, vals); err != nil {
				t.Fatal(err)
			}
		}
	}); n != 0 {
		t.Errorf("Scan of nested records: %v allocs/op, want 0", n)
	}
}

func wideKeys(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(`"w` + strconv.Itoa(i) + `":null,`)
	}
	return b.String()
}

func BenchmarkScanNested(b *testing.B) {
	var sc Scanner
	schema := NewPathSchema([]string{"card_id"}, []string{"event_time"}, []string{"payment", "amount"},
		[]string{"payment", "merchant", "id"}, []string{"country"})
	vals := make([]Value, schema.Len())
	data := []byte(nestedRecord)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := sc.Scan(data, schema, vals); err != nil {
			b.Fatal(err)
		}
	}
}
