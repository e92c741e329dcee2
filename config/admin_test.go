package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/streamd/streamd/admin"
)

const adminToken = "s3cr3t-admin-token-0123456789"

// TestAdminDefaults: an absent admin block compiles to admin.Options' defaults, /v1/state on.
func TestAdminDefaults(t *testing.T) {
	c, err := parseWithEnv([]byte(good), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	got := c.Admin.options(noEnv)
	var want admin.Options
	want.Listen = DefaultAdminListen
	want.EnsureDefaults()
	got.EnsureDefaults()
	got.Logger, want.Logger = nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("default admin options\n got %+v\nwant %+v", got, want)
	}
	if !*c.Admin.ExposeState {
		t.Error("admin.expose_state defaults to false")
	}
	if !*c.Admin.ExposeFeatures {
		t.Error("admin.expose_features defaults to false")
	}
}

// TestAdminOptions: every key reaches admin.Options; the token comes from the environment.
func TestAdminOptions(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"tls.crt", "tls.key", "ca.crt"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	block := `admin:
  listen: 0.0.0.0:8443
  token_env: ADMIN_TOKEN
  open_endpoints: [/metrics]
  expose_state: false
  tls: {cert_file: ` + dir + `/tls.crt, key_file: ` + dir + `/tls.key, client_ca_file: ` + dir + `/ca.crt}
  max_connections: 32
  read_header_timeout: 2s
  request_timeout: 10s
  idle_timeout: 5m
  max_header_bytes: 8KiB
`
	env := func(k string) (string, bool) { return adminToken, k == "ADMIN_TOKEN" }
	var c Config
	if err := parseYAML([]byte(good+block), &c, env); err != nil {
		t.Fatal(err)
	}
	c.EnsureDefaults()
	got := c.Admin.options(env)
	want := admin.Options{
		Listen: "0.0.0.0:8443", Token: adminToken, OpenEndpoints: []string{"/metrics"},
		TLS:      &admin.TLSFiles{CertFile: dir + "/tls.crt", KeyFile: dir + "/tls.key", ClientCAFile: dir + "/ca.crt"},
		MaxConns: 32, ReadHeaderTimeout: 2 * time.Second, RequestTimeout: 10 * time.Second, IdleTimeout: 5 * time.Minute,
		MaxHeaderBytes: 8 << 10,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("admin options\n got %+v\nwant %+v", got, want)
	}
	if *c.Admin.ExposeState {
		t.Error("admin.expose_state: false is not kept")
	}
	if *c.Admin.ExposeFeatures {
		t.Error("admin.expose_features does not follow admin.expose_state: false")
	}
	// The files are not certificates: validation says so, under admin.tls.
	if _, err := parseWithEnv([]byte(good+block), env); err == nil || !strings.Contains(err.Error(), "admin.tls: does not load") {
		t.Errorf("placeholder TLS files: %v, want admin.tls: does not load", err)
	}
}

