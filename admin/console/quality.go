package console

import (
	"math"
	"sort"
	"time"

	"github.com/streamd/streamd/model"
)

// Event kinds marked on the quality chart.
const (
	EventVersion   = "version"   // a model's version changed (replicas merged, or a new model adopted)
	EventPromotion = "promotion" // another model became the champion
	EventDrift     = "drift"     // a drift detector fired
)

// Event is one mark on the quality chart.
type Event struct {
	TimeMs int64  `json:"time_ms"`
	Kind   string `json:"kind"`
	Model  string `json:"model"`
	Detail string `json:"detail"`
}

type seriesKey struct{ model, metric string }

// quality is the bounded history of every model's rolling evaluation metrics: a ring of sample
// times, and for each (model, metric) a ring of values aligned with it (NaN where the model had no
// labelled example yet).
type quality struct {
	times  []int64 // Unix ms, ring of cap(times)
	next   int
	n      int
	series map[seriesKey][]float64
	order  []seriesKey
	events []Event // oldest first, at most maxEvents

	last    map[string]model.ModelView // per model, the previous sample's view
	drifts  []float64                  // per operator, the previous sample's drift count
	current []model.ModelView          // the latest views, for the model table
}

func newQuality(history int) quality {
	return quality{times: make([]int64, history), series: map[seriesKey][]float64{}, last: map[string]model.ModelView{}}
}

// add records one sample of the model operators' views.
func (q *quality) add(now time.Time, views []model.View) {
	at := now.UnixMilli()
	slot := q.next
	q.times[slot] = at
	q.next = (q.next + 1) % len(q.times)
	q.n = min(q.n+1, len(q.times))
	for _, s := range q.series {
		s[slot] = math.NaN()
	}
	q.current = q.current[:0]
	if len(q.drifts) != len(views) {
		q.drifts = make([]float64, len(views))
		for i, v := range views {
			q.drifts[i] = v.Drifts // detections before the first sample are not marked
		}
	}
	for i, v := range views {
		for _, m := range v.Models {
			q.current = append(q.current, m)
			for _, e := range m.Evaluation {
				if e.Examples == 0 || math.IsNaN(e.Rolling) || math.IsInf(e.Rolling, 0) {
					continue
				}
				k := seriesKey{m.Name, e.Metric}
				s, ok := q.series[k]
				if !ok {
					s = make([]float64, len(q.times))
					for j := range s {
						s[j] = math.NaN()
					}
					q.series[k] = s
					q.order = append(q.order, k)
					sort.Slice(q.order, func(a, b int) bool {
						if q.order[a].metric != q.order[b].metric {
							return q.order[a].metric < q.order[b].metric
						}
						return q.order[a].model < q.order[b].model
					})
				}
				s[slot] = e.Rolling
			}
			if prev, ok := q.last[m.Name]; ok {
				if m.Version != prev.Version && prev.Version != 0 { // 0: no replica had opened yet
					q.event(Event{TimeMs: at, Kind: EventVersion, Model: m.Name, Detail: versionDetail(prev.Version, m.Version)})
				}
				if m.Champion && !prev.Champion {
					q.event(Event{TimeMs: at, Kind: EventPromotion, Model: m.Name, Detail: m.Name + " is the champion"})
				}
			}
			q.last[m.Name] = m
		}
		if d := v.Drifts - q.drifts[i]; d > 0 {
			champ := ""
			for _, m := range v.Models {
				if m.Champion {
					champ = m.Name
				}
			}
			q.event(Event{TimeMs: at, Kind: EventDrift, Model: champ, Detail: countDetail(d, "drift detection")})
		}
		q.drifts[i] = v.Drifts
	}
}

func (q *quality) event(e Event) {
	if len(q.events) == maxEvents {
		q.events = append(q.events[:0], q.events[1:]...)
	}
	q.events = append(q.events, e)
}

// Series is one model's metric over time: points [time_ms, value], oldest first, only where the
// model had a value.
type Series struct {
	Model  string       `json:"model"`
	Metric string       `json:"metric"`
	Points [][2]float64 `json:"points"`
}

// snapshot returns the history, oldest first, and the events still inside it.
func (q *quality) snapshot() (series []Series, events []Event) {
	start := (q.next - q.n + len(q.times)) % len(q.times)
	oldest := int64(math.MaxInt64)
	if q.n > 0 {
		oldest = q.times[start]
	}
	series = []Series{}
	for _, k := range q.order {
		s := q.series[k]
		out := Series{Model: k.model, Metric: k.metric, Points: [][2]float64{}}
		for i := range q.n {
			j := (start + i) % len(q.times)
			if !math.IsNaN(s[j]) {
				out.Points = append(out.Points, [2]float64{float64(q.times[j]), s[j]})
			}
		}
		if len(out.Points) > 0 {
			series = append(series, out)
		}
	}
	events = []Event{}
	for _, e := range q.events {
		if e.TimeMs >= oldest {
			events = append(events, e)
		}
	}
	return series, events
}

func versionDetail(from, to int64) string {
	return "version " + itoa(from) + " → " + itoa(to)
}

func countDetail(n float64, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return itoa(int64(n)) + " " + what + "s"
}
