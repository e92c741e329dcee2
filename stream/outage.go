package stream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Riding through broker outages.
//
// A broker that is down, restarting or paused shows up in the poll loop as a fetch error (the group
// session could not heartbeat or rejoin), as a flush that does not finish within the transaction
// timeout, or as a transaction end that fails. None of these says whether the open transaction
// committed: an EndTxn lost on the wire may have reached the broker. So the runtime does not try to
// patch up its Kafka session. It does what a crash and a restart do, in process: the open cycle is
// abandoned (the tasks rewind to their last committed state), the tasks are closed, the session is
// closed, and a new one is made, which fences the old producer (aborting whatever transaction it
// left open) and rejoins the group with the same static instance id. The committed offsets, the
// changelogs and the outputs on the broker are then the truth, as after a SIGKILL, which the crash
// tests prove exactly once. Meanwhile the runtime is not ready and says in WARN logs what it is
// waiting for.
//
// A schema registry that does not answer (ErrUnavailable, from the Avro and Protobuf decoders) is
// handled the same way: the cycle is abandoned and processed again in a new session, so that no
// record is dead-lettered for the registry's outage (see "A registry that does not answer" in
// doc.go).
//
// Errors that another try cannot fix are not retried: authorization failures, records too large for
// a topic, an unsupported protocol, and another live instance with the same instance id (static
// membership fenced us, or a producer with our transactional id did while that instance is in the
// group). Run returns them. A refusal of the connection's TLS or SASL (auth.go) is retried for
// Config.AuthRetryTimeout, over a few sessions, then Run returns it as an *AuthError: a credential
// being rolled out may be refused for a moment, a wrong one for ever.

// brokerError marks an error from the Kafka session that a new session may not have: the poll
// loop returns it, and Run decides whether to start over.
type brokerError struct {
	op  string // what failed: "fetch", "flush", "end transaction"
	err error
}

func (e *brokerError) Error() string { return fmt.Sprintf("stream: %s: %v", e.op, e.err) }
func (e *brokerError) Unwrap() error { return e.err }

// ErrInstanceFenced is returned by Run when another live instance uses this instance's id: static
// group membership and the transactional producer both fence the older of two instances that
// share an id, which must never happen.
var ErrInstanceFenced = errors.New("stream: fenced by another instance with the same instance id")

// permanent lists the broker's answers that a new session gets again.
var permanent = []*kerr.Error{
	kerr.MessageTooLarge, kerr.RecordListTooLarge, kerr.InvalidRecord, kerr.InvalidTopicException,
	kerr.TopicAuthorizationFailed, kerr.GroupAuthorizationFailed, kerr.ClusterAuthorizationFailed,
	kerr.TransactionalIDAuthorizationFailed, kerr.InvalidTransactionTimeout, kerr.UnsupportedVersion, kerr.PolicyViolation,
	kerr.UnsupportedForMessageFormat, kerr.InvalidRequiredAcks,
}

// restartable reports whether err, returned by one session, calls for a new session rather than
// stopping Run. It may ask the broker whether another instance holds this instance's id, which
// ends Run with ErrInstanceFenced.
func (r *Runtime) restartable(ctx context.Context, err error, memberID string) (bool, error) {
	if errors.Is(err, ErrUnavailable) {
		return true, nil // a decoder's registry did not answer: wait for it (registry.go)
	}
	var be *brokerError
	if !errors.As(err, &be) || errors.Is(err, kgo.ErrClientClosed) {
		return false, err
	}
	if ae := r.authError(err); ae != nil {
		giveUp, left := r.auth.sessions.fail(time.Now(), r.cfg.AuthRetryTimeout)
		if giveUp {
			return false, ae
		}
		r.log.Warn("the brokers refuse the connection's TLS or SASL; starting a new session", "err", ae, "gives_up_in", left.Round(time.Second))
		return true, nil
	}
	r.auth.sessions.reset()
	for _, p := range permanent {
		if errors.Is(err, p) {
			return false, err
		}
	}
	if errors.Is(err, kerr.FencedInstanceID) {
		return false, fmt.Errorf("%w %q: %w", ErrInstanceFenced, r.cfg.InstanceID, err)
	}
	if errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) {
		// Either the broker timed out our transaction during an outage and bumped the epoch, or
		// another instance with our id started. The group tells: such an instance is a member
		// with our instance id and another member id.
		if other, ok := r.awaitOtherInstance(ctx, memberID); ok {
			return false, fmt.Errorf("%w %q (member %s): %w", ErrInstanceFenced, r.cfg.InstanceID, other, err)
		}
	}
	return true, nil
}

