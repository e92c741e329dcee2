package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// broker is the Kafka broker of a chaos run: one of its own, started by scripts/kafka.sh on free
// ports with its data in the run's directory (so that it can be killed and restarted without
// disturbing anyone else's broker), or an external one given by -brokers, which is never restarted.
type broker struct {
	addrs []string
	env   []string // kafka.sh's environment; nil for an external broker
}

// startBroker starts a broker of the run's own under dir.
func startBroker(dir string) (*broker, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	ctrl, err := freePort()
	if err != nil {
		return nil, err
	}
	b := &broker{
		addrs: []string{fmt.Sprintf("127.0.0.1:%d", port)},
		env: append(os.Environ(), fmt.Sprintf("KAFKA_PORT=%d", port), fmt.Sprintf("KAFKA_CONTROLLER_PORT=%d", ctrl),
			"KAFKA_DIR="+filepath.Join(dir, "kafka"), "KAFKA_HEAP=512m"),
	}
	return b, b.script("up")
}

// own reports whether the broker is the run's own, which it may restart.
func (b *broker) own() bool { return b.env != nil }

// restart kills the broker with SIGKILL and starts it again on the same data after downSeconds;
// it returns once the broker listens again.
func (b *broker) restart(downSeconds int) error {
	return b.script("restart", fmt.Sprintf("KAFKA_DOWN_SECONDS=%d", downSeconds))
}

// stop stops the run's own broker and removes its data.
func (b *broker) stop() error {
	if !b.own() {
		return nil
	}
	return b.script("down")
}

func (b *broker) script(cmd string, env ...string) error {
	c := exec.Command("bash", "scripts/kafka.sh", cmd)
	c.Env = append(b.env, env...)
	if out, err := c.CombinedOutput(); err != nil {
		return fmt.Errorf("kafka.sh %s: %w\n%s", cmd, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
