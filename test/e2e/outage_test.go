package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/test/kafkatest"
)

// ownBroker is a single-node Apache Kafka broker of this test's own, started by scripts/kafka.sh on
// free ports, so that pausing and killing it disturbs no other test.
type ownBroker struct {
	*kafkatest.Broker
	env []string
	dir string
}

// startOwnBroker starts the broker; env adds settings of scripts/kafka.sh (KAFKA_SASL_PORT, ...).
func startOwnBroker(t *testing.T, env ...string) *ownBroker {
	t.Helper()
	port, ctrl := freePort(t), freePort(t)
	dir := filepath.Join(t.TempDir(), "kafka")
	b := &ownBroker{
		Broker: &kafkatest.Broker{Addrs: []string{fmt.Sprintf("127.0.0.1:%d", port)}, Kind: kafkatest.Real},
		env: append(append(os.Environ(), fmt.Sprintf("KAFKA_PORT=%d", port), fmt.Sprintf("KAFKA_CONTROLLER_PORT=%d", ctrl),
			"KAFKA_DIR="+dir, "KAFKA_HEAP=384m"), env...),
		dir: dir,
	}
	b.script(t, "up")
	t.Cleanup(func() { b.script(t, "down") })
	return b
}

func (b *ownBroker) script(t *testing.T, cmd string, env ...string) {
	t.Helper()
	c := exec.Command("bash", "../../scripts/kafka.sh", cmd)
	c.Env = append(b.env, env...)
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("kafka.sh %s: %v\n%s", cmd, err, out)
	}
}

func (b *ownBroker) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(b.dir, "pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, sig); err != nil {
		t.Fatalf("signal %v to the broker: %v", sig, err)
	}
}

// TestBrokerOutages runs the pass-through pipeline while its broker is first paused (SIGSTOP) for
// two minutes, then killed and started again on the same data after 20 s. streamd must not exit,
// must say it is not ready while it cannot commit, and must end with every input exactly once in
// the outputs.
func TestBrokerOutages(t *testing.T) {
	if testing.Short() {
		t.Skip("long: pauses a broker for 2 minutes")
	}
	kafkatest.Start(t).RequireReal(t, "starts, pauses and restarts a broker of its own from the Apache Kafka jars")
	b := startOwnBroker(t)
	src := b.Topic(t, "tx", 4)
	clean, dlq, app := kafkatest.Name(t, "clean"), kafkatest.Name(t, "dlq"), kafkatest.Name(t, "app")
	cfgPath := writeConfig(t, b.Broker, app, src, clean, dlq)
	adminPort := freePort(t)
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg = []byte(strings.Replace(string(cfg), "listen: 127.0.0.1:0", fmt.Sprintf("listen: 127.0.0.1:%d", adminPort), 1))
	if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(t.TempDir(), "streamd.log")
	t.Cleanup(func() {
		if t.Failed() {
			data, _ := os.ReadFile(logPath)
			if len(data) > 30000 {
				data = data[len(data)-30000:]
			}
			t.Logf("streamd log (tail):\n%s", data)
		}
	})
	const pause, down = 2 * time.Minute, 20 * time.Second
	n, rate := 60_000, 300.0 // input keeps flowing across both outages
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	prodDone := make(chan error, 1)
	go func() {
		prodDone <- produceInput(ctx, t, b.Client(t, kgo.ProducerLinger(5*time.Millisecond)), src, n, rate, 0.02, 13)
	}()
	proc := start(t, logPath, nil, streamdBin, "run", "-config", cfgPath)
	alive := func(phase string) {
		t.Helper()
		if err := proc.exited(); err != nil {
			t.Fatalf("streamd exited %s: %v", phase, err)
		}
	}
	waitReady := func(within time.Duration, phase string) {
		t.Helper()
		deadline := time.Now().Add(within)
		for readyz(adminPort) != http.StatusOK {
			alive(phase)
			if time.Now().After(deadline) {
				t.Fatalf("streamd not ready within %s %s", within, phase)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitReady(time.Minute, "after its start")
	time.Sleep(10 * time.Second)

	// A paused broker: connections stay open, nothing answers.
	b.signal(t, syscall.SIGSTOP)
	t.Logf("broker paused for %s", pause)
	notReady := false
	for end := time.Now().Add(pause); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
		alive("while the broker was paused")
		if readyz(adminPort) != http.StatusOK {
			notReady = true
		}
	}
	b.signal(t, syscall.SIGCONT)
	if !notReady {
		t.Error("/readyz answered 200 throughout a 2-minute broker pause")
	}
	waitReady(2*time.Minute, "after the broker resumed")
	t.Log("ready again after the pause")
	time.Sleep(10 * time.Second)

	// A crashed broker that comes back on the same data.
	t.Logf("broker killed, back after %s", down)
	b.script(t, "restart", fmt.Sprintf("KAFKA_DOWN_SECONDS=%d", int(down.Seconds())))
	alive("while the broker was down")
	waitReady(2*time.Minute, "after the broker restarted")
	t.Log("ready again after the restart")

	if err := <-prodDone; err != nil {
		t.Fatalf("producing the input: %v", err)
	}
	b.WaitCaughtUp(t, app, src, 3*time.Minute, proc.exited)
	proc.stop(t)
	logData, _ := os.ReadFile(logPath)
	warnings := map[string]int{}
	for _, line := range strings.Split(string(logData), "\n") {
		var l struct{ Level, Msg string }
		if json.Unmarshal([]byte(line), &l) == nil && l.Level == "WARN" {
			warnings[l.Msg]++
		}
	}
	if len(warnings) == 0 {
		t.Error("no WARN line in the log across two broker outages")
	}
	for msg, n := range warnings {
		t.Logf("WARN ×%d: %s", n, msg)
	}
	rep := verify(b.ReadCommitted(t, src, time.Minute), b.ReadCommitted(t, clean, time.Minute), b.ReadCommitted(t, dlq, time.Minute))
	t.Logf("verifier: %s", rep)
	if rep.inputs != n || !rep.ok() {
		t.Errorf("exactly-once violated: %s", rep)
	}
}
