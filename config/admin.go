package config

import (
	"errors"
	"net"
	"os"
	"strings"

	"github.com/streamd/streamd/admin"
)

// Admin is the HTTP server for metrics, health and inspection, and how it guards itself
// (docs/operations.md, "Securing the admin server"). It compiles into admin.Options (AdminOptions),
// whose EnsureDefaults and Validate are the authority for its defaults and bounds.
type Admin struct {
	Listen string `yaml:"listen"`
	// Pprof serves Go's profiles (net/http/pprof) under /debug/pprof/ on the admin server. Off by
	// default: a profile shows the process's internals to anyone who reaches the admin port (the
	// admin token guards it like /v1/*).
	Pprof bool `yaml:"pprof"`
	// TokenEnv names the environment variable holding the bearer token; TokenFile, instead, a file
	// holding it, re-read when it changes. The token itself is never written in the config.
	TokenEnv  string `yaml:"token_env"`
	TokenFile string `yaml:"token_file"`
	// OpenEndpoints are served without credentials; default /healthz and /readyz.
	OpenEndpoints []string `yaml:"open_endpoints"`
	// InsecureNoAuth allows a listen address beyond loopback without any credential.
	InsecureNoAuth bool `yaml:"insecure_no_auth"`
	// ExposeState serves /v1/state/{key}; default true.
	ExposeState *bool `yaml:"expose_state"`
	// ExposeFeatures serves /v1/features/{key}, which shows the same per-entity data; default
	// ExposeState's value, so that turning the state off does not leave its features on.
	ExposeFeatures    *bool     `yaml:"expose_features"`
	TLS               *AdminTLS `yaml:"tls"`
	MaxConnections    int       `yaml:"max_connections"`
	ReadHeaderTimeout Duration  `yaml:"read_header_timeout"`
	RequestTimeout    Duration  `yaml:"request_timeout"`
	IdleTimeout       Duration  `yaml:"idle_timeout"`
	MaxHeaderBytes    ByteSize  `yaml:"max_header_bytes"`
	// Console is the web console at / (console.go).
	Console AdminConsole `yaml:"console"`
}

// AdminTLS serves the admin endpoints over HTTPS. Every file is PEM and is read again when it
// changes.
type AdminTLS struct {
	CertFile     string `yaml:"cert_file"`
	KeyFile      string `yaml:"key_file"`
	ClientCAFile string `yaml:"client_ca_file"`
}

// ensureDefaults fills the admin keys the file left unset, from admin.Options' defaults.
func (a *Admin) ensureDefaults() {
	if a.Listen == "" {
		a.Listen = DefaultAdminListen
	}
	if a.ExposeState == nil {
		yes := true
		a.ExposeState = &yes
	}
	if a.ExposeFeatures == nil {
		v := *a.ExposeState
		a.ExposeFeatures = &v
	}
	var d admin.Options
	d.EnsureDefaults()
	if a.OpenEndpoints == nil {
		a.OpenEndpoints = d.OpenEndpoints
	}
	if a.MaxConnections == 0 {
		a.MaxConnections = d.MaxConns
	}
	setDuration(&a.ReadHeaderTimeout, d.ReadHeaderTimeout)
	setDuration(&a.RequestTimeout, d.RequestTimeout)
	setDuration(&a.IdleTimeout, d.IdleTimeout)
	if a.MaxHeaderBytes == 0 {
		a.MaxHeaderBytes = ByteSize(d.MaxHeaderBytes)
	}
	a.Console.ensureDefaults()
}

// AdminOptions compiles the admin keys into the admin server's options, reading the token from the
// environment variable admin.token_env names. The caller adds what the file does not hold (the
// Gatherer, Ready, Logger).
func (c *Config) AdminOptions() admin.Options {
	return c.Admin.options(os.LookupEnv)
}

