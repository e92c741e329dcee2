package state

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// changelogRec is one record of the simulated changelog: what a task produced to Kafka before it
// committed the cycle to Pebble.
type changelogRec struct {
	key, value string
	deleted    bool
	offset     int64
}

// changelog is the simulated changelog of one store plus the map it replays to.
type changelog struct {
	recs []changelogRec
	ref  map[string]string
}

func newChangelog() *changelog { return &changelog{ref: map[string]string{}} }

// produce appends the store's open cycle to the changelog, as the task does inside the Kafka
// transaction, and returns the offset after it (or -1 if the cycle wrote nothing).
func (c *changelog) produce(s *Store) int64 {
	if s.ChangeCount() == 0 {
		return -1
	}
	s.Changes(func(k, v []byte, deleted bool) {
		c.recs = append(c.recs, changelogRec{key: string(k), value: string(v), deleted: deleted, offset: int64(len(c.recs))})
		if deleted {
			delete(c.ref, string(k))
		} else {
			c.ref[string(k)] = string(v)
		}
	})
	return int64(len(c.recs))
}

// restore replays the changelog from the store's offset, as RestoreFromKafka does.
func (c *changelog) restore(t testing.TB, s *Store) {
	t.Helper()
	r := s.NewRestorer()
	from := max(s.ChangelogOffset(), 0)
	for _, rec := range c.recs[min(from, int64(len(c.recs))):] {
		if err := r.Apply([]byte(rec.key), []byte(rec.value), rec.deleted, rec.offset+1); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Finish(max(int64(len(c.recs)), s.ChangelogOffset(), 0)); err != nil {
		t.Fatal(err)
	}
}

// check compares the whole store with the changelog's map.
func (c *changelog) check(t testing.TB, s *Store, what string) {
	t.Helper()
	got := scan(t, s, "", "")
	var want []string
	for k, v := range c.ref {
		want = append(want, k+"="+v)
	}
	sortStrings(want)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("%s: store has %d keys, reference %d; first difference %s", what, len(got), len(want), firstDiff(got, want))
	}
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func firstDiff(a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("at %d: %q vs %q", i, a[i], b[i])
		}
	}
	return fmt.Sprintf("lengths %d vs %d", len(a), len(b))
}

// noFatal makes Pebble's Logger.Fatalf fail the test instead of exiting, and reports at the end
// whether it was reached.
func noFatal(t *testing.T) {
	var reached atomic.Bool
	exitProcess = func(int) { reached.Store(true) }
	t.Cleanup(func() {
		exitProcess = os.Exit
		if reached.Load() {
			t.Error("an injected fault reached Pebble's Logger.Fatalf")
		}
	})
}

var quiet = slog.New(slog.DiscardHandler)

// faultTarget selects which file-system operations an injection hits.
type faultTarget struct {
	name string
	// ops is about how many matching operations a trial's workload makes, Open included (measured):
	// the fault is injected after a random number of them below that.
	ops   int
	match func(op errorfs.Op) bool
}

func isWrite(k errorfs.OpKind) bool {
	switch k {
	case errorfs.OpFileWrite, errorfs.OpFileWriteAt, errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
		return true
	}
	return false
}

var faultTargets = []faultTarget{
	{"wal write", 10, func(op errorfs.Op) bool {
		return strings.HasSuffix(op.Path, ".log") && (op.Kind == errorfs.OpFileWrite || op.Kind == errorfs.OpFileWriteAt)
	}},
	// WAL syncs are few (at WAL rotations and closes, 2 or 3 in a workload, depending on when the
	// flushes run): a fault after more than one of them would often never surface.
	{"wal sync", 2, func(op errorfs.Op) bool {
		return strings.HasSuffix(op.Path, ".log") && (op.Kind == errorfs.OpFileSync || op.Kind == errorfs.OpFileSyncData || op.Kind == errorfs.OpFileSyncTo)
	}},
	{"wal create", 16, func(op errorfs.Op) bool {
		return strings.HasSuffix(op.Path, ".log") && (op.Kind == errorfs.OpCreate || op.Kind == errorfs.OpReuseForWrite)
	}},
	{"flush", 60, func(op errorfs.Op) bool {
		return strings.HasSuffix(op.Path, ".sst") && (isWrite(op.Kind) || op.Kind == errorfs.OpCreate)
	}},
	{"manifest", 24, func(op errorfs.Op) bool {
		return strings.Contains(op.Path, "MANIFEST") && (isWrite(op.Kind) || op.Kind == errorfs.OpCreate)
	}},
	{"rename", 2, func(op errorfs.Op) bool { return op.Kind == errorfs.OpRename }},
	{"any write", 150, func(op errorfs.Op) bool { return op.Kind.ReadOrWrite() == errorfs.OpIsWrite }},
}

