package config

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"

	"github.com/streamd/streamd/stream"
	"github.com/streamd/streamd/test/kafkatest"
)

// secretValue is the password, client secret and token in these tests: no message may show it.
const secretValue = "hunter2-s3cret"

func secretFiles(t *testing.T) (dir, pwFile, emptyFile string) {
	t.Helper()
	dir = t.TempDir()
	pwFile, emptyFile = filepath.Join(dir, "pw"), filepath.Join(dir, "empty")
	for path, content := range map[string]string{pwFile: secretValue + "\n", emptyFile: "\n", filepath.Join(dir, "token"): secretValue} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir, pwFile, emptyFile
}

// TestSecurityRejects: every mistake in kafka.sasl is refused naming its key, and no message shows
// a secret, not even one written where a variable name belongs.
func TestSecurityRejects(t *testing.T) {
	dir, pwFile, emptyFile := secretFiles(t)
	env := map[string]string{"PW": secretValue}
	for _, tc := range []struct {
		name, sasl, wantKey, wantMsg string
	}{
		{"no mechanism", `{username: u, password_env: PW}`, "kafka.sasl.mechanism", "required with SASL"},
		{"no password", `{mechanism: PLAIN, username: u}`, "kafka.sasl.password_env", "required"},
		{"two passwords", `{mechanism: PLAIN, username: u, password_env: PW, password_file: ` + pwFile + `}`, "kafka.sasl.password_env", "give one"},
		{"password in place of a variable name", `{mechanism: SCRAM-SHA-512, username: u, password_env: "` + secretValue + `"}`, "kafka.sasl.password_env", "not the name of an environment variable"},
		{"password file missing", `{mechanism: SCRAM-SHA-256, username: u, password_file: ` + dir + `/nope}`, "kafka.sasl.password_file", "no such file"},
		{"password file empty", `{mechanism: SCRAM-SHA-256, username: u, password_file: ` + emptyFile + `}`, "kafka.sasl.password_file", "is empty"},
		{"no username", `{mechanism: SCRAM-SHA-256, password_env: PW}`, "kafka.sasl.username", "required with SCRAM-SHA-256"},
		{"oauthbearer section with scram", `{mechanism: SCRAM-SHA-256, username: u, password_env: PW, oauthbearer: {token_file: ` + pwFile + `}}`, "kafka.sasl.oauthbearer", "applies to mechanism OAUTHBEARER"},
		{"oauthbearer without a source", `{mechanism: OAUTHBEARER}`, "kafka.sasl.oauthbearer", "required with OAUTHBEARER"},
		{"oauthbearer with a password", `{mechanism: OAUTHBEARER, password_env: PW, oauthbearer: {token_file: ` + pwFile + `}}`, "kafka.sasl.password_env", "OAUTHBEARER takes no password_env"},
		{"oauthbearer empty", `{mechanism: OAUTHBEARER, oauthbearer: {scope: x}}`, "kafka.sasl.oauthbearer", "give token_file"},
		{"token file and url", `{mechanism: OAUTHBEARER, oauthbearer: {token_file: ` + pwFile + `, token_url: "https://idp/token"}}`, "kafka.sasl.oauthbearer", "give one"},
		{"token file missing", `{mechanism: OAUTHBEARER, oauthbearer: {token_file: ` + dir + `/nope}}`, "kafka.sasl.oauthbearer.token_file", "cannot read"},
		{"client id with a token file", `{mechanism: OAUTHBEARER, oauthbearer: {token_file: ` + pwFile + `, client_id: c}}`, "kafka.sasl.oauthbearer.client_id", "applies to token_url"},
		{"token url not a url", `{mechanism: OAUTHBEARER, oauthbearer: {token_url: "idp/token", client_id: c, client_secret_env: PW}}`, "kafka.sasl.oauthbearer.token_url", "not an http(s) URL"},
		{"token url plain http", `{mechanism: OAUTHBEARER, oauthbearer: {token_url: "http://idp.example/token", client_id: c, client_secret_env: PW}}`, "kafka.sasl.oauthbearer.token_url", "use https"},
		{"token url with credentials", `{mechanism: OAUTHBEARER, oauthbearer: {token_url: "https://c:` + secretValue + `@idp/token", client_id: c, client_secret_env: PW}}`, "kafka.sasl.oauthbearer.token_url", "holds user information"},
		{"no client id", `{mechanism: OAUTHBEARER, oauthbearer: {token_url: "https://idp/token", client_secret_env: PW}}`, "kafka.sasl.oauthbearer.client_id", "required with token_url"},
		{"no client secret", `{mechanism: OAUTHBEARER, oauthbearer: {token_url: "https://idp/token", client_id: c}}`, "kafka.sasl.oauthbearer.client_secret_env", "required"},
		{"client secret unset", `{mechanism: OAUTHBEARER, oauthbearer: {token_url: "https://idp/token", client_id: c, client_secret_env: NOPE}}`, "kafka.sasl.oauthbearer.client_secret_env", "NOPE is not set"},
		{"bad extension name", `{mechanism: OAUTHBEARER, oauthbearer: {token_file: ` + pwFile + `, extensions: {auth: x}}}`, "kafka.sasl.oauthbearer.extensions.auth", "not \"auth\""},
		{"bad extension value", `{mechanism: OAUTHBEARER, oauthbearer: {token_file: ` + pwFile + `, extensions: {cluster: "a\u0001b"}}}`, "kafka.sasl.oauthbearer.extensions.cluster", "printable ASCII"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseWithEnv([]byte(add("  sasl: "+tc.sasl+"\n", "kafka:")(good)), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
			if err == nil {
				t.Fatal("accepted a bad config")
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.wantKey+":") && !strings.Contains(msg, tc.wantKey+" (line") {
				t.Errorf("error does not name %s:\n%s", tc.wantKey, msg)
			}
			if !strings.Contains(msg, tc.wantMsg) {
				t.Errorf("error does not say %q:\n%s", tc.wantMsg, msg)
			}
			if strings.Contains(msg, secretValue) {
				t.Errorf("error shows the secret:\n%s", msg)
			}
		})
	}
}

