package config

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/streamd/streamd/internal/kafkaauth"
	"github.com/streamd/streamd/stream"
)

// The kafka.tls and kafka.sasl sections: their rules, the franz-go options they compile into, and
// the advice an authentication failure gives in their keys' terms (stream.Config.AuthAdvice).

const (
	mechPlain       = "PLAIN"
	mechSCRAM256    = "SCRAM-SHA-256"
	mechSCRAM512    = "SCRAM-SHA-512"
	mechOAuthBearer = "OAUTHBEARER"
)

var (
	envNameRE      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	extensionKeyRE = regexp.MustCompile(`^[A-Za-z]{1,64}$`)
)

// validateSecurity checks kafka.tls and kafka.sasl.
func (c *Config) validateSecurity(v *validator, env func(string) (string, bool)) {
	if t := c.Kafka.TLS; t != nil {
		v.file("kafka.tls.ca_file", t.CAFile)
		v.file("kafka.tls.cert_file", t.CertFile)
		v.file("kafka.tls.key_file", t.KeyFile)
		if (t.CertFile == "") != (t.KeyFile == "") {
			v.bad("kafka.tls", "cert_file and key_file go together: give both or neither")
		}
	}
	s := c.Kafka.SASL
	if s == nil {
		return
	}
	switch s.Mechanism {
	case mechPlain, mechSCRAM256, mechSCRAM512:
		if s.Username == "" {
			v.bad("kafka.sasl.username", "required with %s", s.Mechanism)
		}
		v.secret("kafka.sasl.password", s.PasswordEnv, s.PasswordFile, "password", env)
		if s.OAuthBearer != nil {
			v.bad("kafka.sasl.oauthbearer", "applies to mechanism OAUTHBEARER, not %s", s.Mechanism)
		}
	case mechOAuthBearer:
		for key, set := range map[string]bool{"username": s.Username != "", "password_env": s.PasswordEnv != "", "password_file": s.PasswordFile != ""} {
			if set {
				v.bad("kafka.sasl."+key, "OAUTHBEARER takes no %s: the token names the principal (kafka.sasl.oauthbearer)", key)
			}
		}
		if s.OAuthBearer == nil {
			v.bad("kafka.sasl.oauthbearer", "required with OAUTHBEARER: a token_file, or a token_url with client_id and a client secret")
			return
		}
		c.validateOAuthBearer(v, s.OAuthBearer, env)
	case "":
		v.bad("kafka.sasl.mechanism", "required with SASL: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER")
	default:
		v.bad("kafka.sasl.mechanism", "%q: use PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER", s.Mechanism)
	}
}

func (c *Config) validateOAuthBearer(v *validator, o *OAuthBearer, env func(string) (string, bool)) {
	const p = "kafka.sasl.oauthbearer"
	switch {
	case o.TokenFile != "" && o.TokenURL != "":
		v.bad(p, "token_file and token_url are two ways to get the token: give one")
	case o.TokenFile != "":
		v.file(p+".token_file", o.TokenFile)
		for key, set := range map[string]bool{"client_id": o.ClientID != "", "client_secret_env": o.ClientSecretEnv != "",
			"client_secret_file": o.ClientSecretFile != "", "scope": o.Scope != ""} {
			if set {
				v.bad(p+"."+key, "applies to token_url, not token_file")
			}
		}
	case o.TokenURL != "":
		v.tokenURL(p+".token_url", o.TokenURL)
		if o.ClientID == "" {
			v.bad(p+".client_id", "required with token_url")
		}
		v.secret(p+".client_secret", o.ClientSecretEnv, o.ClientSecretFile, "client secret", env)
	default:
		v.bad(p, "give token_file (a file holding the token) or token_url (an OAuth token endpoint)")
	}
	for _, k := range sortedKeys(o.Extensions) {
		key := p + ".extensions." + k
		if !extensionKeyRE.MatchString(k) || k == "auth" {
			v.bad(key, "an extension's name is 1 to 64 letters, and not \"auth\" (RFC 7628)")
		}
		if strings.ContainsFunc(o.Extensions[k], func(r rune) bool { return r < 0x20 && r != '\t' || r > 0x7e }) {
			v.bad(key, "an extension's value is printable ASCII (RFC 7628)")
		}
	}
}

