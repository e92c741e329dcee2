package stream

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// FeatureSource is implemented by processors that compute per-event features (Event.Features), for
// the admin API's /v1/features/{key}. LookupFeatures runs on the task's goroutine: it sets ev's
// features as an event of ev.Key at ev.Time would get them now — with ev's own field values counted
// when withEvent, and without them otherwise — and reports whether it holds anything for the key.
// It must not change the task's state.
type FeatureSource interface {
	LookupFeatures(t *Task, ev *Event, withEvent bool) (found bool, err error)
}

// FeatureView is implemented by processors that show the features of an event as their output does
// (the model operator: the feature values of a prediction, as the model receives them). ViewFeatures
// runs on the task's goroutine after every FeatureSource has filled ev; withEvent is
// LookupFeatures's: without an event there is nothing a model would receive, and the view shows
// the values as they are. It returns a JSON object of feature names to values, which must not
// alias task memory, and must not change the task's state.
type FeatureView interface {
	ViewFeatures(t *Task, ev *Event, withEvent bool) (json.RawMessage, error)
}

// KeyFeatures are a key's feature values now, as /v1/features/{key} answers them.
type KeyFeatures struct {
	Key       string `json:"key"`
	Partition int32  `json:"partition"`
	// AsOf is the event time the features are computed at: the query's, or the partition's "now",
	// its watermark plus the source's max out-of-orderness (the newest event time seen, or the wall
	// clock on an idle partition), or the wall clock before the partition's first event.
	AsOf      string `json:"as_of"`
	AsOfMs    int64  `json:"as_of_ms"`
	Watermark string `json:"watermark,omitempty"`
	// WithEvent says the values count the event given with the query, as its prediction will show
	// them; without one, window aggregates cover the key's past events only and field features are
	// null.
	WithEvent bool `json:"with_event"`
	// Found says whether any window holds state for the key.
	Found    bool                       `json:"found"`
	Features map[string]json.RawMessage `json:"features"`
}

// EventRejectedError is returned by Features for a query's event that the source's decoder rejects:
// the pipeline would send it to the dead letters, so no features are computed for it.
type EventRejectedError struct{ Rejection *Rejection }

func (e *EventRejectedError) Error() string {
	return "stream: the event would be a dead letter: " + e.Rejection.Error()
}

// KeyMismatchError is returned by Features when the query's event carries another key than the
// query's.
type KeyMismatchError struct{ Key, EventKey string }

func (e *KeyMismatchError) Error() string {
	return fmt.Sprintf("stream: the event's key is %q, not %q", e.EventKey, e.Key)
}

// Features returns key's feature values as a new event would see them now, computed on the task
// that owns the key's partition (on its own goroutine, like Inspect, and with Inspect's errors:
// ErrNotStarted, ErrNotOwned, ctx's). event, if not nil, is a source record's value (the source
// format): its fields and event time count as the next event's would, and its key must be key. at,
// if not zero, is the event time to compute at (Unix ms), in place of the partition's "now" or the
// event's own time.
func (r *Runtime) Features(ctx context.Context, key, event []byte, at int64) (*KeyFeatures, error) {
	kf := &KeyFeatures{Key: string(key), Features: map[string]json.RawMessage{}, WithEvent: event != nil}
	p := r.pipeline
	done := make(chan error, 1)
	part, err := r.runOnOwner(ctx, key, func(t *Task) { done <- t.lookupFeatures(kf, p, key, event, at) })
	if err != nil {
		return nil, err
	}
	kf.Partition = part
	select {
	case err := <-done:
		if err != nil {
			return nil, err
		}
		return kf, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Features computes key's features as Runtime.Features does, on the caller's goroutine (the task's).
func (l *LocalTask) Features(key, event []byte, at int64) (*KeyFeatures, error) {
	if l.closed {
		return nil, ErrLocalTaskClosed
	}
	kf := &KeyFeatures{Key: string(key), Partition: l.t.partition, Features: map[string]json.RawMessage{}, WithEvent: event != nil}
	if err := l.t.lookupFeatures(kf, l.p, key, event, at); err != nil {
		return nil, err
	}
	return kf, nil
}

// lookupFeatures fills kf on the task's goroutine: the pipeline's computed features by name
// (Pipeline.Features; null when undefined), then what each FeatureView shows, which wins.
func (t *Task) lookupFeatures(kf *KeyFeatures, p *Pipeline, key, event []byte, at int64) error {
	nfields, nfeatures := len(p.Source.Format.FieldNames()), len(p.Features)
	wm := t.wm.value()
	if wm != math.MinInt64 {
		kf.Watermark = time.UnixMilli(wm).UTC().Format(time.RFC3339Nano)
	}
	ev := &Event{Features: make([]float64, nfeatures)}
	for i := range ev.Features {
		ev.Features[i] = math.NaN()
	}
	rec := &kgo.Record{Topic: t.topic, Partition: t.partition, Offset: -1, Key: key, Value: event, Timestamp: time.Now()}
	if event != nil {
		err := t.dec.Decode(rec, ev)
		if rj, ok := err.(*Rejection); ok && rj.Reason == ReasonKeyMismatch {
			// The event's key field names another key than the query's: decoded as a keyless
			// record (which is not compared), the event then shows which key it names.
			rec.Key = nil
			err = t.dec.Decode(rec, ev)
			rec.Key = key
		}
		if err != nil {
			if rj, ok := err.(*Rejection); ok {
				return &EventRejectedError{Rejection: rj}
			}
			return err
		}
		if string(ev.Key) != string(key) {
			return &KeyMismatchError{Key: string(key), EventKey: string(ev.Key)}
		}
	} else {
		ev.Key, ev.Record, ev.Fields = key, rec, make([]Field, nfields)
		switch {
		case wm != math.MinInt64:
			ev.Time = wm + t.wm.maxOOO
		default:
			ev.Time = time.Now().UnixMilli()
		}
	}
	if t.tables != nil {
		if err := t.tables.lookup(t, ev); err != nil {
			rj, ok := err.(*Rejection)
			if !ok {
				return err
			}
			if event != nil {
				return &EventRejectedError{Rejection: rj}
			}
			// Without an event there is no record to reject: a row the rules refuse, or a
			// required row missing, leaves the table's fields as they are.
		}
	}
	if at != 0 {
		ev.Time = at
	}
	kf.AsOfMs = ev.Time
	kf.AsOf = time.UnixMilli(ev.Time).UTC().Format(time.RFC3339Nano)
	for i, proc := range t.procs {
		if s, ok := proc.(FeatureSource); ok {
			found, err := s.LookupFeatures(t, ev, event != nil)
			if err != nil {
				return fmt.Errorf("stream: operator %s: %w", t.ops[i].Name(), err)
			}
			kf.Found = kf.Found || found
		}
	}
	for i, name := range p.Features {
		v := json.RawMessage("null")
		if x := ev.Features[i]; !math.IsNaN(x) && !math.IsInf(x, 0) {
			v = strconv.AppendFloat(nil, x, 'g', -1, 64)
		}
		kf.Features[name] = v
	}
	for i, proc := range t.procs {
		if v, ok := proc.(FeatureView); ok {
			obj, err := v.ViewFeatures(t, ev, event != nil)
			if err != nil {
				return fmt.Errorf("stream: operator %s: %w", t.ops[i].Name(), err)
			}
			var m map[string]json.RawMessage
			if err := json.Unmarshal(obj, &m); err != nil {
				return fmt.Errorf("stream: operator %s: features: %w", t.ops[i].Name(), err)
			}
			for k, v := range m {
				kf.Features[k] = v
			}
		}
	}
	return nil
}
