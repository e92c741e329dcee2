package gen

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// DefaultPartitions is the partition count of topics Run creates.
const DefaultPartitions = 4

// DefaultFlushTimeout bounds how long Run keeps delivering buffered records once ctx is done.
const DefaultFlushTimeout = 30 * time.Second

// RunConfig configures Run.
type RunConfig struct {
	Topic       string // transactions topic, required
	LabelsTopic string // "" = labels are not produced (they are still drained, and dropped)

	Rate  float64 // transaction records per second; 0 = as fast as the client takes them
	Count int64   // transaction records to produce; 0 = until ctx is done

	CreateTopics bool  // create missing topics first (EnsureTopics)
	Partitions   int32 // partitions of created topics, default 4

	// FlushLabels: at the end, produce the labels that are not due yet too.
	FlushLabels bool
	// AwaitLabels: once Count records are produced, go on producing their labels as they come due
	// (a label delay later) until none is pending or ctx is done, so that a bounded run delivers
	// every label. Needs a clock that advances.
	AwaitLabels bool

	// Clock is the generator's event-time clock, also used as the record timestamps; default
	// time.Now. Pacing (Rate) always uses the wall clock. Run calls it from one goroutine.
	Clock func() time.Time

	// Encoding, when set, writes the valid transactions in Avro or Protobuf (Confluent's wire
	// format) instead of JSON; the deliberately broken records stay as they are, and so are
	// not in the wire format either.
	Encoding *Encoding

	// FlushTimeout: once ctx is done, records already handed to the client get this long to be
	// delivered before they are cancelled. Default 30s.
	FlushTimeout time.Duration
}

// Validate reports every bad field of rc.
func (rc RunConfig) Validate() error {
	var errs []error
	bad := func(field string, value any, rule string) {
		errs = append(errs, fmt.Errorf("gen: RunConfig.%s = %v: %s", field, value, rule))
	}
	if rc.Topic == "" {
		bad("Topic", `""`, "a transactions topic is required")
	}
	if rc.LabelsTopic != "" && rc.LabelsTopic == rc.Topic {
		bad("LabelsTopic", rc.LabelsTopic, "must differ from Topic")
	}
	if !(rc.Rate >= 0) || math.IsInf(rc.Rate, 0) {
		bad("Rate", rc.Rate, "must be finite and >= 0 (0 = as fast as possible)")
	}
	if rc.Count < 0 {
		bad("Count", rc.Count, "must be >= 0 (0 = until the context is done)")
	}
	if rc.Partitions < 0 {
		bad("Partitions", rc.Partitions, fmt.Sprintf("must be >= 0 (0 = default %d)", DefaultPartitions))
	}
	if rc.FlushTimeout < 0 {
		bad("FlushTimeout", rc.FlushTimeout, fmt.Sprintf("must be >= 0 (0 = default %v)", DefaultFlushTimeout))
	}
	return errors.Join(errs...)
}

// Stats counts what Run delivered. Records, Bad, Fraud and Labels count acknowledged records; Errors
// counts records that failed.
type Stats struct {
	Records atomic.Int64 // transaction records, valid and bad
	Bad     atomic.Int64 // of Records, deliberately broken
	Fraud   atomic.Int64 // of Records, valid and fraud by the ground truth
	Labels  atomic.Int64 // label records
	Errors  atomic.Int64 // records of either topic that failed to produce
}

// StatsSnapshot is a copy of Stats.
type StatsSnapshot struct {
	Records, Bad, Fraud, Labels, Errors int64
}

// Snapshot reads the counters (each atomically, not all at one instant).
func (s *Stats) Snapshot() StatsSnapshot {
	return StatsSnapshot{
		Records: s.Records.Load(),
		Bad:     s.Bad.Load(),
		Fraud:   s.Fraud.Load(),
		Labels:  s.Labels.Load(),
		Errors:  s.Errors.Load(),
	}
}

const (
	tick         = 10 * time.Millisecond // pacing period
	fastBatch    = 512                   // records between label checks at Rate 0
	maxPooledBuf = 16 << 10              // larger buffers (Huge records) are not recycled
)

// runner holds Run's state shared with the produce promises.
type runner struct {
	st   *Stats
	enc  *Encoding
	pool sync.Pool // *kgo.Record, with the buffer its Key and Value were cut from

	mu       sync.Mutex
	firstErr error
	failed   atomic.Bool

	// One promise per kind of record, made once so producing does not allocate closures.
	txValid, txFraud, txBad, label func(*kgo.Record, error)
}

