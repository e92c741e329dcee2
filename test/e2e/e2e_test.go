// Package e2e runs the streamd binary as a subprocess against a broker and checks its end-to-end
// guarantees under SIGKILL: every input accounted for exactly once in the committed outputs.
package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/internal/gen"
	"github.com/streamd/streamd/stream"
	"github.com/streamd/streamd/test/kafkatest"
)

var streamdBin string

func TestMain(m *testing.M) {
	if os.Getenv(roleEnv) == "at-least-once" {
		os.Exit(atLeastOnceMain())
	}
	dir, err := os.MkdirTemp("", "streamd-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	streamdBin = filepath.Join(dir, "streamd")
	build := exec.Command("go", "build", "-race", "-o", streamdBin, "../../cmd/streamd")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building streamd:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// badHeader marks, on a source record, the defect the generator gave it: the ground truth the
// verifier checks the dead-letter topic against.
const badHeader = "e2e-bad"

// produceInput produces n generated records (about badRatio of them broken) at rate records/s and
// returns when all are acknowledged.
func produceInput(ctx context.Context, t *testing.T, cl *kgo.Client, topic string, n int, rate float64, badRatio float64, seed int64) error {
	return produceInputWith(ctx, cl, topic, n, 5000, time.Second, rate, badRatio, seed)
}

// produceInputWith produces n generated records over keys cards at rate records/s. Event times
// trail the clock by up to outOfOrder.
func produceInputWith(ctx context.Context, cl *kgo.Client, topic string, n, keys int, outOfOrder time.Duration, rate float64, badRatio float64, seed int64) error {
	return produceGenerated(ctx, cl, topic, n, rate, gen.Config{Seed: seed, Keys: keys, BadRatio: badRatio, OutOfOrder: outOfOrder}, nil)
}

// produceGenerated produces n records of a generator at rate records/s, marking each broken one with
// badHeader (the verifier's ground truth); edit, if set, may rewrite a valid record first.
func produceGenerated(ctx context.Context, cl *kgo.Client, topic string, n int, rate float64, cfg gen.Config, edit func(*kgo.Record, gen.Record)) error {
	g, err := gen.New(cfg)
	if err != nil {
		return err
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	start := time.Now()
	for i := 0; i < n; i++ {
		if rate > 0 && i%50 == 0 {
			if ahead := time.Duration(float64(i)/rate*float64(time.Second)) - time.Since(start); ahead > 0 {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(ahead):
				}
			}
		}
		now := time.Now()
		rec := g.Next(now)
		r := &kgo.Record{Topic: topic, Key: rec.Key, Value: rec.Value, Timestamp: now}
		if rec.Bad != gen.NotBad {
			r.Headers = []kgo.RecordHeader{{Key: badHeader, Value: []byte(rec.Bad.String())}}
		} else if edit != nil {
			edit(r, rec)
		}
		wg.Add(1)
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return firstErr
}

// report is what the verifier found.
type report struct {
	inputs, valid, bad    int
	missing, duplicated   []string
	misplaced, unexpected []string
	cleanCount, deadCount int
}

func (r report) ok() bool {
	return len(r.missing)+len(r.duplicated)+len(r.misplaced)+len(r.unexpected) == 0
}

func (r report) String() string {
	head := func(s []string) string {
		sort.Strings(s)
		if len(s) > 5 {
			return strings.Join(s[:5], " ") + fmt.Sprintf(" ... (%d)", len(s))
		}
		return strings.Join(s, " ")
	}
	return fmt.Sprintf("inputs %d (valid %d, bad %d); clean %d, dead letters %d; missing [%s]; duplicated [%s]; in the wrong topic [%s]; not from any input [%s]",
		r.inputs, r.valid, r.bad, r.cleanCount, r.deadCount, head(r.missing), head(r.duplicated), head(r.misplaced), head(r.unexpected))
}

// verify checks that every source record appears exactly once among the outputs: in the clean topic
// when it is valid, in the dead-letter topic when the generator broke it. Outputs are matched to
// inputs by their lineage headers (source partition and offset).
func verify(src, clean, dead []*kgo.Record) report {
	type pos struct {
		p int32
		o int64
	}
	lineage := func(r *kgo.Record) (pos, bool) {
		p, err1 := strconv.Atoi(kafkatest.Header(r, stream.HeaderSourcePartition))
		o, err2 := strconv.ParseInt(kafkatest.Header(r, stream.HeaderSourceOffset), 10, 64)
		return pos{int32(p), o}, err1 == nil && err2 == nil
	}
	inClean, inDead := map[pos]int{}, map[pos]int{}
	var rep report
	rep.cleanCount, rep.deadCount = len(clean), len(dead)
	for _, r := range clean {
		if at, ok := lineage(r); ok {
			inClean[at]++
		} else {
			rep.unexpected = append(rep.unexpected, "clean:"+string(r.Key))
		}
	}
	for _, r := range dead {
		if at, ok := lineage(r); ok {
			inDead[at]++
		} else {
			rep.unexpected = append(rep.unexpected, "dead:"+string(r.Key))
		}
	}
	for _, r := range src {
		at := pos{r.Partition, r.Offset}
		name := fmt.Sprintf("%d@%d", at.p, at.o)
		bad := kafkatest.Header(r, badHeader) != ""
		rep.inputs++
		want, other := inClean, inDead
		if bad {
			rep.bad++
			want, other = inDead, inClean
		} else {
			rep.valid++
		}
		switch n := want[at]; {
		case n == 0 && other[at] == 0:
			rep.missing = append(rep.missing, name)
		case n > 1:
			rep.duplicated = append(rep.duplicated, name)
		}
		if other[at] > 0 {
			rep.misplaced = append(rep.misplaced, name)
		}
		delete(inClean, at)
		delete(inDead, at)
	}
	for at := range inClean {
		rep.unexpected = append(rep.unexpected, fmt.Sprintf("clean:%d@%d", at.p, at.o))
	}
	for at := range inDead {
		rep.unexpected = append(rep.unexpected, fmt.Sprintf("dead:%d@%d", at.p, at.o))
	}
	return rep
}

// process is one run of a subprocess, with its output appended to a log file.
type process struct {
	cmd  *exec.Cmd
	done chan error
}

func start(t *testing.T, logPath string, env []string, name string, args ...string) *process {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(logf, "\n===== start %s =====\n", time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait(); logf.Close() }()
	return p
}

// exited returns the process's exit error if it has exited, for WaitCaughtUp.
func (p *process) exited() error {
	select {
	case err := <-p.done:
		p.done <- err
		return fmt.Errorf("process exited: %v", err)
	default:
		return nil
	}
}

// stop ends the process with SIGTERM, as an operator does, and fails the test unless it exits
// cleanly within 30 s (a clean exit commits the open transaction first).
func (p *process) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Errorf("streamd did not exit cleanly on SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("streamd did not exit within 30 s of SIGTERM")
		p.kill(t)
	}
}

func (p *process) kill(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// txnState returns the broker's state of a transactional id ("Ongoing", "CompleteCommit", ...).
func txnState(ctx context.Context, adm *kadm.Client, id string) string {
	ds, err := adm.DescribeTransactions(ctx, id)
	if err != nil {
		return "unknown: " + err.Error()
	}
	d, ok := ds[id]
	if !ok {
		return "unknown"
	}
	return d.State
}

// killDuringTransactions SIGKILLs proc kills times, each a random 1.5-4 s after the last start and
// then once its transaction txnID is Ongoing (on a loaded machine a restarted instance can take
// longer than the wait to rejoin, restore and open its first one), restarting it with restart after
// each kill. It returns the running instance and how many kills landed inside an open transaction.
func killDuringTransactions(ctx context.Context, t *testing.T, adm *kadm.Client, proc *process, txnID string, kills int, seed uint64, restart func() *process) (*process, int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), seed))
	midTxn := 0
	for i := 0; i < kills; i++ {
		time.Sleep(time.Duration(1500+rng.IntN(2500)) * time.Millisecond)
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if txnState(ctx, adm, txnID) == "Ongoing" {
				break
			}
		}
		if err := proc.exited(); err != nil {
			t.Fatalf("streamd died by itself before kill %d: %v", i+1, err)
		}
		proc.kill(t)
		if txnState(ctx, adm, txnID) == "Ongoing" {
			midTxn++
		}
		proc = restart()
	}
	return proc, midTxn
}

