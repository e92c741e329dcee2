package state

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/streamd/streamd/internal/bytemap"
)

// Errors.
var (
	ErrClosed       = errors.New("state: closed")
	ErrUnknownStore = errors.New("state: unknown store")
)

// Options configure a DB.
type Options struct {
	// Dir is the directory of this task's database. Required.
	Dir string
	// Cache is the block cache, shared by every task of a process so that memory is bounded per
	// process, not per partition. Nil: a private 8 MiB cache.
	Cache *pebble.Cache
	// FS is the file system; nil means the disk. Tests pass vfs.NewMem() or an errorfs.
	FS vfs.FS
	// MemTableSize bounds each memtable. Default 4 MiB: state is meant to live on disk, not on the
	// heap, and restores write large batches anyway.
	MemTableSize uint64
	// CycleCacheMaxBytes: a store's cycle write cache that holds more than this (its arena, entries
	// and hash slots) returns its memory at the end of the cycle instead of keeping it for the
	// next. Default 8 MiB.
	CycleCacheMaxBytes int
	// RecordCacheBytes bounds the cache of committed values in front of Pebble, per store: a
	// window's keys are read again and again while it is open, and a Pebble read goes through the
	// memtables and every L0 file. Zero disables it.
	RecordCacheBytes int
	// Logger receives Pebble's own logs at warn level and above.
	Logger *slog.Logger
}

func logger(opts Options) *slog.Logger {
	if opts.Logger == nil {
		return slog.Default()
	}
	return opts.Logger
}

// DB is one task's state: a Pebble database holding all of the task's stores, each under its own
// key prefix, plus the changelog offset each store reflects.
//
// A DB is used from its task's goroutine only. Writes of the open commit cycle stay in each store's
// write cache; Commit writes them and the stores' new changelog offsets in one Pebble batch, which
// is atomic: after a crash the database holds either all of a cycle or none of it, and its offsets
// say which.
//
// A DB whose disk refused a write, or that found corruption, is failed: every later call returns
// that first error (a DiskError or CorruptError) and nothing more is written; see faultFS.
type DB struct {
	pdb      *pebble.DB
	opts     Options
	stores   map[string]*Store
	ordered  []*Store
	batch    *pebble.Batch // indexed; receives cycle writes when a range scan needs them, and at Commit
	closed   bool
	ownCache bool
	cache    *pebble.Cache
	h        *health
	fs       vfs.FS // the file system under faultFS
}

// Open opens (creating if needed) the database in opts.Dir.
//
// Errors: a DiskError (ErrDiskFull, ErrWriteFailed) when the disk refuses a write; a
// CorruptError (ErrCorrupt) naming the path when the local state cannot be trusted, which
// OpenOrRebuild turns into a rebuild; others (a held lock, a permission error) as they come.
func Open(opts Options) (*DB, error) {
	if opts.Dir == "" {
		return nil, errors.New("state: Options.Dir is required")
	}
	if opts.MemTableSize == 0 {
		opts.MemTableSize = 4 << 20
	}
	if opts.CycleCacheMaxBytes == 0 {
		opts.CycleCacheMaxBytes = 8 << 20
	}
	opts.Logger = logger(opts)
	d := &DB{opts: opts, stores: map[string]*Store{}, cache: opts.Cache, h: newHealth(), fs: opts.FS}
	if d.fs == nil {
		d.fs = vfs.Default
	}
	if err := d.fs.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, &DiskError{Op: "mkdir", Path: opts.Dir, Err: err}
	}
	if reason, ok := readMarker(d.fs, opts.Dir); ok {
		return nil, &CorruptError{Path: d.fs.PathJoin(opts.Dir, corruptMarker), Err: errors.New(reason)}
	}
	if d.cache == nil {
		d.cache = pebble.NewCache(8 << 20)
		d.ownCache = true
	}
	po := &pebble.Options{
		Cache:                       d.cache,
		FS:                          &faultFS{FS: d.fs, h: d.h},
		MemTableSize:                opts.MemTableSize,
		MemTableStopWritesThreshold: 4,
		Logger:                      pebbleLogger{opts.Logger},
		EventListener:               d.eventListener(),
	}
	// Bloom filters on every level: window operators look up many keys that do not exist yet (the
	// first event of each key in each new window), and without a filter each such miss reads a data
	// block of every level that might hold it.
	for i := range po.Levels {
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	var pdb *pebble.DB
	err := d.pebbleCall(func() (err error) {
		pdb, err = pebble.Open(opts.Dir, po)
		return err
	})
	if err == nil {
		err = d.pebbleCall(func() error { return verify(pdb) })
		if err != nil && d.h.get() == nil {
			_ = pdb.Close()
		}
	}
	if err != nil {
		if herr := d.h.get(); herr != nil {
			// A disk fault parked Pebble's goroutines; the instance is abandoned (see faultFS).
			if errors.Is(herr, ErrCorrupt) && pdb != nil {
				_ = pdb.Close()
			}
			return nil, herr
		}
		if d.ownCache {
			d.cache.Unref()
		}
		var ce *CorruptError
		var de *DiskError
		switch {
		case errors.As(err, &de) || errors.As(err, &ce):
		case refusedWrite(err):
			// A write that faultFS does not see, such as creating the LOCK file on a full disk,
			// which Pebble reports as an error of its own.
			err = &DiskError{Op: "open", Path: opts.Dir, Err: err}
		case !environmental(err):
			err = &CorruptError{Path: opts.Dir, Err: err}
		}
		return nil, fmt.Errorf("state: open %s: %w", opts.Dir, err)
	}
	d.pdb = pdb
	d.batch = pdb.NewIndexedBatch()
	return d, nil
}

