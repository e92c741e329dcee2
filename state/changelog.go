package state

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ChangelogTopic returns the changelog topic of an application's store: <app>-<store>-changelog.
func ChangelogTopic(app, store string) string { return app + "-" + store + "-changelog" }

// ChangelogConfigs are the topic settings of a changelog: compacted, so that it holds the latest
// value of every key (a full restore replays the state, not its history), with deletes kept long
// enough for a lagging restore to see them.
func ChangelogConfigs() map[string]*string {
	compact, deleteRetention, minLag := "compact", "86400000", "0"
	return map[string]*string{
		"cleanup.policy":        &compact,
		"delete.retention.ms":   &deleteRetention,
		"min.compaction.lag.ms": &minLag,
	}
}

// RestoreStats describes one store's restore.
type RestoreStats struct {
	Store     string
	Partition int32
	From, To  int64 // changelog offsets replayed: [From, To)
	Records   int64
	Bytes     int64
	Duration  time.Duration
	Full      bool // no local state: the whole changelog was replayed
}

// ErrChangelogBehind is returned when local state reflects more of the changelog than the changelog
// holds: it was truncated, deleted or recreated. Restoring would silently diverge, so streamd
// refuses; moving the task's state directory away makes it rebuild from what the changelog holds.
var ErrChangelogBehind = errors.New("state: local state is ahead of its changelog")

// RestoreProgress is called as a restore goes: next is the changelog offset the store has reached,
// end the offset the restore stops at.
type RestoreProgress func(next, end int64)

// RestoreFromKafka replays s's changelog partition from the store's committed offset to the
// partition's last stable offset when the call starts, reading committed records only. clientOpts
// connect to the brokers (seed brokers, TLS, SASL); the function makes and closes its own consumer.
// progress, if not nil, is called every few thousand records and at the end.
//
// The end is the last stable offset, not the high watermark: a transaction still open on the
// changelog (the previous owner of the partition died in the middle of a cycle) holds back what a
// read_committed consumer can see, and restoring to the high watermark would wait for the broker
// to abort it, up to the transaction timeout. Everything below the last stable offset is decided;
// the open transaction can only abort (its source offsets can no longer be committed), and what
// the new owner writes goes after it. Whether local state is ahead of the changelog is judged by
// the high watermark: the state of a cycle this instance committed may lie past a stalled
// transaction of another producer.
func RestoreFromKafka(ctx context.Context, clientOpts []kgo.Opt, topic string, partition int32, s *Store, progress RestoreProgress) (RestoreStats, error) {
	st := RestoreStats{Store: s.name, Partition: partition, From: s.offset, Full: s.offset < 0}
	start := time.Now()
	end, high, err := changelogEnds(ctx, clientOpts, topic, partition)
	if err != nil {
		return st, err
	}
	st.To = end
	from := max(s.offset, 0)
	if s.offset > high {
		return st, fmt.Errorf("%w: %s/%d ends at offset %d, the state in this task's directory reflects offset %d", ErrChangelogBehind, topic, partition, high, s.offset)
	}
	if progress == nil {
		progress = func(int64, int64) {}
	}
	r := s.NewRestorer()
	if from >= end {
		st.Duration = time.Since(start)
		st.To = max(end, s.offset, 0)
		progress(st.To, st.To)
		return st, r.Finish(st.To)
	}
	progress(from, end)
	startAt := kgo.NewOffset().At(from)
	cl, err := kgo.NewClient(append(clientOpts,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: startAt}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.ConsumeResetOffset(kgo.NoResetOffset()),
		// Small fetches: a restore applies records as fast as they come, and every decoded record
		// buffered ahead costs a Record struct (several restores run at once).
		kgo.FetchMaxBytes(4<<20),
		kgo.FetchMaxPartitionBytes(2<<20),
	)...)
	if err != nil {
		return st, err
	}
	defer cl.Close()
	done, n := false, 0
	for !done {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return st, err
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			ferr = fmt.Errorf("state: restore %s/%d: %w", t, p, err)
		})
		if ferr != nil {
			return st, ferr
		}
		var applyErr error
		fs.EachRecord(func(rec *kgo.Record) {
			if done || applyErr != nil {
				return
			}
			if !rec.Attrs.IsControl() {
				applyErr = r.Apply(rec.Key, rec.Value, rec.Value == nil, rec.Offset+1)
			}
			if rec.Offset >= end-1 {
				done = true
			}
			if n++; n%4096 == 0 || done {
				progress(rec.Offset+1, end)
			}
		})
		if applyErr != nil {
			return st, applyErr
		}
	}
	if err := r.Finish(end); err != nil {
		return st, err
	}
	st.Records, st.Bytes = r.Counts()
	st.Duration = time.Since(start)
	return st, nil
}

