package window

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamd/streamd/internal/jsonscan"
	"github.com/streamd/streamd/state"
	"github.com/streamd/streamd/stream"
	"github.com/streamd/streamd/window/agg"
)

// Operator is a keyed event-time window operator: a stream.Operator whose state (open windows and
// their timers) lives in a state store named after it.
type Operator struct {
	spec   Spec
	layout *agg.Layout
	fields []int    // agg input i reads event field fields[i]
	asg    assigner // the kind's work: see kind.go
	// Pre-encoded JSON: `{"window":"<name>","key":` and `"<agg name>":` for each aggregation.
	head     []byte
	aggNames [][]byte

	metricOnce sync.Once
	metricErr  error
	overflows  prometheus.Counter // nil without a registry (overflow.go)
}

// New builds a window operator over events of format.
func New(spec Spec, format stream.Format) (*Operator, error) {
	fields, specs, err := spec.validate(format)
	if err != nil {
		return nil, err
	}
	layout, err := agg.NewLayout(specs, len(fields))
	if err != nil {
		return nil, fmt.Errorf("window %q: %w", spec.Name, err)
	}
	o := &Operator{
		spec: spec, layout: layout, fields: fields, asg: lookupKind(spec.Kind).newAssigner(&spec),
	}
	o.head = jsonscan.AppendString([]byte(`{"window":`), []byte(spec.Name))
	o.head = append(o.head, `,"key":`...)
	for _, a := range spec.Aggs {
		o.aggNames = append(o.aggNames, append(jsonscan.AppendString(nil, []byte(a.Name)), ':'))
	}
	return o, nil
}

// Name implements stream.Operator.
func (o *Operator) Name() string { return o.spec.Name }

// ReportsLate implements stream.LateReporter: the operator routes late records (Task.Late), so the
// runtime's late-record counter for it exists from the start.
func (o *Operator) ReportsLate() {}

// Stores implements stream.Stateful.
func (o *Operator) Stores() []string { return []string{o.spec.Name} }

// OutputTopics implements stream.OutputTopics.
func (o *Operator) OutputTopics() []string {
	if o.spec.Output == "" {
		return nil
	}
	return []string{o.spec.Output}
}

// Spec returns the operator's spec (with defaults filled in).
func (o *Operator) Spec() Spec { return o.spec }

// Open implements stream.Operator.
func (o *Operator) Open(t *stream.Task) (stream.Processor, error) {
	if err := o.overflowMetric(t); err != nil {
		return nil, err
	}
	st, err := t.Store(o.spec.Name)
	if err != nil {
		return nil, err
	}
	p := &processor{
		op:    o,
		store: st,
		acc:   o.layout.NewAcc(),
		tmp:   o.layout.NewAcc(),
		in:    make([]agg.Input, len(o.fields)),
	}
	if err := p.Rewind(t); err != nil {
		return nil, err
	}
	return p, nil
}

// Key prefixes inside the operator's store. Timestamps are encoded so that byte order is time order.
const (
	prefixWindow  = 'w' // tumbling/hopping: 'w' | end | key → aggregate
	prefixTimer   = 'x' // session/sliding:  'x' | fire time | start | key → empty
	prefixSession = 's' // session: 's' | key → the key's open sessions
	prefixPanes   = 'p' // sliding: 'p' | key → the key's recent panes
)

func putTime(dst []byte, ts int64) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(ts)^(1<<63))
}

func getTime(b []byte) int64 { return int64(binary.BigEndian.Uint64(b) ^ (1 << 63)) }

var errCorrupt = errors.New("window: corrupt state value")

type processor struct {
	op       *Operator
	store    *state.Store
	acc, tmp *agg.Acc
	in       []agg.Input
	keyBuf   []byte
	key2     []byte
	valBuf   []byte
	outBuf   []byte
	list     []item // decoded sessions or panes of one key
	dropped  []item
	spare    [][]byte
	nextFire int64
	// timersFrom is where the next timer scan starts: every timer before it has fired and been
	// deleted (math.MinInt64: not known, scan the whole range). See fireTimers.
	timersFrom int64
	timerLower []byte
	// Bloom filters of the keys of each open window end (tumbling, hopping), authoritative for ends
	// after filterFrom: see endFilters.
	filters    endFilters
	filterFrom int64
	// open counts the windows held (tumbling, hopping), sessions (session) or keys with panes
	// (sliding); it is kept in the store so that it survives restarts and aborts.
	open int64
	// overflowed counts the cycle's results and features that were not finite (overflow.go).
	overflowed int64
}

