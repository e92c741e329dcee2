package jsonscan

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"testing"
	"unicode/utf8"
)

// FuzzScanPaths checks nested paths against encoding/json: for an input Scan accepts, every path
// of keys and array indexes down to depth 3 (as encoding/json decodes the input) is requested, and
// each value must agree with encoding/json's (strings decoded equal, numbers literally, objects and
// arrays decoding to the same value). A duplicate key may only be reported for a key that is in
// the input twice. Inputs that are not valid UTF-8 are left to FuzzScan.
func FuzzScanPaths(f *testing.F) {
	f.Add([]byte(nestedRecord))
	f.Add([]byte(`{"a":{"b":[1,{"c":"\u00e9"}],"0":true},"l":[[1,2],[3]],"e":{}}`))
	f.Add([]byte(`{"p":{"x":1,"x":2}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if !utf8.Valid(data) {
			return
		}
		var sc Scanner
		if sc.Scan(data, nil, nil) != nil {
			return
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var doc any
		if err := dec.Decode(&doc); err != nil {
			t.Fatalf("encoding/json refused %q, which Scan accepts: %v", data, err)
		}
		var paths [][]string
		var want []any
		var walk func(v any, path []string)
		walk = func(v any, path []string) {
			if len(path) > 0 {
				paths = append(paths, append([]string(nil), path...))
				want = append(want, v)
			}
			if len(path) == 3 || len(paths) > 40 {
				return
			}
			switch v := v.(type) {
			case map[string]any:
				for k, e := range v {
					walk(e, append(path, k))
				}
			case []any:
				for i, e := range v {
					walk(e, append(path, strconv.Itoa(i)))
				}
			}
		}
		walk(doc, nil)
		// Keys that are not array-index-like and numeric keys both resolve by key; a numeric key
		// of an object and the same index of an array cannot meet on one path.
		seen := map[string]bool{}
		var uniq [][]string
		var uwant []any
		for i, p := range paths {
			k := string(mustJSON(p))
			if seen[k] {
				continue
			}
			seen[k] = true
			uniq, uwant = append(uniq, p), append(uwant, want[i])
		}
		schema := NewPathSchema(uniq...)
		vals := make([]Value, schema.Len())
		err := sc.Scan(data, schema, vals)
		var de *DuplicateKeyError
		if errors.As(err, &de) {
			if bytes.Count(data, []byte(strconv.Quote(de.Key)[1:len(strconv.Quote(de.Key))-1])) < 2 && !bytes.Contains(data, []byte(`\`)) {
				t.Fatalf("%q: duplicate key %q reported, which is not in the input twice", data, de.Key)
			}
			return
		}
		if err != nil {
			t.Fatalf("%q: Scan with paths: %v; without, it succeeded", data, err)
		}
		for i, p := range uniq {
			checkPathValue(t, data, p, vals[i], uwant[i])
		}
	})
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

func checkPathValue(t *testing.T, data []byte, path []string, v Value, want any) {
	t.Helper()
	fail := func(why string) {
		t.Fatalf("%q: path %q = %v %q: %s (encoding/json: %#v)", data, path, v.Kind, v.Raw, why, want)
	}
	switch w := want.(type) {
	case nil:
		if v.Kind != Null {
			fail("want null")
		}
	case bool:
		if v.Kind != Bool || v.Bool != w {
			fail("want a bool")
		}
	case string:
		if v.Kind != String || string(v.Raw) != w {
			fail("want the string")
		}
	case json.Number:
		if v.Kind != Number || string(v.Raw) != string(w) {
			fail("want the number")
		}
	case map[string]any, []any:
		k := Array
		if _, isMap := w.(map[string]any); isMap {
			k = Object
		}
		if v.Kind != k {
			fail("want " + k.String())
		}
		dec := json.NewDecoder(bytes.NewReader(v.Raw))
		dec.UseNumber()
		var got any
		if err := dec.Decode(&got); err != nil || !reflect.DeepEqual(got, w) {
			fail("raw text decodes to another value")
		}
	}
}
