package observability

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

const dashboardFile = "configs/grafana/streamd-dashboard.json"

// modelsRow is the dashboard row whose panels show the model metrics (and only it does).
const modelsRow = "Models"

// modelMetrics are the metrics the Models row shows.
var modelMetrics = []string{
	"streamd_predictions_total",
	"streamd_model_version",
	"streamd_model_champion",
	"streamd_model_updates",
	"streamd_model_evaluation",
	"streamd_drift_detections_total",
	"streamd_model_merges_total",
	"streamd_labels_total",
	"streamd_labels_waiting",
}

// runtimeMetrics are the metrics streamd exports today, each of which the dashboard must show.
var runtimeMetrics = []string{
	"streamd_records_consumed_total",
	"streamd_records_produced_total",
	"streamd_dead_letters_total",
	"streamd_transactions_total",
	"streamd_commit_duration_seconds",
	"streamd_consumer_lag_records",
	"streamd_assigned_partitions",
	"streamd_partition_changes_total",
	"streamd_restore_duration_seconds",
	"streamd_restored_records_total",
	"streamd_restored_bytes_total",
	"streamd_restoring_partitions",
	"streamd_restore_remaining_offsets",
	"streamd_standby_partitions",
	"streamd_session_restarts_total",
	"streamd_produce_failures_total",
	"streamd_changelog_records_total",
	"streamd_late_records_total",
	"streamd_watermark_lag_seconds",
	"streamd_open_windows",
	"streamd_state_bytes",
	"streamd_arrival_to_commit_seconds",
	"streamd_event_to_commit_seconds",
	"streamd_build_info",
	"process_resident_memory_bytes",
	"go_memstats_heap_inuse_bytes",
	"go_gc_duration_seconds",
}

