package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/streamd/streamd/test/kafkatest"
)

// The secured connections, end to end: streamd run against brokers that require TLS, mutual TLS,
// SASL PLAIN, SCRAM and OAUTHBEARER, configured the way an operator does (secrets in files and
// variables), and the start-up failure of a wrong credential: bounded, in words, with no secret in
// the output.

const (
	kafkaPassword = "k4fka-Pa55word" // never in streamd's output
	wrongPassword = "wr0ng-Pa55word"
)

// secureConfig is writeConfig's pipeline over brokers, with the kafka lines extra, logging at
// debug (so that the check for secrets in the output reads everything streamd can say).
func secureConfig(t *testing.T, brokers []string, app, src, clean, dlq, extra string) string {
	t.Helper()
	path := writeConfig(t, &kafkatest.Broker{Addrs: brokers}, app, src, clean, dlq)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(data), "  shutdown_timeout: 10s\n", "  shutdown_timeout: 10s\n  auth_retry_timeout: 2s\n"+extra, 1)
	cfg = strings.Replace(cfg, "  level: info\n", "  level: debug\n", 1)
	if cfg == string(data) {
		t.Fatal("writeConfig changed; update secureConfig")
	}
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// yq quotes a path for the YAML config: a test's temporary directory has its name in it.
func yq(path string) string { return strconv.Quote(path) }

func writeSecret(t *testing.T, name, value string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// noSecretIn fails the test if the log holds any of the secrets.
func noSecretIn(t *testing.T, logPath string, secrets ...string) {
	t.Helper()
	data, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets {
		if strings.Contains(string(data), s) {
			t.Errorf("streamd's output shows the secret %q", s)
		}
	}
}

func showLogOnFailure(t *testing.T, logPath string) {
	t.Cleanup(func() {
		if t.Failed() {
			data, _ := os.ReadFile(logPath)
			if len(data) > 20000 {
				data = data[len(data)-20000:]
			}
			t.Logf("streamd log (tail):\n%s", data)
		}
	})
}

// runSecurePipeline produces input to a new topic of b, runs streamd over brokers with the kafka
// lines extra until it has processed all of it, stops it, and checks every input exactly once in
// the outputs and no secret in streamd's output.
func runSecurePipeline(t *testing.T, b *kafkatest.Broker, brokers []string, extra string, env []string, secrets ...string) {
	t.Helper()
	src := b.Topic(t, "tx", 2)
	clean, dlq, app := kafkatest.Name(t, "clean"), kafkatest.Name(t, "dlq"), kafkatest.Name(t, "app")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := produceInput(ctx, t, b.Client(t), src, 300, 0, 0.1, 7); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(t.TempDir(), "streamd.log")
	showLogOnFailure(t, logPath)
	proc := start(t, logPath, env, streamdBin, "run", "-config", secureConfig(t, brokers, app, src, clean, dlq, extra))
	b.WaitCaughtUp(t, app, src, time.Minute, proc.exited)
	proc.stop(t)
	if rep := verify(b.ReadCommitted(t, src, 30*time.Second), b.ReadCommitted(t, clean, 30*time.Second), b.ReadCommitted(t, dlq, 30*time.Second)); !rep.ok() || rep.inputs != 300 {
		t.Fatalf("not exactly once: %s", rep)
	}
	noSecretIn(t, logPath, secrets...)
}

// startFails runs streamd over brokers with the kafka lines extra, where it must not start: it
// must exit non-zero within a bounded time (auth_retry_timeout is 2s; a minute is the bound that
// says it does not retry for ever), with each of want in its output and none of the secrets.
func startFails(t *testing.T, b *kafkatest.Broker, brokers []string, extra string, want []string, secrets ...string) {
	t.Helper()
	src := b.Topic(t, "tx", 1)
	logPath := filepath.Join(t.TempDir(), "streamd.log")
	showLogOnFailure(t, logPath)
	proc := start(t, logPath, nil, streamdBin, "run", "-config", secureConfig(t, brokers, kafkatest.Name(t, "app"), src, kafkatest.Name(t, "clean"), kafkatest.Name(t, "dlq"), extra))
	select {
	case err := <-proc.done:
		proc.done <- err
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Fatalf("streamd exited with %v, want exit status 1", err)
		}
	case <-time.After(time.Minute):
		proc.kill(t)
		t.Fatal("streamd still running a minute after it was given credentials the brokers refuse")
	}
	data, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range want {
		if !strings.Contains(string(data), w) {
			t.Errorf("streamd's output does not say %q", w)
		}
	}
	noSecretIn(t, logPath, secrets...)
}

