package model

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"

	"github.com/streamd/streamd/internal/jsonscan"
	"github.com/streamd/streamd/online"
	"github.com/streamd/streamd/stream"
)

// Training rows (Spec.Training): once per labelled event, the row the models saw, for training the
// next offline model:
//
//	{"event_id":"…","key":"…","event_time":1709294400000,"label":1,"label_time":1709294460000,
//	 "source":{"topic":"tx","partition":0,"offset":42},"champion":"ftrl",
//	 "models":[{"name":"ftrl","version":3,"score":0.91,"class":1},…],
//	 "features":{…},"overflow":[…]}
//
// The features are not computed again: they are the bytes of the event's prediction from
// `"features":` to the end of its overflow list (processor.features marks them while the
// prediction is written), so that a row and its prediction cannot disagree, whatever a prediction
// carries. A label that comes with its event, or came before it (early), gives its row at once,
// from the prediction just written. A label that comes after its event (the labels topic) finds
// its prediction pending: with Training set, the pending value carries what the row needs (the
// trailer below), written when the prediction was. Rows are emitted in the cycle's transaction, so
// a row is committed exactly when the learning step it records is.
//
// A pending prediction written before Training was set has no trailer: its label learns as
// usual, and its row, which cannot show what was served, is counted as unavailable
// (streamd_training_rows_total{result="unavailable"}) instead of written.

// servedModel is what one model predicted for an event.
type servedModel struct {
	score   float64
	class   int
	version int64
}

// versionOf is model i's version now: an offline model's file version, else the replicas'.
func (p *processor) versionOf(i int) int64 {
	if off, ok := p.m.learners[i].(*offlineLearner); ok {
		return off.version
	}
	return p.m.version
}

// serve notes, after predict, what every model predicted, for the event's training row.
func (p *processor) serve() {
	p.served = p.served[:0]
	for i := range p.scores {
		p.served = append(p.served, servedModel{score: p.scores[i], class: p.classes[i], version: p.versionOf(i)})
	}
}

// encodeTraining appends the pending prediction's trailer: the event's time and offset, the
// champion then, every model's score, class and version, and the prediction's features bytes.
func encodeTraining(dst []byte, eventTime, offset int64, champion int, served []servedModel, features []byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(eventTime))
	dst = binary.AppendVarint(dst, offset)
	dst = binary.AppendUvarint(dst, uint64(champion))
	for _, s := range served {
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(s.score))
		dst = binary.AppendVarint(dst, int64(s.class))
		dst = binary.AppendVarint(dst, s.version)
	}
	dst = binary.AppendUvarint(dst, uint64(len(features)))
	return append(dst, features...)
}

// decodeTraining reads a trailer written by encodeTraining for n models into served (reused); the
// features returned point into b.
func decodeTraining(b []byte, n int, served []servedModel) (eventTime, offset int64, champion int, _ []servedModel, features []byte, err error) {
	if len(b) < 8 {
		return 0, 0, 0, nil, nil, errCorrupt
	}
	eventTime = int64(binary.BigEndian.Uint64(b))
	b = b[8:]
	var k int
	if offset, k = binary.Varint(b); k <= 0 {
		return 0, 0, 0, nil, nil, errCorrupt
	}
	b = b[k:]
	c, k := binary.Uvarint(b)
	if k <= 0 || c >= uint64(n) {
		return 0, 0, 0, nil, nil, errCorrupt
	}
	champion = int(c)
	b = b[k:]
	served = served[:0]
	for range n {
		if len(b) < 8 {
			return 0, 0, 0, nil, nil, errCorrupt
		}
		s := servedModel{score: math.Float64frombits(binary.LittleEndian.Uint64(b))}
		b = b[8:]
		c, k := binary.Varint(b)
		if k <= 0 {
			return 0, 0, 0, nil, nil, errCorrupt
		}
		b = b[k:]
		if s.version, k = binary.Varint(b); k <= 0 {
			return 0, 0, 0, nil, nil, errCorrupt
		}
		b = b[k:]
		s.class = int(c)
		served = append(served, s)
	}
	l, k := binary.Uvarint(b)
	if k <= 0 || uint64(len(b)-k) != l {
		return 0, 0, 0, nil, nil, errCorrupt
	}
	return eventTime, offset, champion, served, b[k:], nil
}

