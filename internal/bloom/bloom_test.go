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

// TestReset: a reset filter holds nothing, finds what is added after, is sized for the new
// expected count, and keeps its memory (no allocation) when the size is about the same.
func TestReset(t *testing.T) {
	seed := maphash.MakeSeed()
	f := New(10_000)
	for i := range uint64(30_000) { // grows past its first layer
		f.Add(hashOf(seed, i))
	}
	f.Reset(10_000)
	if f.Len() != 0 || len(f.layers) != 1 {
		t.Fatalf("after Reset: Len %d, %d layers; want 0 and 1", f.Len(), len(f.layers))
	}
	if want := New(10_000).Bytes(); f.Bytes() != want {
		t.Fatalf("after Reset(10000): %d bytes, want %d as New(10000)", f.Bytes(), want)
	}
	found := 0
	for i := range uint64(10_000) {
		if f.MayContain(hashOf(seed, i)) {
			found++
		}
	}
	if found > 10 {
		t.Fatalf("after Reset %d of 10,000 earlier items still found", found)
	}
	for i := range uint64(10_000) {
		f.Add(hashOf(seed, 1<<40+i))
	}
	for i := range uint64(10_000) {
		if !f.MayContain(hashOf(seed, 1<<40+i)) {
			t.Fatalf("item %d added after Reset not found", i)
		}
	}
	if allocs := testing.AllocsPerRun(100, func() { f.Reset(9_000) }); allocs != 0 {
		t.Errorf("Reset to about the same size allocated %.0f times, want 0", allocs)
	}
	f.Reset(100_000)
	if want := New(100_000).Bytes(); f.Bytes() != want {
		t.Fatalf("after Reset(100000): %d bytes, want %d", f.Bytes(), want)
	}
	f.Reset(300)
	if want := New(300).Bytes(); f.Bytes() != want {
		t.Fatalf("after Reset(300) from a large filter: %d bytes, want %d (the memory is given back)", f.Bytes(), want)
	}
}
