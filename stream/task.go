package stream

import (
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/state"
)

// Header names streamd writes on its outputs and dead letters.
const (
	HeaderSourceTopic     = "streamd-source-topic"
	HeaderSourcePartition = "streamd-source-partition"
	HeaderSourceOffset    = "streamd-source-offset"
	HeaderReason          = "streamd-reason"         // dead letters: a Reason
	HeaderError           = "streamd-error"          // dead letters: the human-readable detail
	HeaderField           = "streamd-field"          // dead letters: the offending field, if any
	HeaderOperator        = "streamd-operator"       // dead letters: the operator that rejected, if any
	HeaderOriginalBytes   = "streamd-original-bytes" // dead letters: set when the value was truncated
	// HeaderReplayCount is set by streamd dlq replay (package dlq) on every record it re-injects: how
	// many times the record has been replayed. A dead letter keeps its record's headers, so the count
	// survives a replayed record's rejection and bounds replay loops.
	HeaderReplayCount = "streamd-replay-count"
	// HeaderReplayedFrom is set by streamd dlq replay: the dead letter the record was replayed from,
	// as topic/partition/offset.
	HeaderReplayedFrom = "streamd-replayed-from"
)

// Task owns one input partition: its decoder, its operator instances and its outputs of the current
// commit cycle. All of a task's processing happens on its own goroutine; the runtime touches the task
// only at the commit barrier, when that goroutine is idle.
type Task struct {
	topic     string
	partition int32
	log       *slog.Logger

	dec      Decoder
	ev       Event
	labelDec Decoder // nil without a labels topic
	lev      Event
	labels   string
	ops      []Operator
	procs    []Processor
	cur      *kgo.Record // the record being processed, for lineage
	// position stands in for cur when an idle partition's watermark fires windows: the source
	// position then, the last record the task processed.
	position kgo.Record
	in       chan taskWork
	// lookups are admin look-ups (/v1/state, /v1/features), served ahead of the queued batches:
	// between two records of a batch, or while the task waits for work, so that a look-up waits
	// for one record rather than for every batch queued before it.
	lookups chan func()
	done    chan struct{}
	// fatalErr is the error that stopped the task's processing, for the task's goroutine; failed
	// holds the same error for the runtime, which looks at it from the poll loop while the task runs.
	fatalErr error
	failed   atomic.Pointer[error]

	out   outbox
	cycle cycleCounts

	lag        prometheus.Gauge
	reg        prometheus.Registerer
	clientOpts []kgo.Opt
	partitions int32
	// send hands a record to the producer (the transactional session; a recorder in tests).
	send func(*kgo.Record)
	// deadLetterTopic and deadLetterMaxBytes come from the runtime's pipeline and config.
	deadLetterTopic    string
	deadLetterMaxBytes int
	// encoders are the pipeline's OutputEncoders; encoded holds the last value one wrote.
	encoders map[string]OutputEncoder
	encoded  []byte
	// eventTime are the topics whose records carry event-time timestamps (TopicSettings); the
	// others' are left unset, so that the producer stamps them with the time it takes them.
	eventTime map[string]bool

	// State: the task's Pebble database (nil for a stateless pipeline), its stores by name, and the
	// last changelog record each store produced in this cycle (its offset, known once the cycle
	// commits, is the offset the store's state then reflects).
	app           string
	db            *state.DB
	stores        map[string]*state.Store
	storeOrder    []*state.Store
	lastChangelog map[string]*kgo.Record
	changelogs    map[string]string // store → changelog topic
	lateTopic     string

	// tables are the pipeline's tables as this task reads them (tables.go); nil without any.
	tables *taskTables

	wm watermark
	// next is the offset after the last record (or transaction marker) the task has seen; lso the
	// partition's last stable offset reported with it. Both feed idleness.
	next, lso  int64
	lastRecord time.Time
	pub        published

	times                        cycleTimes
	arrivalLatency, eventLatency latencyCounts
}

