package state

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// corruptions break a closed database's files in the ways a disk or an operator does. detect says
// whether Open must refuse the result as corrupt; where it is false Pebble may accept what is left
// (a MANIFEST cut inside its last record reads as a torn write), and the replay must still end at
// the committed state.
var corruptions = []struct {
	name   string
	detect bool
	file   func(name string) bool
	apply  func(t *testing.T, fs vfs.FS, path string)
}{
	{"manifest truncated to zero", true, isManifest, func(t *testing.T, fs vfs.FS, p string) { truncateFile(t, fs, p, 0) }},
	{"manifest truncated to half", false, isManifest, func(t *testing.T, fs vfs.FS, p string) { truncateFile(t, fs, p, size(t, fs, p)/2) }},
	{"manifest garbled", true, isManifest, garbleFile},
	{"table garbled", true, isTable, garbleFile},
	{"table truncated", true, isTable, func(t *testing.T, fs vfs.FS, p string) { truncateFile(t, fs, p, size(t, fs, p)/2) }},
	{"table deleted", true, isTable, func(t *testing.T, fs vfs.FS, p string) { must(t, fs.Remove(p)) }},
	{"options garbled", true, func(n string) bool { return strings.HasPrefix(n, "OPTIONS-") }, garbleFile},
	{"manifest marker deleted", false, func(n string) bool { return strings.HasPrefix(n, "marker.manifest.") }, func(t *testing.T, fs vfs.FS, p string) { must(t, fs.Remove(p)) }},
}

func isManifest(n string) bool { return strings.HasPrefix(n, "MANIFEST-") }
func isTable(n string) bool    { return strings.HasSuffix(n, ".sst") }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func size(t *testing.T, fs vfs.FS, path string) int64 {
	st, err := fs.Stat(path)
	must(t, err)
	return st.Size()
}

