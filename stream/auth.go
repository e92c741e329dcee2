package stream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
)

// Authentication and TLS failures.
//
// A broker that refuses the connection's security answers in many shapes: a Kafka error code
// (SASL_AUTHENTICATION_FAILED, ILLEGAL_SASL_STATE when the listener does not speak SASL,
// UNSUPPORTED_SASL_MECHANISM), an x509 error or a TLS alert from the handshake, or just a closed
// connection (a listener that expects TLS or SASL and gets neither; kfake and old brokers close
// the connection on bad credentials). franz-go retries some of these and returns others as they
// come, so that without care a wrong password showed as an opaque error code, or as an EOF retried
// for ever under "cannot reach the brokers yet".
//
// authError turns each of these shapes into an *AuthError that says in plain words what was
// refused and what to check. A closed connection or a timeout says nothing by itself; authWatch, a
// franz-go hook, remembers how the latest connection attempt was refused, which tells a refusal
// from an outage.
//
// Such a failure is retried for a bounded time (Config.AuthRetryTimeout), at start-up
// (prepareTopics) and when a session fails (restartable): a few tries ride out a credential
// being rolled out to the brokers and the clients in turn; past that, Run returns the AuthError,
// so that a wrong password fails the start within seconds, in words, instead of looping.

// ErrCredentials is wrapped by the error of a SASL mechanism that cannot get its credentials: a
// password file that cannot be read, a token endpoint that refuses. Run reports it as an
// AuthError of kind AuthCredentials.
var ErrCredentials = errors.New("stream: kafka credentials unavailable")

// AuthFailure says what the brokers refused in an AuthError.
type AuthFailure int

const (
	// AuthSASLRefused: the broker refused the SASL credentials (user, password, token).
	AuthSASLRefused AuthFailure = iota + 1
	// AuthSASLNotEnabled: the listener does not speak SASL, but the client authenticates.
	AuthSASLNotEnabled
	// AuthSASLMechanism: the listener speaks SASL, but not with the client's mechanism.
	AuthSASLMechanism
	// AuthSASLRequired: the listener requires SASL, and the client does not authenticate.
	AuthSASLRequired
	// AuthCredentials: the client could not get its credentials (ErrCredentials).
	AuthCredentials
	// AuthTLSUntrusted: the broker's certificate did not verify (unknown CA, wrong name, expired).
	AuthTLSUntrusted
	// AuthTLSRefused: the broker ended the TLS handshake with an alert; most often it requires a
	// client certificate, or does not trust the one it got.
	AuthTLSRefused
	// AuthTLSNotSpoken: the client speaks TLS to a listener that does not.
	AuthTLSNotSpoken
	// AuthTLSRequired: the listener requires TLS, and the client speaks plaintext.
	AuthTLSRequired
)

var authFailureNames = map[AuthFailure]string{
	AuthSASLRefused: "sasl-refused", AuthSASLNotEnabled: "sasl-not-enabled", AuthSASLMechanism: "sasl-mechanism",
	AuthSASLRequired: "sasl-required", AuthCredentials: "credentials", AuthTLSUntrusted: "tls-untrusted",
	AuthTLSRefused: "tls-refused", AuthTLSNotSpoken: "tls-not-spoken", AuthTLSRequired: "tls-required",
}

func (f AuthFailure) String() string {
	if s, ok := authFailureNames[f]; ok {
		return s
	}
	return fmt.Sprintf("AuthFailure(%d)", int(f))
}

// AuthError is returned by Run when the brokers kept refusing the connection's TLS or SASL for
// Config.AuthRetryTimeout. Its message says what was refused, what to check and what the broker or
// the TLS layer said; it never holds a secret.
type AuthError struct {
	Failure AuthFailure
	// Mechanism is the SASL mechanism the client used, "" without SASL.
	Mechanism string
	// Advice says what to check (Config.AuthAdvice, or the default advice).
	Advice string
	// Err is the error the failure came as.
	Err error
}

func (e *AuthError) Error() string {
	return fmt.Sprintf("stream: kafka: %s: %s (%s)", e.summary(), e.Advice, detail(e.Err))
}

func (e *AuthError) Unwrap() error { return e.Err }

func (e *AuthError) summary() string {
	switch e.Failure {
	case AuthSASLRefused:
		return fmt.Sprintf("SASL authentication with mechanism %s failed: the broker refused the credentials", e.Mechanism)
	case AuthSASLNotEnabled:
		return fmt.Sprintf("the broker's listener does not speak SASL, and the client authenticates with %s", e.Mechanism)
	case AuthSASLMechanism:
		return fmt.Sprintf("the broker's listener does not enable the SASL mechanism %s", e.Mechanism)
	case AuthSASLRequired:
		return "the broker closed the connection at the first request: its listener requires SASL authentication (or TLS), and the client has none"
	case AuthCredentials:
		return fmt.Sprintf("the SASL %s credentials could not be had", e.Mechanism)
	case AuthTLSUntrusted:
		return "TLS handshake failed: the broker's certificate did not verify"
	case AuthTLSRefused:
		return "TLS handshake failed: the broker refused it"
	case AuthTLSNotSpoken:
		return "TLS handshake failed: the broker's listener does not speak TLS"
	case AuthTLSRequired:
		return "the broker closed the connection at once: its listener requires TLS, and the client speaks plaintext"
	}
	return "authentication failed"
}

