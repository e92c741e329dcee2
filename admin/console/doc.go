// Package console is streamd's live web console, served by the admin server at / with no extra
// process: the pipeline's graph with live rates, per-partition lag and watermarks with why a window
// has not fired, model quality over time with version changes, promotions and drift detections
// marked, recent dead letters by reason, and restore progress.
//
// The page, its script and its styles are embedded (go:embed), chart library included (uPlot, from
// the npm registry at a pinned version, vendored under assets/vendor with its licence), so the
// console works offline and needs no build step. They hold no data and are served without
// credentials (admin.Server.HandlePublic) so that a browser can load them; every number the page
// shows comes from the /v1 endpoints, which keep the admin server's authentication. When the server
// requires a token, the page asks for it once, keeps it in the tab's sessionStorage (gone when the
// tab closes, never in a cookie, so no other site can make the browser send it) and sends it as
// "Authorization: Bearer <token>".
//
// The endpoints read the same sources as /metrics and the other /v1 endpoints: the Prometheus
// Gatherer, the model registries and the runtime's recent dead letters. A Sampler (Run) gathers them
// every Options.SampleInterval into bounded memory: rates are differences of the committed counters
// between two samples, and the quality history is a ring of Options.History samples, with a bounded
// list of the events marked on it.
//
//   - GET /v1/pipeline: the graph (source, decode and validate, operators, output topics) with the
//     rate and total of each node and edge.
//   - GET /v1/quality: each model's rolling evaluation metrics over time, and the events.
//   - GET /v1/deadletters: dead letters by reason (total and rate) and the newest ones; their key and
//     value only with Options.DeadLetterContents (admin.console.dead_letter_contents).
//   - GET /v1/restore: partitions restoring their state, and each store's progress.
//
// The partition table reads /v1/watermarks, which the admin package serves.
package console
