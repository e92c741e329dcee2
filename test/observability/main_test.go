// Package observability tests what an operator of streamd relies on: the Grafana dashboard and the
// Prometheus config and alerts in configs/, the docker-compose deployment, the Kubernetes manifests
// in deploy/k8s, and the admin endpoints behind them.
//
// The live tests run the streamd binary (built once in TestMain) and a real Prometheus server (the
// Debian package's /usr/bin/prometheus and promtool, which .ci/run installs); without them, or
// without a real Kafka broker (KAFKA_BROKERS) where one is needed, a test skips and says why.
package observability

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

var (
	// repoRoot is the module's root directory.
	repoRoot string
	// streamdBin is the streamd binary built from this tree by TestMain.
	streamdBin string
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	root, err := findRepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "observability:", err)
		return 1
	}
	repoRoot = root
	dir, err := os.MkdirTemp("", "streamd-observability-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "observability:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	streamdBin = filepath.Join(dir, "streamd")
	build := exec.Command("go", "build", "-o", streamdBin, "./cmd/streamd")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "observability: go build ./cmd/streamd: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

func findRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// repoPath is a path inside the repository.
func repoPath(parts ...string) string {
	return filepath.Join(append([]string{repoRoot}, parts...)...)
}

func readRepoFile(t testing.TB, parts ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(repoPath(parts...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func randomSuffix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// requireTool skips the test unless the program is on PATH, and returns its path.
func requireTool(t testing.TB, name, why string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed (%s); on Debian: apt-get install prometheus (.ci/run does)", name, why)
	}
	return p
}

// proc is a child process whose output goes to a log file, stopped at the end of the test.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error
}

func startProc(t testing.TB, name string, env []string, bin string, args ...string) *proc {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop(t, 20*time.Second)
		if t.Failed() {
			t.Logf("last lines of %s's output (%s):\n%s", name, logPath, p.tail(40))
		}
	})
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, waits up to grace, then kills the process. It returns the exit error.
func (p *proc) stop(t testing.TB, grace time.Duration) error {
	if p.exited() {
		return p.err
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		t.Logf("%s did not stop within %s of SIGTERM: killing it", p.name, grace)
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	return p.err
}

// wait waits up to timeout for the process to exit by itself.
func (p *proc) wait(timeout time.Duration) (error, bool) {
	select {
	case <-p.done:
		return p.err, true
	case <-time.After(timeout):
		return nil, false
	}
}

func (p *proc) output() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

func (p *proc) tail(n int) string {
	lines := strings.Split(strings.TrimRight(p.output(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

// get returns the status and body of a GET.
func get(url string) (int, []byte, error) {
	resp, err := httpClient.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// waitHTTP waits until url answers 200, or fails the test after timeout. If p exits first, it fails
// at once.
func waitHTTP(t testing.TB, url string, timeout time.Duration, p *proc) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		if p != nil && p.exited() {
			t.Fatalf("%s exited (%v) before %s answered; its output:\n%s", p.name, p.err, url, p.tail(30))
		}
		code, body, err := get(url)
		if err == nil && code == http.StatusOK {
			return
		}
		last = fmt.Sprintf("%d %s %v", code, bytes.TrimSpace(body), err)
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s did not answer 200 within %s (last: %s)", url, timeout, last)
}

// scrape reads a /metrics page in the Prometheus text format.
func scrape(url string) (map[string]*dto.MetricFamily, []byte, error) {
	code, body, err := get(url)
	if err != nil {
		return nil, nil, err
	}
	if code != http.StatusOK {
		return nil, body, fmt.Errorf("%s: HTTP %d", url, code)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	return fams, body, err
}

// total is the sum of a family's samples: the value of counters and gauges, the count of histograms
// and summaries. A missing family is 0.
func total(fams map[string]*dto.MetricFamily, name string) float64 {
	f, ok := fams[name]
	if !ok {
		return 0
	}
	var s float64
	for _, m := range f.GetMetric() {
		switch {
		case m.Counter != nil:
			s += m.GetCounter().GetValue()
		case m.Gauge != nil:
			s += m.GetGauge().GetValue()
		case m.Histogram != nil:
			s += float64(m.GetHistogram().GetSampleCount())
		case m.Summary != nil:
			s += float64(m.GetSummary().GetSampleCount())
		case m.Untyped != nil:
			s += m.GetUntyped().GetValue()
		}
	}
	return s
}

// runTool runs a program to completion and returns its combined output.
func runTool(ctx context.Context, dir, bin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// firstLines returns the first n lines of s.
func firstLines(s string, n int) string {
	sc := bufio.NewScanner(strings.NewReader(s))
	var out []string
	for sc.Scan() && len(out) < n {
		out = append(out, sc.Text())
	}
	return strings.Join(out, "\n")
}

func execCommand(bin string, args ...string) *exec.Cmd { return exec.Command(bin, args...) }
