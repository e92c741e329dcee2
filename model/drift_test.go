package model

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamd/streamd/online"
	"github.com/streamd/streamd/stream"
	"github.com/streamd/streamd/stream/streamtest"
)

// syncBuffer is a log sink for a test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines(prefix string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, l := range strings.Split(s.b.String(), "\n") {
		if strings.Contains(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

func loggedDriver(t *testing.T, p *stream.Pipeline, log *syncBuffer) *driven {
	t.Helper()
	op := &captured{Operator: p.Operators[0].(*Operator)}
	p.Operators[0] = op
	sd, err := streamtest.NewDriver(p, streamtest.Config{StateDir: t.TempDir(), MaxOutOfOrderness: 2 * time.Second,
		Logger: slog.New(slog.NewTextHandler(log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	d := &driven{Driver: sd, op: op}
	t.Cleanup(func() { d.Close() })
	return d
}

type driftEvent struct {
	Model      string `json:"model"`
	Signal     string `json:"signal"`
	Direction  string `json:"direction"`
	Source     struct{ Offset int64 }
	EventTime  int64  `json:"event_time"`
	Action     string `json:"action"`
	Champion   string `json:"champion"`
	Result     string `json:"result"`
	Statistics struct {
		Window int64 `json:"window"`
		Before struct {
			Values int64
			Mean   float64
		}
		After struct {
			Values int64
			Mean   float64
		}
	} `json:"statistics"`
}

// TestDriftReported: the labels flip at event 1500 (the concept changes); ADWIN on the champion's
// error rate detects the rise after it and not before; each detection is logged (model,
// partition, source offset, event time, the detector's cut) with a line saying what the action
// did, counted per model, and written to the drift-events topic exactly once: with aborts and
// restarts the topic holds the same records as an uninterrupted run. With direction down the
// detections are falls (the relearning model recovering), with up rises.
func TestDriftReported(t *testing.T) {
	exs := genExamples(rand.New(rand.NewPCG(21, 21)), 4000)
	for i := range exs[1500:] {
		exs[1500+i].label = 1 - exs[1500+i].label
	}
	recs := labelled(exs)
	run := func(t *testing.T, dir string, commit, abort, restart int) ([]driftEvent, []string, *driven) {
		var log syncBuffer
		d := loggedDriver(t, binaryPipeline(t, []ModelSpec{{Name: "ftrl", Learner: online.FTRLSpec{Alpha: 0.5}}}, func(s *Spec) {
			s.Drift = DriftSpec{Detector: "adwin", Signal: "error", Direction: dir, Delta: 0.002, Topic: "drift"}
		}), &log)
		feed(t, d, recs, commit, abort, restart)
		var evs []driftEvent
		for _, r := range d.Outputs("drift") {
			var e driftEvent
			if err := json.Unmarshal(r.Value, &e); err != nil {
				t.Fatal(err)
			}
			// Outputs carry processing time as their record timestamp (the producer's, none here)
			// and the event time in a header.
			var eventTime string
			for _, h := range r.Headers {
				if h.Key == stream.HeaderEventTime {
					eventTime = string(h.Value)
				}
			}
			if string(r.Key) != "ftrl" || eventTime != strconv.FormatInt(e.EventTime, 10) || !r.Timestamp.IsZero() {
				t.Errorf("drift event key %q, timestamp %v, event time header %q: %s", r.Key, r.Timestamp, eventTime, r.Value)
			}
			evs = append(evs, e)
		}
		return evs, log.lines("drift"), d
	}
	t.Run("up", func(t *testing.T) {
		evs, lines, d := run(t, "up", 100, 0, 0)
		if len(evs) == 0 {
			t.Fatal("no drift detected after the flip")
		}
		for _, e := range evs {
			if e.Source.Offset < 1500 || e.Model != "ftrl" || e.Signal != "error" || e.Action != "alert" || e.Champion != "ftrl" ||
				!(e.Statistics.After.Mean > e.Statistics.Before.Mean) || e.Statistics.Window <= 0 {
				t.Errorf("drift event %+v", e)
			}
			if e.EventTime != exs[e.Source.Offset].ts {
				t.Errorf("drift event at offset %d names event time %d, the event's is %d", e.Source.Offset, e.EventTime, exs[e.Source.Offset].ts)
			}
		}
		// Two log lines per detection: what was detected, and what the action did.
		if len(lines) != 2*len(evs) {
			t.Fatalf("%d log lines for %d detections:\n%s", len(lines), len(evs), strings.Join(lines, "\n"))
		}
		for i, e := range evs {
			det, act := lines[2*i], lines[2*i+1]
			if !strings.Contains(det, `msg="model: drift detected"`) || !strings.Contains(det, "model=ftrl") || !strings.Contains(det, "partition=0") ||
				!strings.Contains(det, "source_offset="+itoa(e.Source.Offset)) || !strings.Contains(det, "event_time=") || !strings.Contains(det, `before`) {
				t.Errorf("detection log line %s", det)
			}
			if !strings.Contains(act, "drift action alert: nothing changed") {
				t.Errorf("action log line %s", act)
			}
		}
		if v := modelView(t, d); v.Models[0].Drifts != float64(len(evs)) || v.Drifts != float64(len(evs)) {
			t.Errorf("counted %v (total %v), want %d", v.Models[0].Drifts, v.Drifts, len(evs))
		}
		t.Logf("%d detections, the first at offset %d: %+v", len(evs), evs[0].Source.Offset, evs[0])
		// Exactly once across aborts and restarts.
		again, _, _ := run(t, "up", 37, 3, 4)
		a, _ := json.Marshal(evs)
		b, _ := json.Marshal(again)
		if string(a) != string(b) {
			t.Errorf("with aborts and restarts the drift events differ:\n%s\nwant\n%s", b, a)
		}
	})
	t.Run("actions", func(t *testing.T) {
		for _, c := range []struct{ action, want string }{
			{"reset", "drift action reset: ftrl forgot the "},
			{"promote_best_challenger", "drift action promote_best_challenger: "},
		} {
			var log syncBuffer
			d := loggedDriver(t, binaryPipeline(t, []ModelSpec{{Name: "ftrl", Learner: online.FTRLSpec{Alpha: 0.5}}, {Name: "tree", Learner: online.TreeSpec{}}}, func(s *Spec) {
				s.Drift = DriftSpec{Detector: "adwin", Signal: "error", Delta: 0.002, Action: c.action}
			}), &log)
			feed(t, d, recs, 100, 0, 0)
			acts := log.lines("drift action")
			if len(acts) == 0 || len(acts) != len(log.lines("drift detected")) {
				t.Fatalf("%s: action lines %v", c.action, acts)
			}
			for _, l := range acts {
				if !strings.Contains(l, c.want) || c.action == "promote_best_challenger" && !strings.Contains(l, "rolling loss") {
					t.Errorf("%s: %s", c.action, l)
				}
			}
			t.Logf("%s: %s", c.action, acts[0])
		}
	})
	t.Run("down", func(t *testing.T) {
		evs, _, _ := run(t, "down", 100, 0, 0)
		for _, e := range evs {
			if !(e.Statistics.After.Mean < e.Statistics.Before.Mean) {
				t.Errorf("direction down reported a rise: %+v", e)
			}
		}
		t.Logf("%d detections (falls)", len(evs))
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
