package stream

import (
	"errors"
	"fmt"
	"strings"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/streamd/streamd/internal/avroscan"
	"github.com/streamd/streamd/internal/fieldpath"
)

// AvroWire reads Avro records in Confluent's wire format (magic byte 0, the writer schema's id,
// the Avro binary encoding), their schemas from a schema registry (registry.go). A path is a
// dotted path through records (by field name), arrays (by index) and maps (by key); through a
// union it reaches every branch that has it. Each schema id is compiled once into a plan that
// reads only the declared paths (internal/avroscan), so records of a new schema version are read
// without a restart and without allocating. Use a new AvroWire for each format.
type AvroWire struct {
	Registry *Registry

	paths    [][]string
	names    []string
	required []bool
	cache    *schemaCache[*avroscan.Plan]
}

// Init implements Wire.
func (w *AvroWire) Init(paths []WirePath) error {
	if err := w.Registry.check(); err != nil {
		return fmt.Errorf("avro: %w", err)
	}
	for _, p := range paths {
		segs, err := fieldpath.Parse(p.Path)
		if err != nil {
			return fmt.Errorf("avro: %w", err)
		}
		w.paths = append(w.paths, segs)
		w.names = append(w.names, p.Path)
		w.required = append(w.required, p.Required)
	}
	w.cache = newSchemaCache(w.Registry, w.compile)
	return nil
}

// compile parses a writer schema (with the schemas it references) and builds its plan, or says
// why its records cannot be read.
func (w *AvroWire) compile(id int, s sr.Schema, refs []namedSchema) (*avroscan.Plan, *Rejection) {
	if s.Type != sr.TypeAvro {
		return nil, reject(ReasonUnknownSchema, "", "schema id %d is a %s schema, not Avro", id, s.Type)
	}
	cache := &avro.SchemaCache{} // per schema: two versions may define the same names differently
	for _, ref := range refs {
		if _, err := avro.ParseWithCache(ref.Schema.Schema, "", cache); err != nil {
			return nil, reject(ReasonUnknownSchema, "", "schema id %d: its reference %s does not parse: %s", id, ref.Name, clip([]byte(err.Error())))
		}
	}
	sch, err := avro.ParseWithCache(s.Schema, "", cache)
	if err != nil {
		return nil, reject(ReasonUnknownSchema, "", "schema id %d does not parse as Avro: %s", id, clip([]byte(err.Error())))
	}
	plan, err := avroscan.Compile(sch, w.paths)
	if err != nil {
		return nil, reject(ReasonUnknownSchema, "", "schema id %d: %v", id, err)
	}
	if rj := schemaLacks(id, plan.Absent(), w.names, w.required); rj != nil {
		return nil, rj
	}
	return plan, nil
}

// schemaLacks is the rejection of the records of a schema that has none of some required paths.
func schemaLacks(id int, absent []int, names []string, required []bool) *Rejection {
	var lacks []string
	for _, i := range absent {
		if required[i] {
			lacks = append(lacks, names[i])
		}
	}
	if len(lacks) == 0 {
		return nil
	}
	return &Rejection{Reason: ReasonSchemaMissingField, Field: lacks[0],
		Detail: fmt.Sprintf("schema id %d has no field %s, which the pipeline requires", id, strings.Join(lacks, ", "))}
}

// NewDecoder implements Wire.
func (w *AvroWire) NewDecoder() WireDecoder {
	return &avroDecoder{schemas: localSchemas[*avroscan.Plan]{shared: w.cache}}
}

type avroDecoder struct {
	schemas localSchemas[*avroscan.Plan]
	sc      avroscan.Scanner
}

func (d *avroDecoder) Decode(rec *kgo.Record, vals []Value) error {
	id, body, rj := confluentHeader(rec.Value)
	if rj != nil {
		return rj
	}
	e, err := d.schemas.get(id)
	if err != nil {
		return err
	}
	if e.rej != nil {
		return e.rej
	}
	if err := d.sc.Scan(body, e.plan, vals); err != nil {
		var se *avroscan.SyntaxError
		if errors.As(err, &se) {
			// The offset counts from the start of the record value, header included.
			return reject(ReasonMalformedAvro, "", "schema id %d: %s at byte %d", id, se.Msg, se.Offset+5)
		}
		return reject(ReasonMalformedAvro, "", "schema id %d: %v", id, err)
	}
	return nil
}
