package admin

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

const (
	testToken  = "0123456789abcdef0123456789abcdef"
	otherToken = "fedcba9876543210fedcba9876543210"
)

// request sends a GET with an optional Authorization header and returns the status, the
// WWW-Authenticate challenge and the body.
func request(t *testing.T, c *http.Client, url, authorization string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), string(b)
}

// startServer starts a server with the inspection endpoints (watermarks, models; no state) and
// returns it with its registry.
func startServer(t *testing.T, opts Options) (*Server, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:0"
	}
	opts.Gatherer, opts.Registerer = reg, reg
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := New(opts)
	s.HandleInspection(Inspection{Watermarks: fakeWatermarks{}})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s, reg
}

// TestTokenRequired: with a token, every endpoint but the open ones answers 401 to a request without
// it or with a wrong one, before routing (an unknown path is 401 too, not 404), and serves a request
// that carries it.
func TestTokenRequired(t *testing.T) {
	cases := []struct {
		name string
		open []string // Options.OpenEndpoints; nil is the default
		path string
		auth string
		want int
	}{
		{name: "models without token", path: "/v1/models", want: 401},
		{name: "models wrong token", path: "/v1/models", auth: "Bearer " + otherToken, want: 401},
		{name: "models token as basic", path: "/v1/models", auth: "Basic " + testToken, want: 401},
		{name: "models token prefix", path: "/v1/models", auth: "Bearer " + testToken[:20], want: 401},
		{name: "models token longer", path: "/v1/models", auth: "Bearer " + testToken + "x", want: 401},
		{name: "models empty bearer", path: "/v1/models", auth: "Bearer ", want: 401},
		{name: "models token", path: "/v1/models", auth: "Bearer " + testToken, want: 200},
		{name: "scheme case-insensitive", path: "/v1/models", auth: "bearer " + testToken, want: 200},
		{name: "watermarks without token", path: "/v1/watermarks", want: 401},
		{name: "watermarks token", path: "/v1/watermarks", auth: "Bearer " + testToken, want: 200},
		{name: "state not registered, no token", path: "/v1/state/card-1", want: 401},
		{name: "state not registered, token", path: "/v1/state/card-1", auth: "Bearer " + testToken, want: 404},
		{name: "unknown path without token", path: "/nope", want: 401},
		{name: "unknown path token", path: "/nope", auth: "Bearer " + testToken, want: 404},
		{name: "healthz open by default", path: "/healthz", want: 200},
		{name: "readyz open by default", path: "/readyz", want: 200},
		{name: "healthz/ is not healthz", path: "/healthz/", want: 401},
		{name: "metrics protected by default", path: "/metrics", want: 401},
		{name: "metrics token", path: "/metrics", auth: "Bearer " + testToken, want: 200},
		{name: "metrics opened", open: []string{"/metrics", "/healthz", "/readyz"}, path: "/metrics", want: 200},
		{name: "healthz protected", open: []string{}, path: "/healthz", want: 401},
		{name: "healthz protected, token", open: []string{}, path: "/healthz", auth: "Bearer " + testToken, want: 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, reg := startServer(t, Options{Token: testToken + "\n", OpenEndpoints: tc.open})
			code, challenge, body := request(t, http.DefaultClient, "http://"+s.Addr()+tc.path, tc.auth)
			if code != tc.want {
				t.Fatalf("GET %s (Authorization %q) = %d %q, want %d", tc.path, tc.auth, code, body, tc.want)
			}
			denied := metricSum(t, reg, "streamd_admin_unauthorized_requests_total")
			if code == 401 {
				if !strings.HasPrefix(challenge, "Bearer ") {
					t.Errorf("401 without a Bearer challenge: WWW-Authenticate %q", challenge)
				}
				if strings.Contains(body, testToken) || strings.Contains(body, otherToken) {
					t.Errorf("401 body repeats a token: %q", body)
				}
				if denied != 1 {
					t.Errorf("streamd_admin_unauthorized_requests_total = %v, want 1", denied)
				}
			} else if denied != 0 {
				t.Errorf("streamd_admin_unauthorized_requests_total = %v after a %d, want 0", denied, code)
			}
		})
	}
}

