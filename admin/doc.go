// Package admin is streamd's operator-facing HTTP server: /metrics for Prometheus, /healthz (the
// process is alive) and /readyz (assigned partitions are open and processing), plus the inspection
// endpoints (HandleInspection): /v1/watermarks, /v1/state/{key}, /v1/features/{key} and /v1/models,
// fed by small interfaces that the stream runtime and the model operators implement.
//
// The server takes a prometheus.Gatherer rather than using the global registry, so that a test or an
// embedding program can run several pipelines in one process, each with its own metrics. It runs in
// its own goroutine, owned by the Server: Close waits for it.
//
// The server faces whatever can reach its port, so it guards itself (docs/operations.md, "Securing
// the admin server"):
//
//   - Credentials (auth.go). With a bearer token (Options.Token or TokenFile, the file re-read when
//     it changes) or a client CA, every endpoint but Options.OpenEndpoints (default /healthz and
//     /readyz, which probes call without secrets) answers 401 without them. The check runs before
//     routing, so an unauthenticated client cannot even tell which paths exist, and compares SHA-256
//     digests in constant time. The exact paths registered with HandlePublic (the console's page,
//     script and styles, package admin/console) are served without credentials: they hold no data,
//     and a browser must load them before it can ask for the token. Validate refuses a listen address beyond loopback with no credential
//     unless InsecureNoAuth says something in front guards it.
//   - TLS (tls.go). Certificate, key and client CA are read again at the next handshake after they
//     change; a pair that fails to load keeps the previous one (reload.go).
//   - Resources (connlimit.go). At most MaxConns connections are open; over it the one idle longest
//     is closed to admit the new one, so an idle-connection flood cannot exhaust the descriptors the
//     pipeline needs, nor starve the probes. Timeouts bound a silent connection
//     (ReadHeaderTimeout), a request (RequestTimeout) and a keep-alive (IdleTimeout); headers and
//     bodies are capped.
//   - Logs (errorlog.go). http.Server.ErrorLog goes through the Options' slog logger, so accept and
//     handshake errors keep log.format, at most ten lines a second: a flood of bad handshakes is
//     counted, not written out line by line.
package admin