// Run produces records from g to rc.Topic (keyed by card id, MissingKey records unkeyed, timestamped
// with the clock's now) and, after each batch, the labels due by then to rc.LabelsTopic (keyed by card
// id), until rc.Count records are produced or ctx is done, then waits until everything produced is
// acknowledged. With a Rate it produces smoothly, in small batches every 10 ms, never sleeping per
// record; at Rate 0 Produce's back-pressure paces it. It returns the first produce error (generation
// stops at the first one); the end of ctx is not an error: records already handed to the client are
// still delivered, for up to rc.FlushTimeout. With rc.FlushLabels, labels not yet due are produced at
// the end too (unless a produce failed).
//
// Run uses g from the calling goroutine only; g must not be used concurrently. st may be nil.
func Run(ctx context.Context, cl *kgo.Client, g *Generator, rc RunConfig, st *Stats) error {
	if cl == nil || g == nil {
		return errors.New("gen: Run needs a client and a generator")
	}
	if err := rc.Validate(); err != nil {
		return err
	}
	if rc.Partitions == 0 {
		rc.Partitions = DefaultPartitions
	}
	if rc.FlushTimeout == 0 {
		rc.FlushTimeout = DefaultFlushTimeout
	}
	clock := rc.Clock
	if clock == nil {
		clock = time.Now
	}
	if st == nil {
		st = new(Stats)
	}
	if rc.CreateTopics {
		topics := []string{rc.Topic}
		if rc.LabelsTopic != "" {
			topics = append(topics, rc.LabelsTopic)
		}
		if err := EnsureTopics(ctx, cl, rc.Partitions, topics...); err != nil {
			return err
		}
	}

	r := &runner{st: st, enc: rc.Encoding}
	r.txValid = func(rec *kgo.Record, err error) { r.done(rec, err, &st.Records, nil) }
	r.txFraud = func(rec *kgo.Record, err error) { r.done(rec, err, &st.Records, &st.Fraud) }
	r.txBad = func(rec *kgo.Record, err error) { r.done(rec, err, &st.Records, &st.Bad) }
	r.label = func(rec *kgo.Record, err error) { r.done(rec, err, &st.Labels, nil) }

	// Records outlive ctx: cancelling ctx stops generation, not delivery, until FlushTimeout later.
	pctx, pcancel := context.WithCancel(context.WithoutCancel(ctx))
	var grace atomic.Pointer[time.Timer]
	stopGrace := context.AfterFunc(ctx, func() { grace.Store(time.AfterFunc(rc.FlushTimeout, pcancel)) })
	defer func() {
		stopGrace()
		if t := grace.Load(); t != nil {
			t.Stop()
		}
		pcancel()
	}()

	var (
		labels  []Label
		sent    int64
		tokens  float64
		ticker  *time.Ticker
		last    = time.Now()
		burstOK = max(1, rc.Rate/10) // at most 100 ms worth of records at once after a stall
	)
	if rc.Rate > 0 {
		ticker = time.NewTicker(tick)
		defer ticker.Stop()
	}
loop:
	for ctx.Err() == nil && !r.failed.Load() && (rc.Count == 0 || sent < rc.Count) {
		n := int64(fastBatch)
		if ticker != nil {
			select {
			case <-ctx.Done():
				break loop
			case <-ticker.C:
			}
			now := time.Now()
			tokens = min(tokens+rc.Rate*now.Sub(last).Seconds(), burstOK)
			last = now
			n = int64(tokens)
			tokens -= float64(n)
		}
		if rc.Count > 0 {
			n = min(n, rc.Count-sent)
		}
		for i := int64(0); i < n && !r.failed.Load(); i++ {
			r.produceTx(pctx, cl, g, clock(), rc.Topic)
			sent++
		}
		labels = g.DueLabels(labels[:0], clock())
		r.produceLabels(pctx, cl, labels, rc.LabelsTopic, clock)
	}
	if rc.AwaitLabels && rc.LabelsTopic != "" && rc.Count > 0 && sent == rc.Count {
		wait := time.NewTicker(tick)
		for g.PendingLabels() > 0 && !r.failed.Load() && ctx.Err() == nil {
			select {
			case <-ctx.Done():
			case <-wait.C:
			}
			labels = g.DueLabels(labels[:0], clock())
			r.produceLabels(pctx, cl, labels, rc.LabelsTopic, clock)
		}
		wait.Stop()
	}
	if rc.FlushLabels && !r.failed.Load() {
		labels = g.DrainLabels(labels[:0])
		r.produceLabels(pctx, cl, labels, rc.LabelsTopic, clock)
	}
	if err := cl.Flush(pctx); err != nil {
		r.fail(fmt.Errorf("gen: flush: gave up %v after the context ended: %w", rc.FlushTimeout, err))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.firstErr
}

func (r *runner) produceTx(ctx context.Context, cl *kgo.Client, g *Generator, now time.Time, topic string) {
	rec := r.record()
	gr, buf, k := g.next(rec.Key[:0], now)
	rec.Topic, rec.Timestamp = topic, now
	if k > 0 {
		rec.Key = buf[:k]
	} else {
		rec.Key = nil
	}
	rec.Value = buf[k:] // with no key, Value starts the buffer: done recovers it from there
	if r.enc != nil && gr.Bad == NotBad {
		// After the JSON in the same buffer (recycled whole): the value is the tail.
		rec.Value = r.enc.Append(buf[len(buf):], gr.Tx)
	}
	promise := r.txValid
	switch {
	case gr.Bad != NotBad:
		promise = r.txBad
	case gr.Tx.Fraud:
		promise = r.txFraud
	}
	cl.Produce(ctx, rec, promise)
}

func (r *runner) produceLabels(ctx context.Context, cl *kgo.Client, labels []Label, topic string, clock func() time.Time) {
	if topic == "" || len(labels) == 0 {
		return
	}
	now := clock()
	for _, l := range labels {
		rec := r.record()
		buf := append(rec.Key[:0], l.CardID...)
		k := len(buf)
		buf = AppendLabelJSON(buf, l)
		rec.Topic, rec.Timestamp = topic, now
		rec.Key, rec.Value = buf[:k], buf[k:]
		cl.Produce(ctx, rec, r.label)
	}
}

// record returns a zeroed record whose Key is an empty slice of a recyclable buffer (or nil).
func (r *runner) record() *kgo.Record {
	if v := r.pool.Get(); v != nil {
		return v.(*kgo.Record)
	}
	return new(kgo.Record)
}

// done is the body of the promises: count, remember the first error, recycle the record. franz-go
// keeps no reference to a record once its promise has run.
func (r *runner) done(rec *kgo.Record, err error, ok, also *atomic.Int64) {
	if err != nil {
		r.st.Errors.Add(1)
		r.fail(fmt.Errorf("gen: produce to %s: %w", rec.Topic, err))
	} else {
		ok.Add(1)
		if also != nil {
			also.Add(1)
		}
	}
	// The buffer starts at Key when there is a key, else at Value.
	buf := rec.Value[:0]
	if rec.Key != nil {
		buf = rec.Key[:0]
	}
	if cap(buf) > maxPooledBuf {
		buf = nil
	}
	*rec = kgo.Record{Key: buf}
	r.pool.Put(rec)
}

func (r *runner) fail(err error) {
	r.mu.Lock()
	if r.firstErr == nil {
		r.firstErr = err
	}
	r.mu.Unlock()
	r.failed.Store(true)
}

// EnsureTopics creates those of topics that do not exist, with the given partition count (<= 0: the
// broker's default) and the broker's default replication factor. Existing topics are left alone; a
// topic created concurrently by someone else is not an error.
func EnsureTopics(ctx context.Context, cl *kgo.Client, partitions int32, topics ...string) error {
	if len(topics) == 0 {
		return nil
	}
	if partitions <= 0 {
		partitions = -1
	}
	adm := kadm.NewClient(cl) // not closed: that would close cl
	details, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		return fmt.Errorf("gen: list topics: %w", err)
	}
	var missing []string
	var errs []error
	for _, t := range topics {
		d, ok := details[t]
		switch {
		case !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition):
			missing = append(missing, t)
		case d.Err != nil:
			errs = append(errs, fmt.Errorf("gen: describe topic %s: %w", t, d.Err))
		}
	}
	if len(missing) > 0 {
		resp, err := adm.CreateTopics(ctx, partitions, -1, nil, missing...)
		if err != nil {
			return fmt.Errorf("gen: create topics %v: %w", missing, err)
		}
		for _, t := range missing {
			c, ok := resp[t]
			switch {
			case !ok:
				errs = append(errs, fmt.Errorf("gen: create topic %s: no answer from the broker", t))
			case c.Err != nil && !errors.Is(c.Err, kerr.TopicAlreadyExists):
				msg := ""
				if c.ErrMessage != "" {
					msg = " (" + c.ErrMessage + ")"
				}
				errs = append(errs, fmt.Errorf("gen: create topic %s with %d partitions: %w%s", t, partitions, c.Err, msg))
			}
		}
	}
	return errors.Join(errs...)
}
