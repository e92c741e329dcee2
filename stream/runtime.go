package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/state"
)

// Config holds the runtime's settings. The zero value of every field means its default, which
// EnsureDefaults fills in; Validate names every field that is out of bounds.
type Config struct {
	// Brokers are the Kafka seed brokers, host:port. Required.
	Brokers []string
	// InstanceID identifies this instance in the group: it is the static group.instance.id, so a
	// restarted instance takes its partitions back at once instead of waiting out the session timeout,
	// and it suffixes the transactional id, so a restarted instance fences its dead predecessor's open
	// transaction. Two live instances must never share it. Default: the host name.
	InstanceID string
	// CommitInterval closes a commit cycle this long after it began. Default 100ms.
	CommitInterval time.Duration
	// CommitRecords closes a commit cycle once this many records were polled, if that comes first.
	// Default 20000.
	CommitRecords int
	// TransactionTimeout is the broker-side timeout of a transaction: how long read_committed readers
	// can stall behind an instance that died with a transaction open. Default 15s.
	TransactionTimeout time.Duration
	// SessionTimeout is the group session timeout. Default 15s.
	SessionTimeout time.Duration
	// RebalanceTimeout bounds how long members may take to rejoin in a rebalance. Default 30s.
	RebalanceTimeout time.Duration
	// ShutdownTimeout bounds the final commit when Run's context is cancelled; past it the open
	// transaction is abandoned to the broker's transaction timeout. Default 10s.
	ShutdownTimeout time.Duration
	// LeaveGroupOnShutdown makes a clean shutdown leave the consumer group, so that the instance's
	// partitions move at once. Static members (InstanceID) do not leave by default, so that a
	// restart takes its partitions back without a rebalance; set this when scaling down.
	LeaveGroupOnShutdown bool
	// CreateTopics creates missing output topics with the source topic's partition count.
	CreateTopics bool
	// ReplicationFactor for created topics; -1 (the default) takes the broker's default.
	ReplicationFactor int16
	// MaxRecordBytes is the largest record the runtime produces or fetches. Default 1MiB.
	MaxRecordBytes int
	// DeadLetterMaxBytes truncates larger dead-letter values (the streamd-original-bytes header keeps
	// the size; the source offset header points at the full record). Default 256KiB.
	DeadLetterMaxBytes int
	// StateDir is where tasks keep their Pebble state: <StateDir>/<pipeline>/<topic>-<partition>.
	// Required when an operator is stateful.
	StateDir string
	// StateCacheBytes is the Pebble block cache shared by every task. Default 16MiB.
	StateCacheBytes int64
	// RecordCacheBytes is the memory for caches of committed state values in front of Pebble, for
	// the whole instance: each task gets its share (by the source's partition count). Default 16MiB;
	// negative disables.
	RecordCacheBytes int64
	// MaxOutOfOrderness is how far behind the latest event time an event may be and still count as
	// on time: watermark = max event time seen - MaxOutOfOrderness. Default 5s.
	MaxOutOfOrderness time.Duration
	// IdleTimeout: a partition that has been caught up to its last stable offset and silent for
	// this long is idle, and its watermark follows the wall clock (minus MaxOutOfOrderness), so that
	// windows on a quiet key space still close. Default 30s; negative disables.
	IdleTimeout time.Duration
	// ClientOpts are extra franz-go options (TLS, SASL, dialer, ...), applied after streamd's own.
	ClientOpts []kgo.Opt
	// Logger receives the runtime's logs. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives the runtime's metrics. Default: a private registry (metrics unexported).
	Registerer prometheus.Registerer
}

