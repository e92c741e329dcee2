package window

import (
	"fmt"
	"testing"
)

// TestEndFiltersRecycle: a closed window end's filter is reused for the next new end, sized for
// the keys the closed one held, so that a steady stream of window ends allocates nothing; a filter
// never reports a key of the window it held before.
func TestEndFiltersRecycle(t *testing.T) {
	var fs endFilters
	const keys = 5_000
	hashes := make([]uint64, 2*keys)
	for i := range hashes {
		hashes[i] = keyHash(fmt.Appendf(nil, "k%d", i))
	}
	fill := func(end int64, from int) {
		f := fs.get(end)
		for _, h := range hashes[from : from+keys] {
			f.Add(h)
		}
	}
	fill(1000, 0)
	first := fs.get(1000)
	fs.closeFired(1000, 0)
	if len(fs.open) != 0 || len(fs.free) != 1 || fs.expected != keys {
		t.Fatalf("after the window end closed: %d open, %d free, expected %d; want 0, 1, %d", len(fs.open), len(fs.free), fs.expected, keys)
	}
	next := fs.get(2000)
	if next != first {
		t.Fatal("the closed end's filter was not reused")
	}
	// A reused filter is empty: the keys of its earlier window are not found, but for false
	// positives.
	found := 0
	for _, h := range hashes[:keys] {
		if next.MayContain(h) {
			found++
		}
	}
	if found > keys/100 {
		t.Fatalf("the reused filter found %d of the %d keys of the window it held before", found, keys)
	}
	fs.closeFired(2000, 0)
	end := int64(3000)
	allocs := testing.AllocsPerRun(50, func() {
		f := fs.get(end)
		for _, h := range hashes[keys:] {
			f.Add(h)
		}
		fs.closeFired(end, 0)
		end += 1000
	})
	if allocs != 0 {
		t.Errorf("a window end's filter cost %.1f allocations in steady state, want 0", allocs)
	}
	// Lateness: an end closes when end+late <= wm, and reset closes every one.
	fs.get(10_000)
	fs.get(20_000)
	fs.closeFired(15_000, 5_000)
	if _, ok := fs.open[10_000]; ok || len(fs.open) != 1 {
		t.Fatalf("closeFired(15000, 5000): open %v, want only 20000", fs.open)
	}
	fs.reset()
	if len(fs.open) != 0 {
		t.Fatalf("after reset %d open filters", len(fs.open))
	}
}
