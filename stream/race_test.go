//go:build race

package stream_test

// raceEnabled: under the race detector sync.Pool drops items on purpose and allocation counts mean
// nothing, so the allocation checks skip.
const raceEnabled = true