// EnsureDefaults fills in every unset field.
func (c *Config) EnsureDefaults() {
	if c.InstanceID == "" {
		c.InstanceID, _ = os.Hostname()
		if c.InstanceID == "" {
			c.InstanceID = "streamd"
		}
	}
	if c.CommitInterval == 0 {
		c.CommitInterval = 100 * time.Millisecond
	}
	if c.CommitRecords == 0 {
		c.CommitRecords = 20000
	}
	if c.TransactionTimeout == 0 {
		c.TransactionTimeout = 15 * time.Second
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = 15 * time.Second
	}
	if c.RebalanceTimeout == 0 {
		c.RebalanceTimeout = 30 * time.Second
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 10 * time.Second
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = -1
	}
	if c.MaxRecordBytes == 0 {
		c.MaxRecordBytes = 1 << 20
	}
	if c.DeadLetterMaxBytes == 0 {
		c.DeadLetterMaxBytes = 256 << 10
	}
	if c.StateCacheBytes == 0 {
		c.StateCacheBytes = 16 << 20
	}
	if c.RecordCacheBytes == 0 {
		c.RecordCacheBytes = 16 << 20
	}
	if c.MaxOutOfOrderness == 0 {
		c.MaxOutOfOrderness = 5 * time.Second
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Registerer == nil {
		c.Registerer = prometheus.NewRegistry()
	}
}

// Validate reports every out-of-bounds field at once. Call EnsureDefaults first.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("stream: "+format, args...)) }
	if len(c.Brokers) == 0 {
		bad("no brokers")
	}
	if !nameRE.MatchString(c.InstanceID) {
		bad("instance id %q: use 1 to 200 letters, digits, '.', '_' or '-'", c.InstanceID)
	}
	if c.CommitInterval < time.Millisecond || c.CommitInterval > time.Minute {
		bad("commit interval %s is outside [1ms, 1m]", c.CommitInterval)
	}
	if c.CommitRecords < 1 {
		bad("commit records %d must be at least 1", c.CommitRecords)
	}
	if c.TransactionTimeout < time.Second || c.TransactionTimeout > 15*time.Minute {
		bad("transaction timeout %s is outside [1s, 15m] (the broker's default transaction.max.timeout.ms)", c.TransactionTimeout)
	}
	if c.TransactionTimeout <= c.CommitInterval {
		bad("transaction timeout %s must be longer than the commit interval %s", c.TransactionTimeout, c.CommitInterval)
	}
	if c.SessionTimeout < 6*time.Second || c.SessionTimeout > 30*time.Minute {
		bad("session timeout %s is outside [6s, 30m] (the broker's default group session bounds)", c.SessionTimeout)
	}
	if c.RebalanceTimeout < time.Second {
		bad("rebalance timeout %s is under 1s", c.RebalanceTimeout)
	}
	if c.ShutdownTimeout < 0 {
		bad("shutdown timeout %s is negative", c.ShutdownTimeout)
	}
	if c.MaxRecordBytes < 1<<10 || c.MaxRecordBytes > 64<<20 {
		bad("max record bytes %d is outside [1KiB, 64MiB]", c.MaxRecordBytes)
	}
	if c.DeadLetterMaxBytes < 1<<10 || c.DeadLetterMaxBytes > c.MaxRecordBytes {
		bad("dead letter max bytes %d is outside [1KiB, max record bytes %d]", c.DeadLetterMaxBytes, c.MaxRecordBytes)
	}
	if c.MaxOutOfOrderness < 0 {
		bad("max out-of-orderness %s is negative", c.MaxOutOfOrderness)
	}
	return errors.Join(errs...)
}

// ErrStopped is returned by Run when it is called twice.
var ErrStopped = errors.New("stream: runtime already ran")

// Runtime runs a Pipeline exactly once: a consumer group over the source topic, one Task per assigned
// partition on its own goroutine, and a commit cycle that ends every CommitInterval in one Kafka
// transaction holding the cycle's outputs, dead letters and consumer offsets.
//
// The poll loop owns the cycle: it begins the transaction, hands each partition's records to its task,
// and at the end of the cycle waits at a barrier until every task has processed what it was given,
// then ends the transaction. Rebalance callbacks run only between cycles (BlockRebalanceOnPoll), so a
// partition is never revoked from a task in the middle of a cycle.
type Runtime struct {
	cfg      Config
	pipeline *Pipeline
	log      *slog.Logger
	m        *metrics

	sess *kgo.GroupTransactSession
	// ctx is the producer's context: it lives until Run returns, past the cancellation of Run's
	// context, so that the final commit can flush.
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex // guards tasks and taskErr against the rebalance callbacks
	tasks    map[int32]*Task
	taskErr  error // a failure in a callback (opening a task), reported by the poll loop
	ran      atomic.Bool
	ready    atomic.Bool
	joined   atomic.Bool
	promise  func(*kgo.Record, error)
	prodErr  atomic.Pointer[error] // the first produce error of the open cycle
	counters map[string]prometheus.Counter

	stores        []string // every store the operators declare
	cache         *pebble.Cache
	lastIdleCheck time.Time
	partitions    int32 // of the source topic
}