// DefaultAuthAdvice is the advice of an AuthError when Config.AuthAdvice is not set.
func DefaultAuthAdvice(f AuthFailure) string {
	switch f {
	case AuthSASLRefused:
		return "check the user name and the password (or the token)"
	case AuthSASLNotEnabled:
		return "connect to the brokers' SASL listener, or do not authenticate"
	case AuthSASLMechanism:
		return "use a mechanism the listener enables (its sasl.enabled.mechanisms)"
	case AuthSASLRequired:
		return "authenticate with the mechanism the listener enables, or connect to a listener without SASL"
	case AuthCredentials:
		return "check where the client reads its credentials from"
	case AuthTLSUntrusted:
		return "check the CA the client trusts and the server name it verifies"
	case AuthTLSRefused:
		return "check the client certificate: the broker must trust the CA that signed it"
	case AuthTLSNotSpoken:
		return "connect to the brokers' TLS listener, or do not use TLS"
	case AuthTLSRequired:
		return "enable TLS, or connect to a plaintext listener"
	}
	return "check the connection's TLS and SASL settings"
}

// detail is what the broker or the TLS layer said, without streamd's own wrapping.
func detail(err error) string {
	var be *brokerError
	if errors.As(err, &be) {
		err = be.err
	}
	if err == nil {
		return "no detail"
	}
	return err.Error()
}

// authState is what the runtime knows of its connection's security.
type authState struct {
	watch *authWatch
	// mechanism is the SASL mechanism of the client options, "" without SASL. Known once
	// prepareTopics made its client.
	mechanism string
	// sessions is the streak of sessions that ended with an AuthError (restartable).
	sessions authStreak
}

func newAuthState() authState {
	return authState{watch: &authWatch{pending: map[int32]int16{}, cancels: map[int]func(){}}}
}

// learn reads the mechanism and TLS out of a client's options.
func (a *authState) learn(cl *kgo.Client) {
	if ms, ok := cl.OptValue(kgo.SASL).([]sasl.Mechanism); ok && len(ms) > 0 {
		a.mechanism = ms[0].Name()
	}
	tc, _ := cl.OptValue(kgo.DialTLSConfig).(*tls.Config)
	a.watch.mu.Lock()
	a.watch.withSASL, a.watch.withTLS = a.mechanism != "", tc != nil
	a.watch.mu.Unlock()
}

// authError returns err as an *AuthError when it is a refusal of the connection's security, else
// nil. An error that says only that a request timed out or its connection closed is a refusal
// when the latest connection attempt was refused (authWatch): franz-go retries a refused
// connection inside a request, and what the request returns is then its deadline.
func (r *Runtime) authError(err error) *AuthError {
	if err == nil {
		return nil
	}
	var ae *AuthError
	if errors.As(err, &ae) {
		return ae
	}
	w := r.auth.watch
	w.mu.Lock()
	f, ok := classifyAuth(err, 0, w.withSASL, w.withTLS)
	if !ok && w.refusal != nil && unspecific(err) && time.Since(w.refusal.at) < authStreakGap {
		f, ok = w.refusal.failure, true
		if closedConn(err) {
			err = w.refusal.err
		} else {
			err = fmt.Errorf("%w (then: %v)", w.refusal.err, err)
		}
	}
	w.mu.Unlock()
	if !ok {
		return nil
	}
	advice := DefaultAuthAdvice(f)
	if r.cfg.AuthAdvice != nil {
		if a := r.cfg.AuthAdvice(f); a != "" {
			advice = a
		}
	}
	return &AuthError{Failure: f, Mechanism: r.auth.mechanism, Advice: advice, Err: err}
}

// unspecific reports whether err says only that a request did not get through.
func unspecific(err error) bool {
	return closedConn(err) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, kgo.ErrRecordTimeout) || errors.Is(err, kgo.ErrRecordRetries)
}

