package admin

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/streamd/streamd/internal/units"
)

// Options configure a Server. New fills the zero fields with their defaults (EnsureDefaults); Start
// refuses options that Validate refuses.
type Options struct {
	// Listen is the host:port to listen on; port 0 picks a free one (see Server.Addr).
	Listen string
	// Gatherer is scraped on /metrics.
	Gatherer prometheus.Gatherer
	// Registerer, when set, receives the server's own metrics (streamd_admin_*).
	Registerer prometheus.Registerer
	// Ready answers /readyz: 200 when ready, else 503 with why in the body. nil means always
	// ready.
	Ready func() (ready bool, why string)
	// Logger receives the server's own errors (through http.Server.ErrorLog too, so that nothing
	// reaches Go's default logger). Default slog.Default().
	Logger *slog.Logger
	// BindTimeout bounds how long Start keeps trying while Listen is in use. Default
	// DefaultBindTimeout; a negative value means one try. A restarted daemon meets the address in
	// use for a moment when its killed predecessor's port is not yet released; a port held by
	// another live process is still refused after this long.
	BindTimeout time.Duration

	// Token, when set, is the bearer token every request must carry (Authorization: Bearer
	// <token>), except requests to OpenEndpoints. See ParseToken for what a token may be.
	Token string
	// TokenFile, instead of Token, names a file holding the token. It is read at Start and again
	// when it changes, so a token is rotated by rewriting the file (or updating the Secret it is
	// mounted from); until the new file is good the old token stays valid.
	TokenFile string
	// TLS, when set, serves HTTPS with these files, reloaded when they change.
	TLS *TLSFiles
	// OpenEndpoints are the paths served without credentials when a token or a client CA is
	// configured. Only /metrics, /healthz and /readyz may be open; nil means the default,
	// /healthz and /readyz (probes carry no secrets), and an empty list protects all three.
	OpenEndpoints []string
	// InsecureNoAuth lets Start listen beyond loopback with neither a token nor a client CA, when
	// something in front (a proxy, a network policy) guards the server. Without it Start refuses.
	InsecureNoAuth bool

	// MaxConns caps the connections held open; over it, the one idle longest is closed (see
	// connLimiter). Default DefaultMaxConns.
	MaxConns int
	// ReadHeaderTimeout bounds reading a request's headers, and so how long a new connection may
	// stay silent. Default DefaultReadHeaderTimeout.
	ReadHeaderTimeout time.Duration
	// RequestTimeout bounds reading a whole request and writing its response. Default
	// DefaultRequestTimeout.
	RequestTimeout time.Duration
	// IdleTimeout is how long a keep-alive connection waits for its next request. Default
	// DefaultIdleTimeout.
	IdleTimeout time.Duration
	// MaxHeaderBytes caps a request's headers. Default DefaultMaxHeaderBytes.
	MaxHeaderBytes int
	// MaxBodyBytes caps a request's body (only POST /v1/features/{key} reads one: an event).
	// Default DefaultMaxBodyBytes.
	MaxBodyBytes int64
}

// Defaults of Options.
const (
	// DefaultBindTimeout is long enough for the few hundred milliseconds a killed process takes to
	// release its port, short enough that a port held by another program fails the start-up
	// promptly.
	DefaultBindTimeout = 3 * time.Second
	// DefaultMaxConns is far more than probes, a Prometheus or two and a few operators need, and
	// far fewer descriptors than a process has.
	DefaultMaxConns          = 128
	DefaultReadHeaderTimeout = 5 * time.Second
	// DefaultRequestTimeout leaves room for a /v1/state look-up (Inspection.StateTimeout, 5s).
	DefaultRequestTimeout = 30 * time.Second
	// DefaultIdleTimeout outlasts a 1m scrape interval, so that a Prometheus keeps its connection.
	DefaultIdleTimeout    = 90 * time.Second
	DefaultMaxHeaderBytes = 16 << 10
	DefaultMaxBodyBytes   = 64 << 10
)

// Endpoints that Options.OpenEndpoints may name.
var openable = []string{"/metrics", "/healthz", "/readyz"}

// defaultOpen is Options.OpenEndpoints' default.
var defaultOpen = []string{"/healthz", "/readyz"}