// NewRuntime checks the pipeline and the config and prepares a runtime; it does not connect.
func NewRuntime(p *Pipeline, cfg Config) (*Runtime, error) {
	cfg.EnsureDefaults()
	if err := errors.Join(p.Validate(), cfg.Validate()); err != nil {
		return nil, err
	}
	if err := initFormats(p); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("stream: register metrics: %w", err)
	}
	r := &Runtime{
		cfg:      cfg,
		pipeline: p,
		log:      cfg.Logger.With("app", p.Name),
		m:        m,
		tasks:    map[int32]*Task{},
		counters: map[string]prometheus.Counter{},
	}
	r.promise = r.onProduced
	// Series that exist from the start, at zero, so that rates and alerts have data before the
	// first dead letter or late record.
	for _, reason := range Reasons {
		m.deadLetters.WithLabelValues(string(reason))
	}
	for _, op := range p.Operators {
		if _, ok := op.(interface{ ReportsLate() }); ok {
			m.late.WithLabelValues(op.Name())
		}
	}
	r.stores = p.storeNames()
	if len(r.stores) > 0 {
		if cfg.StateDir == "" {
			return nil, fmt.Errorf("stream: the pipeline keeps state (stores %v) but Config.StateDir is empty", r.stores)
		}
		r.stores = append(r.stores, taskStore)
		sort.Strings(r.stores)
	}
	return r, nil
}

// Ready reports whether the runtime has joined its group and every assigned task is open. The admin
// server's /readyz answers with it.
func (r *Runtime) Ready() bool { return r.ready.Load() }

// Assigned returns the source partitions this instance owns, sorted.
func (r *Runtime) Assigned() []int32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]int32, 0, len(r.tasks))
	for p := range r.tasks {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// inputTopics are the topics the group consumes: the source, and the labels topic if any.
func (r *Runtime) inputTopics() []string {
	if r.pipeline.Labels != nil {
		return []string{r.pipeline.Source.Topic, r.pipeline.Labels.Topic}
	}
	return []string{r.pipeline.Source.Topic}
}

// balancer is cooperative-sticky for a single input. With a labels topic it is the range balancer,
// which gives every member the same partition numbers of both topics (they have the same partition
// count), so that a label reaches the task that scored its event; the price is eager rebalancing.
func (r *Runtime) balancer() kgo.GroupBalancer {
	if r.pipeline.Labels != nil {
		return kgo.RangeBalancer()
	}
	return kgo.CooperativeStickyBalancer()
}

// initFormats prepares the pipeline's JSON formats.
func initFormats(p *Pipeline) error {
	for _, f := range []Format{p.Source.Format, labelsFormat(p)} {
		if jf, ok := f.(*JSONFormat); ok && jf.schema == nil {
			if err := jf.Init(); err != nil {
				return err
			}
		}
	}
	return nil
}

func labelsFormat(p *Pipeline) Format {
	if p.Labels == nil {
		return nil
	}
	return p.Labels.Format
}

func (r *Runtime) transactionalID() string { return r.pipeline.Name + "-" + r.cfg.InstanceID }

func (r *Runtime) clientOpts() []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(r.cfg.Brokers...),
		kgo.ClientID("streamd"),
		kgo.WithLogger(kgoLogger{r.log.With("component", "kafka")}),
		kgo.ConsumerGroup(r.pipeline.Name),
		kgo.ConsumeTopics(r.inputTopics()...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Transaction markers come through so that a task knows its true position: a partition
		// whose last records were a transaction is caught up only past its marker.
		kgo.KeepControlRecords(),
		kgo.RequireStableFetchOffsets(),
		kgo.RecordPartitioner(changelogPartitioner{r.isChangelog}),
		kgo.Balancers(r.balancer()),
		kgo.BlockRebalanceOnPoll(),
		kgo.InstanceID(r.cfg.InstanceID),
		kgo.SessionTimeout(r.cfg.SessionTimeout),
		kgo.RebalanceTimeout(r.cfg.RebalanceTimeout),
		kgo.TransactionalID(r.transactionalID()),
		kgo.TransactionTimeout(r.cfg.TransactionTimeout),
		kgo.ProducerBatchMaxBytes(int32(r.cfg.MaxRecordBytes + 64<<10)),
		kgo.FetchMaxPartitionBytes(int32(max(r.cfg.MaxRecordBytes+64<<10, 1<<20))),
		kgo.MaxBufferedRecords(1 << 20),
		kgo.FetchMaxWait(250 * time.Millisecond),
		// One fetch response is buffered per broker; franz-go's 50 MB default is most of a small
		// instance's memory budget, and 16 MB keeps a 2-core machine busy.
		kgo.FetchMaxBytes(16 << 20),
		kgo.OnPartitionsAssigned(r.onAssigned),
		kgo.OnPartitionsRevoked(r.onRevoked),
		kgo.OnPartitionsLost(r.onLost),
	}
	return append(opts, r.cfg.ClientOpts...)
}