// TestSecuredConnectionsOnKfake runs the pipeline over kfake brokers that require TLS, mutual TLS,
// SASL PLAIN and SCRAM, and fails its start on a wrong password.
func TestSecuredConnectionsOnKfake(t *testing.T) {
	pki := kafkatest.NewPKI(t)
	pwFile := writeSecret(t, "password", kafkaPassword)
	scram256 := kgo.SASL(scram.Auth{User: "streamd", Pass: kafkaPassword}.AsSha256Mechanism())
	scram512 := kgo.SASL(scram.Auth{User: "streamd", Pass: kafkaPassword}.AsSha512Mechanism())
	tlsFiles := fmt.Sprintf("  tls: {ca_file: %s}\n", yq(pki.CAFile))
	mtlsFiles := fmt.Sprintf("  tls: {ca_file: %s, cert_file: %s, key_file: %s}\n", yq(pki.CAFile), yq(pki.CertFile), yq(pki.KeyFile))
	for _, tc := range []struct {
		name    string
		cluster []kfake.Opt
		admin   []kgo.Opt
		kafka   string
		env     []string
	}{
		{name: "SASL PLAIN with the password in a variable",
			cluster: []kfake.Opt{kfake.EnableSASL(), kfake.Superuser("PLAIN", "streamd", kafkaPassword)},
			admin:   []kgo.Opt{kgo.SASL(plain.Auth{User: "streamd", Pass: kafkaPassword}.AsMechanism())},
			kafka:   "  sasl: {mechanism: PLAIN, username: streamd, password_env: STREAMD_TEST_KAFKA_PASSWORD}\n",
			env:     []string{"STREAMD_TEST_KAFKA_PASSWORD=" + kafkaPassword}},
		{name: "SCRAM-SHA-256 with the password in a file",
			cluster: []kfake.Opt{kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "streamd", kafkaPassword)},
			admin:   []kgo.Opt{scram256},
			kafka:   "  sasl: {mechanism: SCRAM-SHA-256, username: streamd, password_file: " + yq(pwFile) + "}\n"},
		{name: "SCRAM-SHA-512 with the password in a file",
			cluster: []kfake.Opt{kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "streamd", kafkaPassword)},
			admin:   []kgo.Opt{scram512},
			kafka:   "  sasl: {mechanism: SCRAM-SHA-512, username: streamd, password_file: " + yq(pwFile) + "}\n"},
		{name: "TLS",
			cluster: []kfake.Opt{kfake.TLS(pki.ServerTLS(false))},
			admin:   []kgo.Opt{kgo.DialTLSConfig(pki.ClientTLS(t, false))},
			kafka:   tlsFiles},
		{name: "mutual TLS with SCRAM-SHA-512",
			cluster: []kfake.Opt{kfake.TLS(pki.ServerTLS(true)), kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "streamd", kafkaPassword)},
			admin:   []kgo.Opt{kgo.DialTLSConfig(pki.ClientTLS(t, true)), scram512},
			kafka:   mtlsFiles + "  sasl: {mechanism: SCRAM-SHA-512, username: streamd, password_file: " + yq(pwFile) + "}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := kafkatest.StartFake(t, tc.admin, tc.cluster...)
			runSecurePipeline(t, b, b.Addrs, tc.kafka, tc.env, kafkaPassword)
		})
	}

	t.Run("wrong password fails the start", func(t *testing.T) {
		b := kafkatest.StartFake(t, []kgo.Opt{scram512}, kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "streamd", kafkaPassword))
		wrongFile := writeSecret(t, "wrong", wrongPassword)
		startFails(t, b, b.Addrs, "  sasl: {mechanism: SCRAM-SHA-512, username: streamd, password_file: "+yq(wrongFile)+"}\n",
			[]string{"SASL authentication with mechanism SCRAM-SHA-512 failed: the broker refused the credentials",
				`check kafka.sasl.username (\"streamd\") and the password in kafka.sasl.password_file (file ` + wrongFile + ")"},
			kafkaPassword, wrongPassword)
	})
	t.Run("mutual TLS without a client certificate fails the start", func(t *testing.T) {
		b := kafkatest.StartFake(t, []kgo.Opt{kgo.DialTLSConfig(pki.ClientTLS(t, true))}, kfake.TLS(pki.ServerTLS(true)))
		startFails(t, b, b.Addrs, tlsFiles, []string{"TLS handshake failed: the broker refused it", "set kafka.tls.cert_file and kafka.tls.key_file"})
	})
}

