package admin

import (
	"context"
	"log"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// errorLogLimit is how many of the HTTP server's own lines (TLS handshake failures, accept errors)
// are logged per second; past it they are counted, and one line reports how many were dropped. A
// scanner or a flood of bad handshakes makes one line per connection, and must not fill the disk
// or drown the pipeline's lines.
const errorLogLimit = 10

// serverErrorLog returns the logger for http.Server.ErrorLog: its lines go to logger at WARN with
// component=admin, in the configured format, at most errorLogLimit a second.
func serverErrorLog(logger *slog.Logger) *log.Logger {
	return log.New(&limitedLog{log: logger.With("component", "admin"), now: time.Now}, "", 0)
}

type limitedLog struct {
	log *slog.Logger
	now func() time.Time

	mu         sync.Mutex
	second     time.Time // the second being counted
	n, dropped int
}

func (l *limitedLog) Write(p []byte) (int, error) {
	msg := strings.TrimRight(string(p), "\n")
	l.mu.Lock()
	now := l.now().Truncate(time.Second)
	var dropped int
	if !now.Equal(l.second) {
		dropped, l.second, l.n, l.dropped = l.dropped, now, 0, 0
	}
	l.n++
	log := l.n <= errorLogLimit
	if !log {
		l.dropped++
	}
	l.mu.Unlock()
	ctx := context.Background()
	if dropped > 0 {
		l.log.Log(ctx, slog.LevelWarn, "admin server errors not logged: more than the limit per second", "dropped", dropped, "limit", errorLogLimit)
	}
	if log {
		l.log.Log(ctx, slog.LevelWarn, msg)
	}
	return len(p), nil
}