// Run runs the pipeline until ctx is cancelled or a fatal error occurs. On cancellation it ends the
// open cycle with a commit (bounded by ShutdownTimeout), closes every task and leaves; it returns nil
// after a clean shutdown. A fatal error (a failing operator, a fenced producer, a broker that refuses
// the transaction) aborts the open transaction and is returned: the records of the aborted cycle are
// processed again by whichever instance owns their partitions next.
func (r *Runtime) Run(ctx context.Context) error {
	if r.ran.Swap(true) {
		return ErrStopped
	}
	r.ctx, r.cancel = context.WithCancel(context.WithoutCancel(ctx))
	defer r.cancel()

	if err := r.prepareTopics(ctx); err != nil {
		return err
	}
	if len(r.stores) > 0 {
		r.cache = pebble.NewCache(r.cfg.StateCacheBytes)
		defer r.cache.Unref()
	}
	sess, err := kgo.NewGroupTransactSession(r.clientOpts()...)
	if err != nil {
		return fmt.Errorf("stream: kafka client: %w", err)
	}
	r.sess = sess
	r.log.Info("runtime started", "source", r.pipeline.Source.Topic, "group", r.pipeline.Name,
		"transactional_id", r.transactionalID(), "commit_interval", r.cfg.CommitInterval)

	runErr := r.loop(ctx)

	// Shutdown order: the loop has ended the last cycle (committed or aborted); now close the tasks,
	// then the client (which leaves the group unless membership is static).
	r.ready.Store(false)
	if err := r.closeTasks(); err != nil && runErr == nil {
		runErr = err
	}
	sess.CloseAllowingRebalance()
	if r.cfg.LeaveGroupOnShutdown {
		r.leaveGroup()
	}
	if runErr != nil {
		r.log.Error("runtime stopped", "err", runErr)
	} else {
		r.log.Info("runtime stopped")
	}
	return runErr
}

// leaveGroup asks the coordinator to remove this static member from the group.
func (r *Runtime) leaveGroup() {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(r.cfg.Brokers...)}, r.cfg.ClientOpts...)...)
	if err != nil {
		r.log.Warn("leaving the group failed", "err", err)
		return
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).LeaveGroup(ctx, kadm.LeaveGroup(r.pipeline.Name).InstanceIDs(r.cfg.InstanceID).Reason("shutdown"))
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		r.log.Warn("leaving the group failed; partitions move after the session timeout", "err", err)
		return
	}
	r.log.Info("left the consumer group", "instance_id", r.cfg.InstanceID)
}

// cycle is the state of the open commit cycle.
type cycle struct {
	open    bool
	started time.Time
	records int
}

func (r *Runtime) loop(ctx context.Context) error {
	var c cycle
	for {
		wait := r.cfg.CommitInterval
		if c.open {
			wait = max(time.Until(c.started.Add(r.cfg.CommitInterval)), 0)
		}
		pollCtx, cancel := context.WithTimeout(ctx, wait)
		fetches := r.sess.PollRecords(pollCtx, r.cfg.CommitRecords-c.records)
		cancel()

		if ctx.Err() != nil {
			return r.shutdown(&c)
		}
		if err := r.checkTaskErr(); err != nil {
			return r.fail(&c, err)
		}
		if err := fetchError(fetches); err != nil {
			return r.fail(&c, err)
		}
		if !fetches.Empty() {
			if !c.open {
				if err := r.sess.Begin(); err != nil {
					return r.fail(&c, fmt.Errorf("stream: begin transaction: %w", err))
				}
				c = cycle{open: true, started: time.Now()}
			}
			c.records += r.dispatch(fetches)
		}
		if !c.open && len(r.stores) > 0 && r.cfg.IdleTimeout > 0 && time.Since(r.lastIdleCheck) >= r.cfg.IdleTimeout/4 {
			if err := r.advanceIdle(ctx, &c); err != nil {
				return r.fail(&c, err)
			}
		}
		if c.open && (time.Since(c.started) >= r.cfg.CommitInterval || c.records >= r.cfg.CommitRecords) {
			if err := r.endCycle(ctx, &c, kgo.TryCommit); err != nil {
				return err
			}
		}
		if !c.open {
			r.sess.AllowRebalance()
		}
	}
}

// fetchError returns the first fetch error that is fatal. Poll timeouts are not errors; errors a
// retry fixes are handled inside franz-go and not returned.
func fetchError(fs kgo.Fetches) error {
	var fatal error
	fs.EachError(func(topic string, partition int32, err error) {
		if fatal != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return
		}
		if errors.Is(err, kgo.ErrClientClosed) {
			fatal = err
			return
		}
		fatal = fmt.Errorf("stream: fetch %s/%d: %w", topic, partition, err)
	})
	return fatal
}

