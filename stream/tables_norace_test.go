//go:build !race

package stream

const tablesRace = false
