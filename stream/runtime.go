package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
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
	// CreateTopics creates missing output topics with the source topic's partition count.
	CreateTopics bool
	// ReplicationFactor for created topics; -1 (the default) takes the broker's default.
	ReplicationFactor int16
	// MaxRecordBytes is the largest record the runtime produces or fetches. Default 1MiB.
	MaxRecordBytes int
	// DeadLetterMaxBytes truncates larger dead-letter values (the streamd-original-bytes header keeps
	// the size; the source offset header points at the full record). Default 256KiB.
	DeadLetterMaxBytes int
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
}

// NewRuntime checks the pipeline and the config and prepares a runtime; it does not connect.
func NewRuntime(p *Pipeline, cfg Config) (*Runtime, error) {
	cfg.EnsureDefaults()
	if err := errors.Join(p.Validate(), cfg.Validate()); err != nil {
		return nil, err
	}
	if jf, ok := p.Source.Format.(*JSONFormat); ok && jf.schema == nil {
		if err := jf.Init(); err != nil {
			return nil, err
		}
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

func (r *Runtime) transactionalID() string { return r.pipeline.Name + "-" + r.cfg.InstanceID }

func (r *Runtime) clientOpts() []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(r.cfg.Brokers...),
		kgo.ClientID("streamd"),
		kgo.WithLogger(kgoLogger{r.log.With("component", "kafka")}),
		kgo.ConsumerGroup(r.pipeline.Name),
		kgo.ConsumeTopics(r.pipeline.Source.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
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
	if runErr != nil {
		r.log.Error("runtime stopped", "err", runErr)
	} else {
		r.log.Info("runtime stopped")
	}
	return runErr
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
			r.taskErr = fmt.Errorf("stream: records for partition %d, which has no task", p.Partition)
			return
		}
		last := p.Records[len(p.Records)-1]
		t.lag.Set(float64(max(p.LastStableOffset-(last.Offset+1), 0)))
		t.in <- taskWork{recs: p.Records}
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

// settle moves the tasks past the ended cycle: on commit their counts reach the metrics; either way
// their outboxes are reused. Tasks are idle here (after the barrier).
func (r *Runtime) settle(committed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range r.tasks {
		if committed {
			r.m.consumed.WithLabelValues(t.topic).Add(float64(t.cycle.consumed))
			for topic, n := range t.cycle.produced {
				r.counter(topic).Add(float64(n))
			}
			for reason, n := range t.cycle.deadLetters {
				r.m.deadLetters.WithLabelValues(string(reason)).Add(float64(n))
			}
		}
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

func (r *Runtime) onAssigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	r.joined.Store(true)
	r.mu.Lock()
	defer r.mu.Unlock()
	for topic, parts := range assigned {
		for _, p := range parts {
			if _, ok := r.tasks[p]; ok {
				continue
			}
			t, err := r.openTask(topic, p)
			if err != nil {
				r.taskErr = errors.Join(r.taskErr, err)
				continue
			}
			r.tasks[p] = t
			r.m.rebalances.WithLabelValues("assigned").Inc()
		}
	}
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
	for _, ps := range parts {
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

func (r *Runtime) openTask(topic string, partition int32) (*Task, error) {
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
		},
		lag:                r.m.lagGauge(topic, partition),
		deadLetterTopic:    r.pipeline.DeadLetterTopic,
		deadLetterMaxBytes: r.cfg.DeadLetterMaxBytes,
	}
	t.send = func(rec *kgo.Record) { r.sess.Produce(r.ctx, rec, r.promise) }
	for _, op := range r.pipeline.Operators {
		p, err := op.Open(t)
		if err != nil {
			for _, opened := range t.procs {
				_ = opened.Close()
			}
			return nil, fmt.Errorf("stream: open operator %s for partition %d: %w", op.Name(), partition, err)
		}
		t.procs = append(t.procs, p)
	}
	go t.run()
	return t, nil
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
