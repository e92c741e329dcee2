package stream

import (
	"errors"
	"fmt"
)

// Reason is the machine-readable cause of a dead letter. It is the value of the streamd-reason header
// and the reason label of streamd_dead_letters_total, so the set must stay small and fixed: never
// build a Reason from record contents.
type Reason string

// The reasons streamd itself gives.
const (
	ReasonMalformedJSON      Reason = "malformed_json"         // not valid JSON at all
	ReasonNotAnObject        Reason = "not_an_object"          // valid JSON, but not a JSON object
	ReasonTooLarge           Reason = "record_too_large"       // value larger than source.max_record_bytes
	ReasonMissingKey         Reason = "missing_key"            // no entity key
	ReasonMissingField       Reason = "missing_field"          // a required field is absent or null
	ReasonWrongType          Reason = "wrong_type"             // a field has another JSON type than declared
	ReasonOutOfRange         Reason = "out_of_range"           // a number outside min/max, a string too long or not allowed
	ReasonNotFinite          Reason = "not_finite"             // a number that overflows float64 (1e999)
	ReasonBadEventTime       Reason = "bad_event_time"         // event time missing or unparseable
	ReasonEventTimeOutOfSpan Reason = "event_time_out_of_span" // event time before not_before or too far ahead
	ReasonOperator           Reason = "operator_rejected"      // an operator refused the event (see streamd-error)
	ReasonLate               Reason = "late_record"            // after its windows closed, and the pipeline has no late topic
	ReasonLabelOutOfRange    Reason = "label_out_of_range"     // a label that a model cannot learn (0.5 for a binary model)
	ReasonDuplicateField     Reason = "duplicate_field"        // a JSON object with the same key twice ({"amount":-7,"amount":5})
	ReasonInvalidString      Reason = "invalid_string"         // a JSON string escape of a lone UTF-16 surrogate ("\ud800")
	ReasonControlCharacters  Reason = "control_characters"     // a string with a C0 control character other than tab, LF, CR
	ReasonKeyMismatch        Reason = "key_mismatch"           // the source.key field differs from the Kafka record key
	ReasonUnknownLabel       Reason = "unknown_label"          // a string label not in labels.classes, or past labels.max_classes

	// Records that carry a schema id (Avro, Protobuf through a schema registry).
	ReasonBadWireFormat      Reason = "bad_wire_format"      // no Confluent header: not magic byte 0 and a schema id, or bad message indexes
	ReasonUnknownSchema      Reason = "unknown_schema"       // the registry answered that the schema id does not exist, or its schema cannot be used
	ReasonSchemaMissingField Reason = "schema_missing_field" // the record's schema has no such field, and the pipeline requires it
	ReasonMalformedAvro      Reason = "malformed_avro"       // the payload is not Avro of its schema (truncated, trailing bytes, bad union branch...)
	ReasonMalformedProtobuf  Reason = "malformed_protobuf"   // the payload is not a Protobuf message of its type (truncated, bad wire type...)

	// Dedup (source.dedup with dead_letter: true).
	ReasonDuplicateEventID Reason = "duplicate_event_id" // an event id already accepted within the dedup ttl
)

// reasons lists every Reason streamd gives.
var reasons = [...]Reason{ReasonMalformedJSON, ReasonNotAnObject, ReasonTooLarge, ReasonMissingKey, ReasonMissingField,
	ReasonWrongType, ReasonOutOfRange, ReasonNotFinite, ReasonBadEventTime, ReasonEventTimeOutOfSpan, ReasonOperator, ReasonLate,
	ReasonLabelOutOfRange, ReasonDuplicateField, ReasonInvalidString, ReasonControlCharacters, ReasonKeyMismatch,
	ReasonUnknownLabel, ReasonBadWireFormat, ReasonUnknownSchema, ReasonSchemaMissingField, ReasonMalformedAvro,
	ReasonMalformedProtobuf,
	ReasonDuplicateEventID}

// Reasons returns every Reason streamd gives, for metrics and dashboards that should show each at
// zero before the first. The slice is the caller's: the set itself cannot be changed.
func Reasons() []Reason { return append([]Reason(nil), reasons[:]...) }

// Rejection is the error that sends a record to the dead-letter topic instead of failing the task.
// Decoders return it for input they cannot accept; operators return it (through Reject) for events
// they refuse. Any other error from an operator is fatal to the task.
type Rejection struct {
	Reason Reason
	// Field names the offending field, when there is one.
	Field string
	// Detail says what was wrong, for a human reading the dead letter. It may quote a short part of
	// the input.
	Detail string
}

func (r *Rejection) Error() string {
	if r.Field != "" {
		return fmt.Sprintf("stream: rejected (%s): field %q: %s", r.Reason, r.Field, r.Detail)
	}
	return fmt.Sprintf("stream: rejected (%s): %s", r.Reason, r.Detail)
}

// Reject returns a *Rejection for an operator to return from Process.
func Reject(reason Reason, format string, args ...any) error {
	return &Rejection{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// AsRejection reports whether err is (or wraps) a *Rejection.
func AsRejection(err error) (*Rejection, bool) {
	var r *Rejection
	ok := errors.As(err, &r)
	return r, ok
}

func reject(reason Reason, field, format string, args ...any) *Rejection {
	return &Rejection{Reason: reason, Field: field, Detail: fmt.Sprintf(format, args...)}
}
