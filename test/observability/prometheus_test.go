package observability

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// promServer is a Prometheus server started for one test, with its own config and data directory.
type promServer struct {
	url  string
	proc *proc
}

// startPrometheus starts a real Prometheus scraping target every second, with the repo's alerting
// rules loaded.
func startPrometheus(t *testing.T, job, target string) *promServer {
	t.Helper()
	bin := requireTool(t, "prometheus", "the live dashboard test needs a real Prometheus server")
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 900ms
  evaluation_interval: 1s
rule_files:
  - %q
scrape_configs:
  - job_name: %s
    static_configs:
      - targets: [%q]
`, repoPath("configs", "prometheus", "alerts.yml"), job, target)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := startProc(t, "prometheus", nil, bin,
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--storage.tsdb.retention.time=1h",
		"--web.listen-address="+addr,
		"--log.level=warn")
	s := &promServer{url: "http://" + addr, proc: p}
	waitHTTP(t, s.url+"/-/ready", 30*time.Second, p)
	return s
}

type promResponse struct {
	Status    string          `json:"status"`
	Error     string          `json:"error"`
	ErrorType string          `json:"errorType"`
	Data      json.RawMessage `json:"data"`
}

func (s *promServer) api(path string, params url.Values) (json.RawMessage, error) {
	code, body, err := get(s.url + path + "?" + params.Encode())
	if err != nil {
		return nil, err
	}
	var r promResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("%s: HTTP %d: %s", path, code, body)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("%s: %s: %s", path, r.ErrorType, r.Error)
	}
	return r.Data, nil
}

// queryRange runs a range query and returns the number of series and of finite samples in its
// result.
func (s *promServer) queryRange(expr string, start, end time.Time, step time.Duration) (series, finite int, err error) {
	data, err := s.api("/api/v1/query_range", url.Values{
		"query": {expr},
		"start": {strconv.FormatFloat(float64(start.UnixMilli())/1000, 'f', 3, 64)},
		"end":   {strconv.FormatFloat(float64(end.UnixMilli())/1000, 'f', 3, 64)},
		"step":  {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)},
	})
	if err != nil {
		return 0, 0, err
	}
	var m struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Values [][2]any `json:"values"`
		} `json:"result"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return 0, 0, err
	}
	for _, r := range m.Result {
		for _, v := range r.Values {
			s, _ := v[1].(string)
			f, err := strconv.ParseFloat(s, 64)
			if err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
				finite++
			}
		}
	}
	return len(m.Result), finite, nil
}

// seriesWithLabel counts the series matching selector in [start, end] that carry label.
func (s *promServer) seriesWithLabel(selector, label string, start, end time.Time) (int, error) {
	data, err := s.api("/api/v1/series", url.Values{
		"match[]": {selector},
		"start":   {strconv.FormatInt(start.Unix(), 10)},
		"end":     {strconv.FormatInt(end.Unix()+1, 10)},
	})
	if err != nil {
		return 0, err
	}
	var series []map[string]string
	if err := json.Unmarshal(data, &series); err != nil {
		return 0, err
	}
	n := 0
	for _, s := range series {
		if s[label] != "" {
			n++
		}
	}
	return n, nil
}

// liveQuery is a dashboard query (or variable) ready to run against the test's Prometheus.
type liveQuery struct {
	name     string
	expr     string // PromQL, or the selector of a label_values variable
	label    string // for variables: the label whose values it lists
	ok       bool
	lastNote string
}