// TestAdminRejects: each admin mistake is refused under its key, alone (no second error for the same
// cause), and no message contains the token.
func TestAdminRejects(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short")
	if err := os.WriteFile(short, []byte("abc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	goodFile := filepath.Join(dir, "good")
	if err := os.WriteFile(goodFile, []byte(adminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		block   string
		env     map[string]string
		wantKey string // "" means valid
		wantMsg string
	}{
		{name: "loopback, no token", block: "{listen: 127.0.0.1:8080}"},
		{name: "all interfaces, token", block: "{listen: 0.0.0.0:8080, token_env: T}", env: map[string]string{"T": adminToken}},
		{name: "all interfaces, token file", block: "{listen: 0.0.0.0:8080, token_file: " + goodFile + "}"},
		{name: "all interfaces, insecure", block: "{listen: 0.0.0.0:8080, insecure_no_auth: true}"},
		{name: "all interfaces, no token", block: "{listen: 0.0.0.0:8080}", wantKey: "admin.listen", wantMsg: "beyond loopback"},
		{name: "empty host, no token", block: "{listen: \":8080\"}", wantKey: "admin.listen", wantMsg: "admin.token_env or admin.token_file"},
		{name: "token env unset", block: "{listen: 0.0.0.0:8080, token_env: NOPE}", wantKey: "admin.token_env", wantMsg: "NOPE is not set"},
		{name: "token env short", block: "{token_env: T}", env: map[string]string{"T": "abc"}, wantKey: "admin.token_env", wantMsg: "T: 3 characters, at least 16"},
		{name: "token file short", block: "{token_file: " + short + "}", wantKey: "admin.token_file", wantMsg: "at least 16"},
		{name: "token file missing", block: "{listen: 0.0.0.0:8080, token_file: " + dir + "/none}", wantKey: "admin.token_file", wantMsg: "cannot read"},
		{name: "both token sources", block: "{token_env: T, token_file: " + goodFile + "}", env: map[string]string{"T": adminToken}, wantKey: "admin.token_file", wantMsg: "give one of the two"},
		{name: "open state", block: "{open_endpoints: [/healthz, /v1/state]}", wantKey: "admin.open_endpoints[1]", wantMsg: "only /metrics, /healthz, /readyz"},
		{name: "negative connections", block: "{max_connections: -5}", wantKey: "admin.max_connections", wantMsg: "-5 is outside [1, 65536]"},
		{name: "header timeout", block: "{read_header_timeout: 1ms}", wantKey: "admin.read_header_timeout", wantMsg: "1ms is outside"},
		{name: "idle timeout", block: "{idle_timeout: 2h}", wantKey: "admin.idle_timeout", wantMsg: "2h is outside [1s, 1h]"},
		{name: "header bytes", block: "{max_header_bytes: 100}", wantKey: "admin.max_header_bytes", wantMsg: "outside [1KiB, 1MiB]"},
		{name: "cert without key", block: "{tls: {cert_file: " + goodFile + "}}", wantKey: "admin.tls", wantMsg: "both required"},
		{name: "missing cert", block: "{tls: {cert_file: " + dir + "/none, key_file: " + goodFile + "}}", wantKey: "admin.tls.cert_file", wantMsg: "cannot read"},
		{name: "expose_state not a bool", block: "{expose_state: maybe}", wantKey: "admin.expose_state", wantMsg: "true or false"},
		{name: "expose_features not a bool", block: "{expose_features: maybe}", wantKey: "admin.expose_features", wantMsg: "true or false"},
		{name: "console settings", block: "{console: {enabled: false, dead_letter_contents: true, sample_interval: 5s, history: 100}}"},
		{name: "console interval", block: "{console: {sample_interval: 10ms}}", wantKey: "admin.console.sample_interval", wantMsg: "10ms is outside [100ms, 1m]"},
		{name: "console history", block: "{console: {history: 5}}", wantKey: "admin.console.history", wantMsg: "5 is outside [10, 100000] samples"},
		{name: "console unknown key", block: "{console: {dead_letters: true}}", wantKey: "admin.console.dead_letters", wantMsg: "known keys here: dead_letter_contents"},
		{name: "unknown key", block: "{tokenfile: x}", wantKey: "admin.tokenfile", wantMsg: `did you mean "token_file"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
			_, err := parseWithEnv([]byte(strings.TrimRight(good, "\n")+"\nadmin: "+tc.block+"\n"), env)
			if tc.wantKey == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted, want %s: %s", tc.wantKey, tc.wantMsg)
			}
			var list interface{ Unwrap() []error }
			errs := []error{errors.Unwrap(err)}
			if errors.As(err, &list) {
				errs = list.Unwrap()
			}
			if len(errs) != 1 {
				t.Errorf("%d problems, want 1: %v", len(errs), err)
			}
			var ke *KeyError
			if !errors.As(errs[0], &ke) || ke.Key != tc.wantKey || !strings.Contains(ke.Msg, tc.wantMsg) {
				t.Errorf("error %v, want %s: ...%s...", err, tc.wantKey, tc.wantMsg)
			}
			if strings.Contains(err.Error(), adminToken) {
				t.Errorf("the error contains the token: %v", err)
			}
		})
	}
}

// TestExposeFeatures: admin.expose_features follows admin.expose_state unless set.
func TestExposeFeatures(t *testing.T) {
	for _, tc := range []struct {
		block       string
		state, feat bool
	}{
		{"admin: {expose_state: false, expose_features: true}\n", false, true},
		{"admin: {expose_features: false}\n", true, false},
		{"admin: {expose_state: true}\n", true, true},
	} {
		var c Config
		if err := parseYAML([]byte(good+tc.block), &c, noEnv); err != nil {
			t.Fatal(err)
		}
		c.EnsureDefaults()
		if *c.Admin.ExposeState != tc.state || *c.Admin.ExposeFeatures != tc.feat {
			t.Errorf("%s: expose_state %v, expose_features %v; want %v, %v", tc.block, *c.Admin.ExposeState, *c.Admin.ExposeFeatures, tc.state, tc.feat)
		}
	}
}