// verify reads what Open can check cheaply: every live table's footer and properties (a table
// that is missing, truncated or garbled at its end fails here) and the block holding the stores'
// changelog offsets. A data block garbled elsewhere is found when it is read: the DB then fails
// with a CorruptError and leaves a marker, so the next OpenOrRebuild rebuilds.
func verify(pdb *pebble.DB) error {
	if _, err := pdb.SSTables(pebble.WithProperties()); err != nil {
		return err
	}
	it, err := pdb.NewIter(&pebble.IterOptions{LowerBound: metaKey(""), UpperBound: []byte("\xff\xffoffset0")})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
	}
	return it.Close()
}

// eventListener routes Pebble's reports of corruption and trouble to the DB's health and log.
// Pebble's default for DataCorruption is Logger.Fatalf, which would exit the process on a bad
// table found by a background compaction.
func (d *DB) eventListener() *pebble.EventListener {
	log := d.opts.Logger
	return &pebble.EventListener{
		DataCorruption: func(info pebble.DataCorruptionInfo) {
			err := &CorruptError{Path: info.Path, Err: info.Details}
			if d.h.fail(err) {
				log.Error("state: corruption found; the next open rebuilds from the changelog", "path", info.Path, "err", info.Details.Error())
				markCorrupt(d.fs, d.opts.Dir, err)
			}
		},
		BackgroundError: func(err error) {
			if d.h.get() == nil {
				log.Error("state: pebble background error", "err", err.Error())
			}
		},
		DiskSlow: func(info pebble.DiskSlowInfo) {
			if d.h.get() == nil {
				log.Warn("state: slow disk", "path", info.Path, "op", info.OpType.String(), "seconds", info.Duration.Seconds())
			}
		},
	}
}

// pebbleCall runs fn, a call into Pebble that writes, on a goroutine of its own and waits for it
// or for the DB to fail, whichever comes first. A disk fault parks the goroutine that met it (see
// faultFS), and that can be fn's own goroutine or one fn waits for (a flush during a write stall, a
// WAL rotation): waiting here instead lets Commit and Open return the fault. The goroutine is owned
// by the call, which waits for it, except after a disk fault, when the DB is abandoned by design.
func (d *DB) pebbleCall(fn func() error) error {
	if err := d.h.get(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		if herr := d.h.get(); herr != nil {
			return herr
		}
		return err
	case <-d.h.failed:
		herr := d.h.get()
		var de *DiskError
		if !errors.As(herr, &de) {
			// Corruption parks nothing: let fn finish so that what it opened can be closed.
			<-done
		}
		return herr
	}
}

// Err returns the error that failed the DB (a DiskError or CorruptError), or nil.
func (d *DB) Err() error { return d.h.get() }

