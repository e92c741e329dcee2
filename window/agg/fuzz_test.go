package agg

import "testing"

// FuzzDecode feeds arbitrary bytes to Decode: it must return an error wrapping ErrCorrupt or accept, never
// panic, and whatever it accepts must re-encode stably and survive Add, Merge, Result and AppendEncoded.
func FuzzDecode(f *testing.F) {
	l := mustLayout(f, allSpecs, 2)
	for _, enc := range sampleEncodings(l) {
		f.Add(enc)
	}
	f.Add([]byte{})
	f.Add([]byte{Version})
	f.Fuzz(func(t *testing.T, data []byte) {
		decodeAndUse(t, l, data)
	})
}