func (a *Admin) options(env func(string) (string, bool)) admin.Options {
	o := admin.Options{
		Listen:            a.Listen,
		TokenFile:         a.TokenFile,
		OpenEndpoints:     a.OpenEndpoints,
		InsecureNoAuth:    a.InsecureNoAuth,
		MaxConns:          a.MaxConnections,
		ReadHeaderTimeout: a.ReadHeaderTimeout.D(),
		RequestTimeout:    a.RequestTimeout.D(),
		IdleTimeout:       a.IdleTimeout.D(),
		MaxHeaderBytes:    int(min(a.MaxHeaderBytes, 1<<30)),
	}
	if a.TokenEnv != "" {
		o.Token, _ = env(a.TokenEnv)
	}
	if t := a.TLS; t != nil {
		o.TLS = &admin.TLSFiles{CertFile: t.CertFile, KeyFile: t.KeyFile, ClientCAFile: t.ClientCAFile}
	}
	return o
}

// adminKeys maps the fields of admin.Options that options sets to the keys of the file, so that
// admin's errors (*admin.FieldError) name the key. Listen and TLS are reported in the file's own
// words (validate).
var adminKeys = map[string]string{
	"Token":             "admin.token_env",
	"TokenFile":         "admin.token_file",
	"MaxConns":          "admin.max_connections",
	"ReadHeaderTimeout": "admin.read_header_timeout",
	"RequestTimeout":    "admin.request_timeout",
	"IdleTimeout":       "admin.idle_timeout",
	"MaxHeaderBytes":    "admin.max_header_bytes",
}

// validate checks the admin keys: the file's own rules (the address, the token's source, which TLS
// files go together), then admin.Options.Validate's, each reported under its key.
func (a *Admin) validate(v *validator, env func(string) (string, bool)) {
	v.hostPort("admin.listen", a.Listen)
	a.Console.validate(v)
	_, _, listenErr := net.SplitHostPort(a.Listen)
	opts := a.options(env)
	if a.TokenEnv != "" && a.TokenFile != "" {
		v.bad("admin.token_file", "admin.token_env is set too: give one of the two")
		opts.Token = ""
	}
	if a.TokenEnv != "" {
		if tok, ok := env(a.TokenEnv); !ok || tok == "" {
			v.bad("admin.token_env", "environment variable %s is not set", a.TokenEnv)
		}
	}
	if t := a.TLS; t != nil {
		v.file("admin.tls.cert_file", t.CertFile)
		v.file("admin.tls.key_file", t.KeyFile)
		v.file("admin.tls.client_ca_file", t.ClientCAFile)
		if t.CertFile == "" || t.KeyFile == "" {
			v.bad("admin.tls", "cert_file and key_file are both required")
			opts.TLS = nil
		}
	}

	opts.EnsureDefaults()
	err := opts.Validate()
	errs := []error{err}
	if list, ok := err.(interface{ Unwrap() []error }); ok {
		errs = list.Unwrap()
	}
	for _, err := range errs {
		var fe *admin.FieldError
		if !errors.As(err, &fe) {
			continue
		}
		switch {
		case fe.Field == "Listen":
			// With a token configured but unusable, that key's own error says what to fix.
			if listenErr == nil && a.TokenEnv == "" && a.TokenFile == "" {
				v.bad("admin.listen", "%s reaches beyond loopback, and no credential is required: set admin.token_env or "+
					"admin.token_file (or admin.tls.client_ca_file), or admin.insecure_no_auth: true if something in front "+
					"of streamd guards the port", a.Listen)
			}
		case fe.Field == "Token":
			v.bad("admin.token_env", "environment variable %s: %s", a.TokenEnv, strings.TrimPrefix(fe.Rule, "bad token: "))
		case fe.Field == "TLS":
			if a.TLS.CertFile != "" && a.TLS.KeyFile != "" {
				v.bad("admin.tls", "%s", fe.Rule)
			}
		case strings.HasPrefix(fe.Field, "OpenEndpoints["):
			v.bad("admin.open_endpoints"+strings.TrimPrefix(fe.Field, "OpenEndpoints"), "%s %s", fe.Value, fe.Rule)
		case fe.Field == "TokenFile" && a.TokenFile != "":
			if _, err := os.Stat(a.TokenFile); err == nil { // a missing file is reported by name below
				v.bad("admin.token_file", "%s", fe.Rule)
			} else {
				v.file("admin.token_file", a.TokenFile)
			}
		default:
			key, ok := adminKeys[fe.Field]
			if !ok {
				key = "admin"
			}
			if fe.Value == "" {
				v.bad(key, "%s", fe.Rule)
			} else {
				v.bad(key, "%s %s", fe.Value, fe.Rule)
			}
		}
	}
}
