package admin

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// serverMetrics are the admin server's own metrics (docs/operations.md lists them). They exist
// without a Registerer too, unregistered, so that the code counting them needs no nil checks.
type serverMetrics struct {
	limiter        atomic.Pointer[connLimiter] // set by Start
	evicted        prometheus.Counter
	refused        prometheus.Counter
	unauthorized   prometheus.Counter
	reloadFailures *prometheus.CounterVec
}

func newServerMetrics(reg prometheus.Registerer) *serverMetrics {
	dropped := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "streamd_admin_connections_dropped_total",
		Help: "Admin connections closed to keep within admin.max_connections: evicted (the longest idle, to admit a new one) or refused (a new one, every connection being busy).",
	}, []string{"reason"})
	m := &serverMetrics{
		evicted: dropped.WithLabelValues("evicted"),
		refused: dropped.WithLabelValues("refused"),
		unauthorized: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "streamd_admin_unauthorized_requests_total",
			Help: "Admin requests refused with 401: no or a wrong bearer token, or no verified client certificate.",
		}),
		reloadFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "streamd_admin_reload_failures_total",
			Help: "Changed admin token or TLS files that did not load; the previous token or certificate stays in use.",
		}, []string{"what"}),
	}
	m.reloadFailures.WithLabelValues("token")
	m.reloadFailures.WithLabelValues("tls")
	open := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "streamd_admin_connections",
		Help: "Admin connections open, at most admin.max_connections.",
	}, func() float64 {
		if l := m.limiter.Load(); l != nil {
			return float64(l.openConns())
		}
		return 0
	})
	if reg != nil {
		reg.MustRegister(open, dropped, m.unauthorized, m.reloadFailures)
	}
	return m
}
