package stream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestClassifyAuth: the shapes of a refusal that tests against a broker cannot all produce (kfake
// hangs where a real broker closes; a TLS record from a plaintext peer) are each recognized, and
// errors of an outage are not.
func TestClassifyAuth(t *testing.T) {
	for _, tc := range []struct {
		name              string
		err               error
		cut               int16
		withSASL, withTLS bool
		want              AuthFailure // 0: not a refusal
	}{
		{name: "broker refused the credentials", err: fmt.Errorf("%w: Authentication failed", kerr.SaslAuthenticationFailed), withSASL: true, want: AuthSASLRefused},
		{name: "plaintext listener", err: kerr.IllegalSaslState, withSASL: true, want: AuthSASLNotEnabled},
		{name: "mechanism not enabled", err: kerr.UnsupportedSaslMechanism, withSASL: true, want: AuthSASLMechanism},
		{name: "credentials unavailable", err: fmt.Errorf("%w: file gone", ErrCredentials), withSASL: true, want: AuthCredentials},
		{name: "not a TLS peer", err: fmt.Errorf("unable to dial: %w", tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}), withTLS: true, want: AuthTLSNotSpoken},
		{name: "TLS to a closing plaintext listener", err: &kgo.ErrFirstReadEOF{}, withTLS: true, want: AuthTLSNotSpoken},
		{name: "alert", err: errors.New("remote error: tls: bad certificate"), withTLS: true, want: AuthTLSRefused},
		{name: "closed at the SASL authentication", err: io.EOF, cut: 36, withSASL: true, want: AuthSASLRefused},
		{name: "closed at the SASL handshake", err: io.ErrUnexpectedEOF, cut: 17, withSASL: true, want: AuthSASLNotEnabled},
		{name: "closed without SASL", err: io.EOF, cut: 36},
		{name: "closed elsewhere", err: io.EOF, withSASL: true},
		{name: "timeout", err: context.DeadlineExceeded, withSASL: true, withTLS: true},
		{name: "unreachable", err: errors.New("unable to dial: dial tcp 127.0.0.1:1: connect: connection refused"), withSASL: true, withTLS: true},
		{name: "authorization", err: kerr.TopicAuthorizationFailed, withSASL: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := classifyAuth(tc.err, tc.cut, tc.withSASL, tc.withTLS)
			if ok != (tc.want != 0) || got != tc.want {
				t.Fatalf("classifyAuth(%v) = %s, %v; want %s", tc.err, got, ok, tc.want)
			}
		})
	}
}

// TestAuthErrorFromTheLatestConnection: a request's timeout or closed connection counts as a
// refusal only while the latest connection attempt was refused, and the error then says how.
func TestAuthErrorFromTheLatestConnection(t *testing.T) {
	r := &Runtime{auth: newAuthState()}
	r.auth.mechanism = "SCRAM-SHA-512"
	w := r.auth.watch
	w.withSASL = true
	if ae := r.authError(context.DeadlineExceeded); ae != nil {
		t.Fatalf("a timeout with no refusal seen = %v; want no AuthError", ae)
	}
	canceled := false
	stop := w.cancelOnRefusal(func() { canceled = true })
	w.OnBrokerE2E(kgo.BrokerMetadata{NodeID: 1}, 36, kgo.BrokerE2E{ReadErr: io.EOF})
	w.OnBrokerConnect(kgo.BrokerMetadata{NodeID: 1}, 0, nil, io.EOF)
	stop()
	if !canceled {
		t.Error("the refusal did not cancel the waiting request")
	}
	ae := r.authError(fmt.Errorf("stream: initialize the transactional producer: %w", context.DeadlineExceeded))
	if ae == nil || ae.Failure != AuthSASLRefused {
		t.Fatalf("a timeout after a refused connection = %v; want an AuthError of kind %s", ae, AuthSASLRefused)
	}
	if want := "the broker closed the connection in answer to the SASL authentication"; !strings.Contains(ae.Error(), want) || !strings.Contains(ae.Error(), "SCRAM-SHA-512") {
		t.Errorf("AuthError = %q; want it to say %q", ae.Error(), want)
	}
	if ae := r.authError(kerr.TopicAuthorizationFailed); ae != nil {
		t.Errorf("a specific error after a refusal = %v; want no AuthError", ae)
	}
	w.OnBrokerConnect(kgo.BrokerMetadata{NodeID: 1}, 0, nil, nil)
	if ae := r.authError(io.EOF); ae != nil {
		t.Errorf("an EOF after a successful connection = %v; want no AuthError", ae)
	}
}

// TestAuthStreak: a refusal gives up after at least three tries over the retry timeout, and a
// refusal long after the previous one starts again.
func TestAuthStreak(t *testing.T) {
	var s authStreak
	t0 := time.Unix(1000, 0)
	timeout := 10 * time.Second
	steps := []struct {
		at     time.Duration
		giveUp bool
	}{
		{0, false},
		{11 * time.Second, false}, // past the timeout, but only the second try
		{12 * time.Second, true},
		{5 * time.Minute, false}, // long after: a new streak
		{5*time.Minute + time.Second, false},
		{5*time.Minute + 2*time.Second, false}, // three tries, but not yet the timeout
		{5*time.Minute + 10*time.Second, true},
	}
	for i, st := range steps {
		if got, _ := s.fail(t0.Add(st.at), timeout); got != st.giveUp {
			t.Fatalf("try %d at %s: giveUp = %v, want %v", i, st.at, got, st.giveUp)
		}
	}
	s.reset()
	if got, left := s.fail(t0.Add(time.Hour), timeout); got || left != timeout {
		t.Fatalf("after reset: giveUp %v, left %s; want false, %s", got, left, timeout)
	}
}
