// Package admin is streamd's operator-facing HTTP server: /metrics for Prometheus, /healthz (the
// process is alive) and /readyz (assigned partitions are open and processing), plus the inspection
// endpoints (HandleInspection): /v1/watermarks, /v1/state/{key} and /v1/models, fed by small
// interfaces that the stream runtime and the model operators implement.
//
// The server takes a prometheus.Gatherer rather than using the global registry, so that a test or an
// embedding program can run several pipelines in one process, each with its own metrics. It runs in
// its own goroutine, owned by the Server: Close waits for it.
package admin
