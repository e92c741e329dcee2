package table

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/state"
)

// Config describes one table on one instance.
type Config struct {
	// Name names the table in logs and metrics.
	Name string
	// Topic is the table's compacted topic.
	Topic string
	// Partitions are the topic's partitions this table holds.
	Partitions []int32
	// DB is the database's options; Dir is required.
	DB state.Options
	// ClientOpts connect to the brokers (seed brokers, TLS, SASL).
	ClientOpts []kgo.Opt
	// Log receives the table's logs. Default slog.Default().
	Log *slog.Logger
	// Progress, if set, is called during Open's restore with the records still to replay over
	// all partitions.
	Progress func(remaining int64)
	// Lag, if set, gets per table and partition (labels "table", "partition") the offsets the
	// table is behind the partition's last stable offset, as of the last fetch.
	Lag *prometheus.GaugeVec
	// Applied, if set, counts the records applied after the restore (label "table").
	Applied *prometheus.CounterVec
}

// Position is a table version: for each partition held, the offset after the last record the
// version reflects. Partitions are sorted.
type Position []PartitionOffset

// PartitionOffset is one partition's offset in a Position.
type PartitionOffset struct {
	Partition int32
	Offset    int64
}

// String writes the position as "partition:offset" pairs separated by commas ("0:17,1:4"), the
// form of the streamd-table-NAME header.
func (p Position) String() string { return string(p.Append(nil)) }

// Append appends p's String form to dst.
func (p Position) Append(dst []byte) []byte {
	for i, po := range p {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = strconv.AppendInt(dst, int64(po.Partition), 10)
		dst = append(dst, ':')
		dst = strconv.AppendInt(dst, po.Offset, 10)
	}
	return dst
}

// ParsePosition reads a Position's String form.
func ParsePosition(s string) (Position, error) {
	var p Position
	if s == "" {
		return p, nil
	}
	for _, part := range strings.Split(s, ",") {
		ps, os, ok := strings.Cut(part, ":")
		pn, err1 := strconv.ParseInt(ps, 10, 32)
		off, err2 := strconv.ParseInt(os, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("table: bad position %q", s)
		}
		p = append(p, PartitionOffset{Partition: int32(pn), Offset: off})
	}
	return p, nil
}

// Behind returns the first partition where p is behind q (a smaller offset), and whether there is
// one. Partitions q does not have are not compared.
func (p Position) Behind(q Position) (PartitionOffset, bool) {
	for _, qo := range q {
		for _, po := range p {
			if po.Partition == qo.Partition && po.Offset < qo.Offset {
				return po, true
			}
		}
	}
	return PartitionOffset{}, false
}

// Table is one materialized table. Its methods may be called from any goroutine.
type Table struct {
	cfg    Config
	log    *slog.Logger
	db     *state.DB
	parts  []int32        // sorted
	stores []*state.Store // by index in parts
	names  []string       // store names, by index in parts

	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex // guards closed and err against View
	closed bool
	err    error // what stopped the follower
}

func storeName(p int32) string { return "p" + strconv.Itoa(int(p)) }

// Open opens the table's database, replays each partition to its last stable offset and starts
// following the topic. It returns once the restore is done: a View then reflects at least every
// record committed when Open was called.
func Open(ctx context.Context, cfg Config) (*Table, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if len(cfg.Partitions) == 0 {
		return nil, fmt.Errorf("table %s: no partitions", cfg.Name)
	}
	cfg.DB.RecordCacheBytes = 0 // readers use snapshots
	db, err := state.OpenOrRebuild(cfg.DB)
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", cfg.Name, err)
	}
	t := &Table{cfg: cfg, log: cfg.Log.With("table", cfg.Name, "topic", cfg.Topic), db: db}
	t.parts = append([]int32(nil), cfg.Partitions...)
	sort.Slice(t.parts, func(i, j int) bool { return t.parts[i] < t.parts[j] })
	for _, p := range t.parts {
		s, err := db.Store(storeName(p))
		if err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("table %s: %w", cfg.Name, err)
		}
		t.stores = append(t.stores, s)
		t.names = append(t.names, s.Name())
	}
	if err := t.restore(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	fctx, cancel := context.WithCancel(context.Background())
	t.cancel, t.done = cancel, make(chan struct{})
	go t.run(fctx)
	return t, nil
}

// restore replays every partition to its last stable offset, one after the other.
func (t *Table) restore(ctx context.Context) error {
	remaining := make([]int64, len(t.parts))
	report := func() {
		if t.cfg.Progress != nil {
			var n int64
			for _, r := range remaining {
				n += r
			}
			t.cfg.Progress(n)
		}
	}
	if err := t.skipDeleted(ctx); err != nil {
		return err
	}
	for i, p := range t.parts {
		// Every partition's bounds first would be more exact for Progress; the restore itself
		// does not need them.
		st, err := state.RestoreFromKafka(ctx, t.cfg.ClientOpts, t.cfg.Topic, p, t.stores[i], func(next, end int64) {
			remaining[i] = end - next
			report()
		})
		if err != nil {
			return fmt.Errorf("table %s: restore %s/%d: %w", t.cfg.Name, t.cfg.Topic, p, err)
		}
		if st.Records > 0 {
			t.log.Info("table restored", "partition", p, "full", st.Full, "from", st.From, "to", st.To,
				"records", st.Records, "seconds", st.Duration.Seconds())
		}
		if t.cfg.Lag != nil {
			t.cfg.Lag.WithLabelValues(t.cfg.Name, strconv.Itoa(int(p))).Set(0)
		}
	}
	return nil
}