// dispatch hands each partition's records to its task and returns how many it handed out.
func (r *Runtime) dispatch(fs kgo.Fetches) int {
	n := 0
	r.mu.Lock()
	defer r.mu.Unlock()
	fs.EachPartition(func(p kgo.FetchTopicPartition) {
		if len(p.Records) == 0 {
			return
		}
		t := r.tasks[p.Partition]
		if t == nil {
			// Cannot happen while callbacks and polls are serialized; if it does, processing the
			// records anyway would commit offsets for a partition without a task, so fail loudly.
			r.taskErr = fmt.Errorf("stream: records for %s/%d, which has no task", p.Topic, p.Partition)
			return
		}
		last := p.Records[len(p.Records)-1]
		lag := t.lag
		if p.Topic != t.topic {
			lag = r.m.lagGauge(p.Topic, p.Partition)
		}
		lag.Set(float64(max(p.LastStableOffset-(last.Offset+1), 0)))
		t.in <- taskWork{recs: p.Records, lso: p.LastStableOffset}
		n += len(p.Records)
	})
	return n
}

// barrier waits until every task has processed everything it was handed.
func (r *Runtime) barrier() {
	r.mu.Lock()
	defer r.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(len(r.tasks))
	for _, t := range r.tasks {
		t.in <- taskWork{barrier: &wg}
	}
	wg.Wait()
}

// endCycle ends the open cycle: barrier, then commit (or abort) the transaction, then settle the
// tasks. It returns an error only when the runtime must stop.
func (r *Runtime) endCycle(ctx context.Context, c *cycle, want kgo.TransactionEndTry) error {
	start := time.Now()
	r.barrier()
	if err := r.checkTaskErr(); err != nil {
		return r.fail(c, err)
	}
	if perr := r.prodErr.Load(); perr != nil && want == kgo.TryCommit {
		r.log.Warn("a produce failed in this cycle; aborting it so that it is processed again", "err", *perr)
		want = kgo.TryAbort
	}
	endCtx, cancel := context.WithTimeout(r.ctx, r.cfg.TransactionTimeout)
	committed, err := r.sess.End(endCtx, want)
	cancel()
	r.prodErr.Store(nil)
	*c = cycle{}
	r.settle(committed)
	if serr := r.checkTaskErr(); serr != nil && err == nil {
		err = serr
	}
	if committed {
		r.m.committed.Inc()
		r.m.commitDuration.Observe(time.Since(start).Seconds())
	} else {
		r.m.aborted.Inc()
		if err == nil && want == kgo.TryCommit {
			r.log.Info("transaction aborted by a rebalance; its records will be processed again")
		}
	}
	if err != nil {
		return fmt.Errorf("stream: end transaction: %w", err)
	}
	return nil
}

// settle moves the tasks past the ended cycle: each task commits (or rewinds) its state on its own
// goroutine, in parallel; then, on commit, their counts reach the metrics; either way their outboxes
// are reused.
func (r *Runtime) settle(committed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(len(r.tasks))
	for _, t := range r.tasks {
		t.in <- taskWork{settle: &settleWork{committed: committed, wg: &wg}}
	}
	wg.Wait()
	for _, t := range r.tasks {
		if committed {
			r.m.consumed.WithLabelValues(t.topic).Add(float64(t.cycle.consumed))
			if t.cycle.labels > 0 {
				r.m.consumed.WithLabelValues(t.labels).Add(float64(t.cycle.labels))
			}
			for topic, n := range t.cycle.produced {
				r.counter(topic).Add(float64(n))
			}
			for reason, n := range t.cycle.deadLetters {
				r.m.deadLetters.WithLabelValues(string(reason)).Add(float64(n))
			}
			r.m.changelogRecords.Add(float64(t.cycle.changelog))
			for op, n := range t.cycle.late {
				r.m.late.WithLabelValues(op).Add(float64(n))
			}
			r.m.arrivalLatency.add(&t.arrivalLatency)
			r.m.eventLatency.add(&t.eventLatency)
			p := strconv.Itoa(int(t.partition))
			if wm := t.pub.watermark.Load(); wm != math.MinInt64 {
				r.m.watermarkLag.WithLabelValues(t.topic, p).Set(float64(time.Now().UnixMilli()-wm) / 1000)
			}
			if t.db != nil {
				r.m.openWindows.WithLabelValues(t.topic, p).Set(float64(t.pub.openWindows.Load()))
				r.m.stateBytes.WithLabelValues(t.topic, p).Set(float64(t.pub.stateBytes.Load()))
			}
		}
		t.arrivalLatency.reset()
		t.eventLatency.reset()
		t.cycle.reset()
		t.out.reset()
	}
}

func (r *Runtime) counter(topic string) prometheus.Counter {
	c, ok := r.counters[topic]
	if !ok {
		c = r.m.produced.WithLabelValues(topic)
		r.counters[topic] = c
	}
	return c
}