// cardFields declares the generator's transaction fields (source.fields) in the test pipelines:
// the rules that make each of gen's broken kinds a dead letter.
const cardFields = `    amount: {type: number, required: true, min: 0}
    merchant: {type: string, max_length: 64}
    country: {type: string, max_length: 2}
    channel: {type: string, values: [pos, online, atm]}
    mcc: {type: number, min: 0, max: 9999}
`

func writeConfig(t *testing.T, b *kafkatest.Broker, app, src, clean, dlq string) string {
	t.Helper()
	cfg := fmt.Sprintf(`app: %s
instance_id: crash-1
kafka:
  brokers: [%s]
  commit_interval: 100ms
  transaction_timeout: 10s
  session_timeout: 6s
  shutdown_timeout: 10s
source:
  topic: %s
  key: card_id
  event_id: event_id
  event_time: {field: event_time, format: rfc3339, max_future: 1h}
  max_record_bytes: 64KiB
  fields:
`+cardFields+`outputs:
  clean: %s
  dead_letters: %s
admin:
  listen: 127.0.0.1:0
log:
  level: info
  format: json
`, app, strings.Join(b.Addrs, ","), src, clean, dlq)
	path := filepath.Join(t.TempDir(), "pipeline.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestExactlyOnceUnderSIGKILL is the exactly-once proof of the pass-through path: while input flows,
// the daemon is killed with SIGKILL at random moments and restarted; afterwards a read_committed
// consumer must find every valid input exactly once in the clean topic and every broken one exactly
// once in the dead-letter topic. The test also checks that kills landed inside open transactions.
func TestExactlyOnceUnderSIGKILL(t *testing.T) {
	b := kafkatest.Start(t)
	n, rate, kills := 100_000, 2500.0, 6
	if b.Kind == kafkatest.Fake {
		n, rate, kills = 20_000, 2000.0, 5 // kfake is in-process: a smaller run proves the mechanics
	}
	if testing.Short() {
		t.Skip("long: kills and restarts a daemon for ~45 s")
	}
	src := b.Topic(t, "tx", 4)
	clean, dlq, app := kafkatest.Name(t, "clean"), kafkatest.Name(t, "dlq"), kafkatest.Name(t, "app")
	cfgPath := writeConfig(t, b, app, src, clean, dlq)
	logPath := filepath.Join(t.TempDir(), "streamd.log")
	t.Cleanup(func() {
		if t.Failed() {
			data, _ := os.ReadFile(logPath)
			if len(data) > 20000 {
				data = data[len(data)-20000:]
			}
			t.Logf("streamd log (tail):\n%s", data)
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	prodDone := make(chan error, 1)
	go func() {
		prodDone <- produceInput(ctx, t, b.Client(t, kgo.ProducerLinger(5*time.Millisecond)), src, n, rate, 0.03, 7)
	}()

	adm := kadm.NewClient(b.Client(t))
	txnID := app + "-crash-1"
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	t.Logf("broker %s (%s); %d records at %.0f/s; seed of kill times printed per kill", b.Addrs, b.Kind, n, rate)
	proc := start(t, logPath, nil, streamdBin, "run", "-config", cfgPath)
	midTxn := 0
	for i := 0; i < kills; i++ {
		wait := time.Duration(1500+rng.IntN(2500)) * time.Millisecond
		select {
		case err := <-prodDone:
			prodDone <- err
			t.Logf("input finished before kill %d", i+1)
		case <-time.After(wait):
		}
		if err := proc.exited(); err != nil {
			t.Fatalf("streamd died by itself before kill %d: %v", i+1, err)
		}
		proc.kill(t)
		state := txnState(ctx, adm, txnID)
		if state == "Ongoing" {
			midTxn++
		}
		t.Logf("kill %d after %s: transaction state %s", i+1, wait, state)
		proc = start(t, logPath, nil, streamdBin, "run", "-config", cfgPath)
	}
	if err := <-prodDone; err != nil {
		t.Fatalf("producing the input: %v", err)
	}
	b.WaitCaughtUp(t, app, src, 2*time.Minute, proc.exited)
	proc.stop(t)
	if midTxn < 3 {
		t.Errorf("only %d of %d kills landed inside an open transaction; the test proves little", midTxn, kills)
	}

	rep := verify(b.ReadCommitted(t, src, time.Minute), b.ReadCommitted(t, clean, time.Minute), b.ReadCommitted(t, dlq, time.Minute))
	t.Logf("verifier: %s", rep)
	if rep.inputs != n {
		t.Errorf("read %d inputs, produced %d", rep.inputs, n)
	}
	if rep.bad == 0 {
		t.Error("no broken inputs: the dead-letter path was not exercised")
	}
	if !rep.ok() {
		t.Errorf("exactly-once violated: %s", rep)
	}
}
