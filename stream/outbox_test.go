package stream

import (
	"testing"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestOutboxHeldAndKept: the outbox counts every slab of the cycle in held, outgrown ones too
// (their records are in flight until the cycle ends), and reset keeps no more than keep of them.
func TestOutboxHeldAndKept(t *testing.T) {
	for _, keep := range []int{0, 300 << 10} {
		o := outbox{keep: keep}
		val := make([]byte, 500)
		for range 20000 {
			r := o.record()
			r.Value = o.copy(val)
			r.Headers = o.headers(3)
		}
		minHeld := 20000 * (int(unsafe.Sizeof(kgo.Record{})) + len(val) + 3*int(unsafe.Sizeof(kgo.RecordHeader{})))
		if o.held < minHeld {
			t.Errorf("keep %d: held %d, less than the cycle's records, bytes and headers (%d)", keep, o.held, minHeld)
		}
		o.reset()
		limit := keep
		if keep == 0 {
			limit = 8192*int(unsafe.Sizeof(kgo.Record{})) + 3*8192*int(unsafe.Sizeof(kgo.RecordHeader{})) + 1<<20
		}
		if o.held > limit {
			t.Errorf("keep %d: %d bytes kept after reset, over %d", keep, o.held, limit)
		}
		// A small cycle fits in what was kept, allocating nothing.
		if keep == 0 {
			if n := testing.AllocsPerRun(10, func() {
				for range 100 {
					r := o.record()
					r.Value = o.copy(val)
					r.Headers = o.headers(3)
				}
				o.reset()
			}); n != 0 {
				t.Errorf("%v allocations in a small cycle after a large one, want 0", n)
			}
		}
	}
}