// openKey holds the open count; 'm' sorts apart from every other prefix.
var openKey = []byte("mopen")

func (p *processor) addOpen(d int64) {
	p.open += d
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(p.open))
	p.store.Set(openKey, b[:])
}

// OpenWindows implements stream.OpenWindowCounter.
func (p *processor) OpenWindows() int64 { return p.open }

// Rewind implements stream.Rewinder: it reloads the open count and lets the kind's assigner find
// its earliest timer and reset what it keeps in memory (after an aborted cycle, or at open).
func (p *processor) Rewind(*stream.Task) error {
	p.open, p.overflowed = 0, 0
	if v, ok, err := p.store.Get(openKey); err != nil {
		return err
	} else if ok && len(v) == 8 {
		p.open = int64(binary.BigEndian.Uint64(v))
	}
	return p.op.asg.rewind(p)
}

// firstTimer sets nextFire from the first key under prefix, whose bytes 1..9 hold a time: the fire
// time itself (timers) or a window end that fires offset later.
func (p *processor) firstTimer(prefix byte, offset int64) error {
	p.nextFire = math.MaxInt64
	p.timersFrom = math.MinInt64 // after an abort or at open: nothing is known of the store's timers
	it, err := p.store.NewIter([]byte{prefix}, []byte{prefix + 1})
	if err != nil {
		return err
	}
	if it.Valid() && len(it.Key()) >= 9 {
		p.nextFire = getTime(it.Key()[1:9]) + offset
	}
	return it.Close()
}

// Close implements stream.Processor.
func (p *processor) Close() error { return nil }

func (p *processor) inputs(ev *stream.Event) {
	for i, fi := range p.op.fields {
		f := &ev.Fields[fi]
		switch f.Kind {
		case stream.Number:
			p.in[i] = agg.Input{Kind: agg.Number, Num: f.Num}
		case stream.String:
			p.in[i] = agg.Input{Kind: agg.String, Str: f.Str}
		default:
			p.in[i] = agg.Input{}
		}
	}
}

// Process implements stream.Processor.
func (p *processor) Process(t *stream.Task, ev *stream.Event) error {
	p.inputs(ev)
	used, err := p.op.asg.process(p, t, ev, t.Watermark())
	if err != nil {
		return err
	}
	if !used {
		t.Late(ev, p.op.spec.Name)
	}
	return nil
}

// OnWatermark implements stream.WatermarkListener.
func (p *processor) OnWatermark(t *stream.Task, wm int64) error {
	if wm < p.nextFire {
		return nil
	}
	return p.op.asg.fire(p, t, wm)
}

// emit produces a window result to the output topic. The JSON schema is documented in docs/config.md
// (window results).
func (p *processor) emit(t *stream.Task, key []byte, start, end int64, acc *agg.Acc, kind string) {
	o := p.op
	if o.spec.Output == "" {
		return
	}
	b := append(p.outBuf[:0], o.head...)
	b = jsonscan.AppendString(b, key)
	b = append(b, `,"start":`...)
	b = strconv.AppendInt(b, start, 10)
	b = append(b, `,"end":`...)
	b = strconv.AppendInt(b, end, 10)
	b = append(b, `,"emit":"`...)
	b = append(b, kind...)
	b = append(b, `","count":`...)
	b = strconv.AppendInt(b, acc.Count(), 10)
	b = append(b, `,"aggs":{`...)
	over := 0
	for i := range o.spec.Aggs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, o.aggNames[i]...)
		v, ok := acc.Result(i)
		switch {
		case ok && finite(v):
			b = strconv.AppendFloat(b, v, 'g', -1, 64)
		case ok:
			over++
			b = append(b, "null"...)
		default:
			b = append(b, "null"...)
		}
	}
	b = append(b, '}')
	if over > 0 {
		// The aggregates that have a value but overflowed, by name (overflow.go).
		p.overflowed++
		b = append(b, `,"overflow":[`...)
		first := true
		for i := range o.spec.Aggs {
			if v, ok := acc.Result(i); ok && !finite(v) {
				if !first {
					b = append(b, ',')
				}
				first = false
				name := o.aggNames[i]
				b = append(b, name[:len(name)-1]...) // without its ':'
			}
		}
		b = append(b, ']')
	}
	b = append(b, '}')
	p.outBuf = b
	t.EmitRecord(o.spec.Output, key, b, end-1)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}
