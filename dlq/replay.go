package dlq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/internal/topicread"
	"github.com/streamd/streamd/stream"
)

// Selection chooses which dead letters a replay re-injects.
type Selection struct {
	// Reasons keeps the dead letters whose streamd-reason is one of these; empty keeps every reason.
	Reasons []string
	// From and To keep the dead letters whose rejected record's own timestamp (which the dead
	// letter keeps in stream.HeaderSourceTimestamp, or as its own timestamp) is in [From, To); a
	// zero bound is open.
	From, To time.Time
}

// Options configure a Replay. App, Brokers and DeadLetterTopic are required.
type Options struct {
	App             string
	Brokers         []string
	DeadLetterTopic string
	// ClientOpts are extra franz-go options (TLS, SASL), as the pipeline's.
	ClientOpts []kgo.Opt
	Selection
	// Target, if set, receives every replayed record (partitioned by key); by default each record
	// goes back to the topic and partition its lineage headers name.
	Target string
	// DryRun reads and selects, and reports what a replay would do, without producing anything.
	DryRun bool
	// MaxReplays: a dead letter whose record has already been replayed this many times is not
	// replayed again. Default 3.
	MaxReplays int
	// BatchRecords is the number of replayed records per transaction. Default 500.
	BatchRecords int
	// Rate bounds the replay in records per second, so that a large replay does not swamp the
	// pipeline; 0 is unbounded.
	Rate float64
	// TransactionTimeout is the producer's transaction timeout: how long the broker keeps a killed
	// run's transaction open before aborting it (a rerun aborts it at once). Default 15s.
	TransactionTimeout time.Duration
	// ReplicationFactor of the ledger topic when Replay creates it; 0 takes the broker's default.
	ReplicationFactor int16
	// Logger receives progress; nil discards it.
	Logger *slog.Logger
}

// Defaults of Options.
const (
	DefaultMaxReplays         = 3
	DefaultBatchRecords       = 500
	DefaultTransactionTimeout = 15 * time.Second
)

// EnsureDefaults fills the unset fields with their defaults.
func (o *Options) EnsureDefaults() {
	if o.MaxReplays == 0 {
		o.MaxReplays = DefaultMaxReplays
	}
	if o.BatchRecords == 0 {
		o.BatchRecords = DefaultBatchRecords
	}
	if o.TransactionTimeout == 0 {
		o.TransactionTimeout = DefaultTransactionTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports every bad field.
func (o *Options) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("dlq: "+format, args...)) }
	if o.App == "" {
		bad("no app name")
	}
	if len(o.Brokers) == 0 {
		bad("no brokers")
	}
	if o.DeadLetterTopic == "" {
		bad("no dead-letter topic")
	}
	if o.Target != "" && o.Target == o.DeadLetterTopic {
		bad("the target %q is the dead-letter topic itself", o.Target)
	}
	if !o.From.IsZero() && !o.To.IsZero() && !o.From.Before(o.To) {
		bad("from %s is not before to %s", o.From.Format(time.RFC3339), o.To.Format(time.RFC3339))
	}
	if o.MaxReplays < 1 {
		bad("max replays %d is under 1", o.MaxReplays)
	}
	if o.BatchRecords < 1 || o.BatchRecords > 100000 {
		bad("batch %d records: use 1 to 100000", o.BatchRecords)
	}
	if o.Rate < 0 {
		bad("rate %g/s is negative", o.Rate)
	}
	if o.TransactionTimeout < time.Second {
		bad("transaction timeout %s is under 1s", o.TransactionTimeout)
	}
	return errors.Join(errs...)
}

// LedgerTopic is the replay ledger of app: which dead letters have been replayed.
func LedgerTopic(app string) string { return app + "-dlq-replayed" }

// TransactionalID is the transactional id of app's replays; one per app, so that a run fences the
// runs before it.
func TransactionalID(app string) string { return app + "-dlq-replay" }

