package stream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// fence initializes the transactional producer before anything else happens, which fences the
// previous incarnation of this instance (same transactional id) and makes the broker abort the
// transaction it left open.
//
// Why at start: franz-go initializes the producer id lazily, at the first produce. A restarted
// instance first joins the group and reads its committed offsets, and with require_stable the broker
// answers UNSTABLE_OFFSET_COMMIT for as long as the dead predecessor's transaction is open; the
// changelog restore, a read_committed read up to the end, is blocked by the same transaction. Neither
// produces, so nothing would abort that transaction until the broker's transaction timeout expired:
// a restart after SIGKILL stalled for about TransactionTimeout before it processed anything.
//
// Request failures (a broker that is down or slow) are retried with backoff until ctx ends; an
// error the broker says is not retriable (authorization, a fenced or invalid producer) is returned.
// A refusal of the connection's TLS or SASL is returned at once as a brokerError: Run's bounded
// retry of such refusals decides (restartable), not this loop, which would retry it for ever.
func (r *Runtime) fence(ctx context.Context) error {
	backoff := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		reqCtx, cancel := context.WithTimeout(ctx, r.cfg.TransactionTimeout)
		stop := r.auth.watch.cancelOnRefusal(cancel) // else it would wait out the timeout
		_, _, err := r.sess.Client().ProducerID(reqCtx)
		stop()
		cancel()
		if err == nil {
			if attempt > 1 {
				r.log.Info("transactional producer initialized", "transactional_id", r.transactionalID(), "attempts", attempt)
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if r.authError(err) != nil {
			return &brokerError{op: "initialize the transactional producer", err: err}
		}
		var ke *kerr.Error
		if errors.As(err, &ke) && !ke.Retriable {
			return fmt.Errorf("stream: initialize the transactional producer %s: %w", r.transactionalID(), err)
		}
		r.log.Warn("cannot initialize the transactional producer yet; retrying", "transactional_id", r.transactionalID(),
			"attempt", attempt, "retry_in", backoff, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}
