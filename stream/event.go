package stream

import (
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// FieldKind says what a decoded field holds.
type FieldKind uint8

const (
	// Absent: the record did not have the field (or it was null).
	Absent FieldKind = iota
	// Number: Field.Num holds a finite float64.
	Number
	// String: Field.Str holds the decoded UTF-8 bytes.
	String
	// Bool: Field.Bool holds the value.
	Bool
)

func (k FieldKind) String() string {
	switch k {
	case Absent:
		return "absent"
	case Number:
		return "number"
	case String:
		return "string"
	case Bool:
		return "bool"
	}
	return "unknown"
}

// Field is one decoded, validated field of an event.
type Field struct {
	Kind FieldKind
	Num  float64
	Str  []byte
	Bool bool
}

// Event is a decoded, validated input record, as operators see it.
//
// An Event and every byte slice reachable from it are owned by the task that decoded it and are valid
// only for the duration of the Process call: the task reuses the Event for the next record. An operator
// that keeps data beyond the call copies it (Task.Emit does).
type Event struct {
	// Key is the entity key: the configured key field, or the Kafka record key.
	Key []byte
	// ID identifies the event: the configured event id field, or "topic/partition/offset" when the
	// source has none, so that it is unique and stable across reprocessing.
	ID []byte
	// Time is the event time in Unix milliseconds.
	Time int64
	// Record is the source Kafka record: its Topic, Partition and Offset are the event's lineage.
	Record *kgo.Record
	// Fields are the decoded schema fields, indexed as the source format's FieldIndex says.
	Fields []Field
	// Features are the pipeline's computed features (Pipeline.Features), NaN until an operator
	// sets them for this event.
	Features []float64

	idBuf []byte
}

// EventTime returns Time as a time.Time in UTC.
func (e *Event) EventTime() time.Time { return time.UnixMilli(e.Time).UTC() }

// Number returns field i when it holds a number.
func (e *Event) Number(i int) (float64, bool) {
	if i < 0 || i >= len(e.Fields) || e.Fields[i].Kind != Number {
		return 0, false
	}
	return e.Fields[i].Num, true
}

// String returns field i when it holds a string. The bytes are owned by the event.
func (e *Event) String(i int) ([]byte, bool) {
	if i < 0 || i >= len(e.Fields) || e.Fields[i].Kind != String {
		return nil, false
	}
	return e.Fields[i].Str, true
}

// reset clears the event for the next record, keeping its buffers.
func (e *Event) reset(rec *kgo.Record, nfields int) {
	e.Key, e.ID, e.Time, e.Record = nil, nil, 0, rec
	if cap(e.Fields) < nfields {
		e.Fields = make([]Field, nfields)
	}
	e.Fields = e.Fields[:nfields]
	for i := range e.Fields {
		e.Fields[i] = Field{}
	}
}
