package config

import (
	"fmt"
	"strings"

	"github.com/streamd/streamd/stream"
)

// Table is one entry of tables: a compacted topic of JSON rows (the record key is the row key, a
// tombstone deletes the row) that enriches every event, its fields read as TABLE.FIELD wherever a
// source field can be (features, window aggregations). See stream.Table.
type Table struct {
	Name  string `yaml:"name"`
	Topic string `yaml:"topic"`
	// Kind is global (every instance holds the whole table; joined by the event field Join) or
	// co_partitioned (keyed by the entity key, with the source's partition count; each task holds
	// its partition).
	Kind string `yaml:"kind"`
	// Join is the source field whose value is a global table's row key.
	Join string `yaml:"join"`
	// Fields are the row's fields, declared and validated as source.fields are.
	Fields map[string]*FieldSpec `yaml:"fields"`
}

var tableKinds = map[string]stream.TableKind{"global": stream.GlobalTable, "co_partitioned": stream.CoPartitionedTable}

// fieldSpec returns the declaration of a field an operator may read: a source field, or a table's
// field written TABLE.FIELD.
func (c *Config) fieldSpec(name string) (*FieldSpec, bool) {
	if fs, ok := c.Source.Fields[name]; ok {
		return fs, fs != nil
	}
	tname, fname, ok := strings.Cut(name, ".")
	if !ok {
		return nil, false
	}
	for _, tb := range c.Tables {
		if tb.Name == tname {
			fs, ok := tb.Fields[fname]
			return fs, ok && fs != nil
		}
	}
	return nil, false
}

// fieldsWhere names where fieldSpec looks, for errors.
func (c *Config) fieldsWhere() string {
	if len(c.Tables) == 0 {
		return "source.fields"
	}
	return "source.fields or as TABLE.FIELD of a table's fields"
}

// validateTables checks the tables entries.
func (c *Config) validateTables(v *validator) {
	names := map[string]bool{}
	for i, tb := range c.Tables {
		key := fmt.Sprintf("tables[%d]", i)
		v.name(key+".name", tb.Name, true)
		if strings.Contains(tb.Name, ".") {
			v.bad(key+".name", "%q: a table's fields are NAME.FIELD, so the name takes no '.'", tb.Name)
		}
		if names[tb.Name] {
			v.bad(key+".name", "two tables are named %q", tb.Name)
		}
		names[tb.Name] = true
		v.name(key+".topic", tb.Topic, true)
		if tb.Topic != "" && tb.Topic == c.Source.Topic {
			v.bad(key+".topic", "%q is the source topic", tb.Topic)
		}
		kind, ok := tableKinds[tb.Kind]
		if !ok {
			v.bad(key+".kind", "%q: use global or co_partitioned", tb.Kind)
		}
		switch {
		case kind == stream.GlobalTable && tb.Join == "":
			v.bad(key+".join", "required for a global table: the source field whose value is the row key")
		case kind == stream.GlobalTable:
			fs, ok := c.Source.Fields[tb.Join]
			if !ok || fs == nil || (fs.Type != "string" && fs.Type != "number") {
				v.bad(key+".join", "%q must be a string or number field in source.fields", tb.Join)
			}
		case kind == stream.CoPartitionedTable && tb.Join != "":
			v.bad(key+".join", "a co_partitioned table is joined by the entity key (source.key); remove join")
		}
		if len(tb.Fields) == 0 {
			v.bad(key+".fields", "at least one field")
		}
		for _, name := range sortedKeys(tb.Fields) {
			if err := stream.CheckPath(name); err != nil {
				v.bad(key+".fields."+name, "%v", err)
			}
			if strings.HasPrefix(name, "header:") {
				v.bad(key+".fields."+name, "a table row has no headers")
			}
			validateFieldSpec(v, key+".fields."+name, tb.Fields[name])
		}
	}
}

// tables compiles the tables entries.
func (c *Config) tables() ([]*stream.Table, error) {
	var out []*stream.Table
	for _, tb := range c.Tables {
		f := &stream.JSONFormat{Time: stream.EventTimeSpec{Format: stream.TimeKafka}, Fields: fieldSpecs(tb.Fields)}
		if err := f.Init(); err != nil {
			return nil, fmt.Errorf("config: table %s: %w", tb.Name, err)
		}
		out = append(out, &stream.Table{Name: tb.Name, Topic: tb.Topic, Kind: tableKinds[tb.Kind], Join: tb.Join, Format: f})
	}
	return out, nil
}
