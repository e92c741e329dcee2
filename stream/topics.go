package stream

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/state"
)

// ErrNoSourceTopic is returned by Run when the source topic does not exist.
var ErrNoSourceTopic = errors.New("stream: source topic does not exist")

// ErrNotCoPartitioned is returned by Run when the labels topic's partition count differs from the
// source topic's.
var ErrNotCoPartitioned = errors.New("stream: labels topic not co-partitioned with the source")

// prepareTopics checks that the source topic exists and that every output topic exists, creating the
// missing outputs when CreateTopics is set. It retries while the brokers cannot be reached, until ctx
// ends, so that streamd can start before its cluster does; but while they refuse the connection's
// TLS or SASL only for AuthRetryTimeout, then it returns the *AuthError (auth.go).
func (r *Runtime) prepareTopics(ctx context.Context) error {
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(r.cfg.Brokers...),
		kgo.ClientID("streamd-admin"),
		kgo.WithLogger(kgoLogger{r.log.With("component", "kafka-admin")}),
		kgo.WithHooks(r.auth.watch),
	}, r.cfg.ClientOpts...)...)
	if err != nil {
		return fmt.Errorf("stream: kafka client: %w", err)
	}
	defer cl.Close()
	r.auth.learn(cl)
	adm := kadm.NewClient(cl)

	outputs := r.pipeline.outputTopics()
	var changelogs []string
	for _, s := range r.stores {
		changelogs = append(changelogs, state.ChangelogTopic(r.pipeline.Name, s))
	}
	// Series that exist from the start, at zero, so that the alert on produce failures has data.
	for _, t := range append(append([]string{}, outputs...), changelogs...) {
		r.m.produceFailures.WithLabelValues(t)
	}
	var compacted []string
	for _, op := range r.pipeline.Operators {
		if c, ok := op.(CompactedTopics); ok {
			compacted = append(compacted, c.CompactedTopics(r.pipeline.Name)...)
		}
	}
	var (
		details kadm.TopicDetails
		refused authStreak
	)
	for attempt := 0; ; attempt++ {
		reqCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		details, err = adm.ListTopics(reqCtx, append(append(append(append(r.inputTopics(), outputs...), changelogs...), compacted...), r.tableTopics()...)...)
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("stream: list topics: %w", err)
		}
		if ae := r.authError(err); ae != nil {
			giveUp, left := refused.fail(time.Now(), r.cfg.AuthRetryTimeout)
			if giveUp {
				return ae
			}
			r.log.Warn("the brokers refuse the connection's TLS or SASL; retrying", "brokers", strings.Join(r.cfg.Brokers, ","),
				"err", ae, "gives_up_in", left.Round(time.Second))
		} else {
			refused.reset()
			r.log.Warn("cannot reach the brokers yet; retrying", "brokers", strings.Join(r.cfg.Brokers, ","), "err", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stream: list topics: %w", err)
		case <-time.After(min(time.Duration(attempt+1)*500*time.Millisecond, 5*time.Second)):
		}
	}
	src, ok := details[r.pipeline.Source.Topic]
	if !ok || errors.Is(src.Err, kerr.UnknownTopicOrPartition) {
		return fmt.Errorf("%w: %q", ErrNoSourceTopic, r.pipeline.Source.Topic)
	}
	if src.Err != nil {
		return fmt.Errorf("stream: source topic %q: %w", r.pipeline.Source.Topic, src.Err)
	}
	partitions := int32(len(src.Partitions))
	r.mu.Lock() // Inspect reads it from the admin server's goroutines
	r.lookupMu.Lock()
	r.partitions = partitions
	r.lookupMu.Unlock()
	r.mu.Unlock()
	if l := r.pipeline.Labels; l != nil {
		d, ok := details[l.Topic]
		if !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
			return fmt.Errorf("%w: labels topic %q", ErrNoSourceTopic, l.Topic)
		}
		if d.Err != nil {
			return fmt.Errorf("stream: labels topic %q: %w", l.Topic, d.Err)
		}
		if n := int32(len(d.Partitions)); n != partitions {
			return fmt.Errorf("%w: the labels topic %q has %d partitions and the source topic %q has %d; a label must reach the task that scored its event, so they need the same count",
				ErrNotCoPartitioned, l.Topic, n, r.pipeline.Source.Topic, partitions)
		}
	}
	if err := r.checkTableTopics(details, partitions); err != nil {
		return err
	}

	// Changelogs are internal: always created, compacted, with one partition per source partition
	// (a task's state goes to the changelog partition of the same number).
	var missingLogs []string
	for _, t := range changelogs {
		d, ok := details[t]
		switch {
		case !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition):
			missingLogs = append(missingLogs, t)
		case d.Err != nil:
			return fmt.Errorf("stream: changelog topic %q: %w", t, d.Err)
		case int32(len(d.Partitions)) != partitions:
			return fmt.Errorf("stream: changelog topic %q has %d partitions, the source topic %q has %d: they must match (was the source repartitioned?)",
				t, len(d.Partitions), r.pipeline.Source.Topic, partitions)
		}
	}
	if len(missingLogs) > 0 {
		resp, err := adm.CreateTopics(ctx, partitions, r.cfg.ReplicationFactor, state.ChangelogConfigs(), missingLogs...)
		if err != nil {
			return fmt.Errorf("stream: create changelog topics: %w", err)
		}
		for _, t := range resp.Sorted() {
			if t.Err != nil && !errors.Is(t.Err, kerr.TopicAlreadyExists) {
				return fmt.Errorf("stream: create changelog topic %q: %w", t.Topic, t.Err)
			}
			r.log.Info("created changelog topic", "topic", t.Topic, "partitions", partitions)
		}
		if details, err = adm.ListTopics(ctx, changelogs...); err != nil {
			return fmt.Errorf("stream: list changelog topics: %w", err)
		}
	}
	// A changelog is known by its topic id: one deleted and created again under the same name has
	// lost the history the local state was restored from (see changelogsIntact).
	r.changelogIDs = map[string]kadm.TopicID{}
	for _, t := range changelogs {
		r.changelogIDs[t] = details[t].ID
	}

	var missingCompacted []string
	for _, t := range compacted {
		if d, ok := details[t]; !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
			missingCompacted = append(missingCompacted, t)
		}
	}
	if len(missingCompacted) > 0 {
		resp, err := adm.CreateTopics(ctx, 1, r.cfg.ReplicationFactor, state.ChangelogConfigs(), missingCompacted...)
		if err != nil {
			return fmt.Errorf("stream: create topics %s: %w", strings.Join(missingCompacted, ", "), err)
		}
		for _, t := range resp.Sorted() {
			if t.Err != nil && !errors.Is(t.Err, kerr.TopicAlreadyExists) {
				return fmt.Errorf("stream: create topic %q: %w", t.Topic, t.Err)
			}
			r.log.Info("created compacted topic", "topic", t.Topic)
		}
	}

	var missing []string
	for _, t := range outputs {
		d, ok := details[t]
		if !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
			missing = append(missing, t)
		} else if d.Err != nil {
			return fmt.Errorf("stream: output topic %q: %w", t, d.Err)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if !r.cfg.CreateTopics {
		return fmt.Errorf("stream: output topics %s do not exist (create them, or set kafka.create_topics)", strings.Join(missing, ", "))
	}
	return r.createOutputTopics(ctx, adm, missing)
}