// Summary is what a replay did (or, dry, would do).
type Summary struct {
	Scanned  int            // dead letters read
	Replayed int            // re-injected (dry run: would be)
	Filtered int            // left out by the Selection
	Already  int            // replayed by an earlier run (in the ledger)
	TooOften int            // replayed MaxReplays times already
	Unusable int            // truncated, or without lineage to say where they came from
	ByReason map[string]int // replayed, by reason
	ByTarget map[string]int // replayed, by target topic
	// Transactions committed (none in a dry run).
	Transactions int
	DryRun       bool
}

// String is the one-line summary streamd dlq replay prints.
func (s Summary) String() string {
	verb := "replayed"
	if s.DryRun {
		verb = "would replay"
	}
	b := &strings.Builder{}
	fmt.Fprintf(b, "%s %d of %d dead letters", verb, s.Replayed, s.Scanned)
	if len(s.ByReason) > 0 {
		b.WriteString(" (")
		for i, r := range sortedKeys(s.ByReason) {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(b, "%s %d", r, s.ByReason[r])
		}
		b.WriteString(")")
	}
	if len(s.ByTarget) > 0 {
		b.WriteString(" into ")
		b.WriteString(strings.Join(sortedKeys(s.ByTarget), ", "))
	}
	fmt.Fprintf(b, "; skipped %d by filter, %d already replayed, %d replayed too often, %d unusable (truncated or no lineage)",
		s.Filtered, s.Already, s.TooOften, s.Unusable)
	if !s.DryRun {
		fmt.Fprintf(b, "; %d transactions", s.Transactions)
	}
	return b.String()
}

func sortedKeys(m map[string]int) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// ledgerEntry is the value of a ledger record (its key is the dead letter's position).
type ledgerEntry struct {
	Reason     string `json:"reason"`
	Target     string `json:"target"` // topic/partition
	ReplayedAt string `json:"replayed_at"`
	Count      int    `json:"replay_count"`
}

