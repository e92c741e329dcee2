package standby

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/state"
)

// Config describes the standby replicas of one instance.
type Config struct {
	// Stores are the names of every store of a task (the task's own included): a replica follows
	// all of their changelogs.
	Stores []string
	// Changelog returns a store's changelog topic.
	Changelog func(store string) string
	// Dir returns the state directory of a partition: the directory its task uses, so that a
	// promoted replica is the task's state as it stands.
	Dir func(partition int32) string
	// DB is the template of every replica's database options; Dir is set per partition. The
	// record cache is left off: nothing reads a replica.
	DB state.Options
	// ClientOpts connect to the brokers (seed brokers, TLS, SASL).
	ClientOpts []kgo.Opt
	// Log receives the replicas' logs. Default slog.Default().
	Log *slog.Logger
	// Partitions, if set, is the number of partitions followed.
	Partitions prometheus.Gauge
	// Lag, if set, gets per store and partition (labels "store", "partition") the changelog
	// offsets a replica is behind the changelog's last stable offset, as of its last fetch.
	Lag *prometheus.GaugeVec
	// RetryBackoff is the first wait before a failed replica starts again; it doubles up to
	// 10s. Default 500ms.
	RetryBackoff time.Duration
}

// Position is where a replica stood when it was taken: per store, the changelog offset its
// state reflects and how far that was behind the last stable offset.
type Position struct {
	Offsets map[string]int64
	Lag     map[string]int64
}

// TotalLag is the sum of Lag over the stores.
func (p Position) TotalLag() int64 {
	var n int64
	for _, l := range p.Lag {
		n += l
	}
	return n
}

// Replicas keeps this instance's standby replicas: for each partition it follows, a goroutine
// with its own consumer applies the partition's changelog records (read_committed) to the
// partition's local database, as a restore does, and records each store's offset with them.
//
// Its methods may be called from any goroutine. A partition's database is held by its replica's
// goroutine only; Take and Set return after that goroutine has closed it.
type Replicas struct {
	cfg Config
	log *slog.Logger

	mu        sync.Mutex
	followers map[int32]*follower
	closed    bool
}

// New returns Replicas following nothing yet.
func New(cfg Config) *Replicas {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.RetryBackoff <= 0 {
		cfg.RetryBackoff = 500 * time.Millisecond
	}
	cfg.DB.RecordCacheBytes = 0
	return &Replicas{cfg: cfg, log: cfg.Log, followers: map[int32]*follower{}}
}

// Set makes the replicas follow exactly want. A partition no longer wanted is stopped and its
// state directory removed: the caller leaves out only partitions this instance neither owns nor
// stands by for, so the disk holds the state of those two sets and nothing else. Partitions
// this instance owns must not be in want (their task holds the database).
func (r *Replicas) Set(want []int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	wanted := map[int32]bool{}
	for _, p := range want {
		wanted[p] = true
	}
	var stopped []int32
	for p, f := range r.followers {
		if wanted[p] {
			continue
		}
		r.stop(p, f)
		dir := r.cfg.Dir(p)
		if err := os.RemoveAll(dir); err != nil {
			r.log.Warn("standby: removing the state of a partition no longer stood by for failed", "partition", p, "dir", dir, "err", err)
		}
		stopped = append(stopped, p)
	}
	var started []int32
	for _, p := range want {
		if _, ok := r.followers[p]; ok {
			continue
		}
		r.followers[p] = r.start(p)
		started = append(started, p)
	}
	r.setCount()
	if len(started)+len(stopped) > 0 {
		sort.Slice(started, func(i, j int) bool { return started[i] < started[j] })
		sort.Slice(stopped, func(i, j int) bool { return stopped[i] < stopped[j] })
		r.log.Info("standby replicas changed", "started", started, "stopped_and_removed", stopped, "following", r.followingLocked())
	}
}

