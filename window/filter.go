package window

import (
	"hash/maphash"

	"github.com/streamd/streamd/internal/bloom"
)

// endFilters keeps, for each open window end, a Bloom filter (internal/bloom) of the entity keys
// that have a window ending then. A tumbling or hopping window operator looks up (key, window) on
// every event, and the first event of each key in each new window finds nothing — a miss that
// Pebble answers only after visiting every memtable and level. The filter answers those misses
// from memory. A filter is authoritative only for window ends newer than anything in the store
// when the task opened (state written before is not in any filter); a false positive just costs
// the Pebble read it would have cost anyway.
//
// Sizing: a new window end's filter is sized for as many keys as the last window end that closed
// held (at first bloom's minimum, 256; a filter grows when it is too small), since consecutive
// windows of one partition see about the same key population. Recycling: the filter of a window
// end that closed is reset and reused for the next new end (bloom.Filter.Reset keeps its memory
// when the sizes match), so steady state allocates nothing per window end. The old fixed 2^20 bits
// per open end (128 KiB, never reused) were both too many for a quiet partition and too few
// beyond 100k keys.
type endFilters struct {
	open map[int64]*bloom.Filter
	// free are the filters of closed window ends, to reuse.
	free []*bloom.Filter
	// expected is the keys of the last window end that closed: the size of the next filter.
	expected int
}

// get returns the filter of window end end, making one (from free when it can) for a new end.
func (fs *endFilters) get(end int64) *bloom.Filter {
	if f := fs.open[end]; f != nil {
		return f
	}
	var f *bloom.Filter
	if n := len(fs.free); n > 0 {
		f = fs.free[n-1]
		fs.free = fs.free[:n-1]
		f.Reset(fs.expected)
	} else {
		f = bloom.New(fs.expected)
	}
	if fs.open == nil {
		fs.open = map[int64]*bloom.Filter{}
	}
	fs.open[end] = f
	return f
}

// closeFired drops the filters of window ends whose windows fired at watermark wm with allowed
// lateness late (end+late <= wm), keeping them for reuse.
func (fs *endFilters) closeFired(wm, late int64) {
	for e, f := range fs.open {
		if e+late <= wm {
			fs.recycle(e, f)
		}
	}
}

// reset forgets every open filter (after an abort), keeping them for reuse.
func (fs *endFilters) reset() {
	for e, f := range fs.open {
		fs.recycle(e, f)
	}
}

func (fs *endFilters) recycle(end int64, f *bloom.Filter) {
	delete(fs.open, end)
	fs.expected = f.Len()
	fs.free = append(fs.free, f)
}

var filterSeed = maphash.MakeSeed()

func keyHash(key []byte) uint64 { return maphash.Bytes(filterSeed, key) }
