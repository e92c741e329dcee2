package state

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// ErrCorrupt is matched by every CorruptError.
var ErrCorrupt = errors.New("state: corrupt")

// CorruptError says that a task's local state cannot be trusted: Pebble refused to open it (a
// broken MANIFEST or OPTIONS file, a missing or truncated table), a table failed its checksum, or
// an earlier run found corruption and left a marker. Path names the file or directory at fault.
type CorruptError struct {
	Path string
	Err  error
}

func (e *CorruptError) Error() string { return fmt.Sprintf("state: corrupt: %s: %v", e.Path, e.Err) }

// Is matches ErrCorrupt.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// Unwrap returns Pebble's error.
func (e *CorruptError) Unwrap() error { return e.Err }

// corruptMarker is the file a DB that met corruption at run time leaves in its directory, so that
// the next OpenOrRebuild moves the directory aside instead of meeting the same bad block again.
// Pebble ignores files whose names it does not know.
const corruptMarker = "STREAMD-CORRUPT"

// markCorrupt writes the marker, best effort: if it cannot be written the corruption is still
// found when the bad block is read again.
func markCorrupt(fs vfs.FS, dir string, reason error) {
	f, err := fs.Create(fs.PathJoin(dir, corruptMarker), vfs.WriteCategoryUnspecified)
	if err != nil {
		return
	}
	_, _ = io.WriteString(f, reason.Error()+"\n")
	_ = f.Sync()
	_ = f.Close()
}

// readMarker returns the marker's reason, if the marker exists.
func readMarker(fs vfs.FS, dir string) (string, bool) {
	f, err := fs.Open(fs.PathJoin(dir, corruptMarker))
	if err != nil {
		return "", false
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, 4<<10))
	return string(b), true
}

// environmental reports whether an error of pebble.Open is about the machine rather than the files:
// no space, an I/O or permission error, the directory locked by another process, no file
// descriptors. Those are not corruption, and moving the directory aside would not help.
//
// Everything else Pebble refuses at open is taken as corruption. Pebble marks only some of it
// (pebble.ErrCorruption); a missing table ("unknown to the objstorage provider") or a table whose
// size disagrees with the MANIFEST comes unmarked. Taking too much as corrupt costs a rebuild from
// the changelog, never data, because the directory is moved aside, not deleted.
func environmental(err error) bool {
	var de *DiskError
	if errors.As(err, &de) {
		return true
	}
	for _, e := range []error{os.ErrPermission, syscall.EAGAIN, syscall.EWOULDBLOCK, syscall.ENOSPC,
		syscall.EIO, syscall.EROFS, syscall.EMFILE, syscall.ENFILE, syscall.ENOMEM, syscall.EDQUOT,
		context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// refusedWrite says whether err is the disk refusing a write: full, failing or read-only.
func refusedWrite(err error) bool {
	for _, e := range []error{syscall.ENOSPC, syscall.EDQUOT, syscall.EIO, syscall.EROFS} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// OpenOrRebuild opens the database like Open; when Open finds the local state corrupt
// (ErrCorrupt), it moves the directory aside to <dir>.corrupt-<UTC time>, logs a warning naming
// both paths and the reason, and opens an empty database in its place. The stores of the new
// database have no changelog offset, so the caller's restore (RestoreFromKafka) replays their whole
// changelogs: the changelog holds everything the local state held.
//
// The corrupt directory is kept for inspection; nothing deletes it. Errors other than corruption
// (a full or failing disk, a held lock) are returned as they are.
func OpenOrRebuild(opts Options) (*DB, error) {
	db, err := Open(opts)
	if err == nil || !errors.Is(err, ErrCorrupt) {
		return db, err
	}
	fs := opts.FS
	if fs == nil {
		fs = vfs.Default
	}
	aside := fmt.Sprintf("%s.corrupt-%s", opts.Dir, time.Now().UTC().Format("20060102T150405.000000000Z"))
	if rerr := fs.Rename(opts.Dir, aside); rerr != nil {
		return nil, fmt.Errorf("state: move corrupt state %s aside: %w (it is corrupt: %v)", opts.Dir, rerr, err)
	}
	logger(opts).Warn("state: local state is corrupt; moved aside, rebuilding from the changelog",
		"dir", opts.Dir, "moved_to", aside, "reason", err.Error())
	return Open(opts)
}