// taskWork is one message to a task's goroutine: a batch of records, a barrier (flush the cycle's
// changelog, then acknowledge), a settle (the cycle committed or aborted), or a watermark advance
// because the partition is idle. Admin look-ups have a queue of their own (Task.lookups).
type taskWork struct {
	recs    []*kgo.Record
	lso     int64 // with recs: the partition's last stable offset in the fetch that brought them
	barrier *sync.WaitGroup
	settle  *settleWork
	idle    *idleWork
}

type settleWork struct {
	committed bool
	wg        *sync.WaitGroup
}

type idleWork struct {
	watermark int64
	wg        *sync.WaitGroup
}

// cycleCounts are the task's counts in the open commit cycle; they reach the metrics only when the
// cycle commits, so the metrics count each record once even when a cycle is aborted and replayed.
type cycleCounts struct {
	consumed    int
	labels      int // label records consumed
	changelog   int
	deadLetters map[Reason]int
	late        map[string]int // by operator
	produced    map[string]int
	// tableMisses are the events that found no row, by table (Pipeline.Tables order).
	tableMisses []int
	// recentDead are the cycle's dead letters for Runtime.RecentDeadLetters, at most
	// RecentDeadLetters of them.
	recentDead []DeadLetterInfo
}

func (c *cycleCounts) reset() {
	c.consumed = 0
	c.labels = 0
	c.changelog = 0
	clear(c.deadLetters)
	clear(c.produced)
	clear(c.late)
	clear(c.tableMisses)
	clear(c.recentDead) // drop the copies' references before reuse
	c.recentDead = c.recentDead[:0]
}

// Topic returns the task's source topic.
func (t *Task) Topic() string { return t.topic }

// Partition returns the task's source partition.
func (t *Task) Partition() int32 { return t.partition }

// Partitions returns the source topic's partition count.
func (t *Task) Partitions() int32 { return max(t.partitions, 1) }

// ClientOpts returns franz-go options that connect to the pipeline's brokers (seed brokers, TLS,
// SASL), for operators that read a topic of their own on the side.
func (t *Task) ClientOpts() []kgo.Opt { return t.clientOpts }

// App returns the pipeline's name.
func (t *Task) App() string { return t.app }

// Registerer returns the registry the runtime's metrics go to, for operators' own collectors.
func (t *Task) Registerer() prometheus.Registerer { return t.reg }

// Logger returns the task's logger, which carries the topic and partition.
func (t *Task) Logger() *slog.Logger { return t.log }

// Emit produces a record to topic in the current transaction, with the current event's lineage and
// eventTime (HeaderEventTime) in its headers. Its timestamp is the time it is produced, or
// eventTime when the topic's TopicSettings ask for event time. Emit copies key and value: the
// caller may reuse them. It may be called only from Process.
func (t *Task) Emit(topic string, key, value []byte, eventTime int64) {
	value, ok := t.encode(topic, value)
	if !ok {
		return
	}
	r := t.out.record()
	r.Topic = topic
	r.Key = t.out.copy(key)
	r.Value = t.out.copy(value)
	t.stamp(r, eventTime)
	r.Headers = t.out.stamped(t.cur, t.tableHeaders(), eventTime, 0)
	t.produce(r)
}

// stamp sets r's timestamp: eventTime on a topic that asks for event time, else nothing, and the
// producer stamps r with the time it takes it (processing time).
func (t *Task) stamp(r *kgo.Record, eventTime int64) {
	if t.eventTime[r.Topic] {
		r.Timestamp = millisTime(eventTime)
	}
}

// stampRejected sets the timestamp of a dead letter or late record r of rec: rec's own on a topic
// that asks for event time, else processing time with rec's in HeaderSourceTimestamp, which it
// appends to h.
func (t *Task) stampRejected(r, rec *kgo.Record, h []kgo.RecordHeader) []kgo.RecordHeader {
	if t.eventTime[r.Topic] {
		r.Timestamp = rec.Timestamp
		return h
	}
	var num [20]byte
	return append(h, kgo.RecordHeader{Key: HeaderSourceTimestamp, Value: t.out.copy(appendMillis(num[:0], rec.Timestamp.UnixMilli()))})
}