// shutdown ends the open cycle with a commit, bounded by ShutdownTimeout.
func (r *Runtime) shutdown(c *cycle) error {
	if !c.open {
		return nil
	}
	r.log.Info("shutting down: committing the open transaction", "records", c.records)
	done := make(chan error, 1)
	go func() { done <- r.endCycle(r.ctx, c, kgo.TryCommit) }()
	select {
	case err := <-done:
		return err
	case <-time.After(r.cfg.ShutdownTimeout):
		r.cancel() // abandon: the broker aborts the transaction after its timeout
		<-done
		return fmt.Errorf("stream: the final commit did not finish within %s; the broker will abort it", r.cfg.ShutdownTimeout)
	}
}

// fail aborts the open cycle and returns err.
func (r *Runtime) fail(c *cycle, err error) error {
	if c.open {
		if aerr := r.endCycle(r.ctx, c, kgo.TryAbort); aerr != nil {
			r.log.Warn("aborting after a fatal error failed too", "err", aerr)
		}
	}
	return err
}

func (r *Runtime) checkTaskErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.taskErr != nil {
		return r.taskErr
	}
	for _, t := range r.tasks {
		if t.fatalErr != nil {
			return t.fatalErr
		}
	}
	return nil
}

// onProduced is the promise of every produced record. A failure fails the cycle: the transaction is
// aborted and its input processed again, so nothing is lost.
func (r *Runtime) onProduced(rec *kgo.Record, err error) {
	if err != nil {
		e := fmt.Errorf("stream: produce to %s: %w", rec.Topic, err)
		r.prodErr.CompareAndSwap(nil, &e)
	}
}

// The rebalance callbacks run between cycles (BlockRebalanceOnPoll), when tasks are idle.

func (r *Runtime) onAssigned(ctx context.Context, _ *kgo.Client, assigned map[string][]int32) {
	r.joined.Store(true)
	r.ready.Store(false) // not ready while new partitions restore
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		opened = map[int32]*Task{}
		errs   []error
	)
	src := r.pipeline.Source.Topic
	if r.pipeline.Labels != nil {
		// Range assignment gives both topics' partition p to the same member; anything else would
		// separate labels from their events.
		have := map[int32]bool{}
		for _, p := range assigned[r.pipeline.Labels.Topic] {
			have[p] = true
		}
		for _, p := range assigned[src] {
			if !have[p] {
				errs = append(errs, fmt.Errorf("stream: assigned %s/%d without %s/%d: the group's members do not all use the range balancer", src, p, r.pipeline.Labels.Topic, p))
			}
		}
	}
	for topic, parts := range assigned {
		if topic != src {
			continue // labels partitions belong to the task of the same number
		}
		for _, p := range parts {
			r.mu.Lock()
			_, have := r.tasks[p]
			r.mu.Unlock()
			if have {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				t, err := r.openTask(ctx, topic, p)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				opened[p] = t
			}()
		}
	}
	wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	for p, t := range opened {
		r.tasks[p] = t
		r.m.rebalances.WithLabelValues("assigned").Inc()
	}
	r.taskErr = errors.Join(append([]error{r.taskErr}, errs...)...)
	r.m.assigned.Set(float64(len(r.tasks)))
	r.ready.Store(r.taskErr == nil)
	r.log.Info("partitions assigned", "assigned", assigned, "owned", len(r.tasks))
}

func (r *Runtime) onRevoked(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
	r.dropTasks(revoked, "revoked")
}

func (r *Runtime) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	r.dropTasks(lost, "lost")
}

func (r *Runtime) dropTasks(parts map[string][]int32, change string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for topic, ps := range parts {
		if topic != r.pipeline.Source.Topic {
			continue // a task goes with its source partition
		}
		for _, p := range ps {
			t, ok := r.tasks[p]
			if !ok {
				continue
			}
			delete(r.tasks, p)
			if err := t.close(); err != nil {
				r.log.Warn("closing a task failed", "partition", p, "err", err)
			}
			r.m.dropLag(t.topic, p)
			r.m.rebalances.WithLabelValues(change).Inc()
		}
	}
	r.m.assigned.Set(float64(len(r.tasks)))
	if len(parts) > 0 {
		r.log.Info("partitions "+change, change, parts, "owned", len(r.tasks))
	}
}

func (r *Runtime) closeTasks() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for p, t := range r.tasks {
		errs = append(errs, t.close())
		r.m.dropLag(t.topic, p)
		delete(r.tasks, p)
	}
	r.m.assigned.Set(0)
	return errors.Join(errs...)
}