func readFile(t *testing.T, fs vfs.FS, path string) []byte {
	f, err := fs.Open(path)
	must(t, err)
	defer f.Close()
	b := make([]byte, size(t, fs, path))
	if _, err := f.ReadAt(b, 0); err != nil && len(b) > 0 {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, fs vfs.FS, path string, b []byte) {
	f, err := fs.Create(path, vfs.WriteCategoryUnspecified)
	must(t, err)
	_, err = f.Write(b)
	must(t, err)
	must(t, f.Close())
}

func truncateFile(t *testing.T, fs vfs.FS, path string, n int64) {
	writeFile(t, fs, path, readFile(t, fs, path)[:n])
}

func garbleFile(t *testing.T, fs vfs.FS, path string) {
	b := readFile(t, fs, path)
	for i := range b {
		if i%7 == 0 {
			b[i] ^= 0x5a
		}
	}
	writeFile(t, fs, path, b)
}

// committedState writes several cycles (with their simulated changelog), flushes them to a table
// and commits a last cycle that stays in the WAL, then closes the database.
func committedState(t *testing.T, fs vfs.FS) *changelog {
	db, err := Open(Options{Dir: "/db", FS: fs, Logger: quiet})
	must(t, err)
	s := mustStore(t, db, "w")
	cl := newChangelog()
	cycle := func(n, from int) {
		for i := range n {
			k := fmt.Sprintf("k%05d", (from+i*7)%3000)
			if i%11 == 0 {
				s.Delete([]byte(k))
			} else {
				s.Set([]byte(k), []byte(fmt.Sprintf("v%d-%s", from, strings.Repeat("x", 30))))
			}
		}
		must(t, db.Commit(map[string]int64{"w": cl.produce(s)}))
	}
	for c := range 20 {
		cycle(150, c*97)
	}
	must(t, db.pdb.Flush())
	cycle(40, 5)
	must(t, db.Close())
	return cl
}

// TestCorruptStateIsRebuilt corrupts a committed database in each way of corruptions and checks
// that Open refuses it with an ErrCorrupt that names a path, that OpenOrRebuild moves the
// directory aside (kept, with the bad files) and opens an empty one, and that the replay of the
// changelog rebuilds exactly the committed state.
func TestCorruptStateIsRebuilt(t *testing.T) {
	noFatal(t)
	for _, c := range corruptions {
		t.Run(c.name, func(t *testing.T) {
			fs := vfs.NewMem()
			cl := committedState(t, fs)
			names, err := fs.List("/db")
			must(t, err)
			hit := 0
			for _, n := range names {
				if c.file(n) {
					c.apply(t, fs, "/db/"+n)
					hit++
				}
			}
			if hit == 0 {
				t.Fatalf("no file to corrupt among %v", names)
			}
			first, openErr := Open(Options{Dir: "/db", FS: fs, Logger: quiet})
			if first != nil {
				must(t, first.Close())
			}
			var ce *CorruptError
			if c.detect {
				if !errors.Is(openErr, ErrCorrupt) || !errors.As(openErr, &ce) || ce.Path == "" || !strings.HasPrefix(openErr.Error(), "state: ") {
					t.Fatalf("Open of corrupt state: %v, want a state.CorruptError naming a path", openErr)
				}
			} else if openErr != nil && !errors.Is(openErr, ErrCorrupt) {
				t.Fatalf("Open: %v, want success or ErrCorrupt", openErr)
			}

			db, err := OpenOrRebuild(Options{Dir: "/db", FS: fs, Logger: quiet})
			must(t, err)
			defer db.Close()
			s := mustStore(t, db, "w")
			root, err := fs.List("/")
			must(t, err)
			var aside []string
			for _, n := range root {
				if strings.HasPrefix(n, "db.corrupt-") {
					aside = append(aside, n)
				}
			}
			if openErr != nil {
				if len(aside) != 1 {
					t.Fatalf("after a rebuild the root holds %v, want one db.corrupt-* directory", root)
				}
				kept, err := fs.List("/" + aside[0])
				must(t, err)
				if len(kept) < len(names)-1 {
					t.Fatalf("the corrupt directory keeps %v, had %v", kept, names)
				}
				if got := s.ChangelogOffset(); got != -1 {
					t.Fatalf("rebuilt store has offset %d, want -1 (full replay)", got)
				}
			} else if len(aside) != 0 {
				t.Fatalf("state moved aside %v although Open accepted it", aside)
			}
			cl.restore(t, s)
			cl.check(t, s, c.name)
		})
	}
}

// TestCorruptionFoundLaterIsRebuiltAtNextOpen: a table garbled in a data block passes Open's cheap
// checks; the read that meets it (ours, or Pebble's own table-stats reader during Open) fails the
// DB with ErrCorrupt (not Pebble's Fatalf) and leaves a marker, and the next OpenOrRebuild rebuilds.
func TestCorruptionFoundLaterIsRebuiltAtNextOpen(t *testing.T) {
	noFatal(t)
	fs := vfs.NewMem()
	cl := committedState(t, fs)
	names, err := fs.List("/db")
	must(t, err)
	for _, n := range names {
		if isTable(n) {
			// Garble the first data block only: the footer, index and properties stay readable.
			p := "/db/" + n
			b := readFile(t, fs, p)
			for i := 16; i < 64; i++ {
				b[i] ^= 0xff
			}
			writeFile(t, fs, p, b)
		}
	}
	db, err := Open(Options{Dir: "/db", FS: fs, Logger: quiet})
	if err == nil {
		var s *Store
		if s, err = db.Store("w"); err == nil {
			var it *Iter
			if it, err = s.NewIter(nil, nil); err == nil {
				for ; it.Valid(); it.Next() {
				}
				err = it.Close()
			}
		}
		if !errors.Is(err, ErrCorrupt) && !errors.Is(db.Err(), ErrCorrupt) {
			t.Fatalf("reading a garbled block: %v (DB error %v), want ErrCorrupt", err, db.Err())
		}
		if err := db.Commit(nil); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("commit on a DB that found corruption: %v, want ErrCorrupt", err)
		}
		must(t, db.Close())
	} else if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open of a garbled table: %v, want ErrCorrupt", err)
	}
	if _, err := Open(Options{Dir: "/db", FS: fs, Logger: quiet}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("reopen after corruption was found: %v, want ErrCorrupt", err)
	}
	db, err = OpenOrRebuild(Options{Dir: "/db", FS: fs, Logger: quiet})
	must(t, err)
	defer db.Close()
	s := mustStore(t, db, "w")
	cl.restore(t, s)
	cl.check(t, s, "rebuilt after a late corruption")
}