// metricSum gathers reg and returns the sum of the values of every series of one counter or gauge
// family, 0 when it has none.
func metricSum(t *testing.T, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

// TestNoTokenNothingProtected: without credentials (a loopback address), everything is served.
func TestNoTokenNothingProtected(t *testing.T) {
	s, _ := startServer(t, Options{})
	for _, p := range []string{"/metrics", "/healthz", "/readyz", "/v1/models", "/v1/watermarks"} {
		if code, _, body := request(t, http.DefaultClient, "http://"+s.Addr()+p, ""); code != 200 {
			t.Errorf("GET %s = %d %q, want 200", p, code, body)
		}
	}
}

// TestTokenFileRotation: the token file is read again when it is replaced; a replacement that holds
// no usable token, or a missing file, keeps the previous token and counts a reload failure.
func TestTokenFileRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "token")
	// replace writes the file the way Kubernetes and careful operators do: a new file renamed over
	// the old one, never a half-written token in place.
	replace := func(content string) {
		t.Helper()
		tmp := filepath.Join(dir, "token.new")
		if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	replace(testToken + "\n")
	var logs syncBuffer
	s, reg := startServer(t, Options{TokenFile: path, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	url := "http://" + s.Addr() + "/v1/models"
	accepts := func(step, tok string, want int) {
		t.Helper()
		if code, _, body := request(t, http.DefaultClient, url, "Bearer "+tok); code != want {
			t.Fatalf("%s: token %s… = %d %q, want %d", step, tok[:4], code, body, want)
		}
	}
	failures := func() float64 {
		return metricSum(t, reg, "streamd_admin_reload_failures_total")
	}
	accepts("first token", testToken, 200)
	accepts("first token", otherToken, 401)

	replace(otherToken)
	accepts("rotated", otherToken, 200)
	accepts("rotated", testToken, 401)

	replace("short\n")
	accepts("bad replacement", otherToken, 200)
	if f := failures(); f != 1 {
		t.Errorf("reload failures after a bad file = %v, want 1", f)
	}
	accepts("bad replacement, again", otherToken, 200)
	if f := failures(); f != 1 {
		t.Errorf("reload failures after the same bad file twice = %v, want still 1 (one per change)", f)
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	accepts("file removed", otherToken, 200)
	if f := failures(); f != 2 {
		t.Errorf("reload failures after removal = %v, want 2", f)
	}

	third := strings.Repeat("z", 40)
	replace(third)
	accepts("back", third, 200)
	accepts("back", otherToken, 401)
	if !strings.Contains(logs.String(), `"msg":"admin token reload failed; keeping the previous token"`) {
		t.Errorf("no JSON log line for the failed reload:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), otherToken) || strings.Contains(logs.String(), third) {
		t.Errorf("the logs contain a token:\n%s", logs.String())
	}
}

func TestParseToken(t *testing.T) {
	cases := []struct {
		in, want string
		bad      bool
	}{
		{in: testToken, want: testToken},
		{in: "  " + testToken + "\r\n", want: testToken},
		{in: "a+b/c=d~e.f_g-h0123", want: "a+b/c=d~e.f_g-h0123"},
		{in: "", bad: true},
		{in: "\n", bad: true},
		{in: "fifteen-chars-x", bad: true},
		{in: "sixteen chars xx", bad: true},
		{in: "token-with-tab\tinside", bad: true},
		{in: "token-with-ümlaut-inside", bad: true},
		{in: strings.Repeat("x", MaxTokenLen+1), bad: true},
	}
	for _, tc := range cases {
		got, err := ParseToken([]byte(tc.in))
		if tc.bad {
			if !errors.Is(err, ErrBadToken) {
				t.Errorf("ParseToken(%q) = %q, %v; want ErrBadToken", tc.in, got, err)
			} else if len(tc.in) > 4 && strings.Contains(err.Error(), strings.TrimSpace(tc.in)) {
				t.Errorf("ParseToken(%q): the error repeats the token: %v", tc.in, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseToken(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}
