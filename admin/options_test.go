package admin

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestValidate: every bad field is reported, each as a *FieldError naming it, and no message
// contains the token.
func TestValidate(t *testing.T) {
	dir := t.TempDir()
	shortFile := filepath.Join(dir, "short")
	if err := os.WriteFile(shortFile, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	goodFile := filepath.Join(dir, "good")
	if err := os.WriteFile(goodFile, []byte(testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		opts  Options
		field string // "" means valid
		rule  string
	}{
		{name: "loopback without token", opts: Options{Listen: "127.0.0.1:8080"}},
		{name: "localhost without token", opts: Options{Listen: "localhost:8080"}},
		{name: "ipv6 loopback without token", opts: Options{Listen: "[::1]:8080"}},
		{name: "all interfaces without token", opts: Options{Listen: "0.0.0.0:8080"}, field: "Listen", rule: "beyond loopback"},
		{name: "empty host without token", opts: Options{Listen: ":8080"}, field: "Listen", rule: "beyond loopback"},
		{name: "host name without token", opts: Options{Listen: "streamd-0.streamd:8080"}, field: "Listen", rule: "beyond loopback"},
		{name: "all interfaces, insecure", opts: Options{Listen: "0.0.0.0:8080", InsecureNoAuth: true}},
		{name: "all interfaces, token", opts: Options{Listen: "0.0.0.0:8080", Token: testToken}},
		{name: "all interfaces, token file", opts: Options{Listen: "0.0.0.0:8080", TokenFile: goodFile}},
		{name: "short token", opts: Options{Listen: "0.0.0.0:8080", Token: "short"}, field: "Token", rule: "at least 16"},
		{name: "both tokens", opts: Options{Token: testToken, TokenFile: goodFile}, field: "Token", rule: "exclude each other"},
		{name: "short token file", opts: Options{TokenFile: shortFile}, field: "TokenFile", rule: "at least 16"},
		{name: "missing token file", opts: Options{TokenFile: filepath.Join(dir, "none")}, field: "TokenFile", rule: "no such file"},
		{name: "cert without key", opts: Options{TLS: &TLSFiles{CertFile: goodFile}}, field: "TLS", rule: "both"},
		{name: "cert that is not one", opts: Options{TLS: &TLSFiles{CertFile: goodFile, KeyFile: goodFile}}, field: "TLS", rule: "does not load"},
		{name: "open state", opts: Options{OpenEndpoints: []string{"/healthz", "/v1/state"}}, field: "OpenEndpoints[1]", rule: "only /metrics, /healthz, /readyz"},
		{name: "no connections", opts: Options{MaxConns: -1}, field: "MaxConns", rule: "outside"},
		{name: "header timeout", opts: Options{ReadHeaderTimeout: time.Millisecond}, field: "ReadHeaderTimeout", rule: "outside [100ms, 10m]"},
		{name: "request timeout", opts: Options{RequestTimeout: time.Hour}, field: "RequestTimeout", rule: "outside"},
		{name: "idle timeout", opts: Options{IdleTimeout: time.Millisecond}, field: "IdleTimeout", rule: "outside"},
		{name: "header bytes", opts: Options{MaxHeaderBytes: 10}, field: "MaxHeaderBytes", rule: "outside [1KiB, 1MiB]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.opts
			if o.Listen == "" {
				o.Listen = "127.0.0.1:0"
			}
			o.EnsureDefaults()
			err := o.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field || !strings.Contains(fe.Error(), tc.rule) {
				t.Fatalf("Validate = %v, want a FieldError on %s saying %q", err, tc.field, tc.rule)
			}
			if strings.Contains(err.Error(), testToken) {
				t.Errorf("the error repeats the token: %v", err)
			}
		})
	}
}

// TestStartRefusesBadOptions: Start validates, so that a Go user gets the same refusals as the YAML.
func TestStartRefusesBadOptions(t *testing.T) {
	err := New(Options{Listen: "0.0.0.0:0"}).Start()
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "Listen" {
		t.Fatalf("Start beyond loopback without credentials = %v, want a FieldError on Listen", err)
	}
}

// TestFilesAreReadBounded: a token or TLS path that is a device or a huge file fails with an
// error instead of being read without end.
func TestFilesAreReadBounded(t *testing.T) {
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip("no /dev/zero")
	}
	for _, o := range []Options{
		{TokenFile: "/dev/zero"},
		{TLS: &TLSFiles{CertFile: "/dev/zero", KeyFile: "/dev/zero"}},
	} {
		o.Listen = "127.0.0.1:0"
		o.EnsureDefaults()
		if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "larger than") {
			t.Errorf("Validate(%+v) = %v, want a file larger than the bound", o, err)
		}
	}
}
