package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/streamd/streamd/config"
	"github.com/streamd/streamd/configs"
)

// TestDaemonAdminSecurity wires the admin keys through the daemon: the example pipeline with a
// token from the environment and /v1/state turned off, served on all interfaces.
func TestDaemonAdminSecurity(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DefaultNumPartitions(4))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	const token = "daemon-test-token-0123456789abcdef"
	t.Setenv("KAFKA_BROKERS", cluster.ListenAddrs()[0])
	t.Setenv("STREAMD_STATE_DIR", t.TempDir())
	t.Setenv("STREAMD_INSTANCE_ID", "admin-test")
	t.Setenv("STREAMD_ADMIN_LISTEN", "0.0.0.0:0")
	t.Setenv("STREAMD_TEST_ADMIN_TOKEN", token)
	data := strings.Replace(string(configs.FraudPipeline), "\nadmin:\n", "\nadmin:\n  token_env: STREAMD_TEST_ADMIN_TOKEN\n  expose_state: false\n", 1)
	data = strings.Replace(data, `  token_file: "${STREAMD_ADMIN_TOKEN_FILE:-}"`, "", 1)
	cfg, err := config.Parse([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d, err := startDaemon(ctx, cfg, slog.New(slog.DiscardHandler), cfg.Admin.Listen)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	defer func() {
		cancel()
		_ = d.wait()
	}()
	_, port, err := net.SplitHostPort(d.adm.Addr())
	if err != nil {
		t.Fatal(err)
	}
	base := "http://127.0.0.1:" + port
	for _, tc := range []struct {
		path, token string
		want        int
	}{
		{"/healthz", "", 200},
		{"/metrics", "", 401},
		{"/metrics", token, 200},
		{"/v1/models", "", 401},
		{"/v1/models", token, 200},
		{"/v1/watermarks", token, 200},
		{"/v1/state/card-1", "", 401},
		{"/v1/state/card-1", token, 404}, // admin.expose_state: false
		// admin.expose_features follows it: an event that, served, would be refused (422) is 404.
		{"/v1/features/card-1?event=%7B%7D", token, 404},
	} {
		req, _ := http.NewRequest(http.MethodGet, base+tc.path, nil)
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("GET %s (token %v) = %d %q, want %d", tc.path, tc.token != "", resp.StatusCode, body, tc.want)
		}
		if tc.path == "/metrics" && tc.want == 200 && !strings.Contains(string(body), "streamd_admin_connections ") {
			t.Errorf("/metrics lacks streamd_admin_connections")
		}
	}
}
