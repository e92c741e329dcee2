package console

import (
	"embed"
	"encoding/json"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/streamd/streamd/model"
	"github.com/streamd/streamd/stream"
)

//go:embed assets
var assets embed.FS

// Registrar is where the console registers itself (*admin.Server implements it): Handle for the
// data endpoints, which keep the server's authentication, HandlePublic for the static files.
type Registrar interface {
	Handle(pattern string, h http.Handler)
	HandlePublic(path string, h http.Handler)
}

// Register adds the console to srv: the page at /, its files under /console/, and the endpoints
// GET /v1/pipeline, /v1/quality, /v1/deadletters and /v1/restore. Call it before the server starts.
func (c *Console) Register(srv Registrar) {
	root, _ := fs.Sub(assets, "assets")
	_ = fs.WalkDir(root, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(root, p)
		if err != nil {
			return err
		}
		h := static(p, body)
		if p == "index.html" {
			srv.HandlePublic("/", h)
		}
		srv.HandlePublic("/console/"+p, h)
		return nil
	})
	srv.Handle("GET /v1/pipeline", http.HandlerFunc(c.servePipeline))
	srv.Handle("GET /v1/quality", http.HandlerFunc(c.serveQuality))
	srv.Handle("GET /v1/deadletters", http.HandlerFunc(c.serveDeadLetters))
	srv.Handle("GET /v1/restore", http.HandlerFunc(c.serveRestore))
}

// static serves one embedded file. The page may load only its own files (no CDN, nothing inline),
// and is not cached, so that an upgraded binary serves its own script.
func static(name string, body []byte) http.Handler {
	ctype := mime.TypeByExtension(path.Ext(name))
	if ctype == "" {
		ctype = "text/plain; charset=utf-8"
	}
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h.Set("Content-Type", ctype)
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'")
		h.Set("Referrer-Policy", "no-referrer")
		_, _ = w.Write(body)
	})
}

func (c *Console) servePipeline(w http.ResponseWriter, _ *http.Request) {
	c.mu.Lock()
	g := cloneGraph(c.graph)
	committed, commitRate := c.rates.sum("txn/committed")
	aborted, _ := c.rates.sum("txn/aborted")
	at := c.sampled
	c.mu.Unlock()
	writeJSON(w, map[string]any{
		"app": g.App, "nodes": g.Nodes, "edges": g.Edges,
		"sampled_at_ms": at.UnixMilli(), "interval_seconds": c.opts.SampleInterval.Seconds(),
		"transactions": map[string]float64{"committed": committed, "aborted": aborted, "committed_rate": commitRate},
	})
}

// modelRow is one model in the console's model table.
type modelRow struct {
	Name        string             `json:"name"`
	Kind        string             `json:"kind"`
	Champion    bool               `json:"champion"`
	Version     int64              `json:"version"`
	Updates     int64              `json:"updates"`
	Predictions float64            `json:"predictions"`
	Rolling     map[string]float64 `json:"rolling"`
}

func (c *Console) serveQuality(w http.ResponseWriter, _ *http.Request) {
	c.mu.Lock()
	series, events := c.quality.snapshot()
	rows := modelRows(c.quality.current)
	c.mu.Unlock()
	writeJSON(w, map[string]any{
		"interval_seconds": c.opts.SampleInterval.Seconds(), "history": c.opts.History,
		"series": series, "events": events, "models": rows,
	})
}

func modelRows(views []model.ModelView) []modelRow {
	rows := []modelRow{}
	for _, m := range views {
		r := modelRow{Name: m.Name, Kind: m.Kind, Champion: m.Champion, Version: m.Version, Updates: m.Updates, Predictions: m.Predictions, Rolling: map[string]float64{}}
		for _, e := range m.Evaluation {
			if e.Examples > 0 && finite(e.Rolling) {
				r.Rolling[e.Metric] = e.Rolling
			}
		}
		rows = append(rows, r)
	}
	return rows
}

// deadLetterRow is one recent dead letter as the console shows it: Key and Value are text (invalid
// UTF-8 replaced) and present only with Options.DeadLetterContents.
type deadLetterRow struct {
	TimeMs     int64  `json:"time_ms"`
	Topic      string `json:"topic"`
	Partition  int32  `json:"partition"`
	Offset     int64  `json:"offset"`
	Reason     string `json:"reason"`
	Field      string `json:"field,omitempty"`
	Detail     string `json:"detail"`
	Operator   string `json:"operator,omitempty"`
	Key        string `json:"key,omitempty"`
	Value      string `json:"value,omitempty"`
	ValueBytes int    `json:"value_bytes"`
}

type reasonRow struct {
	Reason string  `json:"reason"`
	Total  float64 `json:"total"`
	Rate   float64 `json:"rate"`
}

func (c *Console) serveDeadLetters(w http.ResponseWriter, _ *http.Request) {
	c.mu.Lock()
	reasons := []reasonRow{}
	for k, v := range c.rates.total {
		if r, ok := strings.CutPrefix(k, "dead/"); ok {
			reasons = append(reasons, reasonRow{Reason: r, Total: v, Rate: c.rates.rate[k]})
		}
	}
	c.mu.Unlock()
	sort.Slice(reasons, func(i, j int) bool {
		if reasons[i].Total != reasons[j].Total {
			return reasons[i].Total > reasons[j].Total
		}
		return reasons[i].Reason < reasons[j].Reason
	})
	recent := []deadLetterRow{}
	if c.opts.DeadLetters != nil {
		for _, d := range c.opts.DeadLetters.RecentDeadLetters() {
			recent = append(recent, c.deadLetterRow(d))
		}
	}
	writeJSON(w, map[string]any{"contents_shown": c.opts.DeadLetterContents, "listed": c.opts.DeadLetters != nil, "by_reason": reasons, "recent": recent})
}

func (c *Console) deadLetterRow(d stream.DeadLetterInfo) deadLetterRow {
	r := deadLetterRow{TimeMs: d.Time.UnixMilli(), Topic: d.Topic, Partition: d.Partition, Offset: d.Offset,
		Reason: string(d.Reason), Field: d.Field, Detail: d.Detail, Operator: d.Operator, ValueBytes: d.ValueBytes}
	if c.opts.DeadLetterContents {
		r.Key, r.Value = text(d.Key), text(d.Value)
	}
	return r
}

// text makes bytes showable: invalid UTF-8 becomes U+FFFD.
func text(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

type restoreRow struct {
	Store     string  `json:"store"`
	Partition int32   `json:"partition"`
	Remaining float64 `json:"remaining_offsets"`
	Initial   float64 `json:"initial_offsets"`
	Progress  float64 `json:"progress"` // 0 to 1
}

func (c *Console) serveRestore(w http.ResponseWriter, _ *http.Request) {
	c.mu.Lock()
	p := &c.restore
	rows := []restoreRow{}
	for k, rem := range p.remaining {
		if rem == 0 {
			continue
		}
		init := max(p.initial[k], rem)
		rows = append(rows, restoreRow{Store: k.Store, Partition: k.Partition, Remaining: rem, Initial: init, Progress: 1 - rem/init})
	}
	restoring, restored := p.restoring, p.restored
	_, rate := c.rates.sum("restored")
	c.mu.Unlock()
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Partition != rows[j].Partition {
			return rows[i].Partition < rows[j].Partition
		}
		return rows[i].Store < rows[j].Store
	})
	writeJSON(w, map[string]any{"restoring_partitions": restoring, "restored_records": restored, "restored_rate": rate, "stores": rows})
}

func finite(v float64) bool { return v == v && v-v == 0 }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