// tokenEndpoint is an OAuth 2 token endpoint for tests: for the client streamd with the secret, it
// mints unsecured JWTs (the tokens Kafka's unsecured validator accepts) for the scope asked.
func tokenEndpoint(t *testing.T, secret string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, got, ok := r.BasicAuth()
		if r.Method != http.MethodPost || r.ParseForm() != nil || r.PostForm.Get("grant_type") != "client_credentials" {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":"invalid_request"}`)
			return
		}
		if !ok || id != "streamd" || got != secret {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"invalid_client"}`)
			return
		}
		now := time.Now()
		tok := kafkatest.UnsecuredJWT(map[string]any{"sub": id, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "scope": r.PostForm.Get("scope")})
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 3600})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestSecuredConnectionsOnKafka runs the pipeline over a real broker's SASL_PLAINTEXT listener with
// OAUTHBEARER (Kafka's unsecured JWS validator, which requires the scope streamd.kafka), the token
// from a file and from a client-credentials endpoint, and checks the start-up failures that only
// a real broker answers as it does: a wrong SCRAM password (SASL_AUTHENTICATION_FAILED), a token
// without the scope, SASL to the plaintext listener (ILLEGAL_SASL_STATE), TLS to it (the broker
// closes the connection).
func TestSecuredConnectionsOnKafka(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker of its own")
	}
	kafkatest.Start(t).RequireReal(t, "starts a broker of its own with a SASL listener, from the Apache Kafka jars")
	saslPort := freePort(t)
	b := startOwnBroker(t, fmt.Sprintf("KAFKA_SASL_PORT=%d", saslPort), "KAFKA_SASL_PASSWORD="+kafkaPassword, "KAFKA_OAUTHBEARER_SCOPE=streamd.kafka")
	saslAddr := []string{fmt.Sprintf("127.0.0.1:%d", saslPort)}
	const clientSecret = "cl1ent-S3cret"
	now := time.Now()
	token := kafkatest.UnsecuredJWT(map[string]any{"sub": "streamd", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "scope": "streamd.kafka"})
	tokenFile := writeSecret(t, "token", token)

	t.Run("OAUTHBEARER with the token in a file", func(t *testing.T) {
		runSecurePipeline(t, b.Broker, saslAddr, "  sasl: {mechanism: OAUTHBEARER, oauthbearer: {token_file: "+yq(tokenFile)+"}}\n", nil, token)
	})
	t.Run("OAUTHBEARER with the token from a client-credentials endpoint", func(t *testing.T) {
		srv := tokenEndpoint(t, clientSecret)
		runSecurePipeline(t, b.Broker, saslAddr, fmt.Sprintf("  sasl: {mechanism: OAUTHBEARER, oauthbearer: {token_url: %s/token, client_id: streamd, client_secret_file: %s, scope: streamd.kafka}}\n",
			srv.URL, yq(writeSecret(t, "client-secret", clientSecret))), nil, clientSecret)
	})
	t.Run("SCRAM-SHA-512", func(t *testing.T) {
		runSecurePipeline(t, b.Broker, saslAddr, "  sasl: {mechanism: SCRAM-SHA-512, username: streamd, password_env: STREAMD_TEST_KAFKA_PASSWORD}\n",
			[]string{"STREAMD_TEST_KAFKA_PASSWORD=" + kafkaPassword}, kafkaPassword)
	})
	t.Run("wrong password fails the start", func(t *testing.T) {
		wrongFile := writeSecret(t, "wrong", wrongPassword)
		startFails(t, b.Broker, saslAddr, "  sasl: {mechanism: SCRAM-SHA-512, username: streamd, password_file: "+yq(wrongFile)+"}\n",
			[]string{"SASL authentication with mechanism SCRAM-SHA-512 failed: the broker refused the credentials", "kafka.sasl.password_file",
				"invalid credentials"}, wrongPassword, kafkaPassword)
	})
	t.Run("token without the scope fails the start", func(t *testing.T) {
		srv := tokenEndpoint(t, clientSecret)
		startFails(t, b.Broker, saslAddr, fmt.Sprintf("  sasl: {mechanism: OAUTHBEARER, oauthbearer: {token_url: %s/token, client_id: streamd, client_secret_file: %s, scope: other}}\n",
			srv.URL, yq(writeSecret(t, "client-secret", clientSecret))),
			[]string{"SASL authentication with mechanism OAUTHBEARER failed", "insufficient_scope", `(\"other\" asked)`}, clientSecret)
	})
	t.Run("SASL to the plaintext listener fails the start", func(t *testing.T) {
		startFails(t, b.Broker, b.Addrs, "  sasl: {mechanism: SCRAM-SHA-512, username: streamd, password_file: "+yq(writeSecret(t, "pw", kafkaPassword))+"}\n",
			[]string{"the broker's listener does not speak SASL", "remove kafka.sasl"}, kafkaPassword)
	})
	t.Run("TLS to the plaintext listener fails the start", func(t *testing.T) {
		startFails(t, b.Broker, b.Addrs, "  tls: {}\n", []string{"the broker's listener does not speak TLS", "remove kafka.tls"})
	})
}