// TestDiskFaults injects ENOSPC or EIO into writes, syncs, creates and renames of the WAL, the
// flushed tables and the MANIFEST, at a random point of a random workload, and from then on into
// every matching operation (a full disk stays full). It asserts that no call panics or reaches
// Pebble's Fatalf, that the fault comes back as a DiskError matching ErrDiskFull or ErrWriteFailed,
// and that after a crash (a clone of the disk keeping all or some unsynced data), a reopen on a
// healthy disk and a replay of the changelog from the stored offset, the store equals the
// reference map of everything the changelog holds.
func TestDiskFaults(t *testing.T) {
	noFatal(t)
	seed := uint64(1)
	if s := os.Getenv("STATE_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (STATE_SEED to repeat)", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	faulted := map[string]int{}
	for trial := range 42 {
		target := faultTargets[trial%len(faultTargets)]
		errno := []syscall.Errno{syscall.ENOSPC, syscall.EIO}[rng.IntN(2)]
		want := ErrWriteFailed
		if errno == syscall.ENOSPC {
			want = ErrDiskFull
		}
		after := int64(rng.IntN(target.ops))
		what := fmt.Sprintf("seed %d trial %d (%s, %v after %d ops)", seed, trial, target.name, errno, after)

		mem := vfs.NewCrashableMem()
		var seen atomic.Int64
		var armed atomic.Bool
		inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
			if !armed.Load() || !target.match(op) || seen.Add(1) <= after {
				return nil
			}
			return &os.PathError{Op: "injected", Path: op.Path, Err: errno}
		})
		fs := errorfs.Wrap(mem, inj)
		// Small memtables, so that the workload rotates WALs and flushes tables often.
		opts := Options{Dir: "/db", FS: fs, MemTableSize: 64 << 10, Logger: quiet}
		cl := newChangelog()
		armed.Store(target.name == "rename" || rng.IntN(4) == 0) // sometimes fault during Open already
		db, err := Open(opts)
		armed.Store(true)
		var failure error
		var s *Store
		if err != nil {
			failure = err
		} else {
			s = mustStore(t, db, "w")
			for cycle := 0; cycle < 150 && failure == nil; cycle++ {
				for range 1 + rng.IntN(60) {
					k := fmt.Sprintf("k%04d", rng.IntN(800))
					if rng.IntN(8) == 0 {
						s.Delete([]byte(k))
					} else {
						s.Set([]byte(k), []byte(strings.Repeat(strconv.Itoa(cycle), 40+rng.IntN(80))))
					}
				}
				offsets := map[string]int64{}
				if off := cl.produce(s); off >= 0 {
					offsets["w"] = off
				}
				failure = db.Commit(offsets)
			}
		}
		if failure == nil {
			t.Logf("%s: no fault (%d matching operations)", what, seen.Load())
		}
		if failure != nil {
			faulted[target.name]++
			var de *DiskError
			if !errors.As(failure, &de) || !errors.Is(failure, want) || !errors.Is(failure, errno) {
				t.Fatalf("%s: error %v, want a DiskError matching %v and %v", what, failure, want, errno)
			}
			if !strings.HasPrefix(failure.Error(), "state: ") {
				t.Fatalf("%s: error %q is not prefixed", what, failure)
			}
			if db != nil {
				// A failed DB refuses everything with the same error.
				if err := db.Commit(nil); !errors.Is(err, want) {
					t.Fatalf("%s: commit after the fault: %v", what, err)
				}
				if _, _, err := s.Get([]byte("k0001")); !errors.Is(err, want) {
					t.Fatalf("%s: get after the fault: %v", what, err)
				}
			}
		}
		if db != nil {
			// The fault may strike first in Close (the WAL's last write, on Pebble's own
			// goroutine, races the workload): Close then returns it, as a DiskError too.
			if err := db.Close(); err != nil && failure == nil {
				var de *DiskError
				if !errors.As(err, &de) || !errors.Is(err, want) || !errors.Is(err, errno) {
					t.Fatalf("%s: close: %v, want nil or a DiskError matching %v and %v", what, err, want, errno)
				}
				faulted[target.name]++
			}
		}

		// Crash, reopen on a healthy disk, replay the changelog.
		cfg := vfs.CrashCloneCfg{UnsyncedDataPercent: 100, RNG: rand.New(rand.NewPCG(seed, uint64(trial)))}
		if rng.IntN(2) == 0 {
			cfg = vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(100), RNG: rand.New(rand.NewPCG(rng.Uint64(), 1))}
		}
		healthy := mem.CrashClone(cfg)
		db2, err := OpenOrRebuild(Options{Dir: "/db", FS: healthy, Logger: quiet})
		if err != nil {
			t.Fatalf("%s: reopen on a healthy disk: %v", what, err)
		}
		s2 := mustStore(t, db2, "w")
		if off := s2.ChangelogOffset(); off > int64(len(cl.recs)) {
			t.Fatalf("%s: stored offset %d is ahead of the changelog (%d records)", what, off, len(cl.recs))
		}
		cl.restore(t, s2)
		cl.check(t, s2, what)
		if err := db2.Close(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("faults surfaced per target: %v", faulted)
	for _, ft := range faultTargets {
		if faulted[ft.name] == 0 {
			t.Errorf("no trial of target %q surfaced a fault: the test does not exercise it", ft.name)
		}
	}
}

