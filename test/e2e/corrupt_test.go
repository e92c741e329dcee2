package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// stateCorruption breaks one partition's Pebble directory after a SIGKILL, the way a failing disk
// or a careless operator does. Each of them makes Pebble refuse the directory at open.
type stateCorruption struct {
	name  string
	file  func(name string) bool // the files it breaks; the first match in name order is used
	apply func(path string) error
}

var stateCorruptions = []stateCorruption{
	{"MANIFEST truncated to zero", func(n string) bool { return strings.HasPrefix(n, "MANIFEST-") },
		func(p string) error { return os.Truncate(p, 0) }},
	{"MANIFEST garbled", func(n string) bool { return strings.HasPrefix(n, "MANIFEST-") }, garble},
	{"table deleted", func(n string) bool { return strings.HasSuffix(n, ".sst") }, os.Remove},
}

// manifestDeleted stands in for "table deleted" in a directory that has no table yet. (A garbled
// OPTIONS file is no stand-in: Pebble may open the directory anyway, its data being intact.)
var manifestDeleted = stateCorruption{"MANIFEST deleted", func(n string) bool { return strings.HasPrefix(n, "MANIFEST-") }, os.Remove}

// hasTable reports whether the Pebble directory dir holds a table (.sst) file: its memtable has
// been flushed at least once.
func hasTable(dir string) bool {
	m, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	return len(m) > 0
}

// garble overwrites the middle of a file with 0xff bytes, so that its checksums fail.
func garble(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	n := max(st.Size()/2, 1)
	junk := make([]byte, n)
	for i := range junk {
		junk[i] = 0xff
	}
	if _, err := f.WriteAt(junk, st.Size()/4); err != nil {
		return err
	}
	return f.Sync()
}

// corruptDir applies c to the first matching file of dir and returns that file's name, or "" when
// dir has no such file.
func corruptDir(t *testing.T, dir string, c stateCorruption) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("reading the state directory %s: %v", dir, err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, n := range names {
		if c.file(n) {
			if err := c.apply(filepath.Join(dir, n)); err != nil {
				t.Fatalf("%s on %s: %v", c.name, n, err)
			}
			return n
		}
	}
	return ""
}

// TestCorruptStateIsRebuiltFromTheChangelog: the windowed pipeline is killed with SIGKILL while
// input flows, and the Pebble directories of three of its four partitions are broken: a MANIFEST
// cut to nothing, a MANIFEST garbled, and a table deleted (or, while the state still fits in the
// memtable and no table exists, the MANIFEST deleted). The restarted daemon must move each
// broken directory aside (kept for inspection as <dir>.corrupt-<time>), warn about it naming it,
// rebuild the state from the changelog, and end with window results equal to a batch
// recomputation, each window exactly once; the intact partition is not moved.
func TestCorruptStateIsRebuiltFromTheChangelog(t *testing.T) {
	if testing.Short() {
		t.Skip("long: runs the windowed daemon for about half a minute")
	}
	w := newWindowSetup(t, 4)
	n, keys, rate := 60_000, 5_000, 3000.0
	const instance = "corrupt-1"
	stateDir := t.TempDir()
	cfg := w.config(t, instance, stateDir, freePort(t))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	prodDone := make(chan error, 1)
	go func() {
		prodDone <- produceInputWith(ctx, w.b.Client(t, kgo.ProducerLinger(5*time.Millisecond)), w.src, n, keys, 5*time.Second, rate, 0.02, 29)
	}()
	partDir := func(p int) string { return filepath.Join(stateDir, w.app, fmt.Sprintf("%s-%d", w.src, p)) }
	proc := start(t, w.logPath, nil, streamdBin, "run", "-config", cfg)
	time.Sleep(8 * time.Second) // mid-stream: about 24k of the 60k records are in
	if err := proc.exited(); err != nil {
		t.Fatalf("streamd died by itself: %v", err)
	}
	proc.kill(t)
	select {
	case <-prodDone:
		t.Fatal("the input ended before the kill: the kill is not mid-stream")
	default:
	}

	var broken []string
	for p, c := range stateCorruptions {
		dir := partDir(p)
		if c.name == "table deleted" && !hasTable(dir) {
			c = manifestDeleted // no table yet: the state is all in the WAL
		}
		file := corruptDir(t, dir, c)
		if file == "" {
			t.Fatalf("partition %d: no file for %q in %s", p, c.name, dir)
		}
		t.Logf("partition %d: %s (%s)", p, c.name, file)
		broken = append(broken, dir)
	}
	intact := partDir(3)

	proc = start(t, w.logPath, nil, streamdBin, "run", "-config", cfg)
	if err := <-prodDone; err != nil {
		t.Fatal(err)
	}
	w.b.WaitCaughtUp(t, w.app, w.src, 3*time.Minute, proc.exited)
	proc.stop(t)

	// Every broken directory was kept aside, and the log says so, naming it.
	logData, _ := os.ReadFile(w.logPath)
	warned := map[string]string{}
	for _, line := range strings.Split(string(logData), "\n") {
		var l struct {
			Level, Msg string
			Dir        string `json:"dir"`
			MovedTo    string `json:"moved_to"`
			Reason     string `json:"reason"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Level == "WARN" && strings.Contains(l.Msg, "corrupt") {
			warned[l.Dir] = l.MovedTo
			t.Logf("WARN %s: dir %s moved to %s (%s)", l.Msg, filepath.Base(l.Dir), filepath.Base(l.MovedTo), l.Reason)
		}
	}
	for _, dir := range broken {
		aside, _ := filepath.Glob(dir + ".corrupt-*")
		if len(aside) != 1 {
			t.Errorf("%s: %d directories kept aside (%v), want 1", filepath.Base(dir), len(aside), aside)
		}
		if moved, ok := warned[dir]; !ok || len(aside) == 1 && moved != aside[0] {
			t.Errorf("%s: no WARN naming it and %v (warned: %v)", filepath.Base(dir), aside, warned)
		}
	}
	if aside, _ := filepath.Glob(intact + ".corrupt-*"); len(aside) != 0 {
		t.Errorf("the intact %s was moved aside too: %v", filepath.Base(intact), aside)
	}

	src := w.b.ReadCommitted(t, w.src, time.Minute)
	rep := w.verifyWindows(src, w.b.ReadCommitted(t, w.out, time.Minute), w.b.ReadCommitted(t, w.lt, time.Minute))
	t.Logf("window verifier: %s", rep)
	if rep.expected < 1000 {
		t.Errorf("only %d windows closed; the test proves little", rep.expected)
	}
	if !rep.ok() {
		t.Errorf("window results differ from a batch recomputation: %s", rep)
	}
}
