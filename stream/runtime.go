package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/state/standby"
	"github.com/streamd/streamd/state/table"
)

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

	mu sync.Mutex // guards tasks, restoring and taskErr against the rebalance callbacks
	// lookupMu guards tasks and partitions for the admin look-ups (runOnOwner), which must not
	// wait for r.mu: a barrier holds r.mu until every task has processed its cycle. Lock order:
	// r.mu, then lookupMu; writers of tasks and partitions hold both, runOnOwner only lookupMu.
	lookupMu  sync.Mutex
	tasks     map[int32]*Task
	restoring map[int32]*restoring // assigned partitions whose tasks are opening (rebalance.go)
	taskErr   error                // a failure in a callback or a restore, reported by the poll loop
	// restoreGate, when set (by tests), runs before a partition's task opens and can hold it, as
	// a long restore would.
	restoreGate func(ctx context.Context, partition int32) error
	ran         atomic.Bool
	ready       atomic.Bool
	joined      atomic.Bool
	// cycleSince is when the open commit cycle began (Unix ns), 0 between cycles: Ready reads it.
	cycleSince atomic.Int64
	promise    func(*kgo.Record, error) // the promise of every record the session produces
	// sessions counts the Kafka sessions Run started; sessionNow is the current one, for promises
	// that run on franz-go's goroutines.
	sessions   int64
	sessionNow atomic.Int64
	produce    produceState // what the open cycle's produces did, and whether outputs can be written
	counters   map[string]prometheus.Counter
	deadRing   deadLetterRing // the newest committed dead letters (recentdead.go)

	stores        []string // every store the operators declare
	cache         *pebble.Cache
	lastIdleCheck time.Time
	partitions    int32                   // of the source topic
	changelogIDs  map[string]kadm.TopicID // every changelog topic's id when the runtime started
	auth          authState               // the connection's security, and refusals of it (auth.go)
	mem           *memoryGuard            // the memory budget's plan and guard, from Run on
	// standby keeps the standby replicas (standby.go); nil without Config.StandbyReplicas.
	// standbyNudge asks for the group to be described again after a rebalance.
	standby      *standby.Replicas
	standbyNudge chan struct{}
	// globals are the pipeline's global tables, open while Run runs; tablePartitions each table
	// topic's partition count (prepareTopics); tablesRestoring, while not empty, says which global
	// table is being restored, for Readiness.
	globals         map[string]*table.Table
	tablePartitions map[string]int32
	tablesRestoring atomic.Value // string
	// memProbe and memCollect replace the guard's reading of the live heap and its collection
	// (tests).
	memProbe   func() int64
	memCollect func()
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
	m, err := newMetrics(cfg.Registerer, cfg.TransactionTimeout)
	if err != nil {
		return nil, fmt.Errorf("stream: register metrics: %w", err)
	}
	r := &Runtime{
		cfg:       cfg,
		pipeline:  p,
		log:       cfg.Logger.With("app", p.Name),
		m:         m,
		tasks:     map[int32]*Task{},
		restoring: map[int32]*restoring{},
		counters:  map[string]prometheus.Counter{},
		auth:      newAuthState(),
		// One pending nudge is enough: the next description sees every rebalance before it.
		standbyNudge: make(chan struct{}, 1),
	}
	// Series that exist from the start, at zero, so that rates and alerts have data before the
	// first dead letter or late record.
	for _, reason := range reasons {
		m.deadLetters.WithLabelValues(string(reason))
	}
	m.memoryBudget.Set(float64(cfg.MemoryBudget))
	for _, op := range p.Operators {
		if _, ok := op.(LateReporter); ok {
			m.late.WithLabelValues(op.Name())
		}
	}
	r.stores = p.storeNames()
	if len(r.stores) > 0 || len(p.Tables()) > 0 {
		// A pipeline with tables keeps state even without stateful operators: the task store
		// holds the table versions each cycle read, and the tables live on disk.
		if cfg.StateDir == "" {
			return nil, fmt.Errorf("stream: the pipeline keeps state (stores %v, %d tables) but Config.StateDir is empty", r.stores, len(p.Tables()))
		}
		r.stores = withTaskStore(r.stores)
	}
	for _, tb := range p.Tables() {
		m.tableMisses.WithLabelValues(tb.Name)
	}
	return r, nil
}

// Ready reports whether the runtime has joined its group, every assigned partition's state is
// restored and its task processing, and its outputs can be written (no output topic is missing).
// Readiness says why not.
func (r *Runtime) Ready() bool {
	ready, _ := r.Readiness()
	return ready
}