// TestDashboardQueriesReturnData runs streamd under load (`streamd demo`: an in-process broker, the
// generator at 3000 records/s and the example pipeline, with short windows and out-of-order events
// so that windows fire and late records occur within seconds), has a real Prometheus scrape it
// every second, and requires every query of the committed Grafana dashboard, and every variable,
// to return data from Prometheus' HTTP API. Also, on the same live streamd: promtool lints a
// scrape, the scrape target is healthy, the alerting rules evaluate, and docs/operations.md
// documents every streamd metric exported.
func TestDashboardQueriesReturnData(t *testing.T) {
	requireTool(t, "promtool", "the live scrape is linted with promtool check metrics")
	d := loadDashboard(t)

	// The example pipeline with 5 s tumbling windows, so that windows close (and late records
	// arrive) within the test; everything else as shipped.
	cfg := string(readRepoFile(t, "configs", "fraud-pipeline.yaml"))
	for old, repl := range map[string]string{"size: 1m": "size: 5s", "allowed_lateness: 10s": "allowed_lateness: 1s"} {
		if !strings.Contains(cfg, old) {
			t.Fatalf("configs/fraud-pipeline.yaml no longer contains %q: update this test's window settings", old)
		}
		cfg = strings.Replace(cfg, old, repl, 1)
	}
	cfgPath := filepath.Join(t.TempDir(), "pipeline.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}

	adminAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	const job = "streamd"
	prom := startPrometheus(t, job, adminAddr) // first, so that it sees the counters from zero
	start := time.Now()
	demo := startProc(t, "streamd-demo", nil, streamdBin, "demo",
		"-admin", adminAddr, "-duration", "120s", "-rate", "3000/s", "-out-of-order", "8s",
		"-config", cfgPath, "-log-level", "warn")
	metricsURL := "http://" + adminAddr + "/metrics"
	waitHTTP(t, metricsURL, 30*time.Second, demo)
	if !strings.Contains(demo.output(), adminAddr) {
		t.Fatalf("the demo does not serve its admin endpoints on %s (port taken?); its output:\n%s", adminAddr, demo.tail(20))
	}

	vars := map[string]string{
		"__rate_interval": "5s", // Grafana: max(4 × scrape interval, step + scrape interval)
		"__interval":      "1s",
		"__range":         "5m",
		"job":             job,
		"instance":        strings.ReplaceAll(regexp.QuoteMeta(adminAddr), `\`, `\\`), // as Grafana escapes it
	}
	var qs []*liveQuery
	for _, q := range d.queries() {
		e, err := substitute(q.Expr, vars)
		if err != nil {
			t.Fatal(err)
		}
		qs = append(qs, &liveQuery{name: q.String(), expr: e})
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		sel, label, err := parseLabelValues(v.queryText())
		if err != nil {
			t.Fatalf("variable %s: %v", v.Name, err)
		}
		if sel, err = substitute(sel, vars); err != nil {
			t.Fatal(err)
		}
		qs = append(qs, &liveQuery{name: "variable $" + v.Name + ": " + v.queryText(), expr: sel, label: label})
	}

	// Poll until every query has data, or give up. A query has data when its range query over the
	// run returns a series with a finite sample (what a Grafana panel draws); a variable when
	// Prometheus knows a series with its label.
	deadline := start.Add(90 * time.Second)
	fams := map[string]bool{}
	for {
		time.Sleep(2 * time.Second)
		if demo.exited() {
			t.Fatalf("streamd demo exited early (%v):\n%s", demo.err, demo.tail(30))
		}
		if f, _, err := scrape(metricsURL); err == nil {
			fams = map[string]bool{}
			for name := range f {
				fams[name] = true
			}
		}
		now := time.Now()
		missing := 0
		for _, q := range qs {
			if q.ok {
				continue
			}
			if q.label != "" {
				n, err := prom.seriesWithLabel(q.expr, q.label, start, now)
				q.ok, q.lastNote = err == nil && n > 0, fmt.Sprintf("%d series with label %s, err %v", n, q.label, err)
			} else {
				series, finite, err := prom.queryRange(q.expr, start, now, time.Second)
				q.ok, q.lastNote = err == nil && finite > 0, fmt.Sprintf("%d series, %d finite samples, err %v", series, finite, err)
				if err != nil && strings.Contains(err.Error(), "bad_data") {
					t.Fatalf("%s: Prometheus refuses the query: %v", q.name, err)
				}
			}
			if !q.ok {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if now.After(deadline) {
			for _, q := range qs {
				if !q.ok {
					t.Errorf("no data after %s: %s (%s)", now.Sub(start).Round(time.Second), q.name, q.lastNote)
				}
			}
			t.FailNow()
		}
	}
	checked := 0
	for _, q := range qs {
		if q.ok {
			checked++
		}
	}
	t.Logf("%d of %d dashboard queries and variables returned data after %s of load", checked, len(qs), time.Since(start).Round(time.Second))

	// Live data, not only a burst at the start: after minLoad of steady load, every panel query
	// must also have data in the last 10 s.
	const minLoad = 30 * time.Second
	if d := minLoad - time.Since(start); d > 0 {
		time.Sleep(d)
	}
	now := time.Now()
	for _, q := range qs {
		if !q.ok || q.label != "" {
			continue
		}
		if series, finite, err := prom.queryRange(q.expr, now.Add(-10*time.Second), now, time.Second); err != nil || finite == 0 {
			t.Errorf("no data in the last 10 s of %s of load: %s (%d series, err %v)", time.Since(start).Round(time.Second), q.name, series, err)
		}
	}

	t.Run("scrape_target_healthy", func(t *testing.T) {
		data, err := prom.api("/api/v1/targets", url.Values{"state": {"active"}})
		if err != nil {
			t.Fatal(err)
		}
		var tg struct {
			ActiveTargets []struct {
				Labels    map[string]string `json:"labels"`
				Health    string            `json:"health"`
				LastError string            `json:"lastError"`
			} `json:"activeTargets"`
		}
		if err := json.Unmarshal(data, &tg); err != nil {
			t.Fatal(err)
		}
		if len(tg.ActiveTargets) != 1 {
			t.Fatalf("%d active targets, want 1", len(tg.ActiveTargets))
		}
		if a := tg.ActiveTargets[0]; a.Health != "up" || a.LastError != "" {
			t.Errorf("scrape of %s: health %q, last error %q", adminAddr, a.Health, a.LastError)
		}
	})

	t.Run("promtool_check_metrics", func(t *testing.T) {
		_, body, err := scrape(metricsURL)
		if err != nil {
			t.Fatal(err)
		}
		promtool := requireTool(t, "promtool", "linting the scrape")
		cmd := execCommand(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(string(body))
		out, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "" {
			t.Errorf("promtool check metrics on a scrape of %s reports problems (exit %v):\n%s", metricsURL, err, out)
		} else {
			t.Logf("promtool check metrics: no problems in %d bytes, %d families", len(body), len(fams))
		}
	})

	t.Run("alert_rules_evaluate", func(t *testing.T) {
		data, err := prom.api("/api/v1/rules", nil)
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			Groups []struct {
				Rules []struct {
					Name           string `json:"name"`
					Health         string `json:"health"`
					LastError      string `json:"lastError"`
					LastEvaluation string `json:"lastEvaluation"`
				} `json:"rules"`
			} `json:"groups"`
		}
		if err := json.Unmarshal(data, &r); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, g := range r.Groups {
			for _, rule := range g.Rules {
				n++
				if rule.Health != "ok" || rule.LastError != "" {
					t.Errorf("rule %s: health %q, error %q", rule.Name, rule.Health, rule.LastError)
				}
			}
		}
		if n == 0 {
			t.Fatal("Prometheus loaded no rules from configs/prometheus/alerts.yml")
		}
		// Under a healthy load, none of the critical alerts may be pending or firing.
		data, err = prom.api("/api/v1/alerts", nil)
		if err != nil {
			t.Fatal(err)
		}
		var a struct {
			Alerts []struct {
				Labels map[string]string `json:"labels"`
				State  string            `json:"state"`
			} `json:"alerts"`
		}
		if err := json.Unmarshal(data, &a); err != nil {
			t.Fatal(err)
		}
		var active []string
		for _, al := range a.Alerts {
			active = append(active, fmt.Sprintf("%s (%s, %s)", al.Labels["alertname"], al.Labels["severity"], al.State))
			if al.Labels["severity"] == "critical" {
				t.Errorf("alert %s is %s on a healthy streamd", al.Labels["alertname"], al.State)
			}
		}
		t.Logf("%d alerting rules evaluated without error; pending or firing: %v", n, active)
	})

	t.Run("operations_doc_lists_every_metric", func(t *testing.T) {
		doc := string(readRepoFile(t, "docs", "operations.md"))
		var names []string
		for name := range fams {
			if strings.HasPrefix(name, "streamd_") {
				names = append(names, name)
			}
		}
		sort.Strings(names)
		for _, name := range names {
			if !strings.Contains(doc, "`"+name+"`") {
				t.Errorf("docs/operations.md does not document %s (exported by streamd)", name)
			}
		}
		for _, name := range documentedMetrics(doc) {
			if !fams[name] && !(isModelMetric(name) && !fams["streamd_model_version"]) && conditionalMetrics[name] == "" && !strings.HasPrefix(name, "streamd_table_") {
				t.Errorf("docs/operations.md documents %s, which streamd does not export", name)
			}
		}
	})

	if err := demo.stop(t, 30*time.Second); err != nil {
		t.Errorf("streamd demo did not stop cleanly: %v\n%s", err, demo.tail(20))
	}
}

var docMetricRe = regexp.MustCompile("^\\| `(streamd_[a-z0-9_]+)`")

// documentedMetrics are the metrics in the tables of docs/operations.md.
func documentedMetrics(doc string) []string {
	var out []string
	for _, line := range strings.Split(doc, "\n") {
		if m := docMetricRe.FindStringSubmatch(line); m != nil {
			out = append(out, m[1])
		}
	}
	return out
}

// conditionalMetrics have series only in pipelines the scraped demo is not, each with the reason; the
// tables' metrics (streamd_table_*) too, in a pipeline with tables. TestConditionalMetricsExist keeps
// the list from outliving the metrics.
var conditionalMetrics = map[string]string{
	"streamd_model_versions_refused_total": "an offline model",
	"streamd_model_swaps_total":            "an offline model",
	"streamd_standby_lag_offsets":          "state.standby_replicas while replicas exist",
	"streamd_model_class_recall":           "a multiclass model",
	"streamd_training_rows_total":          "outputs.training",
}

func isModelMetric(name string) bool {
	for _, m := range modelMetrics {
		if m == name {
			return true
		}
	}
	return false
}

// TestPrometheusConfig checks the Prometheus config for docker compose and the alerting rules with
// promtool: the config, the rules' syntax, and the rules' unit tests (configs/prometheus/alerts_test.yml).
func TestPrometheusConfig(t *testing.T) {
	promtool := requireTool(t, "promtool", "it checks the Prometheus config and rules")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// promtool checks that the scrape job's credentials file exists; in Compose it is the secret
	// /run/secrets/streamd_admin_token. Check a copy of the directory with a token file in its place.
	dir := t.TempDir()
	src := repoPath("configs", "prometheus")
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == "prometheus.yml" {
			const secret = "/run/secrets/streamd_admin_token"
			if !bytes.Contains(b, []byte("credentials_file: "+secret)) {
				t.Errorf("configs/prometheus/prometheus.yml: the streamd job does not scrape with credentials_file: %s", secret)
			}
			token := filepath.Join(dir, "streamd_admin_token")
			if err := os.WriteFile(token, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			b = bytes.ReplaceAll(b, []byte(secret), []byte(token))
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{
		{"check", "config", "prometheus.yml"},
		{"check", "rules", "alerts.yml"},
		{"test", "rules", "alerts_test.yml"},
	} {
		out, err := runTool(ctx, dir, promtool, args...)
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestConditionalMetricsExist: each metric excused from the demo's scrape is still defined in
// streamd's source, so the excuse cannot hide a metric that was removed but is still documented.
func TestConditionalMetricsExist(t *testing.T) {
	var src strings.Builder
	err := filepath.WalkDir(repoPath(), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "test") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			src.Write(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, why := range conditionalMetrics {
		if !strings.Contains(src.String(), `"`+name+`"`) {
			t.Errorf("%s (excused from the scrape: only with %s) is not defined in streamd's source", name, why)
		}
	}
}