// Store returns the named store, creating it on first use. The store's committed changelog offset is
// read from the database.
func (d *DB) Store(name string) (*Store, error) {
	if d.closed {
		return nil, ErrClosed
	}
	if err := d.h.get(); err != nil {
		return nil, err
	}
	if s, ok := d.stores[name]; ok {
		return s, nil
	}
	if name == "" || bytes.IndexByte([]byte(name), 0) >= 0 {
		return nil, fmt.Errorf("state: bad store name %q", name)
	}
	s := &Store{db: d, name: name, prefix: append([]byte(name), 0), offset: -1}
	// Two generations, each with an arena of half the budget (entries and hash slots add about a
	// third on top).
	s.cache.budget = d.opts.RecordCacheBytes / 2
	off, err := d.readOffset(name)
	if err != nil {
		return nil, err
	}
	s.offset = off
	d.stores[name] = s
	d.ordered = append(d.ordered, s)
	sort.Slice(d.ordered, func(i, j int) bool { return d.ordered[i].name < d.ordered[j].name })
	return s, nil
}

// metaKey is where a store's changelog offset lives. The 0xff prefix sorts after every store key
// (store names are text), so store scans never meet it.
func metaKey(store string) []byte { return append([]byte("\xff\xffoffset/"), store...) }

func (d *DB) readOffset(store string) (int64, error) {
	v, closer, err := d.pdb.Get(metaKey(store))
	if errors.Is(err, pebble.ErrNotFound) {
		return -1, nil
	}
	if err != nil {
		if herr := d.h.get(); herr != nil {
			return 0, herr
		}
		return 0, fmt.Errorf("state: read offset of %s: %w", store, err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, fmt.Errorf("state: offset of %s is %d bytes, want 8", store, len(v))
	}
	return int64(binary.BigEndian.Uint64(v)), nil
}

// Commit makes the cycle's writes durable together with each store's new changelog offset (the
// offset after the last changelog record the cycle produced; stores that produced none keep theirs).
// Call it only after the Kafka transaction holding those changelog records committed.
//
// A disk that refuses the write fails the DB: Commit returns the DiskError and the database keeps
// the last cycle Pebble fully wrote (this one or an earlier one, each atomically with its offsets),
// so a restart replays the changelog from there. The caller must stop using the DB.
func (d *DB) Commit(offsets map[string]int64) error {
	if d.closed {
		return ErrClosed
	}
	if err := d.h.get(); err != nil {
		return err
	}
	for _, s := range d.ordered {
		s.flushToBatch()
		if off, ok := offsets[s.name]; ok && off > s.offset {
			var v [8]byte
			binary.BigEndian.PutUint64(v[:], uint64(off))
			if err := d.batch.Set(metaKey(s.name), v[:], nil); err != nil {
				return err
			}
		}
	}
	if !d.batch.Empty() {
		// NoSync: a kill -9 leaves the written WAL in the OS page cache; an OS crash can lose the
		// last cycles, but atomically with their offsets, and the changelog replays them.
		if err := d.pebbleCall(func() error { return d.batch.Commit(pebble.NoSync) }); err != nil {
			if errors.Is(err, ErrDiskFull) || errors.Is(err, ErrWriteFailed) || errors.Is(err, ErrCorrupt) {
				return err
			}
			return fmt.Errorf("state: commit: %w", err)
		}
	}
	d.batch.Reset()
	for _, s := range d.ordered {
		if off, ok := offsets[s.name]; ok && off > s.offset {
			s.offset = off
		}
		s.cycle.Each(s.cache.put)
		s.cycle.Reset(d.opts.CycleCacheMaxBytes)
		s.flushedSeq = s.cycle.Seq()
	}
	return nil
}

// Abort forgets every write of the cycle: the database is as of the last Commit.
func (d *DB) Abort() {
	if d.closed {
		return
	}
	d.batch.Reset()
	for _, s := range d.ordered {
		s.cycle.Reset(d.opts.CycleCacheMaxBytes)
		s.flushedSeq = s.cycle.Seq()
	}
}

// CycleBytes returns the memory the open cycle's writes hold on the Go heap: every store's write
// cache (with what it keeps for reuse, up to Options.CycleCacheMaxBytes each) and the bytes of the
// indexed batch the writes are copied into for range scans and at Commit. The runtime bounds a
// cycle by it. The batch's index is left out: it is small beside the keys and values.
func (d *DB) CycleBytes() int {
	if d.closed {
		return 0
	}
	n := d.batch.Len()
	for _, s := range d.ordered {
		n += s.cycle.Held()
	}
	return n
}

// DiskUsage estimates the bytes the database takes on disk.
func (d *DB) DiskUsage() uint64 {
	if d.closed || d.h.get() != nil {
		return 0
	}
	return d.pdb.Metrics().DiskSpaceUsage()
}

// Close closes the database, discarding an uncommitted cycle. It is idempotent.
//
// A DB failed by a disk fault is abandoned rather than closed: Pebble's goroutines are parked
// inside the refused operations and its close would wait for them (see faultFS). Its file lock
// and memory are held until the process exits. A write refused during the close itself (the WAL's
// last flush) is returned as the DiskError, and the instance is abandoned the same way.
func (d *DB) Close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	var de *DiskError
	if errors.As(d.h.get(), &de) {
		return nil
	}
	_ = d.batch.Close()
	var err error
	if d.h.get() != nil {
		// Corruption parks nothing: close, so that the directory can be moved aside.
		err = d.pdb.Close()
	} else if err = d.pebbleCall(d.pdb.Close); errors.As(err, &de) {
		// The disk refused a write while Pebble closed (its WAL's last flush): Pebble's goroutine
		// is parked on it, and the instance is abandoned like any other failed by a disk fault.
		return err
	}
	if d.ownCache {
		d.cache.Unref()
	}
	return err
}