// TestDiskErrorMatches: the typed error tells a full disk from other write failures, keeps the
// file system's error, and names the operation and the file.
func TestDiskErrorMatches(t *testing.T) {
	full := &DiskError{Op: "write", Path: "/db/000004.log", Err: &os.PathError{Op: "write", Path: "/db/000004.log", Err: syscall.ENOSPC}}
	if !errors.Is(full, ErrDiskFull) || errors.Is(full, ErrWriteFailed) || !errors.Is(full, syscall.ENOSPC) {
		t.Fatalf("ENOSPC error %v matches wrongly", full)
	}
	if got := full.Error(); !strings.HasPrefix(got, "state: disk full: write /db/000004.log: ") {
		t.Fatalf("message %q", got)
	}
	eio := &DiskError{Op: "sync", Path: "/db/MANIFEST-000001", Err: syscall.EIO}
	if errors.Is(eio, ErrDiskFull) || !errors.Is(eio, ErrWriteFailed) {
		t.Fatalf("EIO error %v matches wrongly", eio)
	}
}

// TestCloseOnFailingDisk: a disk that starts refusing writes while the DB is idle is first seen by
// Close (Pebble's WAL writes its last block and syncs). Close must return the DiskError, not wait
// for ever on Pebble's parked goroutine.
func TestCloseOnFailingDisk(t *testing.T) {
	noFatal(t)
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EIO} {
		mem := vfs.NewCrashableMem()
		var armed atomic.Bool
		inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
			if armed.Load() && op.Kind.ReadOrWrite() == errorfs.OpIsWrite {
				return &os.PathError{Op: "injected", Path: op.Path, Err: errno}
			}
			return nil
		})
		db, err := Open(Options{Dir: "/db", FS: errorfs.Wrap(mem, inj), Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		s := mustStore(t, db, "w")
		for i := range 50 {
			s.Set([]byte(fmt.Sprintf("k%d", i)), []byte("v"))
		}
		if err := db.Commit(map[string]int64{"w": 50}); err != nil {
			t.Fatal(err)
		}
		armed.Store(true)
		done := make(chan error, 1)
		go func() { done <- db.Close() }()
		select {
		case err := <-done:
			// A close that wrote nothing more may succeed; one that tried must say why it failed.
			if err != nil {
				var de *DiskError
				if !errors.As(err, &de) || !errors.Is(err, errno) {
					t.Fatalf("%v: close returned %v, want a DiskError matching it", errno, err)
				}
			}
			t.Logf("%v: close returned %v", errno, err)
		case <-time.After(20 * time.Second):
			t.Fatalf("%v: Close did not return within 20 s on a disk that refuses writes", errno)
		}
	}
}

// TestOpenOnFullDiskIsADiskError: a refused write that faultFS does not see, the LOCK file's
// creation on a full disk, still comes back from Open as a DiskError matching ErrDiskFull (it
// reached the caller as a bare file-system error once, in TestDiskFaults under load).
func TestOpenOnFullDiskIsADiskError(t *testing.T) {
	noFatal(t)
	inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
		if strings.HasSuffix(op.Path, "LOCK") {
			return &os.PathError{Op: "injected", Path: op.Path, Err: syscall.ENOSPC}
		}
		return nil
	})
	_, err := Open(Options{Dir: "/db", FS: errorfs.Wrap(vfs.NewMem(), inj), Logger: quiet})
	var de *DiskError
	if !errors.As(err, &de) || !errors.Is(err, ErrDiskFull) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Open on a disk that refuses the LOCK file: %v, want a DiskError matching ErrDiskFull", err)
	}
}
