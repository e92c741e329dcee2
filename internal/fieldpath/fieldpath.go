// Package fieldpath splits the paths that name a field in a record: segments separated by dots,
// each a field name, a map key, or a decimal array index (items.0.price). It is shared by every
// source encoding, so that a path means the same in JSON, Avro and Protobuf.
package fieldpath

import (
	"errors"
	"strings"
)

// Parse splits a path into its segments, or says why it is not one: an empty path, an empty
// segment (.a, a..b, a.), or a segment with spaces around it.
func Parse(path string) ([]string, error) {
	if path == "" {
		return nil, errors.New("empty path")
	}
	segs := strings.Split(path, ".")
	for _, s := range segs {
		if s == "" {
			return nil, errors.New(`empty segment in "` + path + `" (write a.b.0.c)`)
		}
		if strings.TrimSpace(s) != s {
			return nil, errors.New(`a segment of "` + path + `" starts or ends with a space`)
		}
	}
	return segs, nil
}

// MustParse is Parse for paths already checked.
func MustParse(path string) []string {
	segs, err := Parse(path)
	if err != nil {
		panic("fieldpath: " + err.Error())
	}
	return segs
}

// Index reports whether a segment is an array index: decimal digits without a sign or a leading
// zero (0, 7, 12), at most 9 of them, so that it fits an int everywhere.
func Index(seg string) (int, bool) {
	if seg == "" || len(seg) > 9 || (len(seg) > 1 && seg[0] == '0') {
		return 0, false
	}
	n := 0
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
