package model

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// lsmIndex is a reference for the expiry index as an LSM holds it: every key ever written stays,
// deleted ones as tombstones, and a scan counts the tombstones it steps over.
type lsmIndex struct {
	keys  [][]byte // sorted
	live  map[string]bool
	steps int
}

func (x *lsmIndex) insert(k []byte) {
	if i, found := slices.BinarySearchFunc(x.keys, k, bytes.Compare); !found {
		x.keys = slices.Insert(x.keys, i, bytes.Clone(k))
	}
	x.live[string(k)] = true
}

func (x *lsmIndex) remove(k []byte) { delete(x.live, string(k)) }

func (x *lsmIndex) scan(from []byte) ([]byte, bool, error) {
	i, _ := slices.BinarySearchFunc(x.keys, from, bytes.Compare)
	for ; i < len(x.keys); i++ {
		if x.live[string(x.keys[i])] {
			return bytes.Clone(x.keys[i]), true, nil
		}
		x.steps++
	}
	return nil, false, nil
}

func (x *lsmIndex) min() ([]byte, bool) {
	var m []byte
	for k := range x.live {
		if m == nil || k < string(m) {
			m = []byte(k)
		}
	}
	return m, m != nil
}

func expiryKey(exp int64, id int) []byte {
	return fmt.Appendf(binary.BigEndian.AppendUint64([]byte("y/"), uint64(exp)), "ev-%08d", id)
}

// TestEvictCursorFindsTheFirstKey: under random inserts (mostly in time order, some behind),
// removals of live keys (labels taken by their events) and evictions of the first key, the cursor
// finds the same key as a scan of the live set from the start, and it steps over a number of
// tombstones linear in the operations, where a scan from the start of the index steps over
// quadratically many.
func TestEvictCursorFindsTheFirstKey(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, seed))
			x := &lsmIndex{live: map[string]bool{}}
			naive := &lsmIndex{live: x.live}
			var c evictCursor
			var live [][]byte
			const ops = 6000
			for i := range ops {
				switch r := rng.IntN(10); {
				case r < 6 || len(live) == 0:
					exp := int64(i) - int64(rng.IntN(50)) // out of order by a little
					k := expiryKey(exp, i)
					x.insert(k)
					naive.keys = x.keys
					c.inserted(k)
					live = append(live, k)
				case r < 8:
					j := rng.IntN(min(len(live), 20)) // events take the oldest labels mostly
					k := live[j]
					live = slices.Delete(live, j, j+1)
					x.remove(k)
					c.removed(k)
				default:
					want, _ := x.min()
					if _, _, err := naive.scan(nil); err != nil {
						t.Fatal(err)
					}
					got, ok, err := c.first(x.scan)
					if err != nil || !ok || !bytes.Equal(got, want) {
						t.Fatalf("op %d: first = %q %v %v, want %q", i, got, ok, err, want)
					}
					x.remove(got)
					c.evicted(got)
					live = slices.DeleteFunc(live, func(k []byte) bool { return bytes.Equal(k, want) })
				}
				if i%2500 == 0 {
					c.reset() // a rewind
				}
			}
			t.Logf("tombstones stepped over: cursor %d, from the start %d", x.steps, naive.steps)
			if x.steps > 4*ops {
				t.Errorf("the cursor stepped over %d tombstones in %d operations", x.steps, ops)
			}
			if naive.steps < 10*x.steps {
				t.Errorf("a scan from the start stepped over %d tombstones, the cursor %d: the test shows nothing", naive.steps, x.steps)
			}
		})
	}
}