// changelogEnds returns a changelog partition's last stable offset and high watermark.
func changelogEnds(ctx context.Context, clientOpts []kgo.Opt, topic string, partition int32) (stable, high int64, err error) {
	b, err := ChangelogBounds(ctx, clientOpts, topic, partition, false)
	return b.Stable, b.High, err
}

// Bounds are the offsets that delimit a changelog partition.
type Bounds struct {
	// Start is the first offset the partition holds (retention or a deletion of records moves it
	// up; compaction does not). Only set when asked for.
	Start int64
	// Stable is the last stable offset: everything below it is decided (committed or aborted).
	Stable int64
	// High is the high watermark: the offset after the last record written.
	High int64
}

// ChangelogBounds looks up a changelog partition's last stable offset and high watermark and,
// with withStart, its start offset. clientOpts connect to the brokers; the function makes and
// closes its own client.
func ChangelogBounds(ctx context.Context, clientOpts []kgo.Opt, topic string, partition int32, withStart bool) (Bounds, error) {
	admin, err := kgo.NewClient(clientOpts...)
	if err != nil {
		return Bounds{}, err
	}
	defer admin.Close()
	adm := kadm.NewClient(admin)
	lookup := func(list func(context.Context, ...string) (kadm.ListedOffsets, error), what string) (int64, error) {
		// A changelog created a moment ago may be missing from the metadata the listing is based
		// on (seen on a loaded machine: the partition absent, no error): ask again, a bounded
		// number of times, before calling it an error.
		for try := 0; ; try++ {
			offs, err := list(ctx, topic)
			if err != nil {
				return 0, fmt.Errorf("state: %s of %s: %w", what, topic, err)
			}
			o, ok := offs.Lookup(topic, partition)
			if ok && o.Err == nil {
				return o.Offset, nil
			}
			if ok || try == 20 {
				if !ok {
					return 0, fmt.Errorf("state: %s of %s/%d: the partition is not in the topic's metadata", what, topic, partition)
				}
				return 0, fmt.Errorf("state: %s of %s/%d: %w", what, topic, partition, o.Err)
			}
			select {
			case <-ctx.Done():
				return 0, ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	var b Bounds
	if b.Stable, err = lookup(adm.ListCommittedOffsets, "last stable offset"); err != nil {
		return Bounds{}, err
	}
	if b.High, err = lookup(adm.ListEndOffsets, "end offset"); err != nil {
		return Bounds{}, err
	}
	if withStart {
		if b.Start, err = lookup(adm.ListStartOffsets, "start offset"); err != nil {
			return Bounds{}, err
		}
	}
	return b, nil
}

// ApplyRecords writes a fetch of s's changelog partition (committed records in offset order, the
// transaction markers among them) into s through a Restorer, and records the offset after the
// last of them, in one batch: the database then holds the partition up to that offset. It returns
// that offset and how many records (not markers) it applied. The store's open cycle must be empty;
// it is what a standby replica and a table's follower apply each fetch with.
//
// On an error, what was applied is committed under the offset the store had, so that applying
// the fetch again changes nothing: a changelog's records are the values of their keys in order.
func (s *Store) ApplyRecords(recs []*kgo.Record) (next int64, applied int, err error) {
	rs := s.NewRestorer()
	next = s.offset
	for _, rec := range recs {
		if rec.Attrs.IsControl() {
			next = rec.Offset + 1
			continue
		}
		if err = rs.Apply(rec.Key, rec.Value, rec.Value == nil, rec.Offset+1); err != nil {
			_ = rs.Finish(s.offset)
			return s.offset, applied, err
		}
		next = rec.Offset + 1
		applied++
	}
	if err := rs.Finish(next); err != nil {
		return s.offset, applied, err
	}
	return next, applied, nil
}
