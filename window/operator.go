package window

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"

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
	fields []int // agg input i reads event field fields[i]
	size   int64 // ms
	adv    int64
	gap    int64
	res    int64
	late   int64
	// Pre-encoded JSON: `{"window":"<name>","key":` and `"<agg name>":` for each aggregation.
	head     []byte
	aggNames [][]byte
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
		spec: spec, layout: layout, fields: fields,
		size: spec.Size.Milliseconds(), adv: spec.Advance.Milliseconds(), gap: spec.Gap.Milliseconds(),
		res: spec.Resolution.Milliseconds(), late: spec.AllowedLateness.Milliseconds(),
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
	st, err := t.Store(o.spec.Name)
	if err != nil {
		return nil, err
	}
	p := &processor{
		op:      o,
		store:   st,
		acc:     o.layout.NewAcc(),
		tmp:     o.layout.NewAcc(),
		in:      make([]agg.Input, len(o.fields)),
		filters: map[int64]*endFilter{},
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
	// Bloom filters of the keys of each open window end (tumbling, hopping), authoritative for ends
	// after filterFrom: see endFilter.
	filters    map[int64]*endFilter
	filterFrom int64
	// open counts the windows held (tumbling, hopping), sessions (session) or keys with panes
	// (sliding); it is kept in the store so that it survives restarts and aborts.
	open int64
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

// item is one session (start, last event time) or one pane (start, unused) with its encoded state.
type item struct {
	start, last int64
	state       []byte
}

// Rewind implements stream.Rewinder: it finds the earliest timer in the store, and forgets the key
// filters: after an aborted cycle the store may again hold windows whose filters were dropped when
// they fired, so only window ends newer than everything stored can have authoritative filters.
func (p *processor) Rewind(*stream.Task) error {
	if p.op.spec.Kind == Tumbling || p.op.spec.Kind == Hopping {
		clear(p.filters)
		p.filterFrom = math.MinInt64
		it, err := p.store.NewIter([]byte{prefixWindow}, []byte{prefixWindow + 1})
		if err != nil {
			return err
		}
		if it.Last(); it.Valid() && len(it.Key()) >= 9 {
			p.filterFrom = getTime(it.Key()[1:9])
		}
		if err := it.Close(); err != nil {
			return err
		}
	}
	p.open = 0
	if v, ok, err := p.store.Get(openKey); err != nil {
		return err
	} else if ok && len(v) == 8 {
		p.open = int64(binary.BigEndian.Uint64(v))
	}
	p.nextFire = math.MaxInt64
	prefix := byte(prefixTimer)
	if p.op.spec.Kind == Tumbling || p.op.spec.Kind == Hopping {
		prefix = prefixWindow
	}
	it, err := p.store.NewIter([]byte{prefix}, []byte{prefix + 1})
	if err != nil {
		return err
	}
	if it.Valid() && len(it.Key()) >= 9 {
		p.nextFire = p.fireTime(prefix, it.Key())
	}
	return it.Close()
}

func (p *processor) fireTime(prefix byte, key []byte) int64 {
	t := getTime(key[1:9])
	if prefix == prefixWindow {
		return t + p.op.late // key holds the window end
	}
	return t // timer keys hold the fire time
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
	wm := t.Watermark()
	var used bool
	var err error
	switch p.op.spec.Kind {
	case Tumbling, Hopping:
		used, err = p.processFixed(t, ev, wm)
	case Session:
		used, err = p.processSession(t, ev, wm)
	case Sliding:
		used, err = p.processSliding(t, ev, wm)
	}
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
	if p.op.spec.Kind == Tumbling || p.op.spec.Kind == Hopping {
		return p.fireFixed(t, wm)
	}
	return p.fireTimers(t, wm)
}

// --- tumbling and hopping ---

func (p *processor) processFixed(t *stream.Task, ev *stream.Event, wm int64) (bool, error) {
	o := p.op
	adv := o.adv
	if o.spec.Kind == Tumbling {
		adv = o.size
	}
	used := false
	hash := keyHash(ev.Key)
	// The windows holding ev.Time start at multiples of adv in (ev.Time-size, ev.Time].
	last := floorDiv(ev.Time, adv) * adv
	for start := last; start > ev.Time-o.size; start -= adv {
		end := start + o.size
		if end+o.late <= wm {
			continue // closed
		}
		used = true
		p.keyBuf = append(putTime(append(p.keyBuf[:0], prefixWindow), end), ev.Key...)
		var v []byte
		var ok bool
		f := p.filter(end)
		if f == nil || f.mayContain(hash) {
			var err error
			if v, ok, err = p.store.Get(p.keyBuf); err != nil {
				return false, err
			}
		}
		if !ok && f != nil {
			f.add(hash)
		}
		if ok {
			if err := p.acc.Decode(v); err != nil {
				return false, fmt.Errorf("%w: %v", errCorrupt, err)
			}
		} else {
			p.acc.Reset()
			p.nextFire = min(p.nextFire, end+o.late)
			p.addOpen(1)
		}
		p.acc.Add(p.in)
		p.valBuf = p.acc.AppendEncoded(p.valBuf[:0])
		p.store.Set(p.keyBuf, p.valBuf)
		if o.spec.Emit == EmitUpdate {
			p.emit(t, ev.Key, start, end, p.acc, "update")
		}
	}
	return used, nil
}

// filter returns the key filter of a window end, nil when the end is not one a filter can know.
func (p *processor) filter(end int64) *endFilter {
	if end <= p.filterFrom {
		return nil
	}
	f := p.filters[end]
	if f == nil {
		f = newEndFilter()
		p.filters[end] = f
	}
	return f
}

func (p *processor) fireFixed(t *stream.Task, wm int64) error {
	o := p.op
	it, err := p.store.NewIter([]byte{prefixWindow}, []byte{prefixWindow + 1})
	if err != nil {
		return err
	}
	p.nextFire = math.MaxInt64
	for ; it.Valid(); it.Next() {
		k := it.Key()
		if len(k) < 9 {
			continue
		}
		end := getTime(k[1:9])
		if end+o.late > wm {
			p.nextFire = end + o.late
			break
		}
		if o.spec.Emit == EmitFinal {
			if err := p.acc.Decode(it.Value()); err != nil {
				it.Close()
				return fmt.Errorf("%w: %v", errCorrupt, err)
			}
			p.emit(t, k[9:], end-o.size, end, p.acc, "final")
		}
		p.store.Delete(k)
		p.addOpen(-1)
	}
	for end := range p.filters {
		if end+o.late <= wm {
			delete(p.filters, end)
		}
	}
	return it.Close()
}

// --- sessions ---

// A key's open sessions are one value: count, then per session start, last event time, state.
func (p *processor) decodeList(v []byte) error {
	p.list = p.list[:0]
	n, k := binary.Uvarint(v)
	if k <= 0 {
		return errCorrupt
	}
	v = v[k:]
	for range n {
		if len(v) < 16 {
			return errCorrupt
		}
		it := item{start: getTime(v), last: getTime(v[8:])}
		v = v[16:]
		l, k := binary.Uvarint(v)
		if k <= 0 || uint64(len(v)-k) < l {
			return errCorrupt
		}
		it.state = v[k : k+int(l)]
		v = v[k+int(l):]
		p.list = append(p.list, it)
	}
	return nil
}

// loadList reads a key's session or pane list into p.list (empty when the key has none), leaving
// the key (prefix + key) in p.keyBuf for the write that usually follows. The items alias the
// store's value: valid until the next store read.
func (p *processor) loadList(prefix byte, key []byte) (bool, error) {
	p.keyBuf = append(append(p.keyBuf[:0], prefix), key...)
	p.list = p.list[:0]
	v, ok, err := p.store.Get(p.keyBuf)
	if err != nil || !ok {
		return false, err
	}
	return true, p.decodeList(v)
}

func (p *processor) encodeList(dst []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(p.list)))
	for _, it := range p.list {
		dst = putTime(putTime(dst, it.start), it.last)
		dst = binary.AppendUvarint(dst, uint64(len(it.state)))
		dst = append(dst, it.state...)
	}
	return dst
}

