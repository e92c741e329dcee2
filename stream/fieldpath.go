package stream

import (
	"errors"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/internal/fieldpath"
	"github.com/streamd/streamd/internal/jsonscan"
)

// Field paths.
//
// Everywhere a pipeline names a field (source fields, key, event id, event time, and through them
// labels and features) the name is a path: segments separated by dots, each the name of a field of
// a record, message or object, or a decimal index into an array (items.0.price is the price of the
// first item). A path that starts with header: names a Kafka header instead (header:x-tenant), which
// SchemaFormat reads itself, the same way for every encoding.

// headerSlot is a path that names a Kafka header.
type headerSlot struct {
	name string
	slot int
}

// CheckPath reports what is wrong with a declared path (a body path or header:NAME), or nil.
func CheckPath(p string) error {
	if name, ok := strings.CutPrefix(p, HeaderPrefix); ok {
		if name == "" {
			return errors.New("header: names no header")
		}
		return nil
	}
	_, err := fieldpath.Parse(p)
	return err
}

// required reports whether the pipeline rejects a record without the value of slot: a required
// field, the key, the event id and the event time.
func (r *rules) required(slot int) bool {
	if slot < len(r.fields) {
		return r.fields[slot].Required
	}
	return true
}

// headerValue reads a header path: the last header of the name, its text read as the declared
// type (a number or a bool when the field is one, and the text is one), else a string.
func (r *rules) headerValue(rec *kgo.Record, h headerSlot) Value {
	found := -1
	for i := range rec.Headers {
		if rec.Headers[i].Key == h.name {
			found = i
		}
	}
	if found < 0 {
		return Value{}
	}
	b := rec.Headers[found].Value
	if b == nil {
		return Value{Kind: ValueNull}
	}
	b = b[:len(b):len(b)]
	if h.slot < len(r.fields) {
		switch r.fields[h.slot].Type {
		case Number:
			if _, err := (jsonscan.Value{Kind: jsonscan.Number, Raw: b}).Float(); err == nil || errors.Is(err, strconv.ErrRange) {
				return Value{Kind: ValueNumber, Raw: b}
			}
		case Bool:
			switch string(b) {
			case "true":
				return Value{Kind: ValueBool, Bool: true, Raw: b}
			case "false":
				return Value{Kind: ValueBool, Raw: b}
			}
		}
	}
	return Value{Kind: ValueString, Raw: b}
}
