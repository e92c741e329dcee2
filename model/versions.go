package model

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/state"
	"github.com/streamd/streamd/stream"
)

// Versions of offline models.
//
// The versions topic (Spec.VersionsTopic, compacted, one partition) holds, per offline model N:
//
//	N/v/<V>   the model file of version V (gzip'd), V = 1, 2, ...: one key per version, so that
//	          compaction keeps every version and a rollback can return to any of them
//	N/live    the live version, in decimal: written by push (the new version) and by rollback
//
// Version 0 is the configured file. Every instance follows the topic: each version is checked
// (catalog.check: it loads, binds to the pipeline's features, predicts the same task) and a
// refused one is logged with its reason and counted (streamd_model_versions_refused_total), as is
// a live pointer to a refused or unknown version; the live version keeps serving. The first task
// to open reads the topic to its end before it returns, so that an instance is not ready (restore
// includes opening the operators) until it knows its models' live versions, and a restart serves
// the version that was live before it. Tasks swap at their next cycle boundary (swapVersions).
//
// Push (PushVersion) checks the file itself before it writes anything, then appends the version
// and the live pointer; rollback (Rollback) appends only the pointer. Both read the topic first:
// push to number the new version, rollback to check the version is there.

// MaxVersionBytes bounds a pushed model file after gzip: a record of the versions topic stays
// below Kafka's default message size limit (1 MiB).
const MaxVersionBytes = 900 << 10

func versionKey(model string, v int64) string { return model + "/v/" + strconv.FormatInt(v, 10) }
func liveKey(model string) string             { return model + "/live" }

// parseVersionKey splits a key of the versions topic: (model, version, isVersion) for N/v/V,
// (model, 0, false) for N/live; ok false for any other key.
func parseVersionKey(key string) (model string, v int64, isVersion, ok bool) {
	if m, found := strings.CutSuffix(key, "/live"); found && m != "" {
		return m, 0, false, true
	}
	i := strings.LastIndex(key, "/v/")
	if i <= 0 {
		return "", 0, false, false
	}
	v, err := strconv.ParseInt(key[i+3:], 10, 64)
	if err != nil || v < 1 {
		return "", 0, false, false
	}
	return key[:i], v, true, true
}

// versionsFollower is the operator's reader of the versions topic: started by the first task that
// opens, stopped when the last one closes (refs), like modelsReader.
type versionsFollower struct {
	mu         sync.Mutex
	refs       int
	cancel     context.CancelFunc
	done       chan struct{}
	clientOpts []kgo.Opt // the tasks' client options, kept for Rollback
	// applied is the offset after the last record applied: a reader started again (after every
	// task closed and one opened) reads the topic from its start, and skips what the catalogs
	// already hold, so that refusals are not counted twice.
	applied atomic.Int64
}

// followVersions starts the versions reader if this is the first task, and returns once the topic
// has been read to its end.
func (o *Operator) followVersions(t *stream.Task) error {
	return o.followWith(t.ClientOpts(), t.Logger())
}