// createOutputTopics creates output topics with the source's partition count and a
// max.message.bytes that fits the largest batch streamd produces (producerBatchMaxBytes), which
// holds the largest record: a limit sized to the record alone (MaxRecordBytes + 64KiB) refused the
// ~1MB batches of many small records with MESSAGE_TOO_LARGE whenever MaxRecordBytes was small. Each
// topic's TopicSettings (Pipeline.Topics) add its configs (retention, cleanup policy, ...) and may
// set its replication factor. A topic that exists already (another instance created it first) is
// not an error.
func (r *Runtime) createOutputTopics(ctx context.Context, adm *kadm.Client, topics []string) error {
	maxBytes := strconv.Itoa(max(r.cfg.MaxRecordBytes+64<<10, int(r.cfg.producerBatchMaxBytes())))
	for _, topic := range topics {
		configs, rf := r.topicCreation(topic, maxBytes)
		resp, err := adm.CreateTopics(ctx, r.partitions, rf, configs, topic)
		if err != nil {
			return fmt.Errorf("stream: create topic %s: %w", topic, err)
		}
		for _, t := range resp.Sorted() {
			if t.Err != nil && !errors.Is(t.Err, kerr.TopicAlreadyExists) {
				return fmt.Errorf("stream: create topic %q: %w (%s)", t.Topic, t.Err, t.ErrMessage)
			}
			r.log.Info("created topic", "topic", t.Topic, "partitions", r.partitions, "replication_factor", rf, "configs", len(configs))
		}
	}
	return nil
}

// changelogsIntact checks that every changelog topic still exists under the id it had when the
// runtime started. It returns an error wrapping ErrChangelogLost naming each lost topic, or another
// error when the brokers cannot say.
func (r *Runtime) changelogsIntact(ctx context.Context, adm *kadm.Client) error {
	if len(r.changelogIDs) == 0 {
		return nil
	}
	topics := make([]string, 0, len(r.changelogIDs))
	for t := range r.changelogIDs {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	reqCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	details, err := adm.ListTopics(reqCtx, topics...)
	if err != nil {
		return fmt.Errorf("stream: list changelog topics: %w", err)
	}
	var lost []string
	for _, t := range topics {
		d, ok := details[t]
		switch {
		case !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition):
			lost = append(lost, t+" (deleted)")
		case d.Err != nil:
			return fmt.Errorf("stream: changelog topic %q: %w", t, d.Err)
		case d.ID != r.changelogIDs[t] && r.changelogIDs[t] != (kadm.TopicID{}):
			lost = append(lost, t+" (deleted and created again)")
		}
	}
	if len(lost) > 0 {
		return fmt.Errorf("%w: %s: no cycle may commit without its changelog records, so the runtime stops; "+
			"keep the state directory, it is now the only copy of the stores' history (a restart creates the topic again, empty, and refuses that state as ahead of its changelog until the state is rebuilt)",
			ErrChangelogLost, strings.Join(lost, ", "))
	}
	return nil
}