func (r *Runtime) openTask(ctx context.Context, topic string, partition int32) (*Task, error) {
	t := &Task{
		topic:     topic,
		partition: partition,
		log:       r.log.With("topic", topic, "partition", partition),
		dec:       r.pipeline.Source.Format.NewDecoder(),
		ops:       r.pipeline.Operators,
		in:        make(chan taskWork, 16),
		done:      make(chan struct{}),
		cycle: cycleCounts{
			deadLetters: map[Reason]int{},
			produced:    map[string]int{},
			late:        map[string]int{},
		},
		lag:                r.m.lagGauge(topic, partition),
		reg:                r.cfg.Registerer,
		clientOpts:         r.restoreOpts(),
		partitions:         r.partitions,
		deadLetterTopic:    r.pipeline.DeadLetterTopic,
		deadLetterMaxBytes: r.cfg.DeadLetterMaxBytes,
		lateTopic:          r.pipeline.LateTopic,
		app:                r.pipeline.Name,
		wm:                 newWatermark(r.cfg.MaxOutOfOrderness.Milliseconds()),
		lastRecord:         time.Now(),
	}
	t.ev.Features = make([]float64, len(r.pipeline.Features))
	if l := r.pipeline.Labels; l != nil {
		t.labelDec, t.labels = l.Format.NewDecoder(), l.Topic
	}
	t.send = func(rec *kgo.Record) { r.sess.Produce(r.ctx, rec, r.promise) }
	if err := r.openState(ctx, t); err != nil {
		return nil, err
	}
	for _, op := range r.pipeline.Operators {
		p, err := op.Open(t)
		if err != nil {
			for _, opened := range t.procs {
				_ = opened.Close()
			}
			if t.db != nil {
				_ = t.db.Close()
			}
			return nil, fmt.Errorf("stream: open operator %s for partition %d: %w", op.Name(), partition, err)
		}
		t.procs = append(t.procs, p)
	}
	t.pub.store(t)
	go t.run()
	return t, nil
}

// openState opens the task's Pebble database and restores every store from its changelog: the
// tail after the offset the local state reflects, or all of it when there is no local state.
func (r *Runtime) openState(ctx context.Context, t *Task) error {
	if len(r.stores) == 0 {
		return nil
	}
	dir := filepath.Join(r.cfg.StateDir, r.pipeline.Name, fmt.Sprintf("%s-%d", t.topic, t.partition))
	recordCache := 0
	if r.cfg.RecordCacheBytes > 0 {
		// The operators' stores share the task's part of the budget; the task store holds one key.
		recordCache = int(max(r.cfg.RecordCacheBytes/int64(max(r.partitions, 1))/int64(max(len(r.stores)-1, 1)), 256<<10))
	}
	db, err := state.Open(state.Options{Dir: dir, Cache: r.cache, Logger: t.log, RecordCacheBytes: recordCache})
	if err != nil {
		return err
	}
	t.db = db
	t.stores = map[string]*state.Store{}
	t.changelogs = map[string]string{}
	t.lastChangelog = map[string]*kgo.Record{}
	for _, name := range r.stores {
		s, err := db.Store(name)
		if err == nil {
			start := time.Now()
			var st state.RestoreStats
			st, err = state.RestoreFromKafka(ctx, r.restoreOpts(), state.ChangelogTopic(r.pipeline.Name, name), t.partition, s)
			r.m.restoreDuration.Observe(time.Since(start).Seconds())
			r.m.restoredRecords.Add(float64(st.Records))
			r.m.restoredBytes.Add(float64(st.Bytes))
			if err == nil && st.Records > 0 {
				t.log.Info("state restored", "store", name, "full", st.Full, "from", st.From, "to", st.To,
					"records", st.Records, "bytes", st.Bytes, "seconds", st.Duration.Seconds())
			}
		}
		if err != nil {
			_ = db.Close()
			return fmt.Errorf("stream: restore store %s of partition %d: %w", name, t.partition, err)
		}
		if name == taskStore {
			s.SetRecordCacheBytes(0) // one key
		}
		t.stores[name] = s
		t.storeOrder = append(t.storeOrder, s)
		t.changelogs[name] = state.ChangelogTopic(r.pipeline.Name, name)
	}
	v, ok, err := t.stores[taskStore].Get(watermarkKey)
	if err != nil {
		_ = db.Close()
		return err
	}
	if ok {
		if err := t.wm.decode(v); err != nil {
			_ = db.Close()
			return err
		}
	}
	return nil
}

// restoreOpts are the client options of the consumers that replay changelogs.
func (r *Runtime) restoreOpts() []kgo.Opt {
	return append([]kgo.Opt{
		kgo.SeedBrokers(r.cfg.Brokers...),
		kgo.ClientID("streamd-restore"),
		kgo.WithLogger(kgoLogger{r.log.With("component", "kafka-restore")}),
	}, r.cfg.ClientOpts...)
}

