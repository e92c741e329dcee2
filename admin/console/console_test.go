package console

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamd/streamd/admin"
	"github.com/streamd/streamd/model"
	"github.com/streamd/streamd/stream"
)

const token = "0123456789abcdef0123456789abcdef"

type fakeModels struct{ v model.View }

func (f *fakeModels) View() model.View { return f.v }

type fakeDead []stream.DeadLetterInfo

func (f fakeDead) RecentDeadLetters() []stream.DeadLetterInfo { return f }

type fakeWatermarks struct{}

func (fakeWatermarks) Watermarks() []stream.WatermarkInfo { return []stream.WatermarkInfo{} }

// serve starts an admin server requiring token with the console on it.
func serve(t *testing.T, opts Options) (*Console, string) {
	t.Helper()
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	s := admin.New(admin.Options{Listen: "127.0.0.1:0", Token: token, Gatherer: reg, Registerer: reg, Logger: slog.New(slog.DiscardHandler)})
	s.HandleInspection(admin.Inspection{Watermarks: fakeWatermarks{}})
	c.Register(s)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return c, "http://" + s.Addr()
}

func get(t *testing.T, url, auth string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// counterRegistry is a registry with the runtime's counters the console reads.
func counterRegistry() (*prometheus.Registry, *prometheus.CounterVec, *prometheus.CounterVec) {
	reg := prometheus.NewRegistry()
	consumed := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "streamd_records_consumed_total"}, []string{"topic"})
	produced := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "streamd_records_produced_total"}, []string{"topic"})
	reg.MustRegister(consumed, produced)
	return reg, consumed, produced
}

func TestConsoleAuth(t *testing.T) {
	reg, _, _ := counterRegistry()
	_, base := serve(t, Options{Gatherer: reg})
	for _, tc := range []struct {
		path, auth string
		want       int
		body       string
	}{
		{"/", "", http.StatusOK, `<script src="/console/console.js">`},
		{"/console/console.js", "", http.StatusOK, "sessionStorage"},
		{"/console/console.css", "", http.StatusOK, ".card"},
		{"/console/vendor/uplot/uPlot.iife.min.js", "", http.StatusOK, "uPlot"},
		{"/console/vendor/uplot/LICENSE", "", http.StatusOK, "MIT"},
		{"/v1/pipeline", "", http.StatusUnauthorized, ""},
		{"/v1/quality", "", http.StatusUnauthorized, ""},
		{"/v1/deadletters", "", http.StatusUnauthorized, ""},
		{"/v1/restore", "", http.StatusUnauthorized, ""},
		{"/v1/pipeline", token, http.StatusOK, `"nodes"`},
		{"/console/missing.js", "", http.StatusUnauthorized, ""},
	} {
		t.Run(tc.path+" "+tc.auth, func(t *testing.T) {
			code, h, body := get(t, base+tc.path, tc.auth)
			if code != tc.want || !strings.Contains(body, tc.body) {
				t.Fatalf("GET %s: %d, body %.80q; want %d with %q", tc.path, code, body, tc.want, tc.body)
			}
			if code == http.StatusOK && strings.HasPrefix(tc.path, "/console/") || tc.path == "/" {
				if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
					t.Fatalf("GET %s: Content-Security-Policy %q lets the page load from elsewhere", tc.path, csp)
				}
			}
		})
	}
	// The page loads nothing from another origin: it works offline.
	for _, p := range []string{"/", "/console/console.js", "/console/console.css"} {
		_, _, body := get(t, base+p, "")
		if strings.Contains(body, "http://") && !strings.Contains(body, "http://www.w3.org/2000/svg") || strings.Contains(body, "https://") {
			t.Errorf("%s refers to another origin", p)
		}
	}
}

func deadLetters() fakeDead {
	return fakeDead{{Time: time.Unix(10, 0), Topic: "in", Partition: 1, Offset: 7, Reason: stream.ReasonMalformedJSON,
		Detail: "unexpected end of input", Key: []byte("card-42"), Value: []byte(`{"amount": 12, "secret": "s3`), ValueBytes: 29}}
}

func TestDeadLetterContents(t *testing.T) {
	for _, shown := range []bool{false, true} {
		t.Run(map[bool]string{false: "hidden by default", true: "shown when enabled"}[shown], func(t *testing.T) {
			reg, _, _ := counterRegistry()
			_, base := serve(t, Options{Gatherer: reg, DeadLetters: deadLetters(), DeadLetterContents: shown})
			code, _, body := get(t, base+"/v1/deadletters", token)
			if code != http.StatusOK {
				t.Fatalf("%d %s", code, body)
			}
			var got struct {
				ContentsShown bool            `json:"contents_shown"`
				Recent        []deadLetterRow `json:"recent"`
			}
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatal(err)
			}
			if len(got.Recent) != 1 || got.Recent[0].Reason != "malformed_json" || got.Recent[0].Offset != 7 || got.Recent[0].ValueBytes != 29 {
				t.Fatalf("recent %+v", got.Recent)
			}
			if got.ContentsShown != shown || strings.Contains(body, "card-42") != shown || strings.Contains(body, "s3") != shown {
				t.Fatalf("contents_shown %v, want %v; body: %s", got.ContentsShown, shown, body)
			}
		})
	}
}

