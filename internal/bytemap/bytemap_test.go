package bytemap

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

type ref struct {
	val     string
	deleted bool
}

// TestAgainstMap runs random operations against Map and a Go map and compares them.
func TestAgainstMap(t *testing.T) {
	seed := uint64(1)
	if s := os.Getenv("BYTEMAP_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	var m Map
	for round := range 5 {
		want := map[string]ref{}
		var order []string
		for range 20000 {
			k := fmt.Sprintf("key-%d", rng.IntN(3000))
			if _, ok := want[k]; !ok {
				order = append(order, k)
			}
			if rng.IntN(5) == 0 {
				m.Delete([]byte(k))
				want[k] = ref{deleted: true}
			} else {
				// Lengths vary, so that rewrites both fit their slot and outgrow it.
				v := fmt.Sprintf("v%d", rng.Int()) + strings.Repeat("x", rng.IntN(40))
				m.Set([]byte(k), []byte(v))
				want[k] = ref{val: v}
			}
			probe := fmt.Sprintf("key-%d", rng.IntN(3500))
			v, del, ok := m.Get([]byte(probe))
			w, wok := want[probe]
			if ok != wok || del != w.deleted || string(v) != w.val {
				t.Fatalf("seed %d round %d: Get(%s) = %q %v %v, want %q %v %v", seed, round, probe, v, del, ok, w.val, w.deleted, wok)
			}
		}
		if m.Len() != len(want) {
			t.Fatalf("seed %d: Len %d, want %d", seed, m.Len(), len(want))
		}
		i := 0
		m.Each(func(k, v []byte, del bool) {
			if string(k) != order[i] {
				t.Fatalf("seed %d: Each order: %s at %d, want %s", seed, k, i, order[i])
			}
			if w := want[string(k)]; w.deleted != del || w.val != string(v) {
				t.Fatalf("seed %d: Each(%s) = %q %v, want %+v", seed, k, v, del, w)
			}
			i++
		})
		m.Reset(1 << 30)
		if _, _, ok := m.Get([]byte(order[0])); ok || m.Len() != 0 {
			t.Fatal("Reset left entries")
		}
	}
}

func TestSteadyStateAllocs(t *testing.T) {
	var m Map
	keys := make([][]byte, 5000)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "card-%06d", i)
	}
	val := make([]byte, 48)
	cycle := func() {
		for i, k := range keys {
			val[0] = byte(i)
			if v, _, ok := m.Get(k); ok {
				val[1] = v[0]
			}
			m.Set(k, val)
		}
		m.Reset(64 << 20)
	}
	cycle()
	if n := testing.AllocsPerRun(20, cycle); n != 0 {
		t.Fatalf("%v allocations per cycle, want 0", n)
	}
}

func BenchmarkGetSet(b *testing.B) {
	var m Map
	keys := make([][]byte, 20000)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "card-%06d", i)
	}
	val := make([]byte, 64)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		k := keys[i%len(keys)]
		m.Get(k)
		m.Set(k, val)
		if i%20000 == 19999 {
			m.Reset(64 << 20)
		}
	}
}

// TestResetKeepsUpToMaxKeep: Held counts the arena, the entries and the slots; Reset keeps them
// all for reuse while they hold at most maxKeep bytes and gives them all back beyond it.
func TestResetKeepsUpToMaxKeep(t *testing.T) {
	var m Map
	val := make([]byte, 100)
	for i := range 1000 {
		m.Set(fmt.Appendf(nil, "key-%04d", i), val)
	}
	held := m.Held()
	if min := 1000*(8+100) + 1000*int(unsafe.Sizeof(entry{})); held < min {
		t.Fatalf("Held = %d, less than the keys, values and entries (%d)", held, min)
	}
	m.Reset(held)
	if m.Held() != held || m.Len() != 0 {
		t.Fatalf("Reset(%d) kept %d bytes and %d keys; want all %d bytes kept and no keys", held, m.Held(), m.Len(), held)
	}
	m.Set([]byte("k"), val)
	m.Reset(held - 1)
	if m.Held() != 0 {
		t.Fatalf("Reset(%d) kept %d bytes of a map holding %d", held-1, m.Held(), held)
	}
	if _, _, ok := m.Get([]byte("k")); ok {
		t.Fatal("a key survived Reset")
	}
}

// TestHotKeyRewritesStayBounded: a key rewritten on every one of its events with a value that grows
// a little each time (a sliding window's panes) takes a few slots, not one per write, and a rewrite
// from a value that aliases the key's own slot is copied correctly.
func TestHotKeyRewritesStayBounded(t *testing.T) {
	var m Map
	want := []byte{}
	for i := range 10000 {
		want = append(want, byte(i))
		if i%100 == 99 {
			want = want[:50] // shrinks too, now and then
		}
		m.Set([]byte("hot"), want)
		if v, _, _ := m.Get([]byte("hot")); string(v) != string(want) {
			t.Fatalf("write %d: Get returned %d bytes, want %d", i, len(v), len(want))
		}
	}
	// Without slots the arena would hold every write (about 750 KB); with them, a few slots.
	if m.Bytes() > 20*len(want)+1000 {
		t.Fatalf("arena %d bytes after 10000 rewrites of a value of at most 100 bytes", m.Bytes())
	}
	v, _, _ := m.Get([]byte("hot"))
	v[0] = 'A'
	m.Set([]byte("hot"), v[:10]) // aliases the slot
	if got, _, _ := m.Get([]byte("hot")); string(got) != "A"+string(want[1:10]) {
		t.Fatalf("self-aliasing rewrite: got %q", got)
	}
	n := 0
	m.Each(func(k, v []byte, del bool) { n++ })
	if n != 1 {
		t.Fatalf("Each visited %d keys, want 1", n)
	}
}

// TestEachSince: EachSince visits exactly the keys whose latest write came after the mark, once
// each, with their latest values, across Resets.
func TestEachSince(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var m Map
	for round := range 20 {
		mark := m.Seq()
		since := map[string]ref{}
		for range 1 + rng.IntN(3000) {
			k := fmt.Sprintf("k%d", rng.IntN(500))
			if rng.IntN(4) == 0 {
				m.Delete([]byte(k))
				since[k] = ref{deleted: true}
			} else {
				v := strings.Repeat("v", rng.IntN(30))
				m.Set([]byte(k), []byte(v))
				since[k] = ref{val: v}
			}
		}
		got := map[string]ref{}
		m.EachSince(mark, func(k, v []byte, del bool) {
			if _, dup := got[string(k)]; dup {
				t.Fatalf("round %d: %s visited twice", round, k)
			}
			got[string(k)] = ref{val: string(v), deleted: del}
		})
		if len(got) != len(since) {
			t.Fatalf("round %d: EachSince visited %d keys, want %d", round, len(got), len(since))
		}
		for k, w := range since {
			if got[k] != w {
				t.Fatalf("round %d: EachSince(%s) = %+v, want %+v", round, k, got[k], w)
			}
		}
		if round%5 == 4 {
			m.Reset(1 << 30)
		}
	}
}