// scratch returns a reusable buffer for the i-th item's re-encoded state: list items alias the
// store's value, which the next store write invalidates, so new states are built here.
func (p *processor) scratch(i int) []byte {
	for len(p.spare) <= i {
		p.spare = append(p.spare, nil)
	}
	return p.spare[i][:0]
}

func (p *processor) timerKey(fire, start int64, key []byte) []byte {
	p.key2 = append(putTime(putTime(append(p.key2[:0], prefixTimer), fire), start), key...)
	return p.key2
}

func (p *processor) processSession(t *stream.Task, ev *stream.Event, wm int64) (bool, error) {
	o := p.op
	if _, err := p.loadList(prefixSession, ev.Key); err != nil {
		return false, err
	}
	// The event's own session is [ts, ts+gap); it merges with every session it overlaps.
	start, last := ev.Time, ev.Time
	p.acc.Reset()
	p.acc.Add(p.in)
	keep := p.list[:0]
	dropped := p.dropped[:0]
	for _, s := range p.list {
		if s.start < ev.Time+o.gap && ev.Time < s.last+o.gap {
			dropped = append(dropped, s)
			continue
		}
		keep = append(keep, s)
	}
	p.dropped = dropped
	for _, s := range dropped {
		start, last = min(start, s.start), max(last, s.last)
	}
	if last+o.gap+o.late <= wm {
		return false, nil // the merged session has closed already: late
	}
	for _, s := range dropped {
		if err := p.tmp.Decode(s.state); err != nil {
			return false, fmt.Errorf("%w: %v", errCorrupt, err)
		}
		p.acc.Merge(p.tmp)
		p.store.Delete(p.timerKey(s.last+o.gap+o.late, s.start, ev.Key))
	}
	p.addOpen(1 - int64(len(dropped)))
	newState := p.acc.AppendEncoded(p.scratch(0))
	p.spare[0] = newState
	// Rebuild the list: sessions kept (their states still alias v, which is intact until the Set
	// below copies everything), plus the merged one, in start order.
	p.list = append(keep, item{start: start, last: last, state: newState})
	sortItems(p.list)
	p.valBuf = p.encodeList(p.valBuf[:0])
	p.keyBuf = append(append(p.keyBuf[:0], prefixSession), ev.Key...)
	p.store.Set(p.keyBuf, p.valBuf)
	fire := last + o.gap + o.late
	p.store.Set(p.timerKey(fire, start, ev.Key), nil)
	p.nextFire = min(p.nextFire, fire)
	if o.spec.Emit == EmitUpdate {
		p.emit(t, ev.Key, start, last+o.gap, p.acc, "update")
	}
	return true, nil
}