// TestSecurityCompiles: each valid kafka.sasl and kafka.tls compiles into franz-go options with the
// mechanism asked for, whose credentials come from where the config says, and neither the config
// nor the runtime config prints a secret.
func TestSecurityCompiles(t *testing.T) {
	dir, pwFile, _ := secretFiles(t)
	pki := kafkatest.NewPKI(t)
	tokenFile := filepath.Join(dir, "token")
	env := map[string]string{"PW": secretValue}
	for _, tc := range []struct {
		name, sasl, tls string
		mechanism       string
		firstMessage    string // what the mechanism sends first, with the secret
	}{
		{name: "plain from env", sasl: `{mechanism: PLAIN, username: u, password_env: PW}`, mechanism: "PLAIN", firstMessage: "\x00u\x00" + secretValue},
		{name: "plain from file", sasl: `{mechanism: PLAIN, username: u, password_file: ` + pwFile + `}`, mechanism: "PLAIN", firstMessage: "\x00u\x00" + secretValue},
		{name: "scram-sha-256", sasl: `{mechanism: SCRAM-SHA-256, username: u, password_file: ` + pwFile + `}`, mechanism: "SCRAM-SHA-256", firstMessage: "n,,n=u,r="},
		{name: "scram-sha-512", sasl: `{mechanism: SCRAM-SHA-512, username: u, password_env: PW}`, mechanism: "SCRAM-SHA-512", firstMessage: "n,,n=u,r="},
		{name: "oauthbearer token file", sasl: `{mechanism: OAUTHBEARER, oauthbearer: {token_file: ` + tokenFile + `, extensions: {logicalCluster: lkc-1}}}`,
			mechanism: "OAUTHBEARER", firstMessage: "n,,\x01auth=Bearer " + secretValue + "\x01logicalCluster=lkc-1\x01\x01"},
		{name: "oauthbearer token url", sasl: `{mechanism: OAUTHBEARER, oauthbearer: {token_url: "https://idp.example/token", client_id: c, client_secret_file: ` + pwFile + `, scope: kafka}}`,
			mechanism: "OAUTHBEARER"},
		{name: "tls", tls: `{ca_file: ` + pki.CAFile + `}`},
		{name: "mutual tls with scram", tls: `{ca_file: ` + pki.CAFile + `, cert_file: ` + pki.CertFile + `, key_file: ` + pki.KeyFile + `, server_name: localhost}`,
			sasl: `{mechanism: SCRAM-SHA-512, username: u, password_env: PW}`, mechanism: "SCRAM-SHA-512", firstMessage: "n,,n=u,r="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := good
			if tc.sasl != "" {
				text = add("  sasl: "+tc.sasl+"\n", "kafka:")(text)
			}
			if tc.tls != "" {
				text = add("  tls: "+tc.tls+"\n", "kafka:")(text)
			}
			c, err := parseWithEnv([]byte(text), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
			if err != nil {
				t.Fatal(err)
			}
			t.Setenv("PW", secretValue) // the mechanism reads the real environment
			rc, err := c.RuntimeConfig()
			if err != nil {
				t.Fatal(err)
			}
			if dump := fmt.Sprintf("%+v %+v %+v %+v", *c, c.Kafka.SASL, c.Kafka.SASL.oauth(), rc); strings.Contains(dump, secretValue) {
				t.Fatalf("the config's dump shows the secret: %s", dump)
			}
			cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers("127.0.0.1:1")}, rc.ClientOpts...)...)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			if tc.tls != "" {
				if cl.OptValue(kgo.DialTLSConfig) == nil {
					t.Error("no TLS config")
				}
			}
			ms, _ := cl.OptValue(kgo.SASL).([]sasl.Mechanism)
			if tc.mechanism == "" {
				if len(ms) != 0 {
					t.Errorf("SASL mechanisms %v, want none", ms)
				}
				return
			}
			if len(ms) != 1 || ms[0].Name() != tc.mechanism {
				t.Fatalf("SASL mechanisms %v, want %s", ms, tc.mechanism)
			}
			if tc.firstMessage == "" {
				return
			}
			_, first, err := ms[0].Authenticate(context.Background(), "127.0.0.1:1")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(first), tc.firstMessage) {
				t.Errorf("first SASL message %q, want it to begin with %q", first, tc.firstMessage)
			}
		})
	}
}

