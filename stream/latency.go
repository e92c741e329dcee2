package stream

import (
	"math"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// latencyBuckets are the upper bounds, in seconds, of the end-to-end latency histograms: 1 ms to
// about 4.5 minutes, doubling.
var latencyBuckets = prometheus.ExponentialBuckets(0.001, 2, 19)

// latencyHistogram is a Prometheus histogram fed in bulk: tasks count their records' latencies into
// plain arrays on their own goroutines, and a committed cycle adds them here once, so that the
// per-record cost is a bucket search and an increment, not an atomic per observation. It is a
// prometheus.Collector.
type latencyHistogram struct {
	desc   *prometheus.Desc
	mu     sync.Mutex
	counts []uint64 // per bucket, not cumulative; the last one is +Inf
	sum    float64
	count  uint64
}

func newLatencyHistogram(name, help string) *latencyHistogram {
	return &latencyHistogram{
		desc:   prometheus.NewDesc(name, help, nil, nil),
		counts: make([]uint64, len(latencyBuckets)+1),
	}
}

func (h *latencyHistogram) Describe(ch chan<- *prometheus.Desc) { ch <- h.desc }

func (h *latencyHistogram) Collect(ch chan<- prometheus.Metric) {
	h.mu.Lock()
	buckets := make(map[float64]uint64, len(latencyBuckets))
	var cum uint64
	for i, ub := range latencyBuckets {
		cum += h.counts[i]
		buckets[ub] = cum
	}
	m := prometheus.MustNewConstHistogram(h.desc, h.count, h.sum, buckets)
	h.mu.Unlock()
	ch <- m
}

func (h *latencyHistogram) add(l *latencyCounts) {
	if l.count == 0 {
		return
	}
	h.mu.Lock()
	for i, c := range l.counts {
		h.counts[i] += c
	}
	h.sum += l.sum
	h.count += l.count
	h.mu.Unlock()
}

// latencyCounts is a task's private histogram of one cycle.
type latencyCounts struct {
	counts []uint64
	sum    float64
	count  uint64
}

func (l *latencyCounts) observe(seconds float64, n uint64) {
	if l.counts == nil {
		l.counts = make([]uint64, len(latencyBuckets)+1)
	}
	if seconds < 0 || math.IsNaN(seconds) {
		seconds = 0
	}
	i := sort.SearchFloat64s(latencyBuckets, seconds) // first bound >= seconds
	l.counts[i] += n
	l.sum += seconds * float64(n)
	l.count += n
}

func (l *latencyCounts) reset() {
	clear(l.counts)
	l.sum, l.count = 0, 0
}

// cycleTimes remembers, for the open cycle, when each batch of records arrived and the event time of
// every accepted event, so that at commit their latency to the committed output is known exactly.
type cycleTimes struct {
	arrivals   []arrival
	eventTimes []int64 // Unix ms
}

type arrival struct {
	at time.Time
	n  int
}

func (c *cycleTimes) reset() {
	c.arrivals = c.arrivals[:0]
	c.eventTimes = c.eventTimes[:0]
}

// settleLatencies turns the cycle's times into latencies as of commit.
func (t *Task) settleLatencies(commit time.Time) {
	for _, a := range t.times.arrivals {
		t.arrivalLatency.observe(commit.Sub(a.at).Seconds(), uint64(a.n))
	}
	ms := commit.UnixMilli()
	for _, et := range t.times.eventTimes {
		t.eventLatency.observe(float64(ms-et)/1000, 1)
	}
	t.times.reset()
}
