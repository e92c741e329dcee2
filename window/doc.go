// Package window implements keyed event-time windows over a stream's events: tumbling, hopping,
// sliding and session windows, with the aggregations of window/agg, whose state lives in a state
// store (Pebble, replicated through a changelog) so that it survives crashes and moves with its
// partition.
//
// # Time
//
// Each task has a watermark (stream.Task.Watermark): the largest event time seen minus the source's
// max_out_of_orderness, or, for an idle partition, the wall clock minus it. A window [start, end)
// closes when the watermark reaches end + allowed_lateness. An event is late when every window it
// belongs to has closed at its arrival; it goes to the late topic (stream.Task.Late), counted, never
// dropped. The watermark moves only after every operator has seen the event that moved it, so an
// event is judged against the events before it — the same decision whatever the batch or commit
// boundaries, which the metamorphic test checks.
//
// # State layout
//
// Everything is in the operator's store, keyed so that firing is a range scan in time order:
//
//	tumbling, hopping   'w' | end | key            → aggregate state (the key order is the timer order)
//	session             's' | key                  → the key's open sessions: (start, last event, state)…
//	                    'x' | fire | start | key   → timer of one session
//	sliding             'p' | key                  → the key's recent panes: (pane start, state)…
//	                    'x' | expiry | 0 | key     → when the key's panes have all expired
//
// Times are big-endian with the sign bit flipped, so that byte order is time order. The earliest
// timer is kept in memory (found again after an aborted cycle or a restart by one seek), so that
// processing an event costs a timer scan only when the watermark passes a timer: the timers survive
// restarts because they are the state.
//
// # Sliding windows
//
// A sliding window is computed as of each event: the key's events in the last size, up to and
// including the event, at a resolution: event times fall in panes of Resolution, and the event's
// window is the size/resolution panes ending with its own pane. The result is emitted with every
// event. Panes that no on-time event can need any more (older than watermark − lateness − size) are
// dropped as the key is touched, and a timer removes a key that went quiet. A feature look-up
// (stream.FeatureSource, the admin API's /v1/features/{key}) computes the same result for an event
// that has not arrived, from the same panes in the same merge order, without writing the store.
//
// # Sessions
//
// An event at time t opens the session [t, t+gap) and merges every open session of its key that
// overlaps it; the merged session is late when its end plus allowed lateness has passed. A key's
// open sessions are few, so they are kept in one value and merged in memory.
//
// # Results
//
// Results are JSON (see docs/config.md): window name, key, start and end in Unix ms, emit kind
// (final or update), event count and the named aggregates, produced to the window's output topic
// with the entity key as record key and end-1 as record timestamp.
package window
