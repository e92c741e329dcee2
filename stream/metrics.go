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
	m := &metrics{
		consumed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "streamd_records_consumed_total",
			Help: "Source records processed in committed transactions, by topic.",
		}, []string{"topic"}),
		produced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "streamd_records_produced_total",
			Help: "Records produced in committed transactions, by destination topic (outputs and dead letters).",
		}, []string{"topic"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "streamd_dead_letters_total",
			Help: "Records sent to the dead-letter topic in committed transactions, by reason.",
		}, []string{"reason"}),
		transactions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "streamd_transactions_total",
			Help: "Kafka transactions ended, by result (committed or aborted).",
		}, []string{"result"}),
		commitDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "streamd_commit_duration_seconds",
			Help:    "Time to end a commit cycle: barrier, flush, offset commit and EndTxn.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14), // 1 ms to ~8 s
		}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "streamd_consumer_lag_records",
			Help: "Records between the last fetched offset and the partition's high watermark, by assigned source partition.",
		}, []string{"topic", "partition"}),
		assigned: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "streamd_assigned_partitions",
			Help: "Source partitions this instance currently owns.",
		}),
		rebalances: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "streamd_partition_changes_total",
			Help: "Partitions assigned to, revoked from or lost by this instance.",
		}, []string{"change"}),
		restoreDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "streamd_restore_duration_seconds",
			Help:    "Time to restore one store of one partition from its changelog.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 18), // 1 ms to ~2 min
		}),
		restoring: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "streamd_restoring_partitions",
			Help: "Assigned source partitions whose state is being restored from the changelogs; they process once it is.",
		}),
		restoreRemaining: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "streamd_restore_remaining_offsets",
			Help: "Changelog offsets still to replay, by store and owned partition: counts down while the partition restores, then 0 (compaction may leave fewer records than offsets).",
		}, []string{"store", "partition"}),
		restoredRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "streamd_restored_records_total",
			Help: "Changelog records replayed into local state.",
		}),
		restoredBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "streamd_restored_bytes_total",
			Help: "Bytes of keys and values replayed from changelogs into local state.",
		}),
		standbyPartitions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "streamd_standby_partitions",
			Help: "Source partitions of other instances whose state this instance keeps warm (state.standby_replicas).",
		}),
		standbyLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "streamd_standby_lag_offsets",
			Help: "Changelog offsets a standby replica is behind the changelog's last stable offset, by store and partition, as of its last fetch.",
		}, []string{"store", "partition"}),
		tableLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "streamd_table_lag_offsets",
			Help: "Offsets a table partition held here is behind its topic's last stable offset, by table and partition, as of its last fetch (0 once restored and caught up).",
		}, []string{"table", "partition"}),
		tableApplied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "streamd_table_records_applied_total",
			Help: "Table records applied to local tables after their restore, by table.",
		}, []string{"table"}),
		tableMisses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "streamd_table_misses_total",
			Help: "Events in committed transactions that found no row in a table (their table fields are missing values), by table.",
		}, []string{"table"}),
		standbyPromotions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "streamd_standby_promotions_total",
			Help: "Partitions assigned to this instance whose state was a standby replica: only the changelog's tail was replayed.",
		}),
		watermarkLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "streamd_watermark_lag_seconds",
			Help: "Wall clock minus the partition's event-time watermark: how far event time trails real time.",
		}, []string{"topic", "partition"}),
		openWindows: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "streamd_open_windows",
			Help: "Windows (or, for sliding windows and sessions, keys with state) held open, by partition.",
		}, []string{"topic", "partition"}),
		stateBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "streamd_state_bytes",
			Help: "Disk space of the partition's state database.",
		}, []string{"topic", "partition"}),
		arrivalLatency: newLatencyHistogram("streamd_arrival_to_commit_seconds",
			"From a record's arrival in streamd to the commit of the transaction holding its outputs."),
		eventLatency: newLatencyHistogram("streamd_event_to_commit_seconds",
			"From an accepted event's event time to the commit of the transaction holding its outputs."),
		late: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "streamd_late_records_total",
			Help: "Records that arrived after their windows closed (sent to the late topic), by operator.",
		}, []string{"operator"}),
		changelogRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "streamd_changelog_records_total",
			Help: "Changelog records produced in committed transactions (one per changed key per cycle).",
		}),
		sessionRestarts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "streamd_session_restarts_total",
			Help: "Kafka sessions started again after the broker was unreachable or stalled; each abandons the open cycle, whose input is processed again.",
		}),
		produceFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "streamd_produce_failures_total",
			Help: "Records whose produce failed, by destination topic; each failure aborts its cycle, whose input is processed again.",
		}, []string{"topic"}),
		txnDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "streamd_transaction_duration_seconds",
			Help:    "Time from the start of a commit cycle's transaction to its end, committed or aborted; the broker aborts one that outlives kafka.transaction_timeout, which is one of the buckets.",
			Buckets: txnBuckets(txnTimeout),
		}),
		memoryBudget: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "streamd_memory_budget_bytes",
			Help: "The configured memory budget of the process (memory.budget).",
		}),
		heapHighWater: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "streamd_memory_heap_high_water_bytes",
			Help: "The live Go heap above which fetching pauses, from the memory budget.",
		}),
		heapLive: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "streamd_memory_heap_bytes",
			Help: "The live Go heap found by the last garbage collection, as the memory guard last read it.",
		}),
		cycleBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "streamd_memory_cycle_bytes",
			Help: "Memory the last commit cycle held in its tasks at its end: outputs not yet produced, state writes not yet committed.",
		}),
		memoryPaused: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "streamd_memory_paused",
			Help: "1 while fetching is paused because the live heap is over the high-water mark of the memory budget.",
		}),
		memoryPauses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "streamd_memory_pauses_total",
			Help: "Times fetching paused because the live heap crossed the high-water mark of the memory budget.",
		}),
	}
	for _, c := range []prometheus.Collector{m.txnDuration, m.memoryBudget, m.heapHighWater, m.heapLive,
		m.cycleBytes, m.memoryPaused, m.memoryPauses, m.consumed, m.produced, m.deadLetters, m.transactions,
		m.commitDuration, m.lag, m.assigned, m.rebalances, m.restoreDuration, m.restoring, m.restoreRemaining, m.restoredRecords,
		m.restoredBytes, m.standbyPartitions, m.standbyLag, m.standbyPromotions, m.tableLag, m.tableApplied, m.tableMisses, m.changelogRecords, m.late, m.watermarkLag, m.openWindows, m.stateBytes,
		m.arrivalLatency, m.eventLatency, m.produceFailures, m.sessionRestarts} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
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
