package observability

import (
	"context"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
	Secrets  map[string]struct {
		Environment string `yaml:"environment"`
		File        string `yaml:"file"`
	} `yaml:"secrets"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Build       any               `yaml:"build"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	Volumes     []string          `yaml:"volumes"`
	DependsOn   map[string]any    `yaml:"depends_on"`
	Secrets     []string          `yaml:"secrets"`
}

type mount struct {
	source, target string
	bind, readOnly bool
}

func (s composeService) mounts() []mount {
	var out []mount
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		m := mount{source: parts[0]}
		if len(parts) > 1 {
			m.target = parts[1]
		}
		m.readOnly = len(parts) > 2 && parts[2] == "ro"
		m.bind = strings.HasPrefix(m.source, ".") || strings.HasPrefix(m.source, "/")
		out = append(out, m)
	}
	return out
}

// hostPath maps a path inside the service's container to the repository file a bind mount puts
// there, or "".
func (s composeService) hostPath(containerPath string) string {
	for _, m := range s.mounts() {
		if !m.bind {
			continue
		}
		if containerPath == m.target {
			return repoPath(m.source)
		}
		if rel, ok := strings.CutPrefix(containerPath, strings.TrimSuffix(m.target, "/")+"/"); ok {
			return repoPath(m.source, rel)
		}
	}
	return ""
}

func loadYAML(t testing.TB, file string, v any) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

