// Package topicread reads what a topic held when the read began, as a read_committed consumer
// sees it: for tools that take a snapshot of a topic (streamd dlq replay, streamd export).
package topicread

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ErrNoTopic is returned by Committed for a topic that does not exist.
var ErrNoTopic = errors.New("topicread: no such topic")

// Committed calls f with every committed record of topic below each partition's last stable
// offset as of the call, in offset order within a partition, and returns once it has seen them
// all. base are the client options (brokers, TLS, SASL). Control records are fetched so that an
// end offset that is a transaction marker is seen; f does not get them.
func Committed(ctx context.Context, base []kgo.Opt, adm *kadm.Client, topic string, f func(*kgo.Record)) error {
	ends, err := adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		return err
	}
	if ends.Error() != nil {
		if errors.Is(ends.Error(), kerr.UnknownTopicOrPartition) {
			return ErrNoTopic
		}
		return ends.Error()
	}
	if len(ends[topic]) == 0 {
		return ErrNoTopic
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	if len(want) == 0 {
		return nil
	}
	// Control records come through so that an end offset that is a transaction marker is seen.
	cl, err := kgo.NewClient(append(base, kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords())...)
	if err != nil {
		return err
	}
	defer cl.Close()
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		var ferr error
		fs.EachError(func(_ string, p int32, err error) { ferr = fmt.Errorf("fetch %s/%d: %w", topic, p, err) })
		if ferr != nil {
			return ferr
		}
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := want[r.Partition]
			if !ok {
				return
			}
			if r.Offset >= end-1 {
				delete(want, r.Partition)
			}
			if r.Offset < end && !r.Attrs.IsControl() {
				f(r)
			}
		})
	}
	return nil
}