func sortItems(list []item) {
	for i := 1; i < len(list); i++ {
		for j := i; j > 0 && list[j].start < list[j-1].start; j-- {
			list[j], list[j-1] = list[j-1], list[j]
		}
	}
}

// fireTimers handles due timers of sessions (emit and remove the session) and sliding panes
// (remove a key whose panes have all expired).
func (p *processor) fireTimers(t *stream.Task, wm int64) error {
	o := p.op
	it, err := p.store.NewIter([]byte{prefixTimer}, []byte{prefixTimer + 1})
	if err != nil {
		return err
	}
	p.nextFire = math.MaxInt64
	var timerKeys [][]byte
	for ; it.Valid(); it.Next() {
		k := it.Key()
		if len(k) < 17 {
			continue
		}
		fire := getTime(k[1:9])
		if fire > wm {
			p.nextFire = fire
			break
		}
		timerKeys = append(timerKeys, bytes.Clone(k))
	}
	if err := it.Close(); err != nil {
		return err
	}
	for _, k := range timerKeys {
		start, key := getTime(k[9:17]), k[17:]
		p.store.Delete(k)
		if o.spec.Kind == Session {
			if err := p.closeSession(t, key, start); err != nil {
				return err
			}
		} else {
			p.keyBuf = append(append(p.keyBuf[:0], prefixPanes), key...)
			p.store.Delete(p.keyBuf)
			p.addOpen(-1)
		}
	}
	return nil
}