// skipDeleted moves every partition whose recorded offset is below the topic's first offset up
// to it. A table topic may have a retention (cleanup.policy compact,delete) or have had records
// deleted: what is gone is not part of the table any more, and a restore or a follow from before
// it would fail with an offset out of range.
func (t *Table) skipDeleted(ctx context.Context) error {
	for i, p := range t.parts {
		s := t.stores[i]
		b, err := state.ChangelogBounds(ctx, t.cfg.ClientOpts, t.cfg.Topic, p, true)
		if err != nil {
			return fmt.Errorf("table %s: %w", t.cfg.Name, err)
		}
		if off := s.ChangelogOffset(); off < b.Start {
			if off >= 0 {
				t.log.Warn("table: records this table had not read were deleted from its topic; going on from the topic's first offset",
					"partition", p, "offset", off, "first_offset", b.Start)
			}
			if err := s.NewRestorer().Finish(b.Start); err != nil {
				return fmt.Errorf("table %s: %w", t.cfg.Name, err)
			}
		}
	}
	return nil
}

// run follows the partitions until ctx ends, starting again after a failure.
func (t *Table) run(ctx context.Context) {
	defer close(t.done)
	backoff := 500 * time.Millisecond
	for {
		err := t.follow(ctx)
		if ctx.Err() != nil {
			return
		}
		if t.db.Err() != nil {
			// The disk refused a write or the state is corrupt: nothing more can be applied.
			t.mu.Lock()
			t.err = err
			t.mu.Unlock()
			t.log.Error("table: the local database failed; the table no longer follows its topic", "err", err)
			return
		}
		t.log.Warn("table: following the topic failed; starting again", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// follow applies the partitions' committed records as they come, each fetch of a partition in
// one batch with its new offset.
func (t *Table) follow(ctx context.Context) error {
	if err := t.skipDeleted(ctx); err != nil {
		return err
	}
	starts := map[int32]kgo.Offset{}
	index := map[int32]int{}
	for i, p := range t.parts {
		starts[p] = kgo.NewOffset().At(max(t.stores[i].ChangelogOffset(), 0))
		index[p] = i
	}
	cl, err := kgo.NewClient(append(append([]kgo.Opt(nil), t.cfg.ClientOpts...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{t.cfg.Topic: starts}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Control records come through so that the recorded offset passes a transaction's
		// marker, as in a restore.
		kgo.KeepControlRecords(),
		kgo.ConsumeResetOffset(kgo.NoResetOffset()),
		kgo.FetchMaxWait(100*time.Millisecond),
		kgo.FetchMaxBytes(4<<20),
		kgo.FetchMaxPartitionBytes(1<<20),
	)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var ferr error
		fs.EachError(func(topic string, p int32, err error) {
			ferr = errors.Join(ferr, fmt.Errorf("table %s: %s/%d: %w", t.cfg.Name, topic, p, err))
		})
		if ferr != nil {
			return ferr
		}
		var applyErr error
		fs.EachPartition(func(fp kgo.FetchTopicPartition) {
			i, ok := index[fp.Partition]
			if applyErr != nil || !ok || len(fp.Records) == 0 {
				return
			}
			next, applied, err := t.stores[i].ApplyRecords(fp.Records)
			if applyErr = err; err != nil {
				return
			}
			if t.cfg.Lag != nil {
				t.cfg.Lag.WithLabelValues(t.cfg.Name, strconv.Itoa(int(fp.Partition))).Set(float64(max(fp.LastStableOffset-next, 0)))
			}
			if t.cfg.Applied != nil {
				t.cfg.Applied.WithLabelValues(t.cfg.Name).Add(float64(applied))
			}
		})
		if applyErr != nil {
			return applyErr
		}
	}
}

// ErrClosed is returned by View after Close.
var ErrClosed = errors.New("table: closed")

// View returns the table as it stands now: a consistent version, with its Position. The caller
// closes it.
func (t *Table) View() (*View, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, ErrClosed
	}
	if t.err != nil {
		return nil, fmt.Errorf("table %s: %w", t.cfg.Name, t.err)
	}
	snap, err := t.db.NewSnapshot()
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", t.cfg.Name, err)
	}
	v := &View{snap: snap, names: t.names, pos: make(Position, len(t.parts))}
	for i, p := range t.parts {
		off, err := snap.Offset(t.names[i])
		if err != nil {
			_ = snap.Close()
			return nil, fmt.Errorf("table %s: %w", t.cfg.Name, err)
		}
		v.pos[i] = PartitionOffset{Partition: p, Offset: max(off, 0)}
	}
	return v, nil
}

// Close stops following the topic and closes the database, keeping its directory (a restart
// replays only the tail). Every View must have been closed. It is idempotent.
func (t *Table) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	t.mu.Unlock()
	t.cancel()
	<-t.done
	return t.db.Close()
}

// View is one version of a table (see Table.View). Its methods may be called from one goroutine
// at a time.
type View struct {
	snap  *state.Snapshot
	names []string
	pos   Position
}

// Position returns the version the view reflects. The caller must not modify it.
func (v *View) Position() Position { return v.pos }

// Get appends key's row to dst and reports whether the table has it.
func (v *View) Get(key, dst []byte) ([]byte, bool, error) {
	for i := len(v.names) - 1; i >= 0; i-- {
		out, ok, err := v.snap.Get(v.names[i], key, dst)
		if err != nil || ok {
			return out, ok, err
		}
	}
	return dst, false, nil
}

// Close releases the view.
func (v *View) Close() error { return v.snap.Close() }
