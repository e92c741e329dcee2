package state

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Disk errors. A DiskError matches ErrDiskFull when the file system said it is out of space and
// ErrWriteFailed otherwise, so callers tell the two apart with errors.Is.
var (
	ErrDiskFull    = errors.New("state: disk full")
	ErrWriteFailed = errors.New("state: write failed")
)

// DiskError is a write, sync, create or rename that the state disk refused. It names the
// operation and the file; Err is the file system's error (ENOSPC, EIO, EROFS, ...).
//
// Once a DiskError happened, its DB is failed: every later call returns the same error, nothing
// more is written, and the process should exit (the committed state on disk is intact, and the
// changelog replays the cycles after it; see faultFS).
type DiskError struct {
	Op   string // "write", "sync", "create", "rename", ...
	Path string
	Err  error
}

func (e *DiskError) kind() error {
	if vfs.IsNoSpaceError(e.Err) {
		return ErrDiskFull
	}
	return ErrWriteFailed
}

func (e *DiskError) Error() string {
	return fmt.Sprintf("%v: %s %s: %v", e.kind(), e.Op, e.Path, e.Err)
}

// Is matches ErrDiskFull or ErrWriteFailed.
func (e *DiskError) Is(target error) bool { return target == e.kind() }

// Unwrap returns the file system's error.
func (e *DiskError) Unwrap() error { return e.Err }

// health is a DB's first fatal condition: a disk fault or detected corruption. It is set from
// any goroutine (Pebble's flush, compaction and WAL goroutines report through the file system and
// the event listener) and read on the task's goroutine; reading it is one atomic load.
type health struct {
	err    atomic.Pointer[error]
	disk   atomic.Bool // a DiskError was met: faultFS parks every later write
	once   sync.Once
	failed chan struct{} // closed when err is set
}

func newHealth() *health { return &health{failed: make(chan struct{})} }

// fail records err unless an earlier error is recorded, and reports whether err was the first.
func (h *health) fail(err error) bool {
	first := false
	h.once.Do(func() {
		h.err.Store(&err)
		close(h.failed)
		first = true
	})
	return first
}

// get returns the recorded error, or nil.
func (h *health) get() error {
	if p := h.err.Load(); p != nil {
		return *p
	}
	return nil
}

// faultFS wraps the state disk so that a refused write never reaches Pebble.
//
// Why: Pebble cannot survive a failed write. A failed WAL write makes DB.Apply call
// Logger.Fatalf ("fatal commit error"); a failed close or create during WAL rotation panics with
// DB.mu unlocked, so the deferred unlock turns the panic into "sync: unlock of unlocked mutex", a
// fatal runtime error no recover can catch; a failed MANIFEST write or sync calls Fatalf with
// locks held on a background goroutine. None of these can be turned into an error return from
// outside Pebble.
//
// So the wrapper, on the first write-class error (write, sync, preallocate, create, link, rename,
// reuse, mkdir), records a DiskError in the DB's health and parks the goroutine that met it
// forever instead of returning the error. Pebble's state stays as it was before the refused
// operation: nothing half-written becomes visible, because the operation that would have made it
// visible never returns. Commit and Open run Pebble's part on a goroutine of their own and wait
// for it or for the health to fail, so they return the DiskError instead of hanging (see
// DB.pebbleCall). The DB is then failed and abandoned: its parked goroutines, file lock and
// memory stay until the process exits, which is what the caller does with the error.
//
// Write operations after the first disk fault park too, whatever their outcome, so that no later write
// lands behind a refused one. Reads, stats, listings, locks and removals pass through: Pebble
// handles their errors itself (a failed removal of an obsolete file is only logged).
type faultFS struct {
	vfs.FS
	h *health
}

// park records the fault (the first one wins) and blocks the calling goroutine for good.
func (fs *faultFS) park(op, path string, err error) {
	fs.h.disk.Store(true)
	fs.h.fail(&DiskError{Op: op, Path: path, Err: err})
	select {} // see faultFS: returning the error would crash the process inside Pebble
}

// check is called after every write-class operation.
func (fs *faultFS) check(op, path string, err error) {
	if err != nil {
		fs.park(op, path, err)
	}
	if fs.h.disk.Load() {
		select {}
	}
}

// before stops writes that start after a fault.
func (fs *faultFS) before() {
	if fs.h.disk.Load() {
		select {}
	}
}

func (fs *faultFS) wrap(f vfs.File, name string) vfs.File {
	if f == nil {
		return nil
	}
	return &faultFile{File: f, fs: fs, name: name}
}

func (fs *faultFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	fs.before()
	f, err := fs.FS.Create(name, category)
	fs.check("create", name, err)
	return fs.wrap(f, name), nil
}

func (fs *faultFS) Link(oldname, newname string) error {
	fs.before()
	fs.check("link", newname, fs.FS.Link(oldname, newname))
	return nil
}

func (fs *faultFS) OpenReadWrite(name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	fs.before()
	f, err := fs.FS.OpenReadWrite(name, category, opts...)
	if errors.Is(err, os.ErrNotExist) {
		return nil, err // a lookup, not a write
	}
	fs.check("open", name, err)
	return fs.wrap(f, name), nil
}

func (fs *faultFS) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.Open(name, opts...)
	if err != nil {
		return nil, err
	}
	return fs.wrap(f, name), nil
}

func (fs *faultFS) OpenDir(name string) (vfs.File, error) {
	f, err := fs.FS.OpenDir(name)
	if err != nil {
		return nil, err
	}
	return fs.wrap(f, name), nil
}

func (fs *faultFS) Rename(oldname, newname string) error {
	fs.before()
	fs.check("rename", newname, fs.FS.Rename(oldname, newname))
	return nil
}

func (fs *faultFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	fs.before()
	f, err := fs.FS.ReuseForWrite(oldname, newname, category)
	fs.check("reuse", newname, err)
	return fs.wrap(f, newname), nil
}

func (fs *faultFS) MkdirAll(dir string, perm os.FileMode) error {
	fs.before()
	fs.check("mkdir", dir, fs.FS.MkdirAll(dir, perm))
	return nil
}

// Unwrap returns the wrapped file system.
func (fs *faultFS) Unwrap() vfs.FS { return fs.FS }

// faultFile applies faultFS's rule to one file's writes and syncs.
type faultFile struct {
	vfs.File
	fs   *faultFS
	name string
}

func (f *faultFile) Write(p []byte) (int, error) {
	f.fs.before()
	n, err := f.File.Write(p)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	f.fs.check("write", f.name, err)
	return n, nil
}

func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	f.fs.before()
	n, err := f.File.WriteAt(p, off)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	f.fs.check("write", f.name, err)
	return n, nil
}

func (f *faultFile) Preallocate(offset, length int64) error {
	f.fs.before()
	f.fs.check("preallocate", f.name, f.File.Preallocate(offset, length))
	return nil
}

func (f *faultFile) Sync() error {
	f.fs.before()
	f.fs.check("sync", f.name, f.File.Sync())
	return nil
}

func (f *faultFile) SyncData() error {
	f.fs.before()
	f.fs.check("sync", f.name, f.File.SyncData())
	return nil
}

func (f *faultFile) SyncTo(length int64) (bool, error) {
	f.fs.before()
	full, err := f.File.SyncTo(length)
	f.fs.check("sync", f.name, err)
	return full, nil
}

var _ vfs.FS = (*faultFS)(nil)
