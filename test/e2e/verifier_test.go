package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/stream"
	"github.com/streamd/streamd/test/kafkatest"
)

const roleEnv = "STREAMD_E2E_ROLE"

// atLeastOnceMain is a deliberately weaker pipeline, run as a subprocess of the test binary: it
// routes each record as streamd would (by the generator's ground truth) but produces without a
// transaction and commits offsets only after a flush, once a second — the classic at-least-once
// consumer. Killed mid-stream, it must leave duplicates behind, which the verifier has to find.
func atLeastOnceMain() int {
	brokers := strings.Split(os.Getenv("E2E_BROKERS"), ",")
	src, clean, dlq, group := os.Getenv("E2E_SRC"), os.Getenv("E2E_CLEAN"), os.Getenv("E2E_DLQ"), os.Getenv("E2E_GROUP")
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(src),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.InstanceID("alo-1"),
		kgo.SessionTimeout(6*time.Second),
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx := context.Background()
	last := time.Now()
	for {
		pollCtx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		fs := cl.PollFetches(pollCtx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			out := &kgo.Record{Topic: clean, Key: r.Key, Value: r.Value, Headers: []kgo.RecordHeader{
				{Key: stream.HeaderSourcePartition, Value: []byte(strconv.Itoa(int(r.Partition)))},
				{Key: stream.HeaderSourceOffset, Value: []byte(strconv.FormatInt(r.Offset, 10))},
			}}
			if kafkatest.Header(r, badHeader) != "" {
				out.Topic = dlq
			}
			cl.Produce(ctx, out, nil)
		})
		if time.Since(last) > time.Second {
			if err := cl.Flush(ctx); err == nil {
				_ = cl.CommitUncommittedOffsets(ctx)
			}
			last = time.Now()
		}
	}
}

// TestVerifierCatchesAtLeastOnce shows that the exactly-once verifier can fail: the same kills
// against an at-least-once consumer leave duplicates, and the verifier reports them.
func TestVerifierCatchesAtLeastOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("long: kills and restarts a consumer for ~15 s")
	}
	b := kafkatest.Start(t)
	src, clean, dlq := b.Topic(t, "tx", 4), b.Topic(t, "clean", 4), b.Topic(t, "dlq", 4)
	group := kafkatest.Name(t, "group")
	logPath := filepath.Join(t.TempDir(), "alo.log")
	env := []string{roleEnv + "=at-least-once", "E2E_BROKERS=" + strings.Join(b.Addrs, ","),
		"E2E_SRC=" + src, "E2E_CLEAN=" + clean, "E2E_DLQ=" + dlq, "E2E_GROUP=" + group}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const n = 15_000
	prodDone := make(chan error, 1)
	go func() { prodDone <- produceInput(ctx, t, b.Client(t), src, n, 2000, 0.03, 11) }()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	proc := start(t, logPath, env, self, "-test.run=^$")
	for range 4 {
		time.Sleep(time.Duration(1500+rng.IntN(1000)) * time.Millisecond)
		proc.kill(t)
		proc = start(t, logPath, env, self, "-test.run=^$")
	}
	if err := <-prodDone; err != nil {
		t.Fatal(err)
	}
	b.WaitCaughtUp(t, group, src, time.Minute, proc.exited)
	_ = proc.cmd.Process.Signal(syscall.SIGKILL)
	<-proc.done

	rep := verify(b.ReadCommitted(t, src, time.Minute), b.ReadCommitted(t, clean, time.Minute), b.ReadCommitted(t, dlq, time.Minute))
	t.Logf("verifier on the at-least-once run: %s", rep)
	if rep.ok() || len(rep.duplicated) == 0 {
		t.Fatalf("the verifier found no duplicates in an at-least-once run killed 4 times: it cannot fail")
	}
	if len(rep.missing) > 0 {
		t.Errorf("at-least-once lost records, which it must not: %v", rep.missing[:min(5, len(rep.missing))])
	}
}
