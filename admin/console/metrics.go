package console

import (
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// counters are the figures the console reads from the registry /metrics serves, summed over the
// labels it does not show.
type counters struct {
	// flat holds the counters rates are taken of, by key: "consumed/<topic>", "produced/<topic>",
	// "dead/<reason>", "late/<operator>", "restored", "txn/<result>".
	flat map[string]float64
	// restoring is streamd_restoring_partitions; remaining streamd_restore_remaining_offsets.
	restoring float64
	remaining map[storePartition]float64
}

type storePartition struct {
	Store     string
	Partition int32
}

// gather reads the counters out of g.
func gather(g prometheus.Gatherer) (counters, error) {
	c := counters{flat: map[string]float64{}, remaining: map[storePartition]float64{}}
	mfs, err := g.Gather()
	if err != nil && len(mfs) == 0 {
		return c, err
	}
	for _, mf := range mfs {
		name := mf.GetName()
		for _, m := range mf.GetMetric() {
			switch name {
			case "streamd_records_consumed_total":
				c.flat["consumed/"+label(m, "topic")] += m.GetCounter().GetValue()
			case "streamd_records_produced_total":
				c.flat["produced/"+label(m, "topic")] += m.GetCounter().GetValue()
			case "streamd_dead_letters_total":
				c.flat["dead/"+label(m, "reason")] += m.GetCounter().GetValue()
			case "streamd_late_records_total":
				c.flat["late/"+label(m, "operator")] += m.GetCounter().GetValue()
			case "streamd_restored_records_total":
				c.flat["restored"] += m.GetCounter().GetValue()
			case "streamd_transactions_total":
				c.flat["txn/"+label(m, "result")] += m.GetCounter().GetValue()
			case "streamd_restoring_partitions":
				c.restoring = m.GetGauge().GetValue()
			case "streamd_restore_remaining_offsets":
				p, _ := strconv.ParseInt(label(m, "partition"), 10, 32)
				c.remaining[storePartition{label(m, "store"), int32(p)}] = m.GetGauge().GetValue()
			}
		}
	}
	return c, nil
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// rates are the counters of the last sample and their rates since the one before.
type rates struct {
	total map[string]float64
	rate  map[string]float64
}

// update takes a new sample dt after the previous one. A counter that went down (it cannot, unless
// a registry was replaced) restarts its rate at 0.
func (r *rates) update(c counters, dt time.Duration) {
	rate := map[string]float64{}
	if r.total != nil && dt > 0 {
		for k, v := range c.flat {
			if d := v - r.total[k]; d > 0 {
				rate[k] = d / dt.Seconds()
			}
		}
	}
	r.total, r.rate = maps.Clone(c.flat), rate
}

// sum adds the totals and rates of the keys with prefix.
func (r *rates) sum(prefix string) (total, rate float64) {
	for k, v := range r.total {
		if strings.HasPrefix(k, prefix) {
			total += v
			rate += r.rate[k]
		}
	}
	return total, rate
}

// apply writes the figures into the graph's nodes and edges: an input's records consumed, the
// decode stage's records decoded, an output's records produced, an operator's records written
// (the sum of its edges), and an edge the records it carries.
func (r *rates) apply(g *Graph) {
	byID := map[string]*Node{}
	for i := range g.Nodes {
		byID[g.Nodes[i].ID] = &g.Nodes[i]
	}
	source := ""
	for _, n := range g.Nodes {
		if n.ID == idSource {
			source = n.Topic
		}
	}
	for i := range g.Nodes {
		n := &g.Nodes[i]
		switch n.Kind {
		case KindInput:
			n.Total, n.Rate = r.total["consumed/"+n.Topic], r.rate["consumed/"+n.Topic]
		case KindStage:
			n.Total, n.Rate = r.total["consumed/"+source], r.rate["consumed/"+source]
		case KindOutput:
			n.Total, n.Rate = r.total["produced/"+n.Topic], r.rate["produced/"+n.Topic]
		case KindOperator:
			n.Total, n.Rate = 0, 0
		}
	}
	for i := range g.Edges {
		e := &g.Edges[i]
		from, to := byID[e.From], byID[e.To]
		switch {
		case from == nil || to == nil:
			e.Rate = 0
		case to.Kind == KindOutput && from.Kind == KindOperator && to.Detail == "late records":
			e.Rate = r.rate["late/"+from.Label] // one late topic may serve several operators
		case to.Kind == KindOutput:
			e.Rate = to.Rate
		default:
			e.Rate = from.Rate
		}
		if from != nil && from.Kind == KindOperator && to != nil && to.Kind == KindOutput {
			from.Rate += e.Rate
			if to.Detail == "late records" {
				from.Total += r.total["late/"+from.Label]
			} else {
				from.Total += to.Total
			}
		}
	}
}

// restoreProgress follows the changelog offsets each store and partition has left to replay: the
// largest count seen since it began restoring is its start, so progress is 1 - remaining/start.
type restoreProgress struct {
	restoring float64
	remaining map[storePartition]float64
	initial   map[storePartition]float64
	restored  float64
}

func (p *restoreProgress) update(c counters) {
	p.restoring, p.remaining, p.restored = c.restoring, c.remaining, c.flat["restored"]
	for k, v := range c.remaining {
		if v == 0 {
			delete(p.initial, k) // done: a later restore of the same partition starts afresh
			continue
		}
		p.initial[k] = max(p.initial[k], v)
	}
	for k := range p.initial {
		if _, ok := c.remaining[k]; !ok {
			delete(p.initial, k) // the partition was revoked
		}
	}
}
