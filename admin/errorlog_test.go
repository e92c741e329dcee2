package admin

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestServerErrorLogIsLimited: the HTTP server's lines are JSON lines of the configured logger with
// component=admin; past errorLogLimit in a second they are dropped, and the next second says how
// many.
func TestServerErrorLogIsLimited(t *testing.T) {
	var out syncBuffer
	l := serverErrorLog(slog.New(slog.NewJSONHandler(&out, nil)))
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l.Writer().(*limitedLog).now = func() time.Time { return clock }
	for i := range errorLogLimit + 5 {
		l.Printf("http: TLS handshake error from 10.0.0.%d:1234: EOF", i)
	}
	clock = clock.Add(time.Second)
	l.Printf("http: Accept error: accept tcp: too many open files; retrying in 5ms")

	var lines []map[string]any
	for _, s := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			t.Fatalf("not a JSON line: %q", s)
		}
		if m["component"] != "admin" || m["level"] != "WARN" {
			t.Errorf("line without component=admin at WARN: %q", s)
		}
		lines = append(lines, m)
	}
	if len(lines) != errorLogLimit+2 {
		t.Fatalf("%d lines, want %d logged + 1 report + 1 in the next second:\n%s", len(lines), errorLogLimit, out.String())
	}
	if r := lines[errorLogLimit]; r["dropped"] != 5.0 {
		t.Errorf("report %v, want dropped 5", r)
	}
	if last := lines[errorLogLimit+1]["msg"]; last != "http: Accept error: accept tcp: too many open files; retrying in 5ms" {
		t.Errorf("last line %q", last)
	}
}
