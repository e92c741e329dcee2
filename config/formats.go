package config

import (
	"fmt"
	"sort"
	"strings"

	"github.com/streamd/streamd/stream"
)

// newWire builds the wire encoding of one format name. It gets the whole config so that an encoding
// with settings (a schema registry's address, a message type) reads its own block of the source.
type newWire func(c *Config) (stream.Wire, error)

// wires maps every name source.format accepts to its encoding. Adding an encoding is its Wire in
// package stream (one file), an entry here, and its config block if it has settings; the schema
// (fields, key, event id, event time, size limit) is compiled the same way for every encoding.
var wires = map[string]newWire{
	"json": func(*Config) (stream.Wire, error) { return &stream.JSONWire{}, nil },
}

// labelsWire is the encoding of the labels topic.
const labelsWire = "json"

// formatNames lists the names source.format accepts, sorted.
func formatNames() []string {
	names := make([]string, 0, len(wires))
	for n := range wires {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// format compiles a schema over the named encoding into a prepared Format.
func (c *Config) format(name string, s stream.Schema) (stream.Format, error) {
	nw, ok := wires[name]
	if !ok {
		return nil, fmt.Errorf("config: format %q is not one of %s", name, strings.Join(formatNames(), ", "))
	}
	w, err := nw(c)
	if err != nil {
		return nil, err
	}
	f := &stream.SchemaFormat{Schema: s, Wire: w}
	if err := f.Init(); err != nil {
		return nil, err
	}
	return f, nil
}
