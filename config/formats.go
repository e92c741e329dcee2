package config

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/streamd/streamd/stream"
)

// newWire builds the wire encoding of one format name. It gets the whole config so that an encoding
// with settings (a schema registry's address, a message type) reads its own block of the source.
type newWire func(c *Config) (stream.Wire, error)

// wires maps every name source.format accepts to its encoding. Adding an encoding is its Wire in
// package stream (one file), an entry here, and its config block if it has settings; the schema
// (fields, key, event id, event time, size limit) is compiled the same way for every encoding.
var wires = map[string]newWire{
	"json": func(*Config) (stream.Wire, error) { return &stream.JSONWire{}, nil },
	"avro": func(c *Config) (stream.Wire, error) {
		reg, err := c.registry()
		if err != nil {
			return nil, err
		}
		return &stream.AvroWire{Registry: reg}, nil
	},
	"protobuf": func(c *Config) (stream.Wire, error) {
		reg, err := c.registry()
		if err != nil {
			return nil, err
		}
		return &stream.ProtobufWire{Registry: reg}, nil
	},
}

// registryFormats are the formats whose records name their schema in a registry: they need
// source.registry, and the other formats refuse it.
var registryFormats = map[string]bool{"avro": true, "protobuf": true}

// labelsWire is the encoding of the labels topic.
const labelsWire = "json"

// Registry is the schema registry of the avro and protobuf formats: a Confluent-compatible REST
// API (Confluent Schema Registry, Apicurio's ccompat API, Redpanda). Secrets come from the
// environment: PasswordEnv and TokenEnv name the variables.
type Registry struct {
	URLs        []string `yaml:"urls"`
	Username    string   `yaml:"username"`
	PasswordEnv string   `yaml:"password_env"`
	TokenEnv    string   `yaml:"token_env"`
	TLS         *TLS     `yaml:"tls"`
	Subject     string   `yaml:"subject"`
	Version     int      `yaml:"version"`
	Timeout     Duration `yaml:"timeout"`
}

// formatNames lists the names source.format accepts, sorted.
func formatNames() []string {
	names := make([]string, 0, len(wires))
	for n := range wires {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// validateFormat checks the paths the source declares and the registry block.
func (c *Config) validateFormat(v *validator, env func(string) (string, bool)) {
	s := &c.Source
	for _, p := range []struct{ key, path string }{{"source.key", s.Key}, {"source.event_id", s.EventID}, {"source.event_time.field", s.EventTime.Field}} {
		if p.path == "" {
			continue
		}
		if err := stream.CheckPath(p.path); err != nil {
			v.bad(p.key, "%v", err)
		}
	}
	for _, name := range sortedKeys(s.Fields) {
		if err := stream.CheckPath(name); err != nil {
			v.bad("source.fields."+name, "%v", err)
		}
	}
	r := s.Registry
	if !registryFormats[s.Format] && !outputRegistryFormats[c.Outputs.Format] {
		if r != nil {
			v.bad("source.registry", "format %s reads no schema registry; remove the block (or use avro or protobuf)", s.Format)
		}
		return
	}
	if r == nil {
		if !registryFormats[s.Format] {
			v.bad("source.registry", "required with outputs.format %s: the schema registry streamd registers the output schemas in", c.Outputs.Format)
			return
		}
		v.bad("source.registry", "required with format %s: the schema registry's urls", s.Format)
		return
	}
	if len(r.URLs) == 0 {
		v.bad("source.registry.urls", "required: at least one URL (http://registry:8081)")
	}
	for i, u := range r.URLs {
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			v.bad(fmt.Sprintf("source.registry.urls[%d]", i), "%q is not an http:// or https:// URL", u)
		}
	}
	envSet := func(key, name string) {
		if pw, ok := env(name); !ok || pw == "" {
			v.bad(key, "environment variable %s is not set", name)
		}
	}
	switch {
	case r.Username != "" && r.PasswordEnv == "":
		v.bad("source.registry.password_env", "required with username: the name of the environment variable holding the password")
	case r.Username == "" && r.PasswordEnv != "":
		v.bad("source.registry.username", "required with password_env")
	case r.PasswordEnv != "":
		envSet("source.registry.password_env", r.PasswordEnv)
	}
	if r.TokenEnv != "" {
		if r.Username != "" {
			v.bad("source.registry.token_env", "give a bearer token or a username and password, not both")
		}
		envSet("source.registry.token_env", r.TokenEnv)
	}
	if t := r.TLS; t != nil {
		v.file("source.registry.tls.ca_file", t.CAFile)
		v.file("source.registry.tls.cert_file", t.CertFile)
		v.file("source.registry.tls.key_file", t.KeyFile)
		if (t.CertFile == "") != (t.KeyFile == "") {
			v.bad("source.registry.tls", "cert_file and key_file go together: give both or neither")
		}
	}
	if r.Version < 0 {
		v.bad("source.registry.version", "%d is negative", r.Version)
	} else if r.Version > 0 && r.Subject == "" {
		v.bad("source.registry.version", "pins a version of source.registry.subject, which is not set")
	}
	if r.Timeout < 0 {
		v.bad("source.registry.timeout", "%s is negative", r.Timeout)
	}
}

// registry builds the source's schema registry client.
func (c *Config) registry() (*stream.Registry, error) {
	r := c.Source.Registry
	if r == nil {
		return nil, errors.New("config: source.registry: required with avro or protobuf (source.format or outputs.format)")
	}
	timeout := r.Timeout.D()
	if timeout == 0 {
		timeout = stream.DefaultRegistryTimeout
	}
	opts := []sr.ClientOpt{sr.URLs(r.URLs...), sr.UserAgent("streamd"), sr.HTTPClient(&http.Client{Timeout: timeout})}
	if r.Username != "" {
		opts = append(opts, sr.BasicAuth(r.Username, os.Getenv(r.PasswordEnv)))
	}
	if r.TokenEnv != "" {
		opts = append(opts, sr.BearerToken(os.Getenv(r.TokenEnv)))
	}
	if r.TLS != nil {
		tc, err := r.TLS.config("source.registry.tls")
		if err != nil {
			return nil, err
		}
		opts = append(opts, sr.DialTLSConfig(tc))
	}
	cl, err := sr.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("config: source.registry: %w", err)
	}
	return &stream.Registry{Client: cl, Subject: r.Subject, Version: r.Version, Timeout: timeout}, nil
}

// format compiles a schema over the named encoding into a prepared Format.
func (c *Config) format(name string, s stream.Schema) (stream.Format, error) {
	nw, ok := wires[name]
	if !ok {
		return nil, fmt.Errorf("config: format %q is not one of %s", name, strings.Join(formatNames(), ", "))
	}
	w, err := nw(c)
	if err != nil {
		return nil, err
	}
	f := &stream.SchemaFormat{Schema: s, Wire: w}
	if err := f.Init(); err != nil {
		return nil, err
	}
	return f, nil
}