// Store is a key-value store inside a DB. Reads see the writes of the open cycle. Writes are kept
// in a write cache, coalesced per key, until Commit writes the latest value of each key once; the
// same coalesced set is what Changes reports for the changelog.
type Store struct {
	db         *DB
	name       string
	prefix     []byte
	cycle      bytemap.Map // this cycle's writes: key → latest value or tombstone
	cache      recordCache // committed values recently read or written
	flushedSeq uint64      // the cycle's writes up to this write count are in the batch
	keyBuf     []byte
	offset     int64
}

// SetRecordCacheBytes sets the store's record cache budget (see Options.RecordCacheBytes); zero
// disables it. For stores with few keys, where Pebble's memtable serves reads well enough.
func (s *Store) SetRecordCacheBytes(n int) {
	s.cache.clear()
	s.cache = recordCache{budget: n / 2}
}

// Name returns the store's name.
func (s *Store) Name() string { return s.name }

// ChangelogOffset returns the changelog offset the store's committed state reflects: replay from
// there. -1 means the store has never committed (replay the whole changelog).
func (s *Store) ChangelogOffset() int64 { return s.offset }

func (s *Store) fullKey(key []byte) []byte {
	s.keyBuf = append(append(s.keyBuf[:0], s.prefix...), key...)
	return s.keyBuf
}

// Get returns key's value. The value is owned by the store: it may live in the open cycle's
// writes, the record cache or the store's scratch buffer, and is valid only until the next call of
// any method of this store (a second Get may overwrite it) or the end of the cycle; copy it to keep
// it.
func (s *Store) Get(key []byte) ([]byte, bool, error) {
	if s.db.closed {
		return nil, false, ErrClosed
	}
	if err := s.db.h.get(); err != nil {
		return nil, false, err
	}
	if v, deleted, ok := s.cycle.Get(key); ok {
		return v, !deleted, nil
	}
	if v, deleted, ok := s.cache.get(key); ok {
		return v, !deleted, nil
	}
	v, closer, err := s.db.pdb.Get(s.fullKey(key))
	if errors.Is(err, pebble.ErrNotFound) {
		// Not cached as an absence: a missing key is almost always written next (the first event of
		// a key in a window), and the write reaches the cache at commit.
		return nil, false, nil
	}
	if err != nil {
		if herr := s.db.h.get(); herr != nil {
			return nil, false, herr
		}
		return nil, false, fmt.Errorf("state: %s: get: %w", s.name, err)
	}
	// Pebble's value is valid until closer.Close; keep a copy in the key buffer's tail so the
	// caller gets the documented lifetime without an allocation per read.
	start := len(s.keyBuf)
	s.keyBuf = append(s.keyBuf, v...)
	closer.Close()
	s.cache.put(key, s.keyBuf[start:], false)
	return s.keyBuf[start:len(s.keyBuf):len(s.keyBuf)], true, nil
}