// followWith is followVersions with the client options and logger of the task.
func (o *Operator) followWith(clientOpts []kgo.Opt, log *slog.Logger) error {
	if o.spec.VersionsTopic == "" || len(o.offline) == 0 {
		return nil
	}
	f := &o.versions
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refs++
	if f.refs > 1 {
		return nil
	}
	f.clientOpts = clientOpts
	cl, err := kgo.NewClient(append(clientOpts,
		kgo.ConsumeTopics(o.spec.VersionsTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)...)
	if err != nil {
		f.refs--
		return fmt.Errorf("model: versions topic reader: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	err = o.catchUpVersions(ctx, cl, log)
	cancel()
	if err != nil {
		cl.Close()
		f.refs--
		return err
	}
	ctx, f.cancel = context.WithCancel(context.Background())
	f.done = make(chan struct{})
	go func() {
		defer close(f.done)
		defer cl.Close()
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			fs.EachError(func(topic string, p int32, err error) {
				if !errors.Is(err, context.Canceled) {
					log.Warn("reading the versions topic", "topic", topic, "err", err)
				}
			})
			fs.EachRecord(func(r *kgo.Record) { o.applyVersion(r, log) })
		}
	}()
	return nil
}

func (o *Operator) releaseVersions() {
	if o.spec.VersionsTopic == "" || len(o.offline) == 0 {
		return
	}
	f := &o.versions
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.refs == 0 {
		return
	}
	if f.refs--; f.refs == 0 && f.cancel != nil {
		f.cancel()
		<-f.done
		f.cancel = nil
	}
}

// catchUpVersions reads the versions topic from its start to its last stable offset as of now.
func (o *Operator) catchUpVersions(ctx context.Context, cl *kgo.Client, log *slog.Logger) error {
	end, err := versionsEnd(ctx, cl, o.spec.VersionsTopic)
	if err != nil {
		return err
	}
	next := int64(0)
	for next < end {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return fmt.Errorf("model: reading the versions topic %q to offset %d (at %d): %w", o.spec.VersionsTopic, end, next, ctx.Err())
		}
		fs.EachError(func(topic string, p int32, err error) {
			log.Warn("reading the versions topic", "topic", topic, "err", err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			o.applyVersion(r, log)
			next = r.Offset + 1
		})
	}
	return nil
}

// versionsEnd is the versions topic's last stable offset (0 when the topic does not exist yet).
func versionsEnd(ctx context.Context, cl *kgo.Client, topic string) (int64, error) {
	offs, err := kadm.NewClient(cl).ListCommittedOffsets(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("model: versions topic %q: %w", topic, err)
	}
	o, ok := offs.Lookup(topic, 0)
	if !ok || errors.Is(o.Err, kerr.UnknownTopicOrPartition) {
		return 0, nil
	}
	if o.Err != nil {
		return 0, fmt.Errorf("model: versions topic %q: %w", topic, o.Err)
	}
	return o.Offset, nil
}

// applyVersion takes one record of the versions topic into the catalogs.
func (o *Operator) applyVersion(r *kgo.Record, log *slog.Logger) {
	if r.Offset < o.versions.applied.Load() {
		return
	}
	o.versions.applied.Store(r.Offset + 1)
	name, v, isVersion, ok := parseVersionKey(string(r.Key))
	if !ok {
		return
	}
	var c *catalog
	for i, ms := range o.spec.Models {
		if ms.Name == name {
			c = o.catalogs[i]
		}
	}
	if c == nil {
		return // another pipeline's model, or not an offline one here
	}
	if isVersion {
		if r.Value == nil {
			return // a tombstone: the version stays known until restart
		}
		if err := c.offer(v, r.Value); err != nil {
			log.Warn("refused an offline model version; the live version keeps serving", "model", name, "version", v, "err", err)
		} else {
			log.Info("offline model version read", "model", name, "version", v)
		}
		return
	}
	live, err := strconv.ParseInt(string(r.Value), 10, 64)
	if err != nil || live < 0 {
		c.refusals.Add(1)
		log.Warn("refused a live pointer that is not a version", "model", name, "value", string(r.Value))
		return
	}
	if err := c.setLive(live); err != nil {
		log.Warn("refused to make a version live; the live version keeps serving", "model", name, "version", live, "err", err)
		return
	}
	log.Info("offline model version live", "model", name, "version", live)
}

// CheckVersion tells whether a model file may become a version of the offline model name: it
// loads, binds to the pipeline's features and predicts what the configured model predicts.
func (o *Operator) CheckVersion(name string, data []byte) error {
	c, err := o.catalogOf(name)
	if err != nil {
		return err
	}
	_, err = c.check(data)
	return err
}

// ErrNoSuchModel: a push or rollback names no offline model of the pipeline.
var ErrNoSuchModel = errors.New("model: no such offline model")

func (o *Operator) catalogOf(name string) (*catalog, error) {
	var names []string
	for i, ms := range o.spec.Models {
		if o.catalogs[i] == nil {
			continue
		}
		if ms.Name == name {
			return o.catalogs[i], nil
		}
		names = append(names, ms.Name)
	}
	return nil, fmt.Errorf("%w: %q (the pipeline's offline models: %s)", ErrNoSuchModel, name, strings.Join(names, ", "))
}

// VersionsTopic returns the topic of the offline models' versions ("" without offline models).
func (o *Operator) VersionsTopic() string {
	if len(o.offline) == 0 {
		return ""
	}
	return o.spec.VersionsTopic
}

// PushVersion checks data as a new version of the offline model name (CheckVersion), then
// publishes it to the versions topic as the next version and makes it live. cl needs no
// consumer options. It returns the new version.
func (o *Operator) PushVersion(ctx context.Context, cl *kgo.Client, name string, data []byte) (int64, error) {
	if err := o.CheckVersion(name, data); err != nil {
		return 0, err
	}
	payload := data
	if len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write(data)
		_ = zw.Close()
		payload = buf.Bytes()
	}
	if len(payload) > MaxVersionBytes {
		return 0, fmt.Errorf("%w: the model is %d bytes gzip'd; a version is at most %d bytes (a record of the versions topic)", ErrVersionRefused, len(payload), MaxVersionBytes)
	}
	topic := o.spec.VersionsTopic
	if err := ensureVersionsTopic(ctx, cl, topic); err != nil {
		return 0, err
	}
	hist, err := ReadVersions(ctx, cl, topic)
	if err != nil {
		return 0, err
	}
	v := int64(1)
	if h := hist[name]; h != nil && len(h.Versions) > 0 {
		v = h.Versions[len(h.Versions)-1] + 1
	}
	now := time.Now()
	res := cl.ProduceSync(ctx,
		&kgo.Record{Topic: topic, Key: []byte(versionKey(name, v)), Value: payload, Timestamp: now},
		&kgo.Record{Topic: topic, Key: []byte(liveKey(name)), Value: []byte(strconv.FormatInt(v, 10)), Timestamp: now})
	if err := res.FirstErr(); err != nil {
		return 0, fmt.Errorf("model: push %s version %d to %q: %w", name, v, topic, err)
	}
	return v, nil
}

// Rollback makes an earlier version of the offline model name live again: version 0 (the
// configured file) or one in the versions topic that passes CheckVersion. cl is a client for the
// brokers; nil uses the tasks' client options (the admin API's case).
func (o *Operator) Rollback(ctx context.Context, cl *kgo.Client, name string, version int64) error {
	if _, err := o.catalogOf(name); err != nil {
		return err
	}
	if version < 0 {
		return fmt.Errorf("%w: version %d", ErrVersionRefused, version)
	}
	if cl == nil {
		o.versions.mu.Lock()
		opts := o.versions.clientOpts
		o.versions.mu.Unlock()
		if opts == nil {
			return errors.New("model: rollback: this instance has no task open yet")
		}
		var err error
		if cl, err = kgo.NewClient(opts...); err != nil {
			return fmt.Errorf("model: rollback: %w", err)
		}
		defer cl.Close()
	}
	topic := o.spec.VersionsTopic
	if version > 0 {
		data, err := readVersion(ctx, cl, topic, name, version)
		if err != nil {
			return err
		}
		if err := o.CheckVersion(name, data); err != nil {
			return err
		}
	}
	rec := &kgo.Record{Topic: topic, Key: []byte(liveKey(name)), Value: []byte(strconv.FormatInt(version, 10)), Timestamp: time.Now()}
	if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return fmt.Errorf("model: rollback %s to version %d: %w", name, version, err)
	}
	return nil
}