// secret checks a secret given as <key>_env or <key>_file: exactly one, and readable now. Its
// messages never show the secret; a value that is not a variable name is not shown either, since
// it may be the password written in the wrong place.
func (v *validator) secret(key, envName, file, what string, env func(string) (string, bool)) {
	switch {
	case envName != "" && file != "":
		v.bad(key+"_env", "and %s_file are two places for the %s: give one", key, what)
	case envName != "":
		if !envNameRE.MatchString(envName) {
			v.bad(key+"_env", "is not the name of an environment variable: write the name of the variable that holds the %s, not the %s", what, what)
			return
		}
		if val, ok := env(envName); !ok || val == "" {
			v.bad(key+"_env", "environment variable %s is not set", envName)
		}
	case file != "":
		if _, err := (kafkaauth.Secret{File: file}).Read(); err != nil {
			v.bad(key+"_file", "%v", strings.TrimPrefix(err.Error(), "kafkaauth: "))
		}
	default:
		v.bad(key+"_env", "required: the environment variable holding the %s (or %s_file: a file holding it)", what, key)
	}
}

// tokenURL checks an OAuth token endpoint's address. It must be https, as the client secret goes
// to it, except on a loopback address (a local token agent, a test).
func (v *validator) tokenURL(key, raw string) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		v.bad(key, "is not an http(s) URL")
		return
	}
	if u.User != nil {
		v.bad(key, "holds user information: give the client's id and secret in client_id and client_secret_env or client_secret_file")
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		v.bad(key, "%s: use https: the client secret is sent to it (http is allowed to a loopback address only)", u.Redacted())
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ClientOpts returns the franz-go options for TLS and SASL.
func (c *Config) ClientOpts() ([]kgo.Opt, error) {
	var opts []kgo.Opt
	if t := c.Kafka.TLS; t != nil {
		tc, err := t.config("kafka.tls")
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if s := c.Kafka.SASL; s != nil {
		m, err := s.mechanism()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.SASL(m))
	}
	return opts, nil
}

// config builds the TLS settings of a tls block (kafka.tls, source.registry.tls); key names the
// block in errors.
func (t *TLS) config(key string) (*tls.Config, error) {
	tc := &tls.Config{ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s.ca_file: %w", key, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s.ca_file: %s holds no PEM certificate", key, t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%s.cert_file and key_file: %w", key, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// mechanism builds the SASL mechanism. Credentials are read at every authentication (see
// internal/kafkaauth), and a failure to read them wraps stream.ErrCredentials, which the runtime
// reports as an authentication failure.
func (s *SASL) mechanism() (sasl.Mechanism, error) {
	credErr := func(key string, err error) error {
		return fmt.Errorf("%w: %s: %w", stream.ErrCredentials, key, err)
	}
	pw := kafkaauth.Secret{Env: s.PasswordEnv, File: s.PasswordFile}
	password := func() (string, error) {
		p, err := pw.Read()
		if err != nil {
			return "", credErr("kafka.sasl.password", err)
		}
		return p, nil
	}
	switch s.Mechanism {
	case mechPlain:
		return plain.Plain(func(context.Context) (plain.Auth, error) {
			p, err := password()
			return plain.Auth{User: s.Username, Pass: p}, err
		}), nil
	case mechSCRAM256, mechSCRAM512:
		auth := func(context.Context) (scram.Auth, error) {
			p, err := password()
			return scram.Auth{User: s.Username, Pass: p}, err
		}
		if s.Mechanism == mechSCRAM256 {
			return scram.Sha256(auth), nil
		}
		return scram.Sha512(auth), nil
	case mechOAuthBearer:
		o := s.OAuthBearer
		if o == nil {
			return nil, errors.New("kafka.sasl.oauthbearer: required with OAUTHBEARER")
		}
		var src kafkaauth.TokenSource = kafkaauth.NewTokenFile(o.TokenFile)
		if o.TokenURL != "" {
			src = &kafkaauth.ClientCredentials{URL: o.TokenURL, ClientID: o.ClientID, Scope: o.Scope,
				Secret: kafkaauth.Secret{Env: o.ClientSecretEnv, File: o.ClientSecretFile}}
		}
		return oauth.Oauth(func(ctx context.Context) (oauth.Auth, error) {
			tok, err := src.Token(ctx)
			if err != nil {
				return oauth.Auth{}, credErr("kafka.sasl.oauthbearer", err)
			}
			return oauth.Auth{Token: tok, Extensions: o.Extensions}, nil
		}), nil
	}
	return nil, fmt.Errorf("kafka.sasl.mechanism: %q is not supported", s.Mechanism)
}

// authAdvice says, for each refusal of the connection's security, which keys to check.
func (c *Config) authAdvice(f stream.AuthFailure) string {
	s, t := c.Kafka.SASL, c.Kafka.TLS
	switch f {
	case stream.AuthSASLRefused, stream.AuthCredentials:
		if s == nil {
			break
		}
		if s.Mechanism == mechOAuthBearer && s.OAuthBearer != nil {
			if o := s.OAuthBearer; o.TokenURL != "" {
				return fmt.Sprintf("check the token from kafka.sasl.oauthbearer.token_url (%s): its client_id %q, the client secret (%s) and the scope the brokers require (%q asked)",
					kafkaauth.RedactURL(o.TokenURL), o.ClientID, kafkaauth.Secret{Env: o.ClientSecretEnv, File: o.ClientSecretFile}, o.Scope)
			}
			return fmt.Sprintf("check the token in kafka.sasl.oauthbearer.token_file (%s): that it is current and has the principal and scope the brokers require", s.OAuthBearer.TokenFile)
		}
		pw := kafkaauth.Secret{Env: s.PasswordEnv, File: s.PasswordFile}
		key := "kafka.sasl.password_env"
		if s.PasswordFile != "" {
			key = "kafka.sasl.password_file"
		}
		return fmt.Sprintf("check kafka.sasl.username (%q) and the password in %s (%s)", s.Username, key, pw)
	case stream.AuthSASLNotEnabled:
		return "kafka.brokers names a listener without SASL: use the brokers' SASL listener (SASL_PLAINTEXT or SASL_SSL), or remove kafka.sasl"
	case stream.AuthSASLMechanism:
		if s != nil {
			return fmt.Sprintf("kafka.sasl.mechanism %s is not among the listener's sasl.enabled.mechanisms: use one that is", s.Mechanism)
		}
	case stream.AuthSASLRequired:
		if s == nil {
			return "set kafka.sasl (the listener requires SASL), or use a listener without it; if the listener speaks TLS, set kafka.tls"
		}
	case stream.AuthTLSUntrusted:
		if t != nil {
			return "check kafka.tls.ca_file (the CA that signs the brokers' certificates; the system's CAs when unset) and kafka.tls.server_name (the name in them; the broker's host when unset)"
		}
	case stream.AuthTLSRefused:
		if t != nil && t.CertFile != "" {
			return fmt.Sprintf("the broker did not accept the client certificate in kafka.tls.cert_file (%s): it must be signed by a CA the broker trusts (its ssl.truststore)", t.CertFile)
		}
		return "the listener may require a client certificate (mutual TLS): set kafka.tls.cert_file and kafka.tls.key_file"
	case stream.AuthTLSNotSpoken:
		return "kafka.brokers names a listener without TLS: use the brokers' TLS listener (SSL or SASL_SSL), or remove kafka.tls"
	case stream.AuthTLSRequired:
		if t == nil {
			return "set kafka.tls (the listener requires TLS), or use a plaintext listener"
		}
	}
	return stream.DefaultAuthAdvice(f)
}