type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Refresh       string  `json:"refresh"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []variable `json:"list"`
	} `json:"templating"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	ID          int            `json:"id"`
	Type        string         `json:"type"`
	Title       string         `json:"title"`
	Description string         `json:"description"`
	Collapsed   bool           `json:"collapsed"`
	Datasource  *datasourceRef `json:"datasource"`
	GridPos     struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		RefID      string         `json:"refId"`
		Expr       string         `json:"expr"`
		Hide       bool           `json:"hide"`
		Datasource *datasourceRef `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

type variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Definition string          `json:"definition"`
	Datasource *datasourceRef  `json:"datasource"`
}

// queryText is a query variable's query: a string, or {"query": "..."} in newer Grafana versions.
func (v variable) queryText() string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var o struct {
		Query string `json:"query"`
	}
	_ = json.Unmarshal(v.Query, &o)
	return o.Query
}

// dashQuery is one PromQL query of the dashboard.
type dashQuery struct {
	Row, Panel, RefID, Expr string
}

func (q dashQuery) String() string {
	return fmt.Sprintf("%q / %q %s: %s", q.Row, q.Panel, q.RefID, q.Expr)
}

func (q dashQuery) inModelsRow() bool { return q.Row == modelsRow }

func loadDashboard(t testing.TB) *dashboard {
	t.Helper()
	var d dashboard
	if err := json.Unmarshal(readRepoFile(t, dashboardFile), &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return &d
}

// allPanels returns every panel that is not a row, with the title of the row it sits in: the row
// panel above it (rows that are expanded), or the row that holds it (collapsed rows).
func (d *dashboard) allPanels() (out []panel, rows []string) {
	top := append([]panel(nil), d.Panels...)
	sort.SliceStable(top, func(i, j int) bool {
		a, b := top[i].GridPos, top[j].GridPos
		return a.Y < b.Y || a.Y == b.Y && a.X < b.X
	})
	row := ""
	for _, p := range top {
		if p.Type == "row" {
			row = p.Title
			for _, c := range p.Panels {
				out, rows = append(out, c), append(rows, row)
			}
			continue
		}
		out, rows = append(out, p), append(rows, row)
	}
	return out, rows
}

func (d *dashboard) queries() []dashQuery {
	var qs []dashQuery
	ps, rows := d.allPanels()
	for i, p := range ps {
		for _, tg := range p.Targets {
			if tg.Hide || strings.TrimSpace(tg.Expr) == "" {
				continue
			}
			qs = append(qs, dashQuery{Row: rows[i], Panel: p.Title, RefID: tg.RefID, Expr: tg.Expr})
		}
	}
	return qs
}

var grafanaVar = regexp.MustCompile(`\$\{(\w+)(?::[\w]+)?\}|\$(\w+)|\[\[(\w+)\]\]`)

// substitute replaces Grafana's variables in a query; a variable that vars does not name is an
// error (a new dashboard variable must be taught to the tests).
func substitute(expr string, vars map[string]string) (string, error) {
	var missing []string
	out := grafanaVar.ReplaceAllStringFunc(expr, func(m string) string {
		sm := grafanaVar.FindStringSubmatch(m)
		name := sm[1] + sm[2] + sm[3]
		v, ok := vars[name]
		if !ok {
			missing = append(missing, name)
			return m
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("unknown Grafana variable(s) %v in %s", missing, expr)
	}
	return out, nil
}

// staticVars are values for the dashboard's variables that make its queries valid PromQL.
var staticVars = map[string]string{
	"__rate_interval": "20s", "__interval": "5s", "__range": "15m",
	"job": "streamd", "instance": ".+",
}

var (
	rangeSelector = regexp.MustCompile(`\[([^\]]*)\]`)
	metricName    = regexp.MustCompile(`\b((?:streamd|go|process)_[a-z0-9_]+)`)
)

func mentions(expr, metric string) bool {
	for _, m := range metricName.FindAllString(expr, -1) {
		if m == metric || strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_count"), "_sum") == metric {
			return true
		}
	}
	return false
}

// TestDashboardJSON checks the dashboard's structure: layout, datasource, descriptions, rate
// windows, and that every metric streamd exports has a panel.
func TestDashboardJSON(t *testing.T) {
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" || d.SchemaVersion == 0 {
		t.Errorf("uid %q, title %q, schemaVersion %d: all must be set", d.UID, d.Title, d.SchemaVersion)
	}

	// The datasource is a variable (type datasource, Prometheus), so the same file works when
	// provisioned and when imported into a Grafana whose Prometheus has another uid.
	var dsVar *variable
	vars := map[string]bool{"__rate_interval": true, "__interval": true, "__range": true}
	for i, v := range d.Templating.List {
		vars[v.Name] = true
		if v.Type == "datasource" {
			dsVar = &d.Templating.List[i]
		}
	}
	if dsVar == nil || dsVar.queryText() != "prometheus" {
		t.Fatalf("templating: no datasource variable of type prometheus")
	}
	wantDS := "${" + dsVar.Name + "}"
	for _, v := range d.Templating.List {
		if v.Type == "query" && (v.Datasource == nil || v.Datasource.UID != wantDS) {
			t.Errorf("variable %s: datasource %+v, want uid %s", v.Name, v.Datasource, wantDS)
		}
	}
	for name := range vars {
		if _, ok := staticVars[name]; !ok && name != dsVar.Name {
			t.Errorf("dashboard variable $%s: the tests do not know it (add it to staticVars and the live test's variables)", name)
		}
	}

	// Layout: unique ids, inside the 24-column grid, no overlaps.
	ids := map[int]string{}
	type rect struct {
		title      string
		x, y, w, h int
	}
	var rects []rect
	var walk func(ps []panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if other, dup := ids[p.ID]; dup {
				t.Errorf("panel id %d used by %q and %q", p.ID, other, p.Title)
			}
			ids[p.ID] = p.Title
			g := p.GridPos
			if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
				t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, g)
			}
			rects = append(rects, rect{p.Title, g.X, g.Y, g.W, g.H})
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for i := range rects {
		for j := i + 1; j < len(rects); j++ {
			a, b := rects[i], rects[j]
			if a.x < b.x+b.w && b.x < a.x+a.w && a.y < b.y+b.h && b.y < a.y+a.h {
				t.Errorf("panels %q and %q overlap", a.title, b.title)
			}
		}
	}

	ps, rows := d.allPanels()
	seenRows := map[string]bool{}
	for i, p := range ps {
		seenRows[rows[i]] = true
		if p.Description == "" {
			t.Errorf("panel %q has no description: tell the operator what it shows", p.Title)
		}
		if p.Datasource == nil || p.Datasource.UID != wantDS {
			t.Errorf("panel %q: datasource %+v, want uid %s", p.Title, p.Datasource, wantDS)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q %s: empty query", p.Title, tg.RefID)
			}
			if tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("panel %q: refId %q missing or repeated", p.Title, tg.RefID)
			}
			refs[tg.RefID] = true
			if tg.Datasource == nil || tg.Datasource.UID != wantDS {
				t.Errorf("panel %q %s: datasource %+v, want uid %s", p.Title, tg.RefID, tg.Datasource, wantDS)
			}
		}
	}
	for _, r := range []string{"Overview", "Throughput and lag", "Latency", "Errors, lateness and transactions", "Event time and state", "Process and Go runtime", modelsRow} {
		if !seenRows[r] {
			t.Errorf("no panel in a row %q", r)
		}
	}

	// Rate windows: $__rate_interval, which Grafana keeps at 4 scrape intervals or more (with the
	// datasource's 5 s scrape interval: 20 s), never a fixed window that may hold one sample.
	qs := d.queries()
	for _, q := range qs {
		if strings.Contains(q.Expr, "rate(") || strings.Contains(q.Expr, "increase(") || strings.Contains(q.Expr, "_over_time(") {
			for _, m := range rangeSelector.FindAllStringSubmatch(q.Expr, -1) {
				if m[1] != "$__rate_interval" {
					t.Errorf("%s: range [%s]; use [$__rate_interval]", q, m[1])
				}
			}
		}
		if _, err := substitute(q.Expr, staticVars); err != nil {
			t.Errorf("%s: %v", q, err)
		}
	}

	// Coverage: every metric has a panel; the model metrics are in the Models row, and that row
	// holds nothing else (so the pending-models exception covers model panels only).
	for _, m := range append(append([]string(nil), runtimeMetrics...), modelMetrics...) {
		found := false
		for _, q := range qs {
			found = found || mentions(q.Expr, m)
		}
		if !found {
			t.Errorf("no dashboard query shows %s", m)
		}
	}
	for _, q := range qs {
		isModel := false
		for _, m := range modelMetrics {
			isModel = isModel || mentions(q.Expr, m)
		}
		if q.inModelsRow() && !isModel {
			t.Errorf("%s: in the %s row but shows no model metric", q, modelsRow)
		}
		if !q.inModelsRow() && isModel {
			t.Errorf("%s: shows a model metric outside the %s row", q, modelsRow)
		}
	}
	t.Logf("%d panels, %d queries (%d in the %s row)", len(ps), len(qs), countModels(qs), modelsRow)
}

func countModels(qs []dashQuery) int {
	n := 0
	for _, q := range qs {
		if q.inModelsRow() {
			n++
		}
	}
	return n
}

// TestDashboardQueriesAreValidPromQL has promtool parse every dashboard query (models included),
// as recording rules: a syntax error fails here, without a server.
func TestDashboardQueriesAreValidPromQL(t *testing.T) {
	promtool := requireTool(t, "promtool", "it parses the dashboard's PromQL")
	d := loadDashboard(t)
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	for i, q := range d.queries() {
		e, err := substitute(q.Expr, staticVars)
		if err != nil {
			t.Fatal(err)
		}
		rules = append(rules, rule{Record: fmt.Sprintf("dashboard:query_%d", i), Expr: e})
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		sel, _, err := parseLabelValues(v.queryText())
		if err != nil {
			t.Errorf("variable %s: %v", v.Name, err)
			continue
		}
		e, err := substitute(sel, staticVars)
		if err != nil {
			t.Fatal(err)
		}
		rules = append(rules, rule{Record: "dashboard:variable_" + v.Name, Expr: e})
	}
	b, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := runTool(ctx, "", promtool, "check", "rules", path)
	if err != nil {
		t.Fatalf("promtool check rules on the dashboard's queries: %v\n%s", err, out)
	}
	t.Logf("promtool parsed %d dashboard queries and variables", len(rules))
}

var labelValuesRe = regexp.MustCompile(`^\s*label_values\(\s*(.+?)\s*,\s*(\w+)\s*\)\s*$`)

// parseLabelValues parses a Grafana Prometheus variable query label_values(selector, label).
func parseLabelValues(q string) (selector, label string, err error) {
	m := labelValuesRe.FindStringSubmatch(q)
	if m == nil {
		return "", "", fmt.Errorf("query %q: only label_values(selector, label) is supported here", q)
	}
	return m[1], m[2], nil
}
