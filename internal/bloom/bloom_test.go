package bloom

import (
	"encoding/binary"
	"hash/maphash"
	"testing"
)

func hashOf(seed maphash.Seed, i uint64) uint64 {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], i)
	return maphash.Bytes(seed, b[:])
}

// TestNoFalseNegatives: every added item is found, across layers.
func TestNoFalseNegatives(t *testing.T) {
	seed := maphash.MakeSeed()
	f := New(100)
	const n = 50_000
	for i := range uint64(n) {
		f.Add(hashOf(seed, i))
	}
	if len(f.layers) < 2 {
		t.Fatalf("%d layers for %d items in a filter sized for 256: it did not grow", len(f.layers), n)
	}
	for i := range uint64(n) {
		if !f.MayContain(hashOf(seed, i)) {
			t.Fatalf("item %d added but not found", i)
		}
	}
	if f.Len() != n {
		t.Fatalf("Len %d, want %d", f.Len(), n)
	}
}

// TestFalsePositiveRate: below 0.1 % whether the filter was sized right or had to grow from the
// minimum.
func TestFalsePositiveRate(t *testing.T) {
	for _, tc := range []struct {
		name     string
		expected int
	}{{"sized", 100_000}, {"grown", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			seed := maphash.MakeSeed()
			f := New(tc.expected)
			const n = 100_000
			for i := range uint64(n) {
				f.Add(hashOf(seed, i))
			}
			fp := 0
			const probes = 200_000
			for i := range uint64(probes) {
				if f.MayContain(hashOf(seed, n+i)) {
					fp++
				}
			}
			rate := float64(fp) / probes
			t.Logf("%d layers, %d bytes (%.1f bits/item), false positives %.3f %%", len(f.layers), f.Bytes(), float64(f.Bytes()*8)/n, rate*100)
			if rate > 0.001 {
				t.Fatalf("false positive rate %.5f, want below 0.001", rate)
			}
		})
	}
}

func TestLookupAllocatesNothing(t *testing.T) {
	f := New(1000)
	if a := testing.AllocsPerRun(100, func() {
		for i := range uint64(1000) {
			f.MayContain(i * 0x9e3779b97f4a7c15)
		}
	}); a != 0 {
		t.Fatalf("%v allocations per 1000 lookups", a)
	}
}