func (p *processor) closeSession(t *stream.Task, key []byte, start int64) error {
	o := p.op
	if ok, err := p.loadList(prefixSession, key); err != nil || !ok {
		return err
	}
	keep := p.list[:0]
	for _, s := range p.list {
		if s.start == start {
			if o.spec.Emit == EmitFinal {
				if err := p.acc.Decode(s.state); err != nil {
					return fmt.Errorf("%w: %v", errCorrupt, err)
				}
				p.emit(t, key, s.start, s.last+o.gap, p.acc, "final")
			}
			p.addOpen(-1)
			continue
		}
		keep = append(keep, s)
	}
	p.list = keep
	p.keyBuf = append(append(p.keyBuf[:0], prefixSession), key...)
	if len(p.list) == 0 {
		p.store.Delete(p.keyBuf)
		return nil
	}
	p.valBuf = p.encodeList(p.valBuf[:0])
	p.store.Set(p.keyBuf, p.valBuf)
	return nil
}

// --- sliding ---

// A key's panes are one value, in the session list format: start = pane start, last unused.
func (p *processor) processSliding(t *stream.Task, ev *stream.Event, wm int64) (bool, error) {
	o := p.op
	if ev.Time+1+o.late <= wm {
		return false, nil // the event's own window (…, ts] has closed
	}
	pane := floorDiv(ev.Time, o.res) * o.res
	if _, err := p.loadList(prefixPanes, ev.Key); err != nil {
		return false, err
	}
	oldLast := int64(math.MinInt64)
	if len(p.list) > 0 {
		oldLast = p.list[len(p.list)-1].start
	}
	// Panes that no on-time event can need any more: older than wm - lateness - size.
	keep := p.list[:0]
	found := -1
	for _, it := range p.list {
		if it.start+o.res <= wm-o.late-o.size {
			continue
		}
		if it.start == pane {
			found = len(keep)
		}
		keep = append(keep, it)
	}
	p.list = keep
	if found >= 0 {
		if err := p.acc.Decode(p.list[found].state); err != nil {
			return false, fmt.Errorf("%w: %v", errCorrupt, err)
		}
	} else {
		p.acc.Reset()
	}
	p.acc.Add(p.in)
	buf := p.acc.AppendEncoded(p.scratch(0))
	p.spare[0] = buf
	if found >= 0 {
		p.list[found].state = buf
	} else {
		p.list = append(p.list, item{start: pane, state: buf})
		sortItems(p.list)
	}
	// The result as of the event: panes [pane-size+res, pane].
	p.tmp.Reset()
	for _, it := range p.list {
		if it.start > pane-o.size && it.start <= pane {
			if err := p.acc.Decode(it.state); err != nil {
				return false, fmt.Errorf("%w: %v", errCorrupt, err)
			}
			p.tmp.Merge(p.acc)
		}
	}
	for i, slot := range o.spec.FeatureSlots {
		if slot >= 0 && slot < len(ev.Features) {
			if v, ok := p.tmp.Result(i); ok {
				ev.Features[slot] = v
			}
		}
	}
	p.valBuf = p.encodeList(p.valBuf[:0])
	p.store.Set(p.keyBuf, p.valBuf)
	// One cleanup timer per key, at the time its newest pane stops mattering.
	newLast := p.list[len(p.list)-1].start
	if newLast != oldLast {
		if oldLast != math.MinInt64 {
			p.store.Delete(p.timerKey(p.expiry(oldLast), 0, ev.Key))
		} else {
			p.addOpen(1)
		}
		p.store.Set(p.timerKey(p.expiry(newLast), 0, ev.Key), nil)
		p.nextFire = min(p.nextFire, p.expiry(newLast))
	}
	p.emit(t, ev.Key, pane-o.size+o.res, pane+o.res, p.tmp, "update")
	return true, nil
}

// expiry is the watermark at which a key whose newest pane starts at last has nothing left that an
// on-time event could need.
func (p *processor) expiry(last int64) int64 { return last + p.op.res + p.op.late + p.op.size }

// --- results ---

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
	for i := range o.spec.Aggs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, o.aggNames[i]...)
		if v, ok := acc.Result(i); ok && !math.IsNaN(v) && !math.IsInf(v, 0) {
			b = strconv.AppendFloat(b, v, 'g', -1, 64)
		} else {
			b = append(b, "null"...)
		}
	}
	b = append(b, "}}"...)
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
