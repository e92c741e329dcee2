package stream

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TimeFormat says how the event time is written.
type TimeFormat uint8

const (
	// TimeRFC3339 is a string such as "2026-11-25T21:18:33.123Z" (any offset; sub-second digits
	// optional).
	TimeRFC3339 TimeFormat = iota + 1
	// TimeEpochMillis is a number (or a string of digits) of milliseconds since 1970.
	TimeEpochMillis
	// TimeEpochSeconds is a number of seconds since 1970, fractions allowed.
	TimeEpochSeconds
	// TimeKafka takes the Kafka record timestamp; no field is read.
	TimeKafka
)

// ParseTimeFormat maps the config names rfc3339, epoch_ms, epoch_s and kafka_timestamp to formats.
func ParseTimeFormat(s string) (TimeFormat, bool) {
	switch s {
	case "rfc3339":
		return TimeRFC3339, true
	case "epoch_ms":
		return TimeEpochMillis, true
	case "epoch_s":
		return TimeEpochSeconds, true
	case "kafka_timestamp":
		return TimeKafka, true
	}
	return 0, false
}

// EventTimeSpec says where an event's time comes from and which times are believable.
type EventTimeSpec struct {
	Field  string // required unless Format is TimeKafka
	Format TimeFormat
	// MaxFuture rejects an event whose time is further than this ahead of its Kafka record timestamp.
	// Measuring against the record timestamp rather than the wall clock keeps the decision the same
	// when the record is reprocessed after a crash. Zero disables the check.
	MaxFuture time.Duration
	// NotBefore rejects events older than this instant (a 1970 timestamp is almost always a missing
	// value, and would otherwise be a late record forever). Zero disables the check.
	NotBefore time.Time
}

// eventTime reads the event time (from its slot, or the record timestamp) and checks its span.
func (r *rules) eventTime(rec *kgo.Record, vals []Value) (int64, error) {
	ts := &r.time
	var ms int64
	name := ts.Field
	if ts.Format == TimeKafka {
		ms = rec.Timestamp.UnixMilli()
		name = "kafka timestamp"
	} else {
		v := &vals[r.tSlot]
		switch v.Kind {
		case ValueMissing, ValueNull:
			return 0, reject(ReasonBadEventTime, name, "missing")
		}
		var err error
		ms, err = parseEventTime(v, ts.Format)
		if err != nil {
			return 0, reject(ReasonBadEventTime, name, "%s: %v", valueText(v), err)
		}
	}
	if !ts.NotBefore.IsZero() && ms < ts.NotBefore.UnixMilli() {
		return 0, reject(ReasonEventTimeOutOfSpan, name, "%s is before %s", fmtMillis(ms), ts.NotBefore.UTC().Format(time.RFC3339))
	}
	if ts.MaxFuture > 0 && ts.Format != TimeKafka {
		if limit := rec.Timestamp.UnixMilli() + ts.MaxFuture.Milliseconds(); ms > limit {
			return 0, reject(ReasonEventTimeOutOfSpan, name, "%s is more than %s ahead of the record timestamp %s",
				fmtMillis(ms), ts.MaxFuture, fmtMillis(rec.Timestamp.UnixMilli()))
		}
	}
	return ms, nil
}

// Event times are kept in milliseconds; a year beyond ±292 million would overflow, so bound the
// accepted span to what time.Time and milliseconds both represent.
const (
	minEventMillis = -62135596800000 // 0001-01-01
	maxEventMillis = 253402300799999 // 9999-12-31
)

func parseEventTime(v *Value, format TimeFormat) (int64, error) {
	switch format {
	case TimeRFC3339:
		if v.Kind != ValueString {
			return 0, fmt.Errorf("want an RFC 3339 string, got %s", v.Kind)
		}
		t, err := time.Parse(time.RFC3339Nano, unsafe.String(unsafe.SliceData(v.Raw), len(v.Raw)))
		if err != nil {
			return 0, errors.New("not an RFC 3339 time")
		}
		return t.UnixMilli(), nil
	case TimeEpochMillis, TimeEpochSeconds:
		var x float64
		switch v.Kind {
		case ValueNumber:
			f, err := valueFloat(v)
			if err != nil {
				return 0, errors.New("not a finite number")
			}
			x = f
		case ValueString:
			f, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(v.Raw), len(v.Raw)), 64)
			if err != nil {
				return 0, errors.New("not a number")
			}
			x = f
		default:
			return 0, fmt.Errorf("want a number, got %s", v.Kind)
		}
		if format == TimeEpochSeconds {
			x *= 1000
		}
		if math.IsNaN(x) || x < minEventMillis || x > maxEventMillis {
			return 0, errors.New("outside the years 1 to 9999")
		}
		return int64(math.Floor(x)), nil
	}
	return 0, errors.New("no event time format")
}

func fmtMillis(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z07:00")
}