func (r *Runtime) isChangelog(topic string) bool {
	return strings.HasPrefix(topic, r.pipeline.Name+"-") && strings.HasSuffix(topic, "-changelog")
}

// changelogPartitioner sends changelog records to the partition the task set (its own), and every
// other record by its key, the way the Java client does, so that outputs are co-partitioned with
// anything else keyed the same way.
type changelogPartitioner struct{ isChangelog func(string) bool }

func (p changelogPartitioner) ForTopic(topic string) kgo.TopicPartitioner {
	if p.isChangelog(topic) {
		return kgo.ManualPartitioner().ForTopic(topic)
	}
	return kgo.StickyKeyPartitioner(nil).ForTopic(topic)
}

// advanceIdle finds tasks whose partition is idle — caught up to its last stable offset (a broker
// fact: the group's committed offset has reached it) and silent for IdleTimeout — and moves their
// watermark to the wall clock minus MaxOutOfOrderness, inside a transaction, since firing windows
// produces outputs.
func (r *Runtime) advanceIdle(ctx context.Context, c *cycle) error {
	r.lastIdleCheck = time.Now()
	now := time.Now()
	r.mu.Lock()
	var silent []*Task
	for _, t := range r.tasks {
		quiet := now.Sub(time.UnixMilli(t.pub.lastRecord.Load())) >= r.cfg.IdleTimeout
		t.pub.idle.Store(false)
		if quiet && now.UnixMilli()-r.cfg.MaxOutOfOrderness.Milliseconds() > t.pub.watermark.Load() {
			silent = append(silent, t)
		}
	}
	r.mu.Unlock()
	if len(silent) == 0 {
		return nil
	}
	caughtUp, err := r.caughtUp(ctx)
	if err != nil {
		r.log.Warn("idle check: cannot read offsets; windows wait", "err", err)
		return nil
	}
	var idle []*Task
	for _, t := range silent {
		if caughtUp[t.partition] {
			t.pub.idle.Store(true)
			idle = append(idle, t)
		}
	}
	if len(idle) == 0 {
		return nil
	}
	if err := r.sess.Begin(); err != nil {
		return fmt.Errorf("stream: begin transaction: %w", err)
	}
	*c = cycle{open: true, started: time.Now()}
	to := now.UnixMilli() - r.cfg.MaxOutOfOrderness.Milliseconds()
	var wg sync.WaitGroup
	wg.Add(len(idle))
	for _, t := range idle {
		t.in <- taskWork{idle: &idleWork{watermark: to, wg: &wg}}
	}
	wg.Wait()
	return nil
}

// caughtUp reports, per source partition, whether the group's committed offset has reached the
// partition's last stable offset. Called between cycles, when everything processed is committed.
func (r *Runtime) caughtUp(ctx context.Context) (map[int32]bool, error) {
	adm := kadm.NewClient(r.sess.Client())
	reqCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	lso, err := adm.ListCommittedOffsets(reqCtx, r.pipeline.Source.Topic)
	if err != nil {
		return nil, err
	}
	committed, err := adm.FetchOffsetsForTopics(reqCtx, r.pipeline.Name, r.pipeline.Source.Topic)
	if err != nil {
		return nil, err
	}
	out := map[int32]bool{}
	lso.Each(func(o kadm.ListedOffset) {
		c, ok := committed.Lookup(o.Topic, o.Partition)
		out[o.Partition] = o.Offset == 0 || (ok && c.At >= o.Offset)
	})
	return out, nil
}

func millisTime(ms int64) time.Time { return time.UnixMilli(ms) }

// kgoLogger adapts slog to franz-go's logger. franz-go logs at info on every rebalance and
// transaction end, which is useful when something goes wrong and noise otherwise, so its info is
// logged at debug.
type kgoLogger struct{ l *slog.Logger }

func (k kgoLogger) Level() kgo.LogLevel {
	ctx := context.Background()
	switch {
	case k.l.Enabled(ctx, slog.LevelDebug):
		return kgo.LogLevelInfo
	case k.l.Enabled(ctx, slog.LevelWarn):
		return kgo.LogLevelWarn
	}
	return kgo.LogLevelError
}

func (k kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	var l slog.Level
	switch level {
	case kgo.LogLevelError:
		l = slog.LevelError
	case kgo.LogLevelWarn:
		l = slog.LevelWarn
	default:
		l = slog.LevelDebug
	}
	k.l.Log(context.Background(), l, msg, keyvals...)
}
