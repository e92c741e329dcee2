package e2e

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/stream"
	"github.com/streamd/streamd/test/kafkatest"
)

// TestSecondInstanceWithTheSameIDFencesTheFirst starts a second daemon with the same app and
// instance id while the first one runs and input flows, as a botched deployment does. The second
// instance's start fences the first one's transactional producer and takes its static group
// membership, so the first must stop, within a bounded time, with an error that says why
// (stream.ErrInstanceFenced), rather than restart its session and fence the second in turn: two
// instances fencing each other forever would make no progress. The second must keep running, and
// in the end every input is in the outputs exactly once.
func TestSecondInstanceWithTheSameIDFencesTheFirst(t *testing.T) {
	if testing.Short() {
		t.Skip("long: runs two daemons for about half a minute")
	}
	b := kafkatest.Start(t)
	n, rate := 40_000, 2000.0
	src := b.Topic(t, "tx", 4)
	clean, dlq, app := kafkatest.Name(t, "clean"), kafkatest.Name(t, "dlq"), kafkatest.Name(t, "app")
	cfgPath := writeConfig(t, b, app, src, clean, dlq) // both instances: instance_id crash-1
	logs := map[string]string{"older": filepath.Join(t.TempDir(), "older.log"), "newer": filepath.Join(t.TempDir(), "newer.log")}
	t.Cleanup(func() {
		if t.Failed() {
			for name, l := range logs {
				data, _ := os.ReadFile(l)
				if len(data) > 15000 {
					data = data[len(data)-15000:]
				}
				t.Logf("%s instance log (tail):\n%s", name, data)
			}
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	prodDone := make(chan error, 1)
	go func() {
		prodDone <- produceInput(ctx, t, b.Client(t, kgo.ProducerLinger(5*time.Millisecond)), src, n, rate, 0.03, 17)
	}()
	adm := kadm.NewClient(b.Client(t))
	committed := func() int64 {
		offsets, err := adm.FetchOffsetsForTopics(ctx, app, src)
		if err != nil {
			return -1
		}
		var sum int64
		offsets.Each(func(o kadm.OffsetResponse) { sum += max(o.At, 0) })
		return sum
	}

	older := start(t, logs["older"], nil, streamdBin, "run", "-config", cfgPath)
	deadline := time.Now().Add(time.Minute)
	for committed() <= 0 {
		if err := older.exited(); err != nil {
			t.Fatalf("the older instance exited before it committed anything: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the older instance committed nothing within a minute")
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // well into its run, with transactions open
	before := committed()
	newer := start(t, logs["newer"], nil, streamdBin, "run", "-config", cfgPath)
	started := time.Now()
	t.Logf("started the newer instance with the same instance id; %d offsets committed by the older", before)

	// The older instance learns it is fenced at its next commit or heartbeat; the bound leaves
	// room for a session timeout (6 s) and a transaction timeout (10 s) on a busy machine.
	const bound = 45 * time.Second
	var olderErr error
	select {
	case olderErr = <-older.done:
		older.done <- olderErr
	case <-time.After(bound):
		older.kill(t)
		t.Fatalf("the older instance still ran %s after a newer one with its instance id started", bound)
	}
	took := time.Since(started)
	var exit *exec.ExitError
	if !errors.As(olderErr, &exit) || exit.ExitCode() <= 0 {
		t.Errorf("the older instance exited with %v, want a non-zero exit code", olderErr)
	}
	olderLog, _ := os.ReadFile(logs["older"])
	fenced := strings.TrimPrefix(stream.ErrInstanceFenced.Error(), "stream: ")
	if !strings.Contains(string(olderLog), fenced) {
		t.Errorf("the older instance's log does not say %q", fenced)
	}
	t.Logf("the older instance exited %s after the newer started: %v", took.Round(100*time.Millisecond), olderErr)
	for _, line := range strings.Split(string(olderLog), "\n") {
		if strings.Contains(line, fenced) {
			t.Logf("older: %s", line)
			break
		}
	}

	if err := <-prodDone; err != nil {
		t.Fatalf("producing the input: %v", err)
	}
	b.WaitCaughtUp(t, app, src, 2*time.Minute, newer.exited)
	if err := newer.exited(); err != nil {
		t.Fatalf("the newer instance exited: %v", err)
	}
	newer.stop(t)
	newerLog, _ := os.ReadFile(logs["newer"])
	if strings.Contains(string(newerLog), fenced) {
		t.Errorf("the newer instance was fenced too: the two fenced each other")
	}
	for name, data := range map[string][]byte{"older": olderLog, "newer": newerLog} {
		if restarts := strings.Count(string(data), `"msg":"the Kafka session failed`); restarts > 0 {
			t.Logf("the %s instance restarted its Kafka session %d times", name, restarts)
		}
	}

	rep := verify(b.ReadCommitted(t, src, time.Minute), b.ReadCommitted(t, clean, time.Minute), b.ReadCommitted(t, dlq, time.Minute))
	t.Logf("verifier: %s", rep)
	if rep.inputs != n {
		t.Errorf("read %d inputs, produced %d", rep.inputs, n)
	}
	if !rep.ok() {
		t.Errorf("exactly-once violated: %s", rep)
	}
}