// Take stops following p and keeps its state directory, for the task that is about to own p:
// the task opens the same database and replays only the changelog after the replica's offsets.
// ok is false when p was not followed.
func (r *Replicas) Take(p int32) (pos Position, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f, ok := r.followers[p]
	if !ok {
		return Position{}, false
	}
	r.stop(p, f)
	r.setCount()
	return f.position(), true
}

// Following returns the partitions followed, sorted.
func (r *Replicas) Following() []int32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.followingLocked()
}

func (r *Replicas) followingLocked() []int32 {
	out := make([]int32, 0, len(r.followers))
	for p := range r.followers {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Position returns where p's replica stands, and whether p is followed.
func (r *Replicas) Position(p int32) (Position, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f, ok := r.followers[p]
	if !ok {
		return Position{}, false
	}
	return f.position(), true
}

// Positions returns, for every partition followed whose replica has read its stores' offsets,
// the sum of those offsets: what Balancer advertises (Candidate.Warm). A replica that has not yet
// opened its database is left out, as nothing is known of it.
func (r *Replicas) Positions() map[int32]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[int32]int64, len(r.followers))
	for p, f := range r.followers {
		f.mu.Lock()
		if len(f.offsets) > 0 {
			var sum int64
			for _, off := range f.offsets {
				sum += off
			}
			out[p] = sum
		}
		f.mu.Unlock()
	}
	return out
}

// Close stops every replica and keeps their directories (a restart of the instance follows on from
// them, or its tasks do). It is idempotent; Set does nothing after it.
func (r *Replicas) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	for p, f := range r.followers {
		r.stop(p, f)
	}
	r.setCount()
}

func (r *Replicas) setCount() {
	if r.cfg.Partitions != nil {
		r.cfg.Partitions.Set(float64(len(r.followers)))
	}
}

// stop cancels p's replica and waits until it has closed its database. r.mu is held.
func (r *Replicas) stop(p int32, f *follower) {
	f.cancel()
	<-f.done
	delete(r.followers, p)
	if r.cfg.Lag != nil {
		r.cfg.Lag.DeletePartialMatch(prometheus.Labels{"partition": strconv.Itoa(int(p))})
	}
}

func (r *Replicas) start(p int32) *follower {
	ctx, cancel := context.WithCancel(context.Background())
	f := &follower{r: r, p: p, cancel: cancel, done: make(chan struct{}),
		offsets: map[string]int64{}, lag: map[string]int64{}}
	go f.run(ctx)
	return f
}

// follower is the replica of one partition.
type follower struct {
	r      *Replicas
	p      int32
	cancel context.CancelFunc
	done   chan struct{} // closed when run has returned, its database closed

	mu      sync.Mutex // guards offsets and lag, read by position
	offsets map[string]int64
	lag     map[string]int64
}

func (f *follower) position() Position {
	f.mu.Lock()
	defer f.mu.Unlock()
	pos := Position{Offsets: map[string]int64{}, Lag: map[string]int64{}}
	for k, v := range f.offsets {
		pos.Offsets[k] = v
	}
	for k, v := range f.lag {
		pos.Lag[k] = v
	}
	return pos
}

func (f *follower) record(store string, offset, lag int64) {
	f.mu.Lock()
	f.offsets[store], f.lag[store] = offset, max(lag, 0)
	f.mu.Unlock()
	if f.r.cfg.Lag != nil {
		f.r.cfg.Lag.WithLabelValues(store, strconv.Itoa(int(f.p))).Set(float64(max(lag, 0)))
	}
}

// errWiped ends a follow whose local state could not be continued and was removed: the next one
// restores everything, at once.
var errWiped = errors.New("standby: local state wiped")