// Replay re-injects the selected dead letters exactly once (see the package doc) and returns what it
// did. On error, the summary counts what was committed before it.
func Replay(ctx context.Context, o Options) (Summary, error) {
	o.EnsureDefaults()
	sum := Summary{ByReason: map[string]int{}, ByTarget: map[string]int{}, DryRun: o.DryRun}
	if err := o.Validate(); err != nil {
		return sum, err
	}
	// Clipped: each client appends its own options to base.
	base := slices.Clip(append([]kgo.Opt{kgo.SeedBrokers(o.Brokers...), kgo.ClientID("streamd-dlq-replay")}, o.ClientOpts...))
	admCl, err := kgo.NewClient(base...)
	if err != nil {
		return sum, fmt.Errorf("dlq: kafka client: %w", err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	ledger := LedgerTopic(o.App)

	// The producer first: its initialization fences earlier runs and aborts their open
	// transaction, so the ledger read next holds every replay that will ever be committed before
	// this run's.
	var prod *kgo.Client
	created := false
	if !o.DryRun {
		if created, err = ensureLedger(ctx, adm, ledger, o.ReplicationFactor); err != nil {
			return sum, err
		}
		prod, err = kgo.NewClient(append(base,
			kgo.TransactionalID(TransactionalID(o.App)),
			kgo.TransactionTimeout(o.TransactionTimeout),
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.ProducerLinger(0),
		)...)
		if err != nil {
			return sum, fmt.Errorf("dlq: kafka producer: %w", err)
		}
		defer prod.Close()
		if _, _, err := prod.ProducerID(ctx); err != nil {
			return sum, fmt.Errorf("dlq: initializing the transactional producer %s: %w", TransactionalID(o.App), err)
		}
	}
	done, err := readLedger(ctx, base, ledger, created || o.DryRun)
	if err != nil {
		return sum, err
	}
	o.Logger.Info("replay ledger read", "topic", ledger, "replayed_before", len(done))

	partCounts := map[string]int{} // target topic → partition count, for key partitioning
	partitionsOf := func(topic string) (int, error) {
		if n, ok := partCounts[topic]; ok {
			return n, nil
		}
		td, err := adm.ListTopics(ctx, topic)
		if err != nil {
			return 0, err
		}
		d, ok := td[topic]
		if !ok || d.Err != nil {
			return 0, fmt.Errorf("dlq: target topic %s does not exist", topic)
		}
		partCounts[topic] = len(d.Partitions)
		return len(d.Partitions), nil
	}

	b := &batch{prod: prod, sum: &sum, log: o.Logger}
	start := time.Now()
	readErr := readTopic(ctx, base, adm, o.DeadLetterTopic, func(dl *kgo.Record) {
		if b.err != nil {
			return
		}
		sum.Scanned++
		pos := position(dl)
		parts := splitDeadLetter(dl)
		reason := parts.rejection[stream.HeaderReason]
		switch {
		case !o.selects(parts.sourceTimestamp(dl), reason):
			sum.Filtered++
			return
		case done[pos]:
			sum.Already++
			return
		}
		count := parts.replayCount()
		if count >= o.MaxReplays {
			sum.TooOften++
			return
		}
		rec, ok := replayed(dl, &parts, pos, count+1)
		if !ok {
			sum.Unusable++
			return
		}
		if o.Target != "" {
			n, err := partitionsOf(o.Target)
			if err != nil {
				b.err = err
				return
			}
			rec.Topic = o.Target
			rec.Partition = int32(kgo.StickyKeyPartitioner(nil).ForTopic(o.Target).Partition(rec, n))
		}
		entry, _ := json.Marshal(ledgerEntry{Reason: reason, Target: fmt.Sprintf("%s/%d", rec.Topic, rec.Partition),
			ReplayedAt: time.Now().UTC().Format(time.RFC3339Nano), Count: count + 1})
		b.add(ctx, rec, &kgo.Record{Topic: ledger, Partition: 0, Key: []byte(pos), Value: entry}, reason)
		if b.err == nil && len(b.recs) >= o.BatchRecords {
			b.commit(ctx)
		}
		if o.Rate > 0 {
			n := sum.Replayed + len(b.recs)
			if ahead := time.Duration(float64(n)/o.Rate*float64(time.Second)) - time.Since(start); ahead > 0 {
				// A slow rate must not keep a transaction open until the broker aborts it:
				// commit what the batch holds before a wait that would take it past a third of
				// the transaction timeout.
				if b.err == nil && len(b.recs) > 0 && time.Since(b.began)+ahead > o.TransactionTimeout/3 {
					b.commit(ctx)
				}
				select {
				case <-ctx.Done():
				case <-time.After(ahead):
				}
			}
		}
	})
	if b.err == nil && readErr == nil {
		b.commit(ctx)
	}
	if prod != nil && (b.err != nil || readErr != nil) && len(b.recs) > 0 {
		// Stopped midway (a signal, a failure): abort the open transaction now rather than leave
		// it to the broker's timeout or the next run's fencing.
		actx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = prod.AbortBufferedRecords(actx)
		_ = prod.EndTransaction(actx, kgo.TryAbort)
		cancel()
	}
	if b.err != nil {
		return sum, b.err
	}
	if readErr != nil {
		if errors.Is(readErr, errNoTopic) {
			return sum, fmt.Errorf("dlq: dead-letter topic %s does not exist", o.DeadLetterTopic)
		}
		return sum, fmt.Errorf("dlq: reading %s: %w", o.DeadLetterTopic, readErr)
	}
	return sum, nil
}

func (o *Options) selects(ts time.Time, reason string) bool {
	if len(o.Reasons) > 0 && !slices.Contains(o.Reasons, reason) {
		return false
	}
	if !o.From.IsZero() && ts.Before(o.From) {
		return false
	}
	if !o.To.IsZero() && !ts.Before(o.To) {
		return false
	}
	return true
}

// batch is the open transaction: the replayed records and their ledger entries.
type batch struct {
	prod    *kgo.Client // nil: a dry run
	recs    []*kgo.Record
	reasons []string
	sum     *Summary
	log     *slog.Logger
	began   time.Time // when the open transaction began
	err     error
	// failed is the first produce error of the open transaction, set from the producer's
	// goroutines; read after Flush.
	mu     sync.Mutex
	failed error
}

func (b *batch) produced(_ *kgo.Record, err error) {
	if err != nil {
		b.mu.Lock()
		b.failed = cmpOr(b.failed, err)
		b.mu.Unlock()
	}
}

func (b *batch) add(ctx context.Context, rec, entry *kgo.Record, reason string) {
	if b.prod != nil {
		if len(b.recs) == 0 {
			if err := b.prod.BeginTransaction(); err != nil {
				b.err = fmt.Errorf("dlq: begin transaction: %w", err)
				return
			}
			b.began = time.Now()
		}
		b.prod.Produce(ctx, rec, b.produced)
		b.prod.Produce(ctx, entry, b.produced)
	}
	b.recs = append(b.recs, rec)
	b.reasons = append(b.reasons, reason)
}

// commit commits the open transaction and counts its records as replayed.
func (b *batch) commit(ctx context.Context) {
	if len(b.recs) == 0 || b.err != nil {
		return
	}
	if b.prod != nil {
		flushErr := b.prod.Flush(ctx)
		b.mu.Lock()
		flushErr, b.failed = cmpOr(flushErr, b.failed), nil
		b.mu.Unlock()
		commit := kgo.TryCommit
		if flushErr != nil {
			commit = kgo.TryAbort
		}
		if err := b.prod.EndTransaction(ctx, commit); err != nil || flushErr != nil {
			b.err = fmt.Errorf("dlq: committing %d replayed records: %w", len(b.recs), cmpOr(flushErr, err))
			return
		}
	}
	for i, rec := range b.recs {
		b.sum.Replayed++
		b.sum.ByReason[b.reasons[i]]++
		b.sum.ByTarget[rec.Topic]++
	}
	if b.prod != nil {
		b.sum.Transactions++
		b.log.Info("replayed records committed", "records", len(b.recs), "total", b.sum.Replayed)
	}
	b.recs, b.reasons = b.recs[:0], b.reasons[:0]
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// lineageHeaders lead a dead letter's headers, rejectionHeaders end them; the record's own headers
// are in between (stream.Task.deadLetter). A record may carry headers of these names itself (one
// read from another streamd pipeline's output carries its lineage), so a dead letter is split by
// position, not by name.
var (
	lineageHeaders   = []string{stream.HeaderSourceTopic, stream.HeaderSourcePartition, stream.HeaderSourceOffset}
	rejectionHeaders = []string{stream.HeaderReason, stream.HeaderError, stream.HeaderField, stream.HeaderOperator, stream.HeaderOriginalBytes, stream.HeaderSourceTimestamp}
)

// deadLetterParts are a dead letter's headers, split.
type deadLetterParts struct {
	lineage, rejection map[string]string
	own                []kgo.RecordHeader // the record's own headers
}

func splitDeadLetter(dl *kgo.Record) deadLetterParts {
	h := dl.Headers
	d := deadLetterParts{lineage: map[string]string{}, rejection: map[string]string{}}
	i := 0
	for ; i < len(h) && i < len(lineageHeaders) && h[i].Key == lineageHeaders[i]; i++ {
		d.lineage[h[i].Key] = string(h[i].Value)
	}
	j := len(h)
	for j > i && slices.Contains(rejectionHeaders, h[j-1].Key) {
		j--
		if _, seen := d.rejection[h[j].Key]; !seen {
			d.rejection[h[j].Key] = string(h[j].Value)
		}
	}
	d.own = h[i:j]
	return d
}

// sourceTimestamp is the rejected record's own timestamp: HeaderSourceTimestamp on a dead letter
// stamped with processing time (stream.TopicSettings), else the dead letter's own timestamp.
func (d *deadLetterParts) sourceTimestamp(dl *kgo.Record) time.Time {
	if v, ok := d.rejection[stream.HeaderSourceTimestamp]; ok {
		if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
			return time.UnixMilli(ms)
		}
	}
	return dl.Timestamp
}

// replayCount is how many times the record was replayed before: its own streamd-replay-count.
func (d *deadLetterParts) replayCount() int {
	n := 0
	for _, h := range d.own {
		if h.Key == stream.HeaderReplayCount {
			n, _ = strconv.Atoi(string(h.Value))
		}
	}
	return n
}

// replayed is the record dl was, to go back to its source topic and partition, carrying count and
// where it was replayed from. It reports false for a dead letter that cannot be replayed as its
// record was: a truncated value, or no lineage.
func replayed(dl *kgo.Record, d *deadLetterParts, pos string, count int) (*kgo.Record, bool) {
	if _, cut := d.rejection[stream.HeaderOriginalBytes]; cut {
		return nil, false
	}
	topic := d.lineage[stream.HeaderSourceTopic]
	part, err := strconv.ParseInt(d.lineage[stream.HeaderSourcePartition], 10, 32)
	if topic == "" || err != nil || part < 0 {
		return nil, false
	}
	rec := &kgo.Record{Topic: topic, Partition: int32(part), Key: dl.Key, Value: dl.Value, Timestamp: d.sourceTimestamp(dl)}
	for _, h := range d.own {
		if h.Key != stream.HeaderReplayCount && h.Key != stream.HeaderReplayedFrom {
			rec.Headers = append(rec.Headers, h)
		}
	}
	rec.Headers = append(rec.Headers,
		kgo.RecordHeader{Key: stream.HeaderReplayCount, Value: strconv.AppendInt(nil, int64(count), 10)},
		kgo.RecordHeader{Key: stream.HeaderReplayedFrom, Value: []byte(pos)})
	return rec, true
}

// position names a record by topic/partition/offset: the ledger's key.
func position(r *kgo.Record) string {
	return r.Topic + "/" + strconv.Itoa(int(r.Partition)) + "/" + strconv.FormatInt(r.Offset, 10)
}

// ensureLedger creates the ledger topic (compacted, one partition) unless it exists, and reports
// whether it created it.
func ensureLedger(ctx context.Context, adm *kadm.Client, topic string, rf int16) (bool, error) {
	if rf == 0 {
		rf = -1
	}
	compact := "compact"
	resp, err := adm.CreateTopic(ctx, 1, rf, map[string]*string{"cleanup.policy": &compact}, topic)
	if err == nil {
		err = resp.Err
	}
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, kerr.TopicAlreadyExists):
		return false, nil
	}
	return false, fmt.Errorf("dlq: creating the ledger topic %s: %w", topic, err)
}