// encode returns value in topic's wire format. An encoder that fails has met a value streamd wrote
// that its own schema does not describe, a bug: the task stops (its cycle aborts) rather than
// publish a record its consumers cannot read.
func (t *Task) encode(topic string, value []byte) ([]byte, bool) {
	enc := t.encoders[topic]
	if enc == nil {
		return value, true
	}
	b, err := enc.Encode(t.encoded[:0], value)
	t.encoded = b
	if err != nil {
		t.fail(fmt.Errorf("stream: encoding a record for %s: %w", topic, err))
		return nil, false
	}
	return b, true
}

func (t *Task) produce(r *kgo.Record) {
	t.cycle.produced[r.Topic]++
	t.send(r)
}

// deadLetter produces rec to the dead-letter topic with the rejection in its headers. The dead
// letter keeps rec's key, value, timestamp (as its own, or in HeaderSourceTimestamp: stampRejected)
// and headers (after the lineage headers, before the
// rejection's), so that streamd dlq replay can re-inject the record as it was.
func (t *Task) deadLetter(rec *kgo.Record, rj *Rejection, operator string) {
	r := t.out.record()
	r.Topic = t.deadLetterTopic
	r.Key = rec.Key
	r.Value = rec.Value
	h := t.out.lineage(rec)
	h = append(h, rec.Headers...)
	h = append(h, kgo.RecordHeader{Key: HeaderReason, Value: t.out.copyString(string(rj.Reason))})
	h = append(h, kgo.RecordHeader{Key: HeaderError, Value: t.out.copyString(rj.Detail)})
	if rj.Field != "" {
		h = append(h, kgo.RecordHeader{Key: HeaderField, Value: t.out.copyString(rj.Field)})
	}
	if operator != "" {
		h = append(h, kgo.RecordHeader{Key: HeaderOperator, Value: t.out.copyString(operator)})
	}
	if max := t.deadLetterMaxBytes; len(r.Value) > max {
		h = append(h, kgo.RecordHeader{Key: HeaderOriginalBytes, Value: strconv.AppendInt(nil, int64(len(r.Value)), 10)})
		r.Value = r.Value[:max]
	}
	r.Headers = t.stampRejected(r, rec, h)
	t.cycle.deadLetters[rj.Reason]++
	t.cycle.noteDeadLetter(rec, rj, operator)
	t.produce(r)
}

func (t *Task) run() {
	defer close(t.done)
	for {
		var w taskWork
		select {
		case f := <-t.lookups:
			f()
			continue
		case work, ok := <-t.in:
			if !ok {
				// Revoked: the runtime queued its last look-up before closing the input.
				t.serveLookups()
				return
			}
			w = work
		}
		switch {
		case w.barrier != nil:
			if t.fatalErr == nil {
				t.flushChangelogs()
			}
			t.pub.cycleBytes.Store(t.cycleBytes())
			w.barrier.Done()
		case w.settle != nil:
			if err := t.settleState(w.settle.committed); err != nil {
				t.fail(err)
			}
			w.settle.wg.Done()
		case w.idle != nil:
			if t.fatalErr == nil {
				if err := t.advanceIdle(w.idle.watermark); err != nil {
					t.fail(err)
				}
			}
			w.idle.wg.Done()
		case t.fatalErr != nil:
			// The cycle will abort; drop the rest of it.
		default:
			t.lastRecord = time.Now()
			t.lso = w.lso
			t.times.arrivals = append(t.times.arrivals, arrival{at: t.lastRecord, n: len(w.recs)})
			for _, rec := range w.recs {
				if len(t.lookups) > 0 {
					t.serveLookups()
				}
				if err := t.process(rec); err != nil {
					t.fail(err)
					break
				}
			}
			t.pub.cycleBytes.Store(t.cycleBytes())
		}
	}
}

