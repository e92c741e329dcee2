package stream_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/streamd/streamd/stream"
	"github.com/streamd/streamd/test/kafkatest"
)

// authRuntime is a pass-through pipeline over b with the client options opts, retrying refused
// authentication for a second only.
func authRuntime(t *testing.T, b *kafkatest.Broker, src string, opts ...kgo.Opt) (*stream.Runtime, string, string) {
	t.Helper()
	clean, dlq, app := kafkatest.Name(t, "clean"), kafkatest.Name(t, "dlq"), kafkatest.Name(t, "app")
	rt, err := stream.NewRuntime(&stream.Pipeline{
		Name:            app,
		Source:          stream.Source{Topic: src, Format: cardFormat()},
		Operators:       []stream.Operator{&stream.Forward{Topic: clean}},
		DeadLetterTopic: dlq,
	}, stream.Config{
		Brokers:          b.Addrs,
		InstanceID:       "i1",
		CommitInterval:   50 * time.Millisecond,
		SessionTimeout:   6 * time.Second,
		CreateTopics:     true,
		AuthRetryTimeout: time.Second,
		ClientOpts:       opts,
		Logger:           testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	return rt, app, clean
}

// runUntilError runs rt and returns what Run returns, failing the test if it runs for more than
// limit: a refused authentication must end Run, not be retried for ever.
func runUntilError(t *testing.T, rt *stream.Runtime, limit time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		cancel()
		<-done
		t.Fatalf("Run still retrying after %s", limit)
		return nil
	}
}

// TestAuthFailuresEndRunInWords: each way a broker refuses the connection's TLS or SASL ends Run,
// after a bounded retry, with an *AuthError that says what was refused.
func TestAuthFailuresEndRunInWords(t *testing.T) {
	pki, otherPKI := kafkatest.NewPKI(t), kafkatest.NewPKI(t)
	scramUser := kfake.Superuser("SCRAM-SHA-512", "streamd", "right-password")
	right := scram.Auth{User: "streamd", Pass: "right-password"}.AsSha512Mechanism()
	wrongTLSName := pki.ClientTLS(t, false)
	wrongTLSName.ServerName = "kafka.example.com"
	for _, tc := range []struct {
		name    string
		cluster []kfake.Opt
		admin   []kgo.Opt // the test's own client
		client  []kgo.Opt // the runtime's
		want    stream.AuthFailure
		says    string
	}{
		{name: "wrong password", cluster: []kfake.Opt{kfake.EnableSASL(), scramUser}, admin: []kgo.Opt{kgo.SASL(right)},
			client: []kgo.Opt{kgo.SASL(scram.Auth{User: "streamd", Pass: "wrong-password"}.AsSha512Mechanism())},
			want:   stream.AuthSASLRefused, says: "SASL authentication with mechanism SCRAM-SHA-512 failed: the broker refused the credentials"},
		{name: "unknown mechanism for the user", cluster: []kfake.Opt{kfake.EnableSASL(), scramUser}, admin: []kgo.Opt{kgo.SASL(right)},
			client: []kgo.Opt{kgo.SASL(scram.Auth{User: "streamd", Pass: "right-password"}.AsSha256Mechanism())},
			want:   stream.AuthSASLRefused, says: "SCRAM-SHA-256"},
		{name: "credentials unavailable", cluster: []kfake.Opt{kfake.EnableSASL(), scramUser}, admin: []kgo.Opt{kgo.SASL(right)},
			client: []kgo.Opt{kgo.SASL(scram.Sha512(func(context.Context) (scram.Auth, error) {
				return scram.Auth{}, fmt.Errorf("%w: the password file is gone", stream.ErrCredentials)
			}))},
			want: stream.AuthCredentials, says: "the password file is gone"},
		{name: "no SASL to a SASL listener", cluster: []kfake.Opt{kfake.EnableSASL(), scramUser}, admin: []kgo.Opt{kgo.SASL(right)},
			want: stream.AuthSASLRequired, says: "requires SASL"},
		{name: "plaintext to a TLS listener", cluster: []kfake.Opt{kfake.TLS(pki.ServerTLS(false))}, admin: []kgo.Opt{kgo.DialTLSConfig(pki.ClientTLS(t, false))},
			want: stream.AuthTLSRequired, says: "requires TLS"},
		{name: "untrusted CA", cluster: []kfake.Opt{kfake.TLS(pki.ServerTLS(false))}, admin: []kgo.Opt{kgo.DialTLSConfig(pki.ClientTLS(t, false))},
			client: []kgo.Opt{kgo.DialTLSConfig(otherPKI.ClientTLS(t, false))},
			want:   stream.AuthTLSUntrusted, says: "certificate signed by unknown authority"},
		{name: "wrong server name", cluster: []kfake.Opt{kfake.TLS(pki.ServerTLS(false))}, admin: []kgo.Opt{kgo.DialTLSConfig(pki.ClientTLS(t, false))},
			client: []kgo.Opt{kgo.DialTLSConfig(wrongTLSName)},
			want:   stream.AuthTLSUntrusted, says: "not kafka.example.com"},
		{name: "no client certificate for mutual TLS", cluster: []kfake.Opt{kfake.TLS(pki.ServerTLS(true))}, admin: []kgo.Opt{kgo.DialTLSConfig(pki.ClientTLS(t, true))},
			client: []kgo.Opt{kgo.DialTLSConfig(pki.ClientTLS(t, false))},
			want:   stream.AuthTLSRefused, says: "certificate required"},
		{name: "client certificate of another CA", cluster: []kfake.Opt{kfake.TLS(pki.ServerTLS(true))}, admin: []kgo.Opt{kgo.DialTLSConfig(pki.ClientTLS(t, true))},
			client: []kgo.Opt{kgo.DialTLSConfig(func() *tls.Config {
				c := otherPKI.ClientTLS(t, true)
				c.RootCAs = pki.ClientTLS(t, false).RootCAs
				return c
			}())},
			want: stream.AuthTLSRefused, says: "TLS handshake failed: the broker refused it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := kafkatest.StartFake(t, tc.admin, tc.cluster...)
			src := b.Topic(t, "src", 2)
			rt, _, _ := authRuntime(t, b, src, tc.client...)
			err := runUntilError(t, rt, time.Minute)
			var ae *stream.AuthError
			if !errors.As(err, &ae) {
				t.Fatalf("Run = %v; want an *AuthError", err)
			}
			if ae.Failure != tc.want {
				t.Errorf("Failure = %s, want %s (%v)", ae.Failure, tc.want, err)
			}
			if !strings.Contains(err.Error(), tc.says) || !strings.HasPrefix(err.Error(), "stream: kafka: ") {
				t.Errorf("Run = %v; want it to say %q", err, tc.says)
			}
			if strings.Contains(err.Error(), "password\x00") || strings.Contains(err.Error(), "right-password") || strings.Contains(err.Error(), "wrong-password") {
				t.Errorf("the error shows a password: %v", err)
			}
		})
	}
}