// oauth is the OAuthBearer section or an empty one, for dumps.
func (s *SASL) oauth() OAuthBearer {
	if s == nil || s.OAuthBearer == nil {
		return OAuthBearer{}
	}
	return *s.OAuthBearer
}

// TestCredentialsFailureIsAnAuthFailure: a mechanism that cannot read its secret fails with an
// error that wraps stream.ErrCredentials and names where the secret was looked for.
func TestCredentialsFailureIsAnAuthFailure(t *testing.T) {
	_, pwFile, _ := secretFiles(t)
	c, err := parseWithEnv([]byte(add("  sasl: {mechanism: SCRAM-SHA-512, username: u, password_file: "+pwFile+"}\n", "kafka:")(good)), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Kafka.SASL.mechanism()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(pwFile); err != nil {
		t.Fatal(err)
	}
	_, _, err = m.Authenticate(context.Background(), "127.0.0.1:1")
	if !errors.Is(err, stream.ErrCredentials) || !strings.Contains(err.Error(), pwFile) {
		t.Fatalf("Authenticate error = %v; want one wrapping stream.ErrCredentials that names %s", err, pwFile)
	}
}

// TestAuthAdvice: an authentication failure's advice names the keys to check, and the user, but
// never the secret.
func TestAuthAdvice(t *testing.T) {
	_, pwFile, _ := secretFiles(t)
	for _, tc := range []struct {
		name, kafka string
		failure     stream.AuthFailure
		want        []string
	}{
		{"wrong password", "  sasl: {mechanism: SCRAM-SHA-512, username: streamd, password_file: " + pwFile + "}\n", stream.AuthSASLRefused,
			[]string{`kafka.sasl.username ("streamd")`, "kafka.sasl.password_file (file " + pwFile + ")"}},
		{"wrong token", "  sasl: {mechanism: OAUTHBEARER, oauthbearer: {token_url: \"https://idp.example/token?k=v\", client_id: c, client_secret_file: " + pwFile + ", scope: kafka}}\n",
			stream.AuthSASLRefused, []string{"kafka.sasl.oauthbearer.token_url (https://idp.example/token)", `client_id "c"`, `"kafka" asked`}},
		{"sasl to a plaintext listener", "  sasl: {mechanism: PLAIN, username: u, password_file: " + pwFile + "}\n", stream.AuthSASLNotEnabled, []string{"listener without SASL", "remove kafka.sasl"}},
		{"unknown mechanism", "  sasl: {mechanism: PLAIN, username: u, password_file: " + pwFile + "}\n", stream.AuthSASLMechanism, []string{"kafka.sasl.mechanism PLAIN"}},
		{"no sasl", "", stream.AuthSASLRequired, []string{"set kafka.sasl"}},
		{"untrusted", "  tls: {}\n", stream.AuthTLSUntrusted, []string{"kafka.tls.ca_file", "kafka.tls.server_name"}},
		{"client certificate required", "  tls: {}\n", stream.AuthTLSRefused, []string{"kafka.tls.cert_file and kafka.tls.key_file"}},
		{"no tls", "", stream.AuthTLSRequired, []string{"set kafka.tls"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseWithEnv([]byte(add(tc.kafka, "kafka:")(good)), noEnv)
			if err != nil {
				t.Fatal(err)
			}
			advice := c.authAdvice(tc.failure)
			for _, w := range tc.want {
				if !strings.Contains(advice, w) {
					t.Errorf("advice %q does not say %q", advice, w)
				}
			}
			if strings.Contains(advice, secretValue) || strings.Contains(advice, "k=v") {
				t.Errorf("advice shows a secret: %q", advice)
			}
		})
	}
}