// TestComposeFile checks docker-compose.yml: the services and their wiring (ports, mounts, the
// Prometheus target, the Grafana datasource and dashboard), that every file it mounts or builds from
// exists, and, where the docker CLI has the compose plugin, `docker compose config -q`.
func TestComposeFile(t *testing.T) {
	var c composeFile
	loadYAML(t, repoPath("docker-compose.yml"), &c)

	for _, name := range []string{"kafka", "generator", "streamd", "prometheus", "grafana"} {
		if _, ok := c.Services[name]; !ok {
			t.Fatalf("docker-compose.yml: no service %q", name)
		}
	}
	wantImage := map[string]string{"kafka": "apache/kafka:4.1.1", "prometheus": "prom/prometheus:", "grafana": "grafana/grafana:"}
	for name, prefix := range wantImage {
		if img := c.Services[name].Image; !strings.HasPrefix(img, prefix) || strings.HasSuffix(img, ":latest") {
			t.Errorf("service %s: image %q, want a pinned %s...", name, img, prefix)
		}
	}
	for _, name := range []string{"generator", "streamd"} {
		if c.Services[name].Build != "." {
			t.Errorf("service %s: build %v, want the repo's Dockerfile (.)", name, c.Services[name].Build)
		}
	}
	if _, err := os.Stat(repoPath("Dockerfile")); err != nil {
		t.Error(err)
	}

	// Published ports.
	for name, port := range map[string]string{"kafka": "29092:29092", "streamd": "8080:8080", "prometheus": "9090:9090", "grafana": "3000:3000"} {
		if !slices.Contains(c.Services[name].Ports, port) {
			t.Errorf("service %s: ports %v, want %s", name, c.Services[name].Ports, port)
		}
	}

	// Mounts: bind mounts come from files in the repo; named volumes are declared.
	for name, s := range c.Services {
		for _, m := range s.mounts() {
			if m.target == "" || !path.IsAbs(m.target) {
				t.Errorf("service %s: volume %s:%s: the target must be an absolute path", name, m.source, m.target)
			}
			if m.bind {
				if _, err := os.Stat(repoPath(m.source)); err != nil {
					t.Errorf("service %s mounts %s, which is not in the repo: %v", name, m.source, err)
				}
				if !m.readOnly {
					t.Errorf("service %s: mount %s should be read-only (:ro)", name, m.source)
				}
			} else if _, ok := c.Volumes[m.source]; !ok {
				t.Errorf("service %s uses volume %q, which is not declared under volumes:", name, m.source)
			}
		}
	}

	// streamd: admin on all interfaces, state on a volume (the image's user cannot write its cwd).
	sd := c.Services["streamd"]
	if got := sd.Environment["STREAMD_ADMIN_LISTEN"]; got != "0.0.0.0:8080" {
		t.Errorf("streamd: STREAMD_ADMIN_LISTEN %q, want 0.0.0.0:8080", got)
	}
	if got := sd.Environment["KAFKA_BROKERS"]; got != "kafka:9092" {
		t.Errorf("streamd: KAFKA_BROKERS %q, want kafka:9092", got)
	}
	stateDir := sd.Environment["STREAMD_STATE_DIR"]
	if stateDir == "" || !slices.ContainsFunc(sd.mounts(), func(m mount) bool { return !m.bind && m.target == stateDir }) {
		t.Errorf("streamd: STREAMD_STATE_DIR %q is not a volume's mount point (mounts %v)", stateDir, sd.Volumes)
	}
	if len(sd.Command) < 3 || sd.Command[0] != "run" {
		t.Fatalf("streamd: command %v, want run -config FILE", sd.Command)
	}
	if cfg := sd.Command[2]; cfg != "/etc/streamd/fraud-pipeline.yaml" {
		t.Errorf("streamd: config %s, want the image's /etc/streamd/fraud-pipeline.yaml (Dockerfile: COPY configs/*.yaml /etc/streamd/)", cfg)
	}
	dockerfile := string(readRepoFile(t, "Dockerfile"))
	for _, want := range []string{"COPY configs/*.yaml /etc/streamd/", "--chown=65532:65532", stateDir} {
		if !strings.Contains(dockerfile, want) {
			t.Errorf("Dockerfile: no %q (the image must ship the config and a state directory the nonroot user owns)", want)
		}
	}
	var pipeline struct {
		State struct{ Dir string } `yaml:"state"`
		Admin struct {
			Listen    string
			TokenFile string `yaml:"token_file"`
		}
	}
	loadYAML(t, repoPath("configs", "fraud-pipeline.yaml"), &pipeline)
	if !strings.Contains(pipeline.State.Dir, "${STREAMD_STATE_DIR") || !strings.Contains(pipeline.Admin.Listen, "${STREAMD_ADMIN_LISTEN") ||
		!strings.Contains(pipeline.Admin.TokenFile, "${STREAMD_ADMIN_TOKEN_FILE") {
		t.Errorf("configs/fraud-pipeline.yaml: state.dir %q, admin.listen %q and admin.token_file %q must come from STREAMD_STATE_DIR, STREAMD_ADMIN_LISTEN and STREAMD_ADMIN_TOKEN_FILE",
			pipeline.State.Dir, pipeline.Admin.Listen, pipeline.Admin.TokenFile)
	}

	// The admin token: a Compose secret from the environment, read by streamd and by Prometheus.
	tokenFile := sd.Environment["STREAMD_ADMIN_TOKEN_FILE"]
	secret, ok := strings.CutPrefix(tokenFile, "/run/secrets/")
	if !ok {
		t.Errorf("streamd: STREAMD_ADMIN_TOKEN_FILE %q is not a Compose secret (/run/secrets/NAME)", tokenFile)
	}
	if src, ok := c.Secrets[secret]; !ok || src.Environment == "" {
		t.Errorf("secret %q is not declared with an environment source (secrets: %v)", secret, c.Secrets)
	}
	for _, name := range []string{"streamd", "prometheus"} {
		if !slices.Contains(c.Services[name].Secrets, secret) {
			t.Errorf("service %s does not get the secret %q (secrets %v)", name, secret, c.Services[name].Secrets)
		}
	}
	checkSecureByDefault(t, repoPath("configs", "fraud-pipeline.yaml"), map[string]string{
		"STREAMD_STATE_DIR": t.TempDir(), "STREAMD_ADMIN_LISTEN": sd.Environment["STREAMD_ADMIN_LISTEN"], "KAFKA_BROKERS": "kafka:9092",
	}, "STREAMD_ADMIN_TOKEN_FILE")

	// Prometheus scrapes streamd's admin port, every 5 s.
	pr := c.Services["prometheus"]
	cfgPath := ""
	for _, arg := range pr.Command {
		if v, ok := strings.CutPrefix(arg, "--config.file="); ok {
			cfgPath = pr.hostPath(v)
		}
	}
	if cfgPath == "" {
		t.Fatalf("prometheus: --config.file does not point into a bind mount (command %v, volumes %v)", pr.Command, pr.Volumes)
	}
	var pc struct {
		Global struct {
			ScrapeInterval string `yaml:"scrape_interval"`
		} `yaml:"global"`
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			Authorization struct {
				Type            string `yaml:"type"`
				CredentialsFile string `yaml:"credentials_file"`
			} `yaml:"authorization"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	loadYAML(t, cfgPath, &pc)
	if pc.Global.ScrapeInterval != "5s" {
		t.Errorf("%s: scrape_interval %q, want 5s", cfgPath, pc.Global.ScrapeInterval)
	}
	for _, rf := range pc.RuleFiles {
		if _, err := os.Stat(filepath.Join(filepath.Dir(cfgPath), rf)); err != nil {
			t.Errorf("%s: rule file %s: %v", cfgPath, rf, err)
		}
	}
	scrapesStreamd := false
	for _, sc := range pc.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			if slices.Contains(st.Targets, "streamd:8080") {
				scrapesStreamd = true
				if a := sc.Authorization; (a.Type != "" && a.Type != "Bearer") || a.CredentialsFile != tokenFile {
					t.Errorf("%s: job %s scrapes streamd with authorization %+v, want Bearer from %s (the admin token)", cfgPath, sc.JobName, a, tokenFile)
				}
			}
		}
	}
	if !scrapesStreamd {
		t.Errorf("%s: no scrape target streamd:8080", cfgPath)
	}

	// Grafana: anonymous viewers, the provisioned datasource pointing at the prometheus service, and
	// the dashboard where the provider looks for it.
	gr := c.Services["grafana"]
	if gr.Environment["GF_AUTH_ANONYMOUS_ENABLED"] != "true" || gr.Environment["GF_AUTH_ANONYMOUS_ORG_ROLE"] != "Viewer" {
		t.Errorf("grafana: anonymous viewer access is not enabled: %v", gr.Environment)
	}
	prov := gr.hostPath("/etc/grafana/provisioning")
	if prov == "" {
		t.Fatalf("grafana: /etc/grafana/provisioning is not mounted from the repo")
	}
	var ds struct {
		Datasources []struct {
			Type, URL, UID string
			IsDefault      bool `yaml:"isDefault"`
			JSONData       struct {
				TimeInterval string `yaml:"timeInterval"`
			} `yaml:"jsonData"`
		} `yaml:"datasources"`
	}
	loadYAML(t, filepath.Join(prov, "datasources", "prometheus.yml"), &ds)
	if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" || ds.Datasources[0].URL != "http://prometheus:9090" || !ds.Datasources[0].IsDefault {
		t.Errorf("grafana datasource: %+v, want the default prometheus datasource at http://prometheus:9090", ds.Datasources)
	} else if ti := ds.Datasources[0].JSONData.TimeInterval; ti != pc.Global.ScrapeInterval {
		t.Errorf("grafana datasource: timeInterval %q, want Prometheus' scrape interval %q ($__rate_interval depends on it)", ti, pc.Global.ScrapeInterval)
	}
	var dp struct {
		Providers []struct {
			Type    string
			Options struct{ Path string }
		} `yaml:"providers"`
	}
	loadYAML(t, filepath.Join(prov, "dashboards", "streamd.yml"), &dp)
	if len(dp.Providers) != 1 || dp.Providers[0].Type != "file" {
		t.Fatalf("grafana dashboard providers: %+v, want one file provider", dp.Providers)
	}
	dashDir := dp.Providers[0].Options.Path
	found := false
	for _, m := range gr.mounts() {
		if m.bind && path.Dir(m.target) == dashDir && filepath.Clean(m.source) == filepath.Clean("./"+dashboardFile) {
			found = true
		}
	}
	if !found {
		t.Errorf("grafana: %s is not mounted into the provider's path %s", dashboardFile, dashDir)
	}
	if home := gr.Environment["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]; gr.hostPath(home) != repoPath(dashboardFile) {
		t.Errorf("grafana: home dashboard %q is not %s", home, dashboardFile)
	}

	t.Run("docker_compose_config", func(t *testing.T) {
		docker, err := exec.LookPath("docker")
		if err != nil {
			t.Skip("the docker CLI is not installed: `docker compose config -q` not run")
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if out, err := runTool(ctx, repoRoot, docker, "compose", "version"); err != nil {
			t.Skipf("the docker CLI has no compose plugin (%v: %s): `docker compose config -q` not run", err, strings.TrimSpace(firstLines(out, 2)))
		}
		out, err := runTool(ctx, repoRoot, docker, "compose", "-f", "docker-compose.yml", "config", "-q")
		if err != nil {
			t.Fatalf("docker compose config -q: %v\n%s", err, out)
		}
		t.Log("docker compose config -q: valid (needs no Docker engine)")
	})
}

// checkSecureByDefault runs `streamd validate` on a shipped pipeline with the environment of its
// deployment: it must pass with the admin token's file in place (a temporary one), and be refused
// without it, naming admin.listen: the address reaches beyond loopback, so the token is what keeps
// the admin endpoints closed.
func checkSecureByDefault(t *testing.T, pipeline string, env map[string]string, tokenVar string) {
	t.Helper()
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	validate := func(tokenFile string) (string, error) {
		cmd := exec.Command(streamdBin, "validate", "-config", pipeline)
		cmd.Env = os.Environ()
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		cmd.Env = append(cmd.Env, tokenVar+"="+tokenFile)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := validate(token); err != nil {
		t.Errorf("streamd validate %s with the admin token: %v\n%s", pipeline, err, out)
	}
	out, err := validate("")
	if err == nil || !strings.Contains(out, "admin.listen") || !strings.Contains(out, "beyond loopback") {
		t.Errorf("streamd validate %s without the admin token (%s=%s) must refuse admin.listen: %v\n%s", pipeline, "STREAMD_ADMIN_LISTEN", env["STREAMD_ADMIN_LISTEN"], err, out)
	}
}