// EnsureDefaults fills the zero fields with their defaults.
func (o *Options) EnsureDefaults() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.BindTimeout == 0 {
		o.BindTimeout = DefaultBindTimeout
	}
	if o.MaxConns == 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.ReadHeaderTimeout == 0 {
		o.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if o.RequestTimeout == 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.MaxHeaderBytes == 0 {
		o.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.OpenEndpoints == nil {
		o.OpenEndpoints = slices.Clone(defaultOpen)
	}
}

// FieldError is one field of Options that Validate refuses. Validate joins one per problem, so that
// a caller that compiles its own configuration into Options (config/ for the YAML file) can find
// each with errors.As and name the setting in its own words.
type FieldError struct {
	// Field is the Options field, e.g. "MaxConns" or "TLS.CertFile".
	Field string
	// Value is the value as people write it (never a token), or "" when the rule says it all.
	Value string
	// Rule is what the value breaks.
	Rule string
}

func (e *FieldError) Error() string {
	if e.Value == "" {
		return "admin: Options." + e.Field + ": " + e.Rule
	}
	return "admin: Options." + e.Field + ": " + e.Value + " " + e.Rule
}

// Validate reports every bad field at once, one *FieldError each: bounds, a token that ParseToken
// refuses, token or TLS files that do not load, and a Listen beyond loopback with no credential
// required (unless InsecureNoAuth). Call EnsureDefaults first.
func (o *Options) Validate() error {
	var errs []error
	bad := func(field, value, rule string) {
		errs = append(errs, &FieldError{Field: field, Value: value, Rule: rule})
	}
	dur := units.FormatDuration
	between := func(field string, d, lo, hi time.Duration) {
		if d < lo || d > hi {
			bad(field, dur(d), fmt.Sprintf("is outside [%s, %s]", dur(lo), dur(hi)))
		}
	}
	if o.Token != "" && o.TokenFile != "" {
		bad("Token", "", "and TokenFile exclude each other: give one")
	}
	if o.Token != "" {
		if _, err := ParseToken([]byte(o.Token)); err != nil {
			bad("Token", "", strings.TrimPrefix(err.Error(), "admin: "))
		}
	}
	if o.TokenFile != "" {
		if _, err := readTokenFile(o.TokenFile); err != nil {
			bad("TokenFile", o.TokenFile, fmt.Sprintf("does not hold a usable token: %s", strings.TrimPrefix(err.Error(), "admin: ")))
		}
	}
	if t := o.TLS; t != nil {
		if t.CertFile == "" || t.KeyFile == "" {
			bad("TLS", "", "needs both CertFile and KeyFile")
		} else if _, err := t.load(); err != nil {
			bad("TLS", "", fmt.Sprintf("does not load: %v", err))
		}
	}
	for i, p := range o.OpenEndpoints {
		if !slices.Contains(openable, p) {
			bad(fmt.Sprintf("OpenEndpoints[%d]", i), fmt.Sprintf("%q", p), "cannot be open: only "+strings.Join(openable, ", ")+" may be")
		}
	}
	if o.MaxConns < 1 || o.MaxConns > 1<<16 {
		bad("MaxConns", strconv.Itoa(o.MaxConns), fmt.Sprintf("is outside [1, %d]", 1<<16))
	}
	between("ReadHeaderTimeout", o.ReadHeaderTimeout, 100*time.Millisecond, 10*time.Minute)
	between("RequestTimeout", o.RequestTimeout, 100*time.Millisecond, 10*time.Minute)
	between("IdleTimeout", o.IdleTimeout, time.Second, time.Hour)
	if o.MaxHeaderBytes < 1<<10 || o.MaxHeaderBytes > 1<<20 {
		bad("MaxHeaderBytes", units.FormatBytes(int64(o.MaxHeaderBytes)), "is outside [1KiB, 1MiB]")
	}
	if o.MaxBodyBytes < 0 {
		bad("MaxBodyBytes", strconv.FormatInt(o.MaxBodyBytes, 10), "is negative")
	}
	if o.Token == "" && o.TokenFile == "" && (o.TLS == nil || o.TLS.ClientCAFile == "") && !o.InsecureNoAuth && !Loopback(o.Listen) {
		bad("Listen", o.Listen, "reaches beyond loopback, and no credential is required: set a token (or a client CA), "+
			"or InsecureNoAuth when something in front guards the server")
	}
	return errors.Join(errs...)
}

// Loopback reports whether a listen address (host:port) is reachable only from this host: a host
// of localhost or a loopback IP. An empty host, 0.0.0.0, :: and every other name reach further.
func Loopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ErrAddrInUse is matched by Start's error when Listen was still in use after BindTimeout.
var ErrAddrInUse = errors.New("admin: address in use")

// Server is the admin HTTP server. Register extra endpoints with Handle before Start.
type Server struct {
	opts    Options
	public  map[string]bool // paths served without credentials (HandlePublic)
	metrics *serverMetrics
	mux     *http.ServeMux
	srv     *http.Server
	ln      net.Listener
	limiter *connLimiter
	wg      sync.WaitGroup
}

// New builds a server with /metrics, /healthz and /readyz. It registers the server's metrics on
// opts.Registerer, if any, and panics if they are registered there already (a second server on one
// registry is a programming error).
func New(opts Options) *Server {
	opts.EnsureDefaults()
	s := &Server{opts: opts, mux: http.NewServeMux(), metrics: newServerMetrics(opts.Registerer), public: map[string]bool{}}
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

// HandlePublic registers a GET handler for one exact path that is served without credentials even
// when the server requires them: only for content that holds no data, like the console's page,
// script and styles, which a browser must load before it can ask for the token the data needs. Call
// it before Start. path "/" means the root alone, never the paths below it.
func (s *Server) HandlePublic(path string, h http.Handler) {
	pattern := "GET " + path
	if path == "/" {
		pattern = "GET /{$}"
	}
	s.mux.Handle(pattern, h)
	s.public[path] = true
}

// Start checks the options (Validate), loads the token and TLS files, listens and serves in the
// background until Close. While the address is in use it tries again with a short backoff for up to
// Options.BindTimeout, logging one warning; then it fails with an error that matches ErrAddrInUse
// and names the address. Other listen errors (a bad address, no permission) fail at once.
func (s *Server) Start() error {
	o := &s.opts
	if err := o.Validate(); err != nil {
		return err
	}
	auth := &authenticator{open: map[string]bool{}, unauthorized: s.metrics.unauthorized}
	for _, p := range o.OpenEndpoints {
		auth.open[p] = true
	}
	for p := range s.public {
		auth.open[p] = true
	}
	switch {
	case o.Token != "":
		tok, _ := ParseToken([]byte(o.Token)) // Validate accepted it
		d := digest(tok)
		auth.token = func() tokenDigest { return d }
	case o.TokenFile != "":
		tf := newTokenFile(o.TokenFile, o.Logger, s.metrics.reloadFailures.WithLabelValues("token"))
		if err := tf.load(); err != nil {
			return fmt.Errorf("admin: token file: %w", err)
		}
		auth.token = tf.current
	}
	var tlsFiles *reloader[*tlsState]
	if o.TLS != nil {
		tlsFiles = newTLSFiles(*o.TLS, o.Logger, s.metrics.reloadFailures.WithLabelValues("tls"))
		if err := tlsFiles.load(); err != nil {
			return fmt.Errorf("admin: TLS: %w", err)
		}
		auth.clientCerts = o.TLS.ClientCAFile != ""
	}

	ln, err := s.listen()
	if err != nil {
		return err
	}
	s.limiter = &connLimiter{Listener: ln, max: o.MaxConns, evicted: s.metrics.evicted, refused: s.metrics.refused}
	s.metrics.limiter.Store(s.limiter)
	s.ln = s.limiter
	served := net.Listener(s.limiter)
	if tlsFiles != nil {
		served = tls.NewListener(s.limiter, serverConfig(tlsFiles))
	}
	s.srv = &http.Server{
		Handler:           http.MaxBytesHandler(auth.wrap(s.mux), o.MaxBodyBytes),
		ReadHeaderTimeout: o.ReadHeaderTimeout,
		ReadTimeout:       o.RequestTimeout,
		WriteTimeout:      o.RequestTimeout,
		IdleTimeout:       o.IdleTimeout,
		MaxHeaderBytes:    o.MaxHeaderBytes,
		ConnState:         s.limiter.connState,
		// Accept errors, TLS handshake failures and panics in handlers go to the configured
		// logger in its format, never to Go's default logger on stderr, and at a bounded rate.
		ErrorLog: serverErrorLog(o.Logger),
	}
	if auth.on() {
		o.Logger.Info("admin endpoints require credentials", "token", auth.token != nil, "client_certificates", auth.clientCerts, "open", o.OpenEndpoints)
	} else if !Loopback(o.Listen) {
		o.Logger.Warn("admin server listens beyond loopback without credentials (insecure_no_auth)", "addr", o.Listen)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.srv.Serve(served); err != nil && !errors.Is(err, http.ErrServerClosed) {
			o.Logger.Error("admin server stopped", "err", err)
		}
	}()
	return nil
}

// TLS reports whether the server serves HTTPS.
func (s *Server) TLS() bool { return s.opts.TLS != nil }

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
