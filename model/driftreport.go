package model

import (
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/streamd/streamd/internal/jsonscan"
	"github.com/streamd/streamd/stream"
)

// Drift reports.
//
// A detection is rare, and each is reported three ways when its example is learned live: a log
// line (model, partition, the record that completed the example by topic, partition and offset,
// its event time, the detector's statistics) and a second one saying what the action did; the
// per-model counter streamd_drift_detections_total; and, with DriftSpec.Topic, a JSON record
// (below) produced in the transaction of the cycle that learned the example, so that it is
// published exactly once: an aborted cycle takes it back with the rest and its replay produces it
// again. The log lines are not transactional: a cycle that aborts after a detection logs it again
// when it is replayed. A restore that replays the learning log reports nothing, since every
// example it replays was reported when it was first learned.
//
// The drift event, keyed by the model's name, timestamped with the record's event time:
//
//	{"model":"fraud_ftrl","partition":2,"detector":"adwin","signal":"error","direction":"up",
//	 "source":{"topic":"labels","partition":2,"offset":8812},"event_id":"9f1c","event_time":1764105513123,
//	 "examples":48213,"value":1,"statistics":{"window":2048,"window_mean":0.031,
//	 "before":{"values":1536,"mean":0.018},"after":{"values":512,"mean":0.07}},
//	 "action":"promote_best_challenger","champion":"fraud_tree","version":3,
//	 "result":"promoted fraud_tree: rolling loss 0.081 < 0.112 of fraud_ftrl"}

// reportDrift reports det, caused by the example that ev completed, the seq-th learned.
func (p *processor) reportDrift(t *stream.Task, ev *stream.Event, seq int64, det *detection) {
	o := p.op
	d := &o.spec.Drift
	model := o.spec.Models[det.model].Name
	result := p.driftResult(det)
	stats := p.m.drift.appendStats(p.driftBuf[:0])
	p.driftBuf = stats
	if log := t.Logger(); log != nil {
		rec := ev.Record
		attrs := []any{
			// The task's logger carries the partition (and the source topic).
			slog.String("model", model),
			slog.String("source_topic", rec.Topic), slog.Int("source_partition", int(rec.Partition)), slog.Int64("source_offset", rec.Offset),
			slog.String("event_id", string(ev.ID)), slog.String("event_time", time.UnixMilli(ev.Time).UTC().Format(time.RFC3339Nano)),
			slog.Int64("examples", seq+1), slog.String("detector", d.Detector), slog.String("signal", d.Signal),
			slog.String("direction", d.Direction), slog.Float64("value", det.value), slog.String("statistics", "{"+string(stats)+"}"),
		}
		log.Warn("model: drift detected", attrs...)
		log.Warn("model: drift action "+d.Action+": "+result, slog.String("model", model),
			slog.String("champion", o.spec.Models[det.after].Name), slog.Int64("source_offset", rec.Offset))
	}
	if d.Topic == "" {
		return
	}
	b := p.driftOut[:0]
	b = append(b, `{"model":`...)
	b = append(b, o.reg.nameJSON[det.model]...)
	b = append(b, `,"partition":`...)
	b = strconv.AppendInt(b, int64(p.partition), 10)
	b = append(b, `,"detector":`...)
	b = jsonscan.AppendString(b, []byte(d.Detector))
	b = append(b, `,"signal":`...)
	b = jsonscan.AppendString(b, []byte(d.Signal))
	b = append(b, `,"direction":`...)
	b = jsonscan.AppendString(b, []byte(d.Direction))
	b = append(b, `,"source":{"topic":`...)
	b = jsonscan.AppendString(b, []byte(ev.Record.Topic))
	b = append(b, `,"partition":`...)
	b = strconv.AppendInt(b, int64(ev.Record.Partition), 10)
	b = append(b, `,"offset":`...)
	b = strconv.AppendInt(b, ev.Record.Offset, 10)
	b = append(b, `},"event_id":`...)
	b = jsonscan.AppendString(b, ev.ID)
	b = append(b, `,"event_time":`...)
	b = strconv.AppendInt(b, ev.Time, 10)
	b = append(b, `,"examples":`...)
	b = strconv.AppendInt(b, seq+1, 10)
	b = append(b, `,"value":`...)
	b = appendFloat(b, det.value)
	b = append(b, `,"statistics":{`...)
	b = append(b, stats...)
	b = append(b, `},"action":`...)
	b = jsonscan.AppendString(b, []byte(d.Action))
	b = append(b, `,"champion":`...)
	b = append(b, o.reg.nameJSON[det.after]...)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, p.m.version, 10)
	b = append(b, `,"result":`...)
	b = jsonscan.AppendString(b, []byte(result))
	b = append(b, '}')
	p.driftOut = b
	t.EmitRecord(d.Topic, []byte(model), b, ev.Time)
}

// driftResult says in words what the action did.
func (p *processor) driftResult(det *detection) string {
	o := p.op
	name := func(i int) string { return o.spec.Models[i].Name }
	switch o.spec.Drift.Action {
	case "reset":
		return fmt.Sprintf("%s forgot the %d examples it had learned and relearns from now (cold until %d)", name(det.model), det.forgot, o.minExamples[det.model])
	case "promote_best_challenger":
		if det.after != det.model {
			return fmt.Sprintf("promoted %s: rolling loss %.4g < %.4g of %s", name(det.after), det.lossAfter, det.lossBefore, name(det.model))
		}
		return fmt.Sprintf("kept %s: no challenger has a lower rolling loss than its %.4g", name(det.model), det.lossBefore)
	}
	return fmt.Sprintf("nothing changed: %s keeps serving (alert only)", name(det.model))
}
