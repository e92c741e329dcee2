package stream

import (
	"context"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// missingTopics is the poll loop's memory of missing output topics across cycles.
type missingTopics struct {
	attempts int
	since    time.Time
}

// afterEnd acts on a cycle that aborted because topics it produced to do not exist. A missing
// changelog stops the runtime (ErrChangelogLost). A missing output topic is created again when
// Config.CreateTopics allows it (safe: the aborted cycle's outputs are produced again, and nothing
// was committed without them), else waited for; either way the runtime is not ready, logs a warning
// naming the topics, and backs off before it processes the cycle's input again (the session has
// rewound the consumer to the last commit). The first commit after an outage ends it.
func (r *Runtime) afterEnd(ctx context.Context, end cycleEnd, o *missingTopics) error {
	if len(end.missing) == 0 && !end.recreated {
		if end.committed && o.attempts > 0 {
			r.log.Info("outputs are written again", "after", time.Since(o.since).Round(time.Millisecond), "aborted_cycles", o.attempts)
			*o = missingTopics{}
			r.produce.blocked.Store(false)
		}
		return nil
	}
	var outputs, changelogs []string
	for _, t := range end.missing {
		if _, ok := r.changelogIDs[t]; ok {
			changelogs = append(changelogs, t)
		} else {
			outputs = append(outputs, t)
		}
	}
	adm := kadm.NewClient(r.sess.Client())
	if len(changelogs) > 0 {
		// The producer says they are unknown; the brokers' metadata decides (a changelog being
		// moved between brokers can be unknown for a moment).
		if err := r.changelogsIntact(ctx, adm); err != nil {
			return err
		}
	}
	if o.attempts == 0 {
		o.since = time.Now()
	}
	o.attempts++
	r.produce.blocked.Store(true)
	backoff := min(250*time.Millisecond<<min(o.attempts-1, 6), 10*time.Second)
	switch {
	case end.recreated:
		// Logged by endCycle; the topic exists.
	case len(outputs) == 0:
		r.log.Warn("changelog topics were unknown to the producer but exist; processing the aborted cycle again",
			"topics", strings.Join(changelogs, ","), "retry_in", backoff)
	case r.cfg.CreateTopics:
		if err := r.createOutputTopics(ctx, adm, outputs); err != nil {
			r.log.Warn("output topics are missing and creating them failed; retrying", "topics", strings.Join(outputs, ","), "err", err, "retry_in", backoff)
		} else {
			r.log.Warn("output topics were missing (deleted while streamd ran?); created them again, the aborted cycle is processed again",
				"topics", strings.Join(outputs, ","), "retry_in", backoff)
		}
	default:
		r.log.Warn("output topics do not exist; nothing commits until they do (create them, or set kafka.create_topics)",
			"topics", strings.Join(outputs, ","), "retry_in", backoff, "aborted_cycles", o.attempts)
	}
	// The producer keeps what it knew of a topic, its id included, and fails records to a topic
	// that came back under a new id until it forgets it; nothing of the ended cycle is buffered.
	r.sess.Client().PurgeTopicsFromProducing(outputs...)
	t := time.NewTimer(backoff)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	return nil
}