// TestAuthFailureWhileRunning: credentials that stop working while the pipeline runs (a password
// changed on the brokers, the connections re-authenticating) end Run with an *AuthError after a
// bounded retry, rather than restarting sessions for ever.
func TestAuthFailureWhileRunning(t *testing.T) {
	admin := kgo.SASL(scram.Auth{User: "admin", Pass: "admin-password"}.AsSha512Mechanism())
	b := kafkatest.StartFake(t, []kgo.Opt{admin}, kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-512", "admin", "admin-password"),
		kfake.Superuser("SCRAM-SHA-512", "streamd", "first-password"),
		// Connections re-authenticate every second (KIP-368), so a changed password is seen soon.
		kfake.BrokerConfigs(map[string]string{"connections.max.reauth.ms": "1000"}))
	src := b.Topic(t, "src", 2)
	now := time.Now()
	in := makeInputs(200, now)
	produce(t, b.Client(t), src, in, now)
	rt, app, _ := authRuntime(t, b, src, kgo.SASL(scram.Auth{User: "streamd", Pass: "first-password"}.AsSha512Mechanism()))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	stopped := func() error {
		select {
		case err := <-done:
			done <- err
			return fmt.Errorf("runtime returned early: %v", err)
		default:
			return nil
		}
	}
	b.WaitCaughtUp(t, app, src, time.Minute, stopped)

	altered, err := kadm.NewClient(b.Client(t)).AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{
		User: "streamd", Mechanism: kadm.ScramSha512, Iterations: 4096, Password: "second-password",
	}})
	if err == nil {
		err = altered.Error()
	}
	if err != nil {
		t.Fatalf("change the password: %v", err)
	}
	select {
	case err := <-done:
		var ae *stream.AuthError
		if !errors.As(err, &ae) || ae.Failure != stream.AuthSASLRefused {
			t.Fatalf("Run = %v; want an *AuthError of kind %s", err, stream.AuthSASLRefused)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("Run still running two minutes after its password was changed")
	}
}