func TestQualityHistory(t *testing.T) {
	m := &fakeModels{}
	view := func(version int64, champion int, auc float64, drifts float64) model.View {
		v := model.View{Drifts: drifts}
		for i, name := range []string{"a", "b"} {
			v.Models = append(v.Models, model.ModelView{Name: name, Version: version, Champion: i == champion,
				Evaluation: []model.MetricView{{Metric: "auc", Rolling: auc + float64(i)/10, Examples: 100}}})
		}
		return v
	}
	reg, _, _ := counterRegistry()
	m.v = model.View{} // New samples once: no model replica yet
	c, err := New(Options{Gatherer: reg, Models: []ModelViewer{m}, History: MinHistory})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Unix(1000, 0)
	for i := range 3 * MinHistory {
		v := view(1, 0, 0.5+float64(i)/100, 0)
		switch {
		case i >= 20 && i < 25:
			v = view(2, 0, 0.5+float64(i)/100, 0) // replicas merged
		case i >= 25:
			v = view(2, 1, 0.5+float64(i)/100, 1) // drift: b promoted
		}
		m.v = v
		c.sample(start.Add(time.Duration(i) * time.Second))
	}
	series, events := c.quality.snapshot()
	if len(series) != 2 {
		t.Fatalf("%d series, want auc of a and b", len(series))
	}
	for _, s := range series {
		if len(s.Points) != MinHistory {
			t.Fatalf("%s/%s kept %d points, want the last %d", s.Model, s.Metric, len(s.Points), MinHistory)
		}
		last := s.Points[len(s.Points)-1]
		if want := float64(start.Add(time.Duration(3*MinHistory-1) * time.Second).UnixMilli()); last[0] != want {
			t.Fatalf("newest point at %v, want %v", last[0], want)
		}
	}
	kinds := map[string]int{}
	for _, e := range events {
		kinds[e.Kind]++
	}
	// version 1 → 2 for both models at sample 20, drift and b's promotion at 25; the first
	// adoption (version 0, no replica, to 1) is not a change.
	if kinds[EventVersion] != 2 || kinds[EventDrift] != 1 || kinds[EventPromotion] != 1 {
		t.Fatalf("events %+v", events)
	}
}

func TestPipelineRates(t *testing.T) {
	reg, consumed, produced := counterRegistry()
	g := Graph{App: "app", Nodes: []Node{
		{ID: idSource, Kind: KindInput, Topic: "in"}, {ID: idValidate, Kind: KindStage},
		{ID: "op:clean", Kind: KindOperator, Label: "clean"}, {ID: "topic:out", Kind: KindOutput, Topic: "out", Detail: "clean events"},
	}, Edges: []Edge{{From: idSource, To: idValidate}, {From: idValidate, To: "op:clean"}, {From: "op:clean", To: "topic:out"}}}
	c, err := New(Options{Gatherer: reg, Graph: g})
	if err != nil {
		t.Fatal(err)
	}
	t0 := c.sampled
	consumed.WithLabelValues("in").Add(200)
	produced.WithLabelValues("out").Add(100)
	c.sample(t0.Add(2 * time.Second))
	rate := map[string]float64{}
	for _, n := range c.graph.Nodes {
		rate[n.ID] = n.Rate
	}
	if rate[idSource] != 100 || rate[idValidate] != 100 || rate["topic:out"] != 50 || rate["op:clean"] != 50 {
		t.Fatalf("rates %v, want source and decode 100/s, clean and its topic 50/s", rate)
	}
	if c.graph.Edges[2].Rate != 50 {
		t.Fatalf("edge clean→out %v/s, want 50", c.graph.Edges[2].Rate)
	}
}

func TestOptionsValidate(t *testing.T) {
	o := Options{SampleInterval: time.Millisecond, History: 1}
	o.EnsureDefaults()
	err := o.Validate()
	for _, want := range []string{"Gatherer", "SampleInterval 1ms", "History 1"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v, want it to name %s", err, want)
		}
	}
}

func TestRestoreProgress(t *testing.T) {
	reg := prometheus.NewRegistry()
	restoring := prometheus.NewGauge(prometheus.GaugeOpts{Name: "streamd_restoring_partitions"})
	remaining := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "streamd_restore_remaining_offsets"}, []string{"store", "partition"})
	reg.MustRegister(restoring, remaining)
	restoring.Set(1)
	remaining.WithLabelValues("win", "3").Set(1000)
	c, err := New(Options{Gatherer: reg})
	if err != nil {
		t.Fatal(err)
	}
	remaining.WithLabelValues("win", "3").Set(250)
	c.sample(time.Now())
	c.mu.Lock()
	p := c.restore
	c.mu.Unlock()
	k := storePartition{"win", 3}
	if p.restoring != 1 || p.remaining[k] != 250 || p.initial[k] != 1000 {
		t.Fatalf("restore %+v, want 250 of 1000 left on win/3", p)
	}
	remaining.WithLabelValues("win", "3").Set(0) // done
	restoring.Set(0)
	c.sample(time.Now())
	if _, ok := c.restore.initial[k]; ok {
		t.Fatal("a finished restore keeps its start; the next restore of the partition would show a wrong progress")
	}
}
