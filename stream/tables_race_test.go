//go:build race

package stream

// tablesRace: allocation counts mean nothing under the race detector (it instruments allocations
// and sync.Pool drops items on purpose).
const tablesRace = true