// Set sets key to value (both copied).
func (s *Store) Set(key, value []byte) { s.cycle.Set(key, value) }

// Delete deletes key.
func (s *Store) Delete(key []byte) { s.cycle.Delete(key) }

// Changes calls fn for every key written in the open cycle, once, with its latest value (deleted
// true for a deletion), in first-write order. The slices are valid during the call only.
func (s *Store) Changes(fn func(key, value []byte, deleted bool)) { s.cycle.Each(fn) }

// ChangeCount returns how many keys the open cycle wrote.
func (s *Store) ChangeCount() int { return s.cycle.Len() }

// flushToBatch writes the cycle's writes made since the last flush into the batch, so that a range
// scan (which reads the indexed batch over the database) sees them.
func (s *Store) flushToBatch() {
	if s.cycle.Seq() == s.flushedSeq {
		return
	}
	b := s.db.batch
	s.cycle.EachSince(s.flushedSeq, func(k, v []byte, deleted bool) {
		fk := s.fullKey(k)
		if deleted {
			_ = b.Delete(fk, nil)
		} else {
			_ = b.Set(fk, v, nil)
		}
	})
	s.flushedSeq = s.cycle.Seq()
}

// Iter iterates a store's keys in order, seeing the open cycle's writes. Keys and values are valid
// until Next; the iterator must be closed.
type Iter struct {
	it     *pebble.Iterator
	prefix int
}

// NewIter returns an iterator over keys in [lower, upper); a nil bound is open.
func (s *Store) NewIter(lower, upper []byte) (*Iter, error) {
	if s.db.closed {
		return nil, ErrClosed
	}
	if err := s.db.h.get(); err != nil {
		return nil, err
	}
	s.flushToBatch()
	lo := append(append([]byte(nil), s.prefix...), lower...)
	var hi []byte
	if upper != nil {
		hi = append(append([]byte(nil), s.prefix...), upper...)
	} else {
		hi = append([]byte(s.name), 1) // the first key after the whole prefix
	}
	it, err := s.db.batch.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, fmt.Errorf("state: %s: iterator: %w", s.name, err)
	}
	it.First()
	return &Iter{it: it, prefix: len(s.prefix)}, nil
}

// Last moves to the last key in the iterator's bounds.
func (it *Iter) Last() { it.it.Last() }

// Prev moves to the previous key.
func (it *Iter) Prev() { it.it.Prev() }

// Valid reports whether the iterator is at a key.
func (it *Iter) Valid() bool { return it.it.Valid() }

// Key returns the current key (without the store prefix).
func (it *Iter) Key() []byte { return it.it.Key()[it.prefix:] }

// Value returns the current value.
func (it *Iter) Value() []byte { return it.it.Value() }

// Next moves to the next key.
func (it *Iter) Next() { it.it.Next() }

// Close releases the iterator and returns the first error it met.
func (it *Iter) Close() error { return it.it.Close() }

// Restorer writes changelog records straight into the database, outside any cycle, in large
// unsynced batches: a restore replays many records, and the changelog is there to replay again if
// the process dies half-way (the stored offset advances with each batch).
type Restorer struct {
	s              *Store
	b              *pebble.Batch
	records, bytes int64
	pending        int
}

// restoreBatchBytes is the size at which a restore commits a batch.
const restoreBatchBytes = 4 << 20

// NewRestorer starts a restore of s. The store's open cycle must be empty.
func (s *Store) NewRestorer() *Restorer {
	s.cache.clear()
	return &Restorer{s: s, b: s.db.pdb.NewBatch()}
}