// RollbackLive is Rollback with the tasks' own client options: the admin API's rollback.
func (o *Operator) RollbackLive(ctx context.Context, name string, version int64) error {
	return o.Rollback(ctx, nil, name, version)
}

// History is what the versions topic holds for one model: its versions in order and the live one.
type History struct {
	Versions []int64
	Live     int64
	data     map[int64][]byte
}

// ReadVersions reads the versions topic to its end.
func ReadVersions(ctx context.Context, cl *kgo.Client, topic string) (map[string]*History, error) {
	out := map[string]*History{}
	end, err := versionsEnd(ctx, cl, topic)
	if err != nil || end == 0 {
		return out, err
	}
	rd, err := kgo.NewClient(append(clientOptsOf(cl),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))...)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	next := int64(0)
	for next < end {
		fs := rd.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("model: reading the versions topic %q: %w", topic, ctx.Err())
		}
		if err := fs.Err0(); err != nil {
			return nil, fmt.Errorf("model: reading the versions topic %q: %w", topic, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			next = r.Offset + 1
			name, v, isVersion, ok := parseVersionKey(string(r.Key))
			if !ok {
				return
			}
			h := out[name]
			if h == nil {
				h = &History{data: map[int64][]byte{}}
				out[name] = h
			}
			if !isVersion {
				if l, err := strconv.ParseInt(string(r.Value), 10, 64); err == nil {
					h.Live = l
				}
				return
			}
			if _, seen := h.data[v]; !seen {
				h.Versions = append(h.Versions, v)
			}
			h.data[v] = r.Value
		})
	}
	for _, h := range out {
		sortInt64s(h.Versions)
	}
	return out, nil
}

func readVersion(ctx context.Context, cl *kgo.Client, topic, name string, v int64) ([]byte, error) {
	hist, err := ReadVersions(ctx, cl, topic)
	if err != nil {
		return nil, err
	}
	h := hist[name]
	if h == nil || h.data[v] == nil {
		return nil, fmt.Errorf("%w: %s has no version %d in %q", ErrVersionRefused, name, v, topic)
	}
	return h.data[v], nil
}

// ensureVersionsTopic creates the versions topic (compacted, one partition) if it is missing.
func ensureVersionsTopic(ctx context.Context, cl *kgo.Client, topic string) error {
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, 1, -1, state.ChangelogConfigs(), topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("model: create the versions topic %q: %w", topic, err)
	}
	return nil
}

// clientOptsOf is cl's options, for a reader of its own (cl is a plain producer client).
func clientOptsOf(cl *kgo.Client) []kgo.Opt { return cl.Opts() }

func sortInt64s(v []int64) { slices.Sort(v) }