// trainingRow is one row's facts besides the models' predictions and the features.
type trainingRow struct {
	eventID, key         []byte
	eventTime, labelTime int64
	partition            int32
	offset               int64
	label                float64
	sourceTopic          string
	champion             int // the model whose prediction was published
}

// emitTraining writes the row of a labelled event to the training topic.
func (p *processor) emitTraining(t *stream.Task, r *trainingRow, served []servedModel, features []byte) {
	o := p.op
	b := append(p.trainBuf[:0], `{"event_id":`...)
	b = jsonscan.AppendString(b, r.eventID)
	b = append(b, `,"key":`...)
	b = jsonscan.AppendString(b, r.key)
	b = append(b, `,"event_time":`...)
	b = strconv.AppendInt(b, r.eventTime, 10)
	b = append(b, `,"label":`...)
	if tk := p.m.learners[r.champion].Task(); tk == online.Binary || tk == online.Multiclass {
		b = p.appendLabel(b, int(r.label))
	} else {
		b = appendFloat(b, r.label)
	}
	b = append(b, `,"label_time":`...)
	b = strconv.AppendInt(b, r.labelTime, 10)
	b = append(b, `,"source":{"topic":`...)
	b = jsonscan.AppendString(b, []byte(r.sourceTopic))
	b = append(b, `,"partition":`...)
	b = strconv.AppendInt(b, int64(r.partition), 10)
	b = append(b, `,"offset":`...)
	b = strconv.AppendInt(b, r.offset, 10)
	b = append(b, `},"champion":`...)
	b = append(b, o.reg.nameJSON[r.champion]...)
	b = append(b, `,"models":[`...)
	for i, s := range served {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = append(b, o.reg.nameJSON[i]...)
		b = append(b, `,"version":`...)
		b = strconv.AppendInt(b, s.version, 10)
		b = append(b, `,"score":`...)
		b = appendFloat(b, s.score)
		b = append(b, `,"class":`...)
		b = strconv.AppendInt(b, int64(s.class), 10)
		b = append(b, '}')
	}
	b = append(b, "],"...)
	b = append(b, features...)
	b = append(b, '}')
	p.trainBuf = b
	t.Emit(o.spec.Training, r.key, b, r.eventTime)
	p.counts.trainingRows++
}

// trainNow writes the row of event ev, labelled y at labelTime, from the prediction just emitted.
func (p *processor) trainNow(t *stream.Task, ev *stream.Event, y float64, labelTime int64) {
	if p.op.spec.Training == "" {
		return
	}
	r := trainingRow{eventID: ev.ID, key: ev.Key, eventTime: ev.Time, labelTime: labelTime, label: y,
		sourceTopic: ev.Record.Topic, partition: ev.Record.Partition, offset: ev.Record.Offset, champion: p.m.champion}
	p.emitTraining(t, &r, p.served, p.out[p.features[0]:p.features[1]])
}

// trainPending writes the row of the pending prediction whose trailer is rest, for label lev.
func (p *processor) trainPending(t *stream.Task, lev *stream.Event, y float64, rest []byte) error {
	if len(rest) == 0 {
		p.counts.trainingUnavailable++
		return nil
	}
	et, off, champion, served, features, err := decodeTraining(rest, len(p.op.spec.Models), p.served2)
	if err != nil {
		return fmt.Errorf("%w: training trailer of a pending prediction", err)
	}
	p.served2 = served
	r := trainingRow{eventID: lev.ID, key: lev.Key, eventTime: et, labelTime: lev.Time, label: y,
		sourceTopic: t.Topic(), partition: t.Partition(), offset: off, champion: champion}
	p.emitTraining(t, &r, served, features)
	return nil
}
