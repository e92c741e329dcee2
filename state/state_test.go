package state

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/test/kafkatest"
)

func openMem(t testing.TB, fs vfs.FS) *DB {
	t.Helper()
	// A tiny record cache, so that the model test rotates its generations often.
	db, err := Open(Options{Dir: "/db", FS: fs, RecordCacheBytes: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func mustStore(t testing.TB, db *DB, name string) *Store {
	t.Helper()
	s, err := db.Store(name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func get(t testing.TB, s *Store, k string) (string, bool) {
	t.Helper()
	v, ok, err := s.Get([]byte(k))
	if err != nil {
		t.Fatal(err)
	}
	return string(v), ok
}

func scan(t testing.TB, s *Store, lo, hi string) []string {
	t.Helper()
	var lower, upper []byte
	if lo != "" {
		lower = []byte(lo)
	}
	if hi != "" {
		upper = []byte(hi)
	}
	it, err := s.NewIter(lower, upper)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for ; it.Valid(); it.Next() {
		out = append(out, string(it.Key())+"="+string(it.Value()))
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRandomAgainstModel runs random writes, range scans, commits, aborts and reopens against a
// reference model (a committed map plus the open cycle's map) and compares every read.
func TestRandomAgainstModel(t *testing.T) {
	seed := uint64(1)
	if s := os.Getenv("STATE_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (STATE_SEED to repeat)", seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	fs := vfs.NewMem()
	db := openMem(t, fs)
	defer func() { db.Close() }()
	names := []string{"a", "b"}
	committed := map[string]map[string]string{"a": {}, "b": {}}
	cycle := map[string]map[string]*string{"a": {}, "b": {}}
	offsets := map[string]int64{"a": -1, "b": -1}
	view := func(store, k string) (string, bool) {
		if v, ok := cycle[store][k]; ok {
			if v == nil {
				return "", false
			}
			return *v, true
		}
		v, ok := committed[store][k]
		return v, ok
	}
	for step := range 20000 {
		store := names[rng.IntN(2)]
		s := mustStore(t, db, store)
		k := fmt.Sprintf("k%03d", rng.IntN(200))
		switch op := rng.IntN(100); {
		case op < 45:
			v := fmt.Sprintf("v%d", step)
			s.Set([]byte(k), []byte(v))
			cycle[store][k] = &v
		case op < 55:
			s.Delete([]byte(k))
			cycle[store][k] = nil
		case op < 85:
			got, ok := get(t, s, k)
			want, wok := view(store, k)
			if ok != wok || got != want {
				t.Fatalf("seed %d step %d: %s.Get(%s) = %q,%v want %q,%v", seed, step, store, k, got, ok, want, wok)
			}
		case op < 90:
			lo := fmt.Sprintf("k%03d", rng.IntN(200))
			hi := fmt.Sprintf("k%03d", rng.IntN(200))
			got := scan(t, s, lo, hi)
			var want []string
			for i := range 200 {
				kk := fmt.Sprintf("k%03d", i)
				if kk < lo || kk >= hi {
					continue
				}
				if v, ok := view(store, kk); ok {
					want = append(want, kk+"="+v)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("seed %d step %d: scan [%s,%s) = %v want %v", seed, step, lo, hi, got, want)
			}
		case op < 95:
			offs := map[string]int64{}
			for _, n := range names {
				if rng.IntN(2) == 0 {
					offsets[n] += int64(1 + rng.IntN(10))
					offs[n] = offsets[n]
				}
				for kk, v := range cycle[n] {
					if v == nil {
						delete(committed[n], kk)
					} else {
						committed[n][kk] = *v
					}
				}
				cycle[n] = map[string]*string{}
			}
			if err := db.Commit(offs); err != nil {
				t.Fatal(err)
			}
		case op < 98:
			db.Abort()
			for _, n := range names {
				cycle[n] = map[string]*string{}
			}
		default:
			// Crash and reopen: the open cycle is lost, the committed state and offsets stay.
			db.Close()
			db = openMem(t, fs)
			for _, n := range names {
				cycle[n] = map[string]*string{}
				if got := mustStore(t, db, n).ChangelogOffset(); got != offsets[n] {
					t.Fatalf("seed %d step %d: offset of %s after reopen = %d, want %d", seed, step, n, got, offsets[n])
				}
			}
		}
	}
}

func TestChangesAreCoalesced(t *testing.T) {
	db := openMem(t, vfs.NewMem())
	defer db.Close()
	s := mustStore(t, db, "w")
	for i := range 100 {
		s.Set([]byte("hot"), []byte(strconv.Itoa(i)))
	}
	s.Set([]byte("cold"), []byte("x"))
	s.Delete([]byte("cold"))
	var got []string
	s.Changes(func(k, v []byte, deleted bool) { got = append(got, fmt.Sprintf("%s=%s/%v", k, v, deleted)) })
	if fmt.Sprint(got) != "[hot=99/false cold=/true]" {
		t.Fatalf("changes %v", got)
	}
}

// TestHotPathAllocs: a read-modify-write of a cached key allocates nothing.
func TestHotPathAllocs(t *testing.T) {
	db := openMem(t, vfs.NewMem())
	defer db.Close()
	s := mustStore(t, db, "w")
	keys := make([][]byte, 1000)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "card-%05d", i)
		s.Set(keys[i], []byte("00000000"))
	}
	val := make([]byte, 8)
	i := 0
	if n := testing.AllocsPerRun(5000, func() {
		k := keys[i%len(keys)]
		v, _, _ := s.Get(k)
		copy(val, v)
		val[0]++
		s.Set(k, val)
		i++
	}); n != 0 {
		t.Fatalf("%v allocations per read-modify-write", n)
	}
}

// TestRestoreFromKafka writes a changelog in transactions, one of them aborted, and restores it into
// an empty store (full replay) and into a store that has part of it (tail replay).
func TestRestoreFromKafka(t *testing.T) {
	b := kafkatest.Start(t)
	topic := b.Topic(t, "changelog", 2)
	txn := b.Client(t, kgo.TransactionalID(kafkatest.Name(t, "txn")), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx := context.Background()
	write := func(commit bool, recs ...*kgo.Record) {
		t.Helper()
		if err := txn.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			r.Partition = 1
			if err := txn.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := txn.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	rec := func(k, v string) *kgo.Record {
		r := &kgo.Record{Key: []byte(k)}
		if v != "" {
			r.Value = []byte(v)
		}
		return r
	}
	write(true, rec("a", "1"), rec("b", "1"), rec("c", "1"))
	write(false, rec("a", "aborted"), rec("d", "aborted"))
	write(true, rec("b", "2"), rec("c", ""))
	opts := []kgo.Opt{kgo.SeedBrokers(b.Addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner())}

	db := openMem(t, vfs.NewMem())
	defer db.Close()
	s := mustStore(t, db, "w")
	st, err := RestoreFromKafka(ctx, opts, topic, 1, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Full || st.Records != 5 {
		t.Errorf("full restore stats %+v, want 5 records", st)
	}
	if got := scan(t, s, "", ""); fmt.Sprint(got) != "[a=1 b=2]" {
		t.Fatalf("restored %v, want [a=1 b=2]", got)
	}
	end := s.ChangelogOffset()

	write(true, rec("e", "1"), rec("a", "3"))
	st, err = RestoreFromKafka(ctx, opts, topic, 1, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Full || st.From != end || st.Records != 2 {
		t.Errorf("tail restore stats %+v, want 2 records from %d", st, end)
	}
	if got := scan(t, s, "", ""); fmt.Sprint(got) != "[a=3 b=2 e=1]" {
		t.Fatalf("after tail restore %v", got)
	}
	// Nothing new: a restore is a no-op.
	if st, err = RestoreFromKafka(ctx, opts, topic, 1, s, nil); err != nil || st.Records != 0 {
		t.Fatalf("idle restore: %+v %v", st, err)
	}
	// A transaction left open on the changelog (its producer died mid-cycle) does not hold the
	// restore until the broker aborts it: the restore ends at the last stable offset.
	open := b.Client(t, kgo.TransactionalID(kafkatest.Name(t, "open")), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.TransactionTimeout(time.Minute))
	if err := open.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := open.ProduceSync(ctx, &kgo.Record{Key: []byte("z"), Value: []byte("open"), Partition: 1}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	stableEnd := s.ChangelogOffset()
	var last [2]int64
	bounded, cancel := context.WithTimeout(ctx, 20*time.Second)
	st, err = RestoreFromKafka(bounded, opts, topic, 1, s, func(next, end int64) { last = [2]int64{next, end} })
	cancel()
	if err != nil || st.Records != 0 || st.To != stableEnd {
		t.Fatalf("restore past an open transaction: %+v, %v; want no records, up to %d", st, err, stableEnd)
	}
	if last != [2]int64{stableEnd, stableEnd} {
		t.Errorf("last progress %v, want [%d %d]", last, stableEnd, stableEnd)
	}
	if got := scan(t, s, "", ""); fmt.Sprint(got) != "[a=3 b=2 e=1]" {
		t.Fatalf("after a restore past an open transaction %v", got)
	}
	if err := open.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	// Local state ahead of the changelog is refused, not silently diverged.
	if err := db.Commit(map[string]int64{"w": s.ChangelogOffset() + 100}); err != nil {
		t.Fatal(err)
	}
	if _, err := RestoreFromKafka(ctx, opts, topic, 1, s, nil); err == nil {
		t.Fatal("restore accepted local state ahead of its changelog")
	}
}
