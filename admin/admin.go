package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Options configure a Server.
type Options struct {
	// Listen is the host:port to listen on; port 0 picks a free one (see Server.Addr).
	Listen string
	// Gatherer is scraped on /metrics.
	Gatherer prometheus.Gatherer
	// Ready answers /readyz: 200 when ready, else 503 with why in the body. nil means always
	// ready.
	Ready func() (ready bool, why string)
	// Logger receives the server's own errors. Default slog.Default().
	Logger *slog.Logger
	// BindTimeout bounds how long Start keeps trying while Listen is in use. Default
	// DefaultBindTimeout; a negative value means one try. A restarted daemon meets the address in
	// use for a moment when its killed predecessor's port is not yet released; a port held by
	// another live process is still refused after this long.
	BindTimeout time.Duration
}

// DefaultBindTimeout is the default Options.BindTimeout: long enough for the few hundred
// milliseconds a killed process takes to release its port, short enough that a port held by
// another program fails the start-up promptly.
const DefaultBindTimeout = 3 * time.Second

// ErrAddrInUse is matched by Start's error when Listen was still in use after BindTimeout.
var ErrAddrInUse = errors.New("admin: address in use")

// Server is the admin HTTP server. Register extra endpoints with Handle before Start.
type Server struct {
	opts Options
	mux  *http.ServeMux
	srv  *http.Server
	ln   net.Listener
	wg   sync.WaitGroup
}

// New builds a server with /metrics, /healthz and /readyz.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.BindTimeout == 0 {
		opts.BindTimeout = DefaultBindTimeout
	}
	s := &Server{opts: opts, mux: http.NewServeMux()}
	if opts.Gatherer != nil {
		s.mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{
			ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
			EnableOpenMetrics: true,
		}))
	}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	s.mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if opts.Ready != nil {
			if ready, why := opts.Ready(); !ready {
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = w.Write([]byte("not ready: " + why + "\n"))
				return
			}
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	return s
}

// Handle registers an extra endpoint. Call it before Start.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Start listens and serves in the background until Close. While the address is in use it tries
// again with a short backoff for up to Options.BindTimeout, logging one warning; then it fails
// with an error that matches ErrAddrInUse and names the address. Other listen errors (a bad
// address, no permission) fail at once.
func (s *Server) Start() error {
	ln, err := s.listen()
	if err != nil {
		return err
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.opts.Logger.Error("admin server stopped", "err", err)
		}
	}()
	return nil
}

// listen binds Options.Listen, trying again while the address is in use (see Start).
func (s *Server) listen() (net.Listener, error) {
	deadline := time.Now().Add(s.opts.BindTimeout)
	backoff := 25 * time.Millisecond
	for attempt := 1; ; attempt++ {
		ln, err := net.Listen("tcp", s.opts.Listen)
		if err == nil {
			if attempt > 1 {
				s.opts.Logger.Info("admin address bound", "addr", s.opts.Listen, "attempts", attempt)
			}
			return ln, nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			return nil, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, fmt.Errorf("%w: %s, still after trying for %s: %w", ErrAddrInUse, s.opts.Listen, max(s.opts.BindTimeout, 0), err)
		}
		if attempt == 1 {
			s.opts.Logger.Warn("admin address in use; retrying (a restarted daemon's predecessor may still hold it)",
				"addr", s.opts.Listen, "for", s.opts.BindTimeout)
		}
		time.Sleep(min(backoff, left))
		backoff = min(2*backoff, 100*time.Millisecond)
	}
}

// Addr returns the address the server listens on, once started.
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Close shuts the server down, waiting up to ctx for requests in flight.
func (s *Server) Close(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	err := s.srv.Shutdown(ctx)
	s.wg.Wait()
	return err
}
