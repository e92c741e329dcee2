package admin

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// reloader holds a value parsed from a few files (a token file; a certificate, its key and a CA) and
// parses them again when one of them changes, so that a rotated secret takes effect without a
// restart. A change is a different modification time, size or file (os.SameFile): Kubernetes
// replaces a mounted Secret by swapping a symlink, which gives a different file with possibly the
// same time.
//
// Files are looked at on every use (one stat each): the admin server's uses are a handful of
// requests and handshakes a second, and a stat is far cheaper than either. A reload that fails
// (a file half written, a key that no longer matches its certificate) keeps the last good value,
// logs once and counts in failures; the same files are not parsed again until they change again.
type reloader[T any] struct {
	what     string // "token", "tls": in logs and the failures label
	paths    []string
	parse    func() (T, error)
	log      *slog.Logger
	failures prometheus.Counter

	mu    sync.Mutex
	seen  []os.FileInfo // the files as last parsed, good or bad
	value T
}

// load parses the files for the first time; its error is the caller's to report (a start-up
// failure).
func (r *reloader[T]) load() error {
	stamps, err := statAll(r.paths)
	if err != nil {
		return err
	}
	v, err := r.parse()
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen, r.value = stamps, v
	return nil
}

// current returns the value, parsing the files again first if one of them changed since they were
// last parsed.
func (r *reloader[T]) current() T {
	r.mu.Lock()
	defer r.mu.Unlock()
	stamps, err := statAll(r.paths)
	if err != nil {
		// A file that vanished, typically mid-rotation: keep serving with the last good value. Log
		// only the first time, not on every request until it is back.
		if r.seen != nil {
			r.seen = nil
			r.failures.Inc()
			r.log.Error("admin "+r.what+" files unreadable; keeping the previous "+r.what, "err", err)
		}
		return r.value
	}
	if sameFiles(r.seen, stamps) {
		return r.value
	}
	r.seen = stamps
	v, err := r.parse()
	if err != nil {
		r.failures.Inc()
		r.log.Error("admin "+r.what+" reload failed; keeping the previous "+r.what, "files", r.paths, "err", err)
		return r.value
	}
	r.value = v
	r.log.Info("admin "+r.what+" reloaded", "files", r.paths)
	return r.value
}

func statAll(paths []string) ([]os.FileInfo, error) {
	out := make([]os.FileInfo, len(paths))
	var errs []error
	for i, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[i] = fi
	}
	return out, errors.Join(errs...)
}

func sameFiles(a, b []os.FileInfo) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] == nil || b[i] == nil || !os.SameFile(a[i], b[i]) || !a[i].ModTime().Equal(b[i].ModTime()) || a[i].Size() != b[i].Size() {
			return false
		}
	}
	return true
}

// readFile reads a file of at most max bytes. The files are the operator's, but a wrong path
// (/dev/zero, a log file) must fail with an error, not fill the memory.
func readFile(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, max)
	}
	return b, nil
}
