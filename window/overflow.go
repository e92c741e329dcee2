package window

import (
	"errors"
	"fmt"
	"math"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamd/streamd/stream"
)

// Overflow.
//
// A sum (or a mean, a variance...) of finite inputs can still overflow a float64: two amounts of
// 1e308 sum to +Inf. JSON has no Inf, and writing null would look like an empty window, so a
// result that is not finite is written as null *and named* in the result's "overflow" list, and
// counted in streamd_window_overflows_total{window}; a feature window counts the features it gives
// events that are not finite (the models then impute them, and the prediction names them in its
// own "overflow" list). The count follows the cycle: an aborted cycle's overflows are not counted.

// overflowMetric registers the operator's overflow counter once, on the first task opened with a
// registry.
func (o *Operator) overflowMetric(t *stream.Task) error {
	o.metricOnce.Do(func() {
		reg := t.Registerer()
		if reg == nil {
			return
		}
		c := prometheus.NewCounter(prometheus.CounterOpts{
			Name:        "streamd_window_overflows_total",
			Help:        "Window results and window features that overflowed a 64-bit float (±Inf), published as null and flagged.",
			ConstLabels: prometheus.Labels{"window": o.spec.Name},
		})
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				o.metricErr = fmt.Errorf("window %q: register metrics: %w", o.spec.Name, err)
				return
			}
			c = are.ExistingCollector.(prometheus.Counter)
		}
		o.overflows = c
	})
	return o.metricErr
}

// finite reports whether a result can be written as a JSON number.
func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// Committed implements stream.Committer: the cycle's overflows reach the metric.
func (p *processor) Committed(*stream.Task) {
	if p.overflowed > 0 && p.op.overflows != nil {
		p.op.overflows.Add(float64(p.overflowed))
	}
	p.overflowed = 0
}
