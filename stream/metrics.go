package stream

import (
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the runtime's Prometheus collectors. Names follow DESIGN.md: a streamd_ prefix, base
// units, and labels from a small fixed set (topic, partition, reason, result), never from records.
type metrics struct {
	consumed       *prometheus.CounterVec
	produced       *prometheus.CounterVec
	deadLetters    *prometheus.CounterVec
	transactions   *prometheus.CounterVec
	commitDuration prometheus.Histogram
	lag            *prometheus.GaugeVec
	assigned       prometheus.Gauge
	rebalances     *prometheus.CounterVec
	// sessionRestarts counts Kafka sessions started again after a broker outage (see outage.go).
	sessionRestarts prometheus.Counter

	restoreDuration prometheus.Histogram
	// restoring counts the assigned partitions whose state is being restored (not yet processing);
	// restoreRemaining is, per store and partition, the changelog offsets still to replay.
	restoring        prometheus.Gauge
	restoreRemaining *prometheus.GaugeVec
	restoredRecords  prometheus.Counter
	restoredBytes    prometheus.Counter
	// The standby replicas (standby.go): how many partitions are followed, each store's lag
	// behind its changelog, and the promotions of a replica to a task.
	standbyPartitions prometheus.Gauge
	standbyLag        *prometheus.GaugeVec
	standbyPromotions prometheus.Counter
	// The tables (tables.go): each partition's lag behind its topic, the records applied after
	// the restore, and the events that found no row.
	tableLag         *prometheus.GaugeVec
	tableApplied     *prometheus.CounterVec
	tableMisses      *prometheus.CounterVec
	changelogRecords prometheus.Counter
	late             *prometheus.CounterVec
	watermarkLag     *prometheus.GaugeVec
	openWindows      *prometheus.GaugeVec
	stateBytes       *prometheus.GaugeVec
	arrivalLatency   *latencyHistogram
	eventLatency     *latencyHistogram

	committed prometheus.Counter
	aborted   prometheus.Counter

	produceFailures *prometheus.CounterVec

	// The memory budget (memory.go).
	txnDuration   prometheus.Histogram
	memoryBudget  prometheus.Gauge
	heapHighWater prometheus.Gauge
	heapLive      prometheus.Gauge
	cycleBytes    prometheus.Gauge
	memoryPaused  prometheus.Gauge
	memoryPauses  prometheus.Counter
}

// newMetrics registers the runtime's metrics on reg. The transaction timeout adds boundaries to
// the transaction duration histogram, so that the transactions that came near it or outlived it
// can be counted.
func newMetrics(reg prometheus.Registerer, txnTimeout time.Duration) (*metrics, error) {
	r := &registrar{reg: reg}
	m := &metrics{
		consumed: r.counterVec("streamd_records_consumed_total",
			"Source records processed in committed transactions, by topic.", "topic"),
		produced: r.counterVec("streamd_records_produced_total",
			"Records produced in committed transactions, by destination topic (outputs and dead letters).", "topic"),
		deadLetters: r.counterVec("streamd_dead_letters_total",
			"Records sent to the dead-letter topic in committed transactions, by reason.", "reason"),
		transactions: r.counterVec("streamd_transactions_total",
			"Kafka transactions ended, by result (committed or aborted).", "result"),
		commitDuration: r.histogram("streamd_commit_duration_seconds",
			"Time to end a commit cycle: barrier, flush, offset commit and EndTxn.",
			prometheus.ExponentialBuckets(0.001, 2, 14)), // 1 ms to ~8 s
		lag: r.gaugeVec("streamd_consumer_lag_records",
			"Records between the last fetched offset and the partition's high watermark, by assigned source partition.", "topic", "partition"),
		assigned: r.gauge("streamd_assigned_partitions",
			"Source partitions this instance currently owns."),
		rebalances: r.counterVec("streamd_partition_changes_total",
			"Partitions assigned to, revoked from or lost by this instance.", "change"),
		restoreDuration: r.histogram("streamd_restore_duration_seconds",
			"Time to restore one store of one partition from its changelog.",
			prometheus.ExponentialBuckets(0.001, 2, 18)), // 1 ms to ~2 min
		restoring: r.gauge("streamd_restoring_partitions",
			"Assigned source partitions whose state is being restored from the changelogs; they process once it is."),
		restoreRemaining: r.gaugeVec("streamd_restore_remaining_offsets",
			"Changelog offsets still to replay, by store and owned partition: counts down while the partition restores, then 0 (compaction may leave fewer records than offsets).", "store", "partition"),
		restoredRecords: r.counter("streamd_restored_records_total",
			"Changelog records replayed into local state."),
		restoredBytes: r.counter("streamd_restored_bytes_total",
			"Bytes of keys and values replayed from changelogs into local state."),
		standbyPartitions: r.gauge("streamd_standby_partitions",
			"Source partitions of other instances whose state this instance keeps warm (state.standby_replicas)."),
		standbyLag: r.gaugeVec("streamd_standby_lag_offsets",
			"Changelog offsets a standby replica is behind the changelog's last stable offset, by store and partition, as of its last fetch.", "store", "partition"),
		standbyPromotions: r.counter("streamd_standby_promotions_total",
			"Partitions assigned to this instance whose state was a standby replica: only the changelog's tail was replayed."),
		tableLag: r.gaugeVec("streamd_table_lag_offsets",
			"Offsets a table partition held here is behind its topic's last stable offset, by table and partition, as of its last fetch (0 once restored and caught up).", "table", "partition"),
		tableApplied: r.counterVec("streamd_table_records_applied_total",
			"Table records applied to local tables after their restore, by table.", "table"),
		tableMisses: r.counterVec("streamd_table_misses_total",
			"Events in committed transactions that found no row in a table (their table fields are missing values), by table.", "table"),
		watermarkLag: r.gaugeVec("streamd_watermark_lag_seconds",
			"Wall clock minus the partition's event-time watermark: how far event time trails real time.", "topic", "partition"),
		openWindows: r.gaugeVec("streamd_open_windows",
			"Windows (or, for sliding windows and sessions, keys with state) held open, by partition.", "topic", "partition"),
		stateBytes: r.gaugeVec("streamd_state_bytes",
			"Disk space of the partition's state database.", "topic", "partition"),
		arrivalLatency: register(r, newLatencyHistogram("streamd_arrival_to_commit_seconds",
			"From a record's arrival in streamd to the commit of the transaction holding its outputs.")),
		eventLatency: register(r, newLatencyHistogram("streamd_event_to_commit_seconds",
			"From an accepted event's event time to the commit of the transaction holding its outputs.")),
		late: r.counterVec("streamd_late_records_total",
			"Records that arrived after their windows closed (sent to the late topic), by operator.", "operator"),
		changelogRecords: r.counter("streamd_changelog_records_total",
			"Changelog records produced in committed transactions (one per changed key per cycle)."),
		sessionRestarts: r.counter("streamd_session_restarts_total",
			"Kafka sessions started again after the broker was unreachable or stalled; each abandons the open cycle, whose input is processed again."),
		produceFailures: r.counterVec("streamd_produce_failures_total",
			"Records whose produce failed, by destination topic; each failure aborts its cycle, whose input is processed again.", "topic"),
		txnDuration: r.histogram("streamd_transaction_duration_seconds",
			"Time from the start of a commit cycle's transaction to its end, committed or aborted; the broker aborts one that outlives kafka.transaction_timeout, which is one of the buckets.",
			txnBuckets(txnTimeout)),
		memoryBudget: r.gauge("streamd_memory_budget_bytes",
			"The configured memory budget of the process (memory.budget)."),
		heapHighWater: r.gauge("streamd_memory_heap_high_water_bytes",
			"The live Go heap above which fetching pauses, from the memory budget."),
		heapLive: r.gauge("streamd_memory_heap_bytes",
			"The live Go heap found by the last garbage collection, as the memory guard last read it."),
		cycleBytes: r.gauge("streamd_memory_cycle_bytes",
			"Memory the last commit cycle held in its tasks at its end: outputs not yet produced, state writes not yet committed."),
		memoryPaused: r.gauge("streamd_memory_paused",
			"1 while fetching is paused because the live heap is over the high-water mark of the memory budget."),
		memoryPauses: r.counter("streamd_memory_pauses_total",
			"Times fetching paused because the live heap crossed the high-water mark of the memory budget."),
	}
	if r.err != nil {
		return nil, r.err
	}
	m.committed = m.transactions.WithLabelValues("committed")
	m.aborted = m.transactions.WithLabelValues("aborted")
	return m, nil
}

func (m *metrics) lagGauge(topic string, partition int32) prometheus.Gauge {
	return m.lag.WithLabelValues(topic, strconv.Itoa(int(partition)))
}

func (m *metrics) dropLag(topic string, partition int32) {
	p := strconv.Itoa(int(partition))
	m.lag.DeleteLabelValues(topic, p)
	m.watermarkLag.DeleteLabelValues(topic, p)
	m.openWindows.DeleteLabelValues(topic, p)
	m.stateBytes.DeleteLabelValues(topic, p)
	m.restoreRemaining.DeletePartialMatch(prometheus.Labels{"partition": p})
}

// txnBuckets are 1 ms to ~8 s in powers of two, and a third, half, once and twice the transaction
// timeout.
func txnBuckets(timeout time.Duration) []float64 {
	b := prometheus.ExponentialBuckets(0.001, 2, 14)
	for _, f := range []float64{1.0 / 3, 0.5, 1, 2} {
		b = append(b, timeout.Seconds()*f)
	}
	slices.Sort(b)
	return slices.Compact(b)
}

// registrar makes the runtime's collectors and registers each as it makes it, so that no metric
// is made and left unregistered; the first refusal is kept in err (newMetrics reports it).
type registrar struct {
	reg prometheus.Registerer
	err error
}

// register registers c on r and returns it.
func register[C prometheus.Collector](r *registrar, c C) C {
	if err := r.reg.Register(c); err != nil && r.err == nil {
		r.err = err
	}
	return c
}

func (r *registrar) counter(name, help string) prometheus.Counter {
	return register(r, prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help}))
}

func (r *registrar) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return register(r, prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels))
}

func (r *registrar) gauge(name, help string) prometheus.Gauge {
	return register(r, prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help}))
}

func (r *registrar) gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	return register(r, prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels))
}

func (r *registrar) histogram(name, help string, buckets []float64) prometheus.Histogram {
	return register(r, prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}))
}