// fail stops the task's processing with err, unless an earlier error did. It runs on the task's
// goroutine.
func (t *Task) fail(err error) {
	if t.fatalErr == nil {
		t.fatalErr = err
		t.failed.Store(&err)
	}
}

func (t *Task) process(rec *kgo.Record) error {
	if rec.Attrs.IsControl() {
		if rec.Topic != t.labels {
			t.next = rec.Offset + 1
		}
		return nil // a transaction marker: it only moves the position
	}
	if t.labelDec != nil && rec.Topic == t.labels {
		t.cycle.labels++
		return t.processLabel(rec)
	}
	t.cycle.consumed++
	t.next = rec.Offset + 1
	ev := &t.ev
	if err := t.dec.Decode(rec, ev); err != nil {
		rj, ok := err.(*Rejection)
		if !ok {
			return fmt.Errorf("stream: decode %s/%d@%d: %w", rec.Topic, rec.Partition, rec.Offset, err)
		}
		t.deadLetter(rec, rj, "")
		return nil
	}
	t.cur = rec
	defer func() { t.cur = nil }()
	for i := range ev.Features {
		ev.Features[i] = math.NaN()
	}
	for i, p := range t.procs {
		if t.tables != nil && i == t.tables.at {
			// After dedup, so that a duplicate is dropped whatever its row says now.
			if err := t.tables.enrich(t, ev); err != nil {
				if rj, ok := err.(*Rejection); ok {
					t.deadLetter(rec, rj, "")
					return nil
				}
				return err
			}
		}
		if err := p.Process(t, ev); err != nil {
			if err == ErrDrop {
				return nil // the operator counted it; later operators and the watermark never see it
			}
			if rj, ok := AsRejection(err); ok {
				t.deadLetter(rec, rj, t.ops[i].Name())
				return nil
			}
			return fmt.Errorf("stream: operator %s at %s/%d@%d: %w", t.ops[i].Name(), rec.Topic, rec.Partition, rec.Offset, err)
		}
	}
	t.times.eventTimes = append(t.times.eventTimes, ev.Time)
	// The event's own time moves the watermark only after every operator has seen the event: an
	// operator judges lateness against the watermark of the events before.
	if t.wm.observe(ev.Time) {
		return t.onWatermark()
	}
	return nil
}

// processLabel decodes a label record and hands it to the processors that learn.
func (t *Task) processLabel(rec *kgo.Record) error {
	lev := &t.lev
	if err := t.labelDec.Decode(rec, lev); err != nil {
		rj, ok := err.(*Rejection)
		if !ok {
			return fmt.Errorf("stream: decode label %s/%d@%d: %w", rec.Topic, rec.Partition, rec.Offset, err)
		}
		t.deadLetter(rec, rj, "")
		return nil
	}
	t.cur = rec
	defer func() { t.cur = nil }()
	for i, p := range t.procs {
		l, ok := p.(LabelListener)
		if !ok {
			continue
		}
		if err := l.OnLabel(t, lev); err != nil {
			if rj, ok := AsRejection(err); ok {
				t.deadLetter(rec, rj, t.ops[i].Name())
				return nil
			}
			return fmt.Errorf("stream: operator %s on label %s/%d@%d: %w", t.ops[i].Name(), rec.Topic, rec.Partition, rec.Offset, err)
		}
	}
	return nil
}

// serveLookups runs the look-ups queued so far. Between two records the task's state is that of
// the records before, as after a batch: a look-up sees what the next record would.
func (t *Task) serveLookups() {
	for {
		select {
		case f := <-t.lookups:
			f()
		default:
			return
		}
	}
}

// close stops the task's goroutine, closes its processors and its state. The task must be idle
// (between cycles).
func (t *Task) close() error {
	close(t.in)
	<-t.done
	return t.release()
}

func millisTime(ms int64) time.Time { return time.UnixMilli(ms) }
