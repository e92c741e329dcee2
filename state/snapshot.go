package state

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Snapshot is a consistent, read-only view of a DB's committed state: the stores' values and
// their changelog offsets as of one instant, whatever is written after it. It reads Pebble
// directly (no write cache, no record cache), so that, unlike a Store, it may be used from any
// goroutine while the DB's owner keeps writing through Restorers: package state/table takes one
// per commit cycle for the tasks that read a table another goroutine keeps current. The DB's
// open cycle is not part of it.
//
// A Snapshot must be closed before its DB is. Its methods may be called from one goroutine at a
// time (it keeps a key buffer); several goroutines take a snapshot each.
type Snapshot struct {
	snap   *pebble.Snapshot
	h      *health
	keyBuf []byte
}

// NewSnapshot takes a snapshot of the DB's committed state. It may be called from any goroutine
// while the DB is open.
func (d *DB) NewSnapshot() (*Snapshot, error) {
	if d.closed {
		return nil, ErrClosed
	}
	if err := d.h.get(); err != nil {
		return nil, err
	}
	return &Snapshot{snap: d.pdb.NewSnapshot(), h: d.h}, nil
}

// Get appends the value of key in store to dst and reports whether the key is there.
func (s *Snapshot) Get(store string, key, dst []byte) ([]byte, bool, error) {
	s.keyBuf = append(append(append(s.keyBuf[:0], store...), 0), key...)
	v, closer, err := s.snap.Get(s.keyBuf)
	if errors.Is(err, pebble.ErrNotFound) {
		return dst, false, nil
	}
	if err != nil {
		if herr := s.h.get(); herr != nil {
			return dst, false, herr
		}
		return dst, false, fmt.Errorf("state: snapshot get %s: %w", store, err)
	}
	dst = append(dst, v...)
	closer.Close()
	return dst, true, nil
}

// Offset returns the changelog offset store's state reflects in the snapshot (-1: none).
func (s *Snapshot) Offset(store string) (int64, error) {
	v, closer, err := s.snap.Get(metaKey(store))
	if errors.Is(err, pebble.ErrNotFound) {
		return -1, nil
	}
	if err != nil {
		return 0, fmt.Errorf("state: snapshot offset of %s: %w", store, err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, fmt.Errorf("state: offset of %s is %d bytes, want 8", store, len(v))
	}
	return int64(binary.BigEndian.Uint64(v)), nil
}

// Close releases the snapshot. It is idempotent.
func (s *Snapshot) Close() error {
	if s.snap == nil {
		return nil
	}
	err := s.snap.Close()
	s.snap = nil
	return err
}
