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

// RestoreFromKafka replays s's changelog partition from the store's committed offset to the end the
// partition has when the call starts, reading committed records only. clientOpts connect to the
// brokers (seed brokers, TLS, SASL); the function makes and closes its own consumer.
func RestoreFromKafka(ctx context.Context, clientOpts []kgo.Opt, topic string, partition int32, s *Store) (RestoreStats, error) {
	st := RestoreStats{Store: s.name, Partition: partition, From: s.offset, Full: s.offset < 0}
	start := time.Now()
	admin, err := kgo.NewClient(clientOpts...)
	if err != nil {
		return st, err
	}
	ends, err := kadm.NewClient(admin).ListEndOffsets(ctx, topic)
	admin.Close()
	if err != nil {
		return st, fmt.Errorf("state: end offset of %s: %w", topic, err)
	}
	endOff, ok := ends.Lookup(topic, partition)
	if !ok || endOff.Err != nil {
		return st, fmt.Errorf("state: end offset of %s/%d: %v", topic, partition, endOff.Err)
	}
	end := endOff.Offset
	st.To = end
	from := max(s.offset, 0)
	if s.offset > end {
		return st, fmt.Errorf("%w: %s/%d ends at offset %d, the state in this task's directory reflects offset %d", ErrChangelogBehind, topic, partition, end, s.offset)
	}
	r := s.NewRestorer()
	if from >= end {
		st.Duration = time.Since(start)
		return st, r.Finish(max(end, s.offset, 0))
	}
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
	done := false
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