// readLedger returns the dead-letter positions the ledger names. A ledger that does not exist is
// empty only when mayBeMissing (this run just created it, or a dry run, which creates nothing):
// otherwise the broker's "unknown topic" is a metadata lag, waited out, because taking an
// existing ledger for empty would replay everything again.
func readLedger(ctx context.Context, base []kgo.Opt, ledger string, mayBeMissing bool) (map[string]bool, error) {
	for attempt := 0; ; attempt++ {
		done := map[string]bool{}
		// A client per attempt: a client keeps answering "unknown topic" for a while after it
		// was first told so.
		cl, err := kgo.NewClient(base...)
		if err != nil {
			return nil, err
		}
		err = readTopic(ctx, base, kadm.NewClient(cl), ledger, func(r *kgo.Record) { done[string(r.Key)] = true })
		cl.Close()
		switch {
		case err == nil:
			return done, nil
		case errors.Is(err, errNoTopic) && mayBeMissing:
			return done, nil
		case errors.Is(err, errNoTopic) && attempt < 20:
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(250 * time.Millisecond):
			}
			continue
		}
		return nil, fmt.Errorf("dlq: reading the ledger %s: %w", ledger, err)
	}
}

// errNoTopic and readTopic are topicread's (shared with streamd export).
var errNoTopic = topicread.ErrNoTopic

func readTopic(ctx context.Context, base []kgo.Opt, adm *kadm.Client, topic string, f func(*kgo.Record)) error {
	return topicread.Committed(ctx, base, adm, topic, f)
}