// run follows the partition until ctx ends, starting again after a failure (a broker that went
// away, a disk fault, state that had to be wiped).
func (f *follower) run(ctx context.Context) {
	defer close(f.done)
	log := f.r.log.With("partition", f.p)
	backoff := f.r.cfg.RetryBackoff
	for {
		err := f.follow(ctx)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errWiped) {
			continue
		}
		log.Warn("standby: following the changelogs failed; starting again", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// follow opens the partition's database, checks that each store's recorded offset continues its
// changelog, and applies the changelogs' committed records as they come, until ctx ends or
// something fails.
func (f *follower) follow(ctx context.Context) error {
	cfg := f.r.cfg
	opts := cfg.DB
	opts.Dir = cfg.Dir(f.p)
	db, err := state.OpenOrRebuild(opts)
	if err != nil {
		return err
	}
	defer db.Close()
	stores := map[string]*state.Store{} // by changelog topic
	names := map[string]string{}        // changelog topic → store name
	starts := map[string]map[int32]kgo.Offset{}
	for _, name := range cfg.Stores {
		s, err := db.Store(name)
		if err != nil {
			return err
		}
		topic := cfg.Changelog(name)
		b, err := state.ChangelogBounds(ctx, cfg.ClientOpts, topic, f.p, true)
		if err != nil {
			return err
		}
		off := s.ChangelogOffset()
		if reason := inconsistent(off, b); reason != "" {
			return f.wipe(db, opts.Dir, name, reason)
		}
		stores[topic], names[topic] = s, name
		at := kgo.NewOffset().AtStart()
		if off >= 0 {
			at = kgo.NewOffset().At(off)
		}
		starts[topic] = map[int32]kgo.Offset{f.p: at}
		f.record(name, max(off, 0), b.Stable-max(off, 0))
	}
	cl, err := kgo.NewClient(append(append([]kgo.Opt(nil), cfg.ClientOpts...),
		kgo.ConsumePartitions(starts),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Control records come through so that the recorded offset passes a transaction's marker:
		// a promoted replica whose last record was a commit marker has nothing left to replay.
		kgo.KeepControlRecords(),
		kgo.ConsumeResetOffset(kgo.NoResetOffset()),
		// Small fetches: a replica only keeps up, and every instance may run several.
		kgo.FetchMaxBytes(1<<20),
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
		fs.EachError(func(t string, p int32, err error) {
			if errors.Is(err, kerr.OffsetOutOfRange) && ferr == nil {
				// The changelog no longer holds the offset the store stands at (its records were
				// deleted, the topic recreated): the state cannot be continued.
				ferr = f.wipe(db, opts.Dir, names[t], fmt.Sprintf("the changelog no longer holds offset %d", stores[t].ChangelogOffset()))
				return
			}
			ferr = errors.Join(ferr, fmt.Errorf("standby: %s/%d: %w", t, p, err))
		})
		if ferr != nil {
			return ferr
		}
		var applyErr error
		fs.EachPartition(func(fp kgo.FetchTopicPartition) {
			s := stores[fp.Topic]
			if applyErr != nil || s == nil || len(fp.Records) == 0 {
				return
			}
			next, _, err := s.ApplyRecords(fp.Records)
			if applyErr = err; err != nil {
				return
			}
			f.record(s.Name(), next, fp.LastStableOffset-next)
		})
		if applyErr != nil {
			return applyErr
		}
	}
}

// inconsistent says why a store whose state reflects changelog offset off cannot be continued
// from a changelog with bounds b, or "" when it can. Offset -1 (no state) always can.
func inconsistent(off int64, b state.Bounds) string {
	switch {
	case off > b.High:
		return fmt.Sprintf("the state reflects changelog offset %d, past the changelog's end %d (it was truncated or recreated)", off, b.High)
	case off >= 0 && off < b.Start:
		return fmt.Sprintf("the state reflects changelog offset %d, before the changelog's first offset %d (records it has not seen were deleted)", off, b.Start)
	}
	return ""
}

// wipe closes db, removes its directory and returns errWiped, so that the next follow restores
// the partition from nothing.
func (f *follower) wipe(db *state.DB, dir, store, reason string) error {
	f.r.log.Warn("standby: local state cannot be continued; wiping it to restore the whole changelog",
		"partition", f.p, "store", store, "reason", reason, "dir", dir)
	if err := db.Close(); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return errWiped
}