// Readiness is Ready with the reason when not ready, in words an operator can act on; the admin
// server's /readyz answers with it.
//
// A cycle that has been open for more than a third of the transaction timeout (the broker stalls,
// a flush or commit does not finish) also makes it not ready: the instance is stuck, whatever it
// owns.
func (r *Runtime) Readiness() (ready bool, why string) {
	if since := r.cycleSince.Load(); since != 0 {
		if open := time.Since(time.Unix(0, since)); open > r.cfg.TransactionTimeout/3 {
			return false, fmt.Sprintf("the commit cycle has been open for %s (transaction timeout %s): the brokers are slow or unreachable",
				open.Round(time.Second), r.cfg.TransactionTimeout)
		}
	}
	if r.produce.blocked.Load() {
		return false, "an output topic is missing: no cycle commits until it exists again"
	}
	if r.ready.Load() {
		return true, ""
	}
	if s, _ := r.tablesRestoring.Load().(string); s != "" {
		return false, s
	}
	if !r.joined.Load() {
		return false, "not yet a member of the consumer group " + r.pipeline.Name
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.taskErr != nil {
		return false, "stopping: " + r.taskErr.Error()
	}
	if len(r.restoring) > 0 {
		ps := make([]int32, 0, len(r.restoring))
		var remaining int64
		for p, rs := range r.restoring {
			ps = append(ps, p)
			remaining += rs.remaining.Load()
		}
		sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
		return false, fmt.Sprintf("restoring the state of partitions %v from the changelogs: %d offsets to go in the stores being replayed", ps, remaining)
	}
	return false, "between sessions with the brokers"
}

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

// balancers are the group balancers, in order of preference. The established one is
// cooperative-sticky for a single input and, with a labels topic, the range balancer, which gives
// every member the same partition numbers of both topics (they have the same partition count), so
// that a label reaches the task that scored its event; the price is eager rebalancing.
//
// With standby replicas the warm-aware standby.Balancer comes first: it keeps labels partitions
// with their source partitions too, is cooperative, and gives a lost partition to the member with
// its most advanced replica (state/standby doc.go). The established balancer stays second, so that
// a group in a rolling upgrade, whose older members do not offer the new protocol, agrees on it
// until every member does.
func (r *Runtime) balancers() []kgo.GroupBalancer {
	established := kgo.CooperativeStickyBalancer()
	if r.pipeline.Labels != nil {
		established = kgo.RangeBalancer()
	}
	if r.cfg.StandbyReplicas == 0 || len(r.stores) == 0 {
		return []kgo.GroupBalancer{established}
	}
	warm := standby.NewBalancer(standby.BalancerConfig{
		Topics:   r.inputTopics(),
		Replicas: r.cfg.StandbyReplicas,
		Warm: func() map[int32]int64 {
			if r.standby == nil {
				return nil
			}
			return r.standby.Positions()
		},
	})
	return []kgo.GroupBalancer{warm, established}
}

// initFormats prepares the pipeline's formats (a format the config compiler prepared is left as it
// is: Format.Init does nothing the second time).
func initFormats(p *Pipeline) error {
	for _, f := range []Format{p.Source.Format, labelsFormat(p)} {
		if f == nil {
			continue
		}
		if err := f.Init(); err != nil {
			return err
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
	mem := r.mem.plan
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
		kgo.Balancers(r.balancers()...),
		kgo.BlockRebalanceOnPoll(),
		kgo.InstanceID(r.cfg.InstanceID),
		kgo.SessionTimeout(r.cfg.SessionTimeout),
		kgo.RebalanceTimeout(r.cfg.RebalanceTimeout),
		kgo.TransactionalID(r.transactionalID()),
		kgo.TransactionTimeout(r.cfg.TransactionTimeout),
		kgo.ProducerBatchMaxBytes(r.cfg.producerBatchMaxBytes()),
		kgo.FetchMaxPartitionBytes(r.cfg.fetchMaxPartitionBytes()),
		kgo.FetchMaxWait(250 * time.Millisecond),
		// A produce right after EndTxn can meet CONCURRENT_TRANSACTIONS while the broker still writes
		// the previous transaction's markers (KIP-890). franz-go retries it after its next metadata
		// update, which MetadataMinAge spaces out: at the default 5 s, one such retry stalled a whole
		// commit cycle for up to 5 s, a few times a minute under load. A quarter second bounds the
		// stall; metadata is still refreshed only when something asks for it.
		kgo.MetadataMinAge(250 * time.Millisecond),
		// The memory budget's shares of fetches and produces (memoryPlan).
		kgo.FetchMaxBytes(mem.fetchMaxBytes),
		kgo.MaxConcurrentFetches(mem.concurrentFetches),
		kgo.MaxBufferedBytes(mem.producerBytes),
		kgo.MaxBufferedRecords(mem.producerRecords),
		kgo.OnPartitionsAssigned(r.onAssigned),
		kgo.OnPartitionsRevoked(r.onRevoked),
		kgo.OnPartitionsLost(r.onLost),
		kgo.WithHooks(r.auth.watch),
	}
	return append(opts, r.cfg.ClientOpts...)
}

// Run runs the pipeline until ctx is cancelled or a fatal error occurs. On cancellation it ends the
// open cycle with a commit (bounded by ShutdownTimeout), closes every task and leaves; it returns nil
// after a clean shutdown. A fatal error (a failing operator, a failing state commit, a fenced
// producer, a broker that refuses the transaction, a record that cannot be produced: ErrProduce, a
// changelog topic deleted while running: ErrChangelogLost) aborts the open transaction and is
// returned, wrapped: the records of the aborted cycle are processed again by whichever instance owns
// their partitions next. A missing output topic is not fatal: no cycle commits until it exists again
// (Config.CreateTopics recreates it), and Ready reports false meanwhile. Brokers that keep refusing
// the connection's TLS or SASL, at start-up or later, end Run after Config.AuthRetryTimeout with an
// *AuthError.
func (r *Runtime) Run(ctx context.Context) error {
	if r.ran.Swap(true) {
		return ErrStopped
	}
	r.ctx, r.cancel = context.WithCancel(context.WithoutCancel(ctx))
	defer r.cancel()

	if err := r.prepareTopics(ctx); err != nil {
		return err
	}
	if err := r.pipeline.registerOutputs(ctx); err != nil {
		return err
	}
	r.mem = r.newMemoryGuard()
	defer setMemoryLimit(r.mem.plan, r.log)()
	if len(r.stores) > 0 {
		r.cache = pebble.NewCache(r.cfg.StateCacheBytes)
		defer r.cache.Unref()
	}
	// The global tables are restored before the instance joins the group, and closed after the
	// last session's tasks.
	closeTables, err := r.openGlobalTables(ctx)
	if err != nil {
		return err
	}
	defer closeTables()
	// Stopped after the sessions, whose tasks it must not race, and before the cache is released.
	defer r.startStandby(ctx)()
	r.log.Info("runtime started", "source", r.pipeline.Source.Topic, "group", r.pipeline.Name,
		"transactional_id", r.transactionalID(), "commit_interval", r.cfg.CommitInterval)
	var (
		runErr  error
		outage  outageLog
		backoff = 250 * time.Millisecond
	)
	for {
		var memberID string
		memberID, runErr = r.session(ctx)
		if ctx.Err() != nil {
			break
		}
		again, err := r.restartable(ctx, runErr, memberID)
		if !again {
			runErr = err
			break
		}
		r.m.sessionRestarts.Inc()
		outage.warn(r, runErr, backoff)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		if ctx.Err() != nil {
			runErr = nil // stopped while waiting for the broker; nothing is open
			break
		}
		backoff = min(2*backoff, 10*time.Second)
	}
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

// session runs one Kafka session: a transactional consumer-group client, fenced before anything
// else, the poll loop, then the shutdown of what it opened. It returns the loop's error and the
// group member id the session had, for Run to decide whether to start another (see outage.go).
func (r *Runtime) session(ctx context.Context) (memberID string, err error) {
	sess, err := kgo.NewGroupTransactSession(r.clientOpts()...)
	if err != nil {
		return "", fmt.Errorf("stream: kafka client: %w", err)
	}
	r.sess = sess
	// The promises of this session's records only. Closing the previous session's client failed
	// its buffered records (ErrClientClosed), and a promise that ran late must not fail a cycle of
	// this one: that cycle was abandoned with its session.
	r.produce.reset()
	r.sessions++
	gen := r.sessions
	r.promise = func(rec *kgo.Record, err error) {
		if r.sessionNow.Load() == gen {
			r.onProduced(rec, err)
		}
	}
	r.sessionNow.Store(gen)
	if err := r.fence(ctx); err != nil {
		sess.Close()
		if ctx.Err() != nil {
			return "", nil // stopped before it started
		}
		return "", err
	}
	runErr := r.loop(ctx)
	memberID, _ = sess.Client().GroupMetadata()

	// Shutdown order: the loop has ended the last cycle (committed or aborted); now close the tasks,
	// then the client (which leaves the group unless membership is static).
	r.ready.Store(false)
	if err := r.closeTasks(); err != nil && runErr == nil {
		runErr = err
	}
	sess.CloseAllowingRebalance()
	return memberID, runErr
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