// Apply writes one changelog record; next is the offset after it.
func (r *Restorer) Apply(key, value []byte, deleted bool, next int64) error {
	fk := r.s.fullKey(key)
	var err error
	if deleted {
		err = r.b.Delete(fk, nil)
	} else {
		err = r.b.Set(fk, value, nil)
	}
	if err != nil {
		return err
	}
	r.records++
	r.bytes += int64(len(key) + len(value))
	if r.b.Len() >= restoreBatchBytes {
		return r.commit(next)
	}
	return nil
}

func (r *Restorer) commit(next int64) error {
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], uint64(next))
	if err := r.b.Set(metaKey(r.s.name), v[:], nil); err != nil {
		return err
	}
	if err := r.s.db.pebbleCall(func() error { return r.b.Commit(pebble.NoSync) }); err != nil {
		return fmt.Errorf("state: %s: restore commit: %w", r.s.name, err)
	}
	r.b.Reset()
	r.s.offset = next
	return nil
}

// Finish commits what is left, recording next as the store's changelog offset.
func (r *Restorer) Finish(next int64) error {
	defer r.b.Close()
	return r.commit(next)
}

// Counts returns the records and bytes applied so far.
func (r *Restorer) Counts() (records, bytes int64) { return r.records, r.bytes }

// pebbleLogger passes Pebble's logs to slog. Pebble logs routine events at info; only its errors and
// fatal conditions are worth an operator's attention.
//
// Fatalf logs and exits the process. It is not turned into an error because Pebble calls it with
// its locks held, often on its own goroutines, and continues as if it had not returned (DB.Apply
// reports the batch as committed). With faultFS below Pebble and the DB's DataCorruption listener,
// the disk-caused Fatalf calls (a failed WAL or MANIFEST write, a corrupt table) cannot happen:
// what remains are Pebble's invariant checks, where going on could write wrong state, and exiting
// leaves the committed state for the changelog to build on. The fault-injection tests replace
// exitProcess to prove that no injected fault reaches it.
type pebbleLogger struct{ l *slog.Logger }

// exitProcess is os.Exit; tests replace it.
var exitProcess = os.Exit

func (p pebbleLogger) Infof(format string, args ...any) {}
func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
}
func (p pebbleLogger) Fatalf(format string, args ...any) {
	p.l.Error("state: pebble fatal: "+fmt.Sprintf(format, args...), "component", "pebble")
	exitProcess(1)
}

var _ io.Closer = (*DB)(nil)

// recordCache holds committed values (and known absences) of one store, in two generations of
// bytemaps: entries go to the current one; when it outgrows the budget it becomes the previous one
// and the old previous one is emptied for reuse. A hit in the previous generation moves the entry to
// the current one. That is LRU to within a generation, with no allocation per entry.
type recordCache struct {
	cur, prev bytemap.Map
	budget    int
	scratch   []byte
}

func (c *recordCache) get(key []byte) ([]byte, bool, bool) {
	if c.budget <= 0 {
		return nil, false, false
	}
	if v, del, ok := c.cur.Get(key); ok {
		return v, del, true
	}
	v, del, ok := c.prev.Get(key)
	if ok {
		// Promote. v lives in the previous generation's arena, which a rotation inside put would
		// empty and overwrite: copy it out first.
		c.scratch = append(c.scratch[:0], v...)
		c.put(key, c.scratch, del)
		v, del, ok = c.cur.Get(key)
	}
	return v, del, ok
}

func (c *recordCache) put(key, value []byte, deleted bool) {
	if c.budget <= 0 {
		return
	}
	// An entry costs its bytes plus the map's per-entry bookkeeping (entry struct and hash slots).
	const entryOverhead = 64
	if c.cur.Bytes()+c.cur.Len()*entryOverhead+len(key)+len(value) > c.budget {
		// The budget counts 64 bytes of bookkeeping an entry; the entries and slots a map keeps
		// for reuse can hold twice that, on top of the arena.
		c.prev.Reset(3*c.budget + 1)
		c.cur, c.prev = c.prev, c.cur
	}
	c.cur.Reserve(max(c.budget-c.cur.Bytes()-c.cur.Len()*entryOverhead, len(key)+len(value))) // never doubled
	if deleted {
		c.cur.Delete(key)
	} else {
		c.cur.Set(key, value)
	}
}

func (c *recordCache) clear() {
	c.cur.Reset(0)
	c.prev.Reset(0)
}