// otherInstanceWindow bounds how long a fenced producer waits for another instance with its id to
// show up in the group before it takes the fence for an outage's epoch bump.
//
// Why wait at all: another instance fences our producer (its start-up InitProducerId) and joins
// the group independently, so its join may come after we have noticed the fence. Looking once,
// too early, we would restart, and our restart's fence would end its transaction; it would then
// look too early in turn, and the two would fence each other for ever, neither making progress.
// Looking for a few seconds, the one fenced first sees the other's join and stops. After a real
// outage the cost is a restart later by this much.
const otherInstanceWindow = 5 * time.Second

// awaitOtherInstance asks the broker, every 250 ms for up to otherInstanceWindow, whether another
// group member has this instance's id (see otherInstance).
func (r *Runtime) awaitOtherInstance(ctx context.Context, memberID string) (string, bool) {
	if memberID == "" {
		return "", false // this session never joined: no member of ours to tell another from
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(r.cfg.Brokers...),
		kgo.WithLogger(kgoLogger{r.log.With("component", "kafka-admin")})}, r.cfg.ClientOpts...)...)
	if err != nil {
		return "", false
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	wctx, cancel := context.WithTimeout(ctx, otherInstanceWindow)
	defer cancel()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		if other, ok := r.otherInstance(wctx, adm, memberID); ok {
			return other, true
		}
		select {
		case <-wctx.Done():
			return "", false
		case <-tick.C:
		}
	}
}

// otherInstance looks for another group member with this instance's id. It answers false when the
// broker cannot tell (it is still unreachable): an outage is then the likelier cause.
func (r *Runtime) otherInstance(ctx context.Context, adm *kadm.Client, memberID string) (string, bool) {
	groups, err := adm.DescribeGroups(ctx, r.pipeline.Name)
	if err != nil {
		return "", false
	}
	g, ok := groups[r.pipeline.Name]
	if !ok || g.Err != nil {
		return "", false
	}
	for _, m := range g.Members {
		if m.InstanceID != nil && *m.InstanceID == r.cfg.InstanceID && m.MemberID != memberID {
			return m.MemberID + " on " + m.ClientHost, true
		}
	}
	return "", false
}

// outageLog says, once when it begins and then at most every 30 s, what the runtime waits for.
type outageLog struct {
	since, last time.Time
	restarts    int
}

func (o *outageLog) warn(r *Runtime, err error, retryIn time.Duration) {
	now := time.Now()
	if o.since.IsZero() {
		o.since = now
	}
	o.restarts++
	if o.restarts > 1 && now.Sub(o.last) < 30*time.Second {
		return
	}
	o.last = now
	if errors.Is(err, ErrUnavailable) {
		r.log.Warn("a decoder could not reach the schema registry; the open cycle was abandoned, nothing was dead-lettered, and it is processed again in a new session",
			"err", err, "outage_for", now.Sub(o.since).Round(time.Second), "sessions", o.restarts, "retry_in", retryIn)
		return
	}
	r.log.Warn("the Kafka session failed; the open cycle was abandoned and is processed again; starting a new session (fencing the old producer, rejoining the group)",
		"err", err, "outage_for", now.Sub(o.since).Round(time.Second), "sessions", o.restarts, "retry_in", retryIn)
}
