package main

import (
	"net/http"
	"net/http/pprof"

	"github.com/streamd/streamd/admin"
)

// handlePprof serves Go's profiles under /debug/pprof/ on the admin server (admin.pprof): heap,
// allocs, goroutine and the rest by name, the CPU profile and the execution trace. Registered on
// the admin server's own mux, never on http.DefaultServeMux, so that nothing else exposes them.
func handlePprof(adm *admin.Server) {
	adm.Handle("GET /debug/pprof/", http.HandlerFunc(pprof.Index))
	adm.Handle("GET /debug/pprof/cmdline", http.HandlerFunc(pprof.Cmdline))
	adm.Handle("GET /debug/pprof/profile", http.HandlerFunc(pprof.Profile))
	adm.Handle("GET /debug/pprof/symbol", http.HandlerFunc(pprof.Symbol))
	adm.Handle("GET /debug/pprof/trace", http.HandlerFunc(pprof.Trace))
}
