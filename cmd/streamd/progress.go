package main

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// snapshot is what the demo's progress line shows, read from the same registry /metrics serves, so
// the terminal and a dashboard can never disagree.
type snapshot struct {
	consumed     float64
	consumedBy   map[string]float64
	predictions  float64
	evaluation   map[string]float64 // "model/metric" → rolling value
	cold         map[string]float64 // model → predictions published cold
	warm         map[string]float64 // model → partitions where it is warm
	drifts       map[string]float64 // model → drift detections
	produced     map[string]float64
	deadLetters  map[string]float64
	lag          float64
	late         float64
	lateDead     float64 // late records sent to the dead letters (no late topic)
	committed    float64
	aborted      float64
	commitBucket []*dto.Bucket
	commitCount  uint64
	commitSum    float64
}

func readSnapshot(g prometheus.Gatherer) snapshot {
	s := snapshot{produced: map[string]float64{}, deadLetters: map[string]float64{}, consumedBy: map[string]float64{}, evaluation: map[string]float64{},
		cold: map[string]float64{}, warm: map[string]float64{}, drifts: map[string]float64{}}
	mfs, err := g.Gather()
	if err != nil {
		return s
	}
	label := func(m *dto.Metric, name string) string {
		for _, l := range m.GetLabel() {
			if l.GetName() == name {
				return l.GetValue()
			}
		}
		return ""
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "streamd_records_consumed_total":
				s.consumed += m.GetCounter().GetValue()
				s.consumedBy[label(m, "topic")] += m.GetCounter().GetValue()
			case "streamd_predictions_total":
				s.predictions += m.GetCounter().GetValue()
			case "streamd_model_evaluation":
				if label(m, "window") == "rolling" {
					s.evaluation[label(m, "model")+"/"+label(m, "metric")] = m.GetGauge().GetValue()
				}
			case "streamd_predictions_cold_total":
				s.cold[label(m, "model")] += m.GetCounter().GetValue()
			case "streamd_model_warm_partitions":
				s.warm[label(m, "model")] += m.GetGauge().GetValue()
			case "streamd_drift_detections_total":
				s.drifts[label(m, "model")] += m.GetCounter().GetValue()
			case "streamd_records_produced_total":
				s.produced[label(m, "topic")] += m.GetCounter().GetValue()
			case "streamd_dead_letters_total":
				s.deadLetters[label(m, "reason")] += m.GetCounter().GetValue()
			case "streamd_late_records_total":
				s.late += m.GetCounter().GetValue()
			case "streamd_consumer_lag_records":
				s.lag += m.GetGauge().GetValue()
			case "streamd_transactions_total":
				if label(m, "result") == "committed" {
					s.committed += m.GetCounter().GetValue()
				} else {
					s.aborted += m.GetCounter().GetValue()
				}
			case "streamd_commit_duration_seconds":
				s.commitBucket = m.GetHistogram().GetBucket()
				s.commitCount = m.GetHistogram().GetSampleCount()
				s.commitSum = m.GetHistogram().GetSampleSum()
			}
		}
	}
	s.lateDead = s.deadLetters["late_record"]
	return s
}

// quantile estimates a quantile from cumulative histogram buckets (the bucket's upper bound, as a
// dashboard's histogram_quantile would round up).
func quantile(buckets []*dto.Bucket, count uint64, q float64) float64 {
	if count == 0 {
		return math.NaN()
	}
	rank := uint64(math.Ceil(q * float64(count)))
	for _, b := range buckets {
		if b.GetCumulativeCount() >= rank {
			return b.GetUpperBound()
		}
	}
	return math.Inf(1)
}

func sumValues(m map[string]float64) float64 {
	var s float64
	for _, v := range m {
		s += v
	}
	return s
}

// reasons formats dead-letter counts by reason, largest first.
func reasons(m map[string]float64) string {
	type kv struct {
		k string
		v float64
	}
	var list []kv
	for k, v := range m {
		if v > 0 {
			list = append(list, kv{k, v})
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].v > list[j].v || (list[i].v == list[j].v && list[i].k < list[j].k) })
	var parts []string
	for _, e := range list {
		parts = append(parts, fmt.Sprintf("%s %.0f", e.k, e.v))
	}
	return strings.Join(parts, ", ")
}