// classifyAuth tells which refusal err is, if any. saslCut is the SASL request (17 handshake, 36
// authenticate) in answer to which the broker closed the connection, 0 if it did not.
func classifyAuth(err error, saslCut int16, withSASL, withTLS bool) (AuthFailure, bool) {
	var (
		unknownCA   x509.UnknownAuthorityError
		badHost     x509.HostnameError
		badCert     x509.CertificateInvalidError
		verifyErr   *tls.CertificateVerificationError
		notTLS      tls.RecordHeaderError
		firstReadEO *kgo.ErrFirstReadEOF
	)
	switch {
	case errors.Is(err, ErrCredentials):
		return AuthCredentials, true
	case errors.Is(err, kerr.SaslAuthenticationFailed):
		return AuthSASLRefused, true
	case errors.Is(err, kerr.UnsupportedSaslMechanism):
		return AuthSASLMechanism, true
	case errors.Is(err, kerr.IllegalSaslState):
		return AuthSASLNotEnabled, true
	case errors.As(err, &unknownCA), errors.As(err, &badHost), errors.As(err, &badCert), errors.As(err, &verifyErr):
		return AuthTLSUntrusted, true
	case errors.As(err, &notTLS):
		return AuthTLSNotSpoken, true
	case strings.Contains(err.Error(), "remote error: tls: "):
		return AuthTLSRefused, true
	case errors.As(err, &firstReadEO):
		// franz-go's guess of the cause is only in the message.
		msg := firstReadEO.Error()
		switch {
		case strings.Contains(msg, "TLS missing"):
			return AuthTLSRequired, true
		case strings.Contains(msg, "SASL missing"):
			return AuthSASLRequired, true
		case withTLS: // closed during the TLS handshake
			return AuthTLSNotSpoken, true
		}
	case withSASL && closedConn(err):
		switch saslCut {
		case 36:
			return AuthSASLRefused, true
		case 17:
			return AuthSASLNotEnabled, true
		}
	}
	return 0, false
}

// closedConn reports whether err is the peer closing the connection.
func closedConn(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// authWatch is a franz-go hook that remembers whether the latest connection attempt was refused
// on security grounds, and how. It sees what a request's error may hide: franz-go retries a refused
// connection within the request, which returns its deadline in the end; and a broker that closes
// the connection in answer to a SASL request (the handshake: the listener does not speak SASL; the
// authentication: it refused the credentials) shows up as a bare EOF, which an outage gives too.
type authWatch struct {
	mu                sync.Mutex
	withSASL, withTLS bool
	// pending is, per broker, the SASL request whose answer could not be read on the connection
	// being opened; OnBrokerConnect settles it.
	pending map[int32]int16
	// refusal is the latest connection attempt's refusal, nil when it succeeded or failed
	// otherwise.
	refusal *refusal
	// cancels are called at each refusal (cancelOnRefusal).
	cancels map[int]func()
	next    int
}

type refusal struct {
	failure AuthFailure
	err     error
	at      time.Time
}

var (
	_ kgo.HookBrokerE2E     = (*authWatch)(nil)
	_ kgo.HookBrokerConnect = (*authWatch)(nil)
)

func (w *authWatch) OnBrokerE2E(meta kgo.BrokerMetadata, key int16, e2e kgo.BrokerE2E) {
	if (key != 17 && key != 36) || e2e.Err() == nil || !closedConn(e2e.Err()) {
		return
	}
	w.mu.Lock()
	w.pending[meta.NodeID] = key
	w.mu.Unlock()
}

func (w *authWatch) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	cut := w.pending[meta.NodeID]
	delete(w.pending, meta.NodeID)
	w.refusal = nil
	if err == nil {
		return
	}
	f, ok := classifyAuth(err, cut, w.withSASL, w.withTLS)
	if !ok {
		return
	}
	if closedConn(err) && cut != 0 {
		step := map[int16]string{17: "handshake", 36: "authentication"}[cut]
		err = fmt.Errorf("the broker closed the connection in answer to the SASL %s: %w", step, err)
	}
	w.refusal = &refusal{failure: f, err: err, at: time.Now()}
	for _, cancel := range w.cancels {
		cancel()
	}
}

// cancelOnRefusal calls cancel at the next refusal, until the returned stop is called: a request
// that franz-go would retry over refused connections until its deadline ends at once instead.
func (w *authWatch) cancelOnRefusal(cancel func()) (stop func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	id := w.next
	w.next++
	w.cancels[id] = cancel
	return func() {
		w.mu.Lock()
		delete(w.cancels, id)
		w.mu.Unlock()
	}
}

// authStreak counts consecutive tries that ended in an AuthError. A failure long after the
// previous one (the retry timeout plus authStreakGap) starts a new streak: the connection worked in
// between.
type authStreak struct {
	first, last time.Time
	tries       int
}

const (
	// minAuthTries is the fewest tries before an AuthError is returned, however long each took.
	minAuthTries = 3
	// authStreakGap is longer than the longest backoff between two tries (Run's is 10 s) plus the
	// time a try takes.
	authStreakGap = time.Minute
)

// fail records a failure at now and reports whether to give up: the streak has had minAuthTries
// tries over at least timeout. It also returns how much longer it will try.
func (s *authStreak) fail(now time.Time, timeout time.Duration) (giveUp bool, left time.Duration) {
	if s.tries == 0 || now.Sub(s.last) > timeout+authStreakGap {
		*s = authStreak{first: now}
	}
	s.tries++
	s.last = now
	left = max(timeout-now.Sub(s.first), 0)
	return s.tries >= minAuthTries && left == 0, left
}

// reset ends the streak: the last try failed otherwise, or worked.
func (s *authStreak) reset() { *s = authStreak{} }
