package stream

// The fatal error paths of Run, and the produce failures that must abort their cycle. Each test runs
// the real runtime against kafkatest's broker and checks, with a read_committed consumer and the
// group's committed offsets, that no cycle committed without its outputs: every input before the
// committed offset has exactly one output, and none at or after it has any.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/state"
	"github.com/streamd/streamd/test/kafkatest"
)

// syncBuffer is a log sink that the runtime's goroutines may write concurrently.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// fatalFormat decodes {"id": ..., "k": ..., "ts": epoch ms, "pad": ...}.
func fatalFormat() *JSONFormat {
	return &JSONFormat{
		KeyField:       "k",
		IDField:        "id",
		Time:           EventTimeSpec{Field: "ts", Format: TimeEpochMillis, MaxFuture: time.Hour, NotBefore: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)},
		MaxRecordBytes: 64 << 10,
	}
}

// sent is an input the test produced: its event id and where it landed.
type sent struct {
	id        string
	partition int32
	offset    int64
}

// produceInputs produces n events with ids from, from+1, ..., on 13 keys; about pad bytes of
// random padding go into the event whose id is padID.
func produceInputs(t *testing.T, b *kafkatest.Broker, topic string, from, n int, padID string, pad int) []sent {
	t.Helper()
	now := time.Now().UnixMilli()
	recs := make([]*kgo.Record, n)
	for i := range n {
		id := fmt.Sprintf("e-%05d", from+i)
		p := ""
		if id == padID {
			// Random, so that the producer's compression cannot shrink it.
			raw := make([]byte, pad*3/4)
			_, _ = rand.Read(raw)
			p = base64.StdEncoding.EncodeToString(raw)
		}
		v := fmt.Sprintf(`{"id":%q,"k":"k%d","ts":%d,"pad":%q}`, id, (from+i)%13, now+int64(i), p)
		recs[i] = &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "k%d", (from+i)%13), Value: []byte(v)}
	}
	res := b.Client(t).ProduceSync(context.Background(), recs...)
	if err := res.FirstErr(); err != nil {
		t.Fatalf("produce inputs: %v", err)
	}
	// Results come in the order the promises ran, not the order of recs.
	out := make([]sent, n)
	for _, r := range res {
		id := eventIDOf(t, r.Record.Value)
		i, err := strconv.Atoi(strings.TrimPrefix(id, "e-"))
		if err != nil {
			t.Fatal(err)
		}
		out[i-from] = sent{id: id, partition: r.Record.Partition, offset: r.Record.Offset}
	}
	return out
}

// running is a Run in a goroutine of the test.
type running struct {
	rt     *Runtime
	reg    *prometheus.Registry
	logs   *syncBuffer
	cancel context.CancelFunc
	done   chan error
}

func fatalConfig(b *kafkatest.Broker, dir string) Config {
	return Config{
		Brokers:        b.Addrs,
		InstanceID:     "i1",
		CommitInterval: 50 * time.Millisecond,
		CommitRecords:  100,
		SessionTimeout: 6 * time.Second,
		CreateTopics:   true,
		StateDir:       dir,
	}
}

// start runs p in a goroutine; setup, if any, sees the runtime before Run.
func start(t *testing.T, p *Pipeline, cfg Config, setup ...func(*Runtime)) *running {
	t.Helper()
	logs := &syncBuffer{}
	var w io.Writer = logs
	if testing.Verbose() || os.Getenv("STREAMD_TEST_LOG") != "" {
		w = io.MultiWriter(logs, os.Stderr)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	rt, err := NewRuntime(p, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range setup {
		f(rt)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{rt: rt, reg: reg, logs: logs, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- rt.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-r.done
		r.done <- nil
	})
	return r
}

// wait returns Run's error, failing the test if Run does not return within timeout.
func (r *running) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(timeout):
		t.Fatalf("Run did not return within %s", timeout)
		return nil
	}
}

// stopped reports an early return of Run, for kafkatest.WaitCaughtUp.
func (r *running) stopped() error {
	select {
	case err := <-r.done:
		r.done <- err
		return fmt.Errorf("runtime returned early: %v", err)
	default:
		return nil
	}
}

// stop cancels Run and returns its error.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	return r.wait(t, 30*time.Second)
}

// committedOffsets returns the group's committed offset of every partition of topic.
func committedOffsets(t *testing.T, b *kafkatest.Broker, group, topic string) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(b.Client(t)).FetchOffsetsForTopics(ctx, group, topic)
	if err != nil {
		t.Fatalf("fetch offsets: %v", err)
	}
	out := map[int32]int64{}
	resp.Each(func(o kadm.OffsetResponse) {
		out[o.Partition] = max(o.At, 0)
	})
	return out
}

// checkCommittedOutputs checks the invariant: every input before its partition's committed offset
// has exactly one output in topic, and no input at or after it has any. It returns how many inputs
// were before the committed offsets.
func checkCommittedOutputs(t *testing.T, b *kafkatest.Broker, group, src, topic string, in []sent) int {
	t.Helper()
	committed := committedOffsets(t, b, group, src)
	counts := map[string]int{}
	for _, r := range b.ReadCommitted(t, topic, 30*time.Second) {
		counts[eventIDOf(t, r.Value)]++
	}
	accepted := 0
	for _, x := range in {
		want := 0
		if x.offset < committed[x.partition] {
			want = 1
			accepted++
		}
		if counts[x.id] != want {
			t.Errorf("input %s (%d@%d, committed offset %d) has %d outputs in %s, want %d",
				x.id, x.partition, x.offset, committed[x.partition], counts[x.id], topic, want)
		}
	}
	return accepted
}

func eventIDOf(t *testing.T, v []byte) string {
	t.Helper()
	s := string(v)
	i := strings.Index(s, `"id":"`)
	if i < 0 {
		t.Fatalf("no id in %s", s)
	}
	s = s[i+len(`"id":"`):]
	return s[:strings.IndexByte(s, '"')]
}

// failingOp fails (with a plain error, not a Rejection) on the event with id failID.
type failingOp struct {
	failID string
	err    error
}

func (o *failingOp) Name() string                  { return "failing" }
func (o *failingOp) Open(*Task) (Processor, error) { return o, nil }
func (o *failingOp) Close() error                  { return nil }
func (o *failingOp) Process(_ *Task, ev *Event) error {
	if string(ev.ID) == o.failID {
		return o.err
	}
	return nil
}

// countOp keeps a count per key in the store "counts" and emits each event's value to Topic.
// When the event with id closeDBOn arrives, it closes the task's state database underneath the
// task, so that the cycle's state commit fails (state: closed). It reads the counts into memory
// first and goes on counting there, writing each new count to the store's cycle as before (writes
// stay in memory until the commit), so that nothing but the commit sees the closed database and the
// changelog holds the true counts.
type countOp struct {
	Topic     string
	closeDBOn string
}

type countProc struct {
	op  *countOp
	s   *state.Store
	mem map[string]int // after the close
}

func (o *countOp) Name() string           { return "count" }
func (o *countOp) Stores() []string       { return []string{"counts"} }
func (o *countOp) OutputTopics() []string { return []string{o.Topic} }
func (o *countOp) Open(t *Task) (Processor, error) {
	s, err := t.Store("counts")
	if err != nil {
		return nil, err
	}
	return &countProc{op: o, s: s}, nil
}

func (p *countProc) Close() error { return nil }

func (p *countProc) get(key []byte) (int, error) {
	if p.mem != nil {
		return p.mem[string(key)], nil
	}
	v, ok, err := p.s.Get(key)
	if err != nil || !ok {
		return 0, err
	}
	return strconv.Atoi(string(v))
}

func (p *countProc) Process(t *Task, ev *Event) error {
	if p.op.closeDBOn != "" && string(ev.ID) == p.op.closeDBOn {
		mem := map[string]int{}
		for k := range 13 {
			key := fmt.Sprintf("k%d", k)
			n, err := p.get([]byte(key))
			if err != nil {
				return err
			}
			mem[key] = n
		}
		p.mem = mem
		if err := t.db.Close(); err != nil {
			return err
		}
	}
	n, err := p.get(ev.Key)
	if err != nil {
		return err
	}
	if p.mem != nil {
		p.mem[string(ev.Key)] = n + 1
	}
	p.s.Set(ev.Key, strconv.AppendInt(nil, int64(n+1), 10))
	t.Emit(p.op.Topic, ev.Key, ev.Record.Value, ev.Time)
	return nil
}

// TestRunReturnsOperatorError: a processor that returns a plain error makes Run return it, wrapped
// with the operator and the record, after aborting the cycle (this used to overflow the stack:
// endCycle called fail, which called endCycle). Under -race it also covers the poll loop's look at
// the task's error while the task runs.
func TestRunReturnsOperatorError(t *testing.T) {
	b := kafkatest.Start(t)
	src := b.Topic(t, "src", 3)
	app, out, dlq := kafkatest.Name(t, "app"), kafkatest.Name(t, "out"), kafkatest.Name(t, "dlq")
	in := produceInputs(t, b, src, 0, 600, "", 0)
	boom := errors.New("boom")
	r := start(t, &Pipeline{
		Name:            app,
		Source:          Source{Topic: src, Format: fatalFormat()},
		Operators:       []Operator{&Forward{Topic: out}, &failingOp{failID: "e-00450", err: boom}},
		DeadLetterTopic: dlq,
	}, fatalConfig(b, t.TempDir()))

	err := r.wait(t, 60*time.Second)
	if !errors.Is(err, boom) {
		t.Fatalf("Run returned %v, want an error wrapping %v", err, boom)
	}
	if !strings.Contains(err.Error(), "operator failing") {
		t.Errorf("the error does not name the operator: %v", err)
	}
	if r.rt.Ready() {
		t.Error("Ready after Run returned")
	}
	checkCommittedOutputs(t, b, app, src, out, in)
	failing := in[450]
	if c := committedOffsets(t, b, app, src)[failing.partition]; c > failing.offset {
		t.Errorf("committed offset %d of partition %d is past the failing record at %d", c, failing.partition, failing.offset)
	}
}

// TestRunReturnsStateCommitError: when the state commit after a committed transaction fails, Run
// returns the error. The Kafka side of that cycle is committed, so the local state is behind its
// changelog; a restart restores the tail and continues exactly once, which the second run checks
// through the counts the operator keeps.
func TestRunReturnsStateCommitError(t *testing.T) {
	b := kafkatest.Start(t)
	src := b.Topic(t, "src", 2)
	app, out, dlq := kafkatest.Name(t, "app"), kafkatest.Name(t, "out"), kafkatest.Name(t, "dlq")
	dir := t.TempDir()
	in := produceInputs(t, b, src, 0, 400, "", 0)
	pipeline := func(closeOn string) *Pipeline {
		return &Pipeline{
			Name:            app,
			Source:          Source{Topic: src, Format: fatalFormat()},
			Operators:       []Operator{&countOp{Topic: out, closeDBOn: closeOn}},
			DeadLetterTopic: dlq,
		}
	}
	r := start(t, pipeline("e-00250"), fatalConfig(b, dir))
	err := r.wait(t, 60*time.Second)
	if !errors.Is(err, state.ErrClosed) {
		t.Fatalf("Run returned %v, want an error wrapping %v", err, state.ErrClosed)
	}

	// A second run restores from the changelog and finishes the input.
	in = append(in, produceInputs(t, b, src, 400, 100, "", 0)...)
	r2 := start(t, pipeline(""), fatalConfig(b, dir))
	b.WaitCaughtUp(t, app, src, 60*time.Second, r2.stopped)
	if err := r2.stop(t); err != nil {
		t.Fatalf("second Run: %v", err)
	}
	if n := checkCommittedOutputs(t, b, app, src, out, in); n != len(in) {
		t.Errorf("%d of %d inputs have their output", n, len(in))
	}
	// The state went through the failed commit and the restore intact: each key's last count in
	// the changelog is its number of events.
	want := map[string]int{}
	for i := range in {
		want[fmt.Sprintf("k%d", i%13)]++
	}
	got := readCounts(t, b, app)
	for k, n := range want {
		if got[k] != n {
			t.Errorf("count of %s in the changelog is %d, want %d", k, got[k], n)
		}
	}
}

// readCounts returns the latest value of every key in the "counts" changelog.
func readCounts(t *testing.T, b *kafkatest.Broker, app string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, r := range b.ReadCommitted(t, state.ChangelogTopic(app, "counts"), 30*time.Second) {
		n, err := strconv.Atoi(string(r.Value))
		if err != nil {
			t.Fatalf("changelog value %q: %v", r.Value, err)
		}
		out[string(r.Key)] = n
	}
	return out
}

// TestRunStopsOnRecordTooLarge: an output larger than its topic's max.message.bytes cannot be
// written however often the cycle is tried again, so the cycle aborts and Run returns ErrProduce
// with the broker's error; nothing of the cycle is committed.
func TestRunStopsOnRecordTooLarge(t *testing.T) {
	b := kafkatest.Start(t)
	src := b.Topic(t, "src", 2)
	app, out, dlq := kafkatest.Name(t, "app"), kafkatest.Name(t, "out"), kafkatest.Name(t, "dlq")
	maxBytes := "8192"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(b.Client(t)).CreateTopic(ctx, 2, 1, map[string]*string{"max.message.bytes": &maxBytes}, out); err != nil {
		t.Fatal(err)
	}
	// Few small records per cycle, so that only the batch holding the large one is too large.
	in := produceInputs(t, b, src, 0, 40, "", 0)
	cfg := fatalConfig(b, t.TempDir())
	cfg.CommitRecords = 10
	r := start(t, &Pipeline{
		Name:            app,
		Source:          Source{Topic: src, Format: fatalFormat()},
		Operators:       []Operator{&Forward{Topic: out}},
		DeadLetterTopic: dlq,
	}, cfg)
	b.WaitCaughtUp(t, app, src, 60*time.Second, r.stopped)
	in = append(in, produceInputs(t, b, src, 40, 5, "e-00042", 20000)...)

	err := r.wait(t, 60*time.Second)
	if !errors.Is(err, ErrProduce) || !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("Run returned %v, want ErrProduce wrapping MESSAGE_TOO_LARGE", err)
	}
	if !strings.Contains(err.Error(), out) {
		t.Errorf("the error does not name the topic %s: %v", out, err)
	}
	if n := checkCommittedOutputs(t, b, app, src, out, in); n < 40 {
		t.Errorf("only %d inputs committed, want the first 40", n)
	}
	big := in[42]
	if c := committedOffsets(t, b, app, src)[big.partition]; c > big.offset {
		t.Errorf("committed offset %d is past the record whose output failed (%d)", c, big.offset)
	}
}

// deleteTopic deletes topic and waits until the broker no longer lists it.
func deleteTopic(t *testing.T, b *kafkatest.Broker, topic string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	adm := kadm.NewClient(b.Client(t))
	resp, err := adm.DeleteTopics(ctx, topic)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("delete %s: %v", topic, err)
	}
}

// TestOutputTopicRecreated: the output topic is deleted while streamd runs. With CreateTopics the
// runtime aborts the cycle whose records failed, creates the topic again and processes the input
// again: every later input has exactly one output, nothing committed without its outputs.
func TestOutputTopicRecreated(t *testing.T) {
	b := kafkatest.Start(t)
	src := b.Topic(t, "src", 3)
	app, out, dlq := kafkatest.Name(t, "app"), kafkatest.Name(t, "out"), kafkatest.Name(t, "dlq")
	first := produceInputs(t, b, src, 0, 200, "", 0)
	r := start(t, &Pipeline{
		Name:            app,
		Source:          Source{Topic: src, Format: fatalFormat()},
		Operators:       []Operator{&Forward{Topic: out}},
		DeadLetterTopic: dlq,
	}, fatalConfig(b, t.TempDir()))
	b.WaitCaughtUp(t, app, src, 60*time.Second, r.stopped)
	before := committedOffsets(t, b, app, src)

	deleteTopic(t, b, out)
	second := produceInputs(t, b, src, 200, 300, "", 0)
	b.WaitCaughtUp(t, app, src, 90*time.Second, r.stopped)
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	// The first inputs' outputs went with the deleted topic; every later one is there once.
	counts := map[string]int{}
	for _, rec := range b.ReadCommitted(t, out, 30*time.Second) {
		counts[eventIDOf(t, rec.Value)]++
	}
	for _, x := range second {
		if counts[x.id] != 1 {
			t.Errorf("input %s has %d outputs, want 1", x.id, counts[x.id])
		}
	}
	for _, x := range first {
		if x.offset >= before[x.partition] {
			t.Fatalf("input %s was not committed before the deletion", x.id)
		}
	}
	if got := testutil.ToFloat64(r.rt.m.produceFailures.WithLabelValues(out)); got == 0 {
		t.Error("streamd_produce_failures_total did not count the failed records")
	}
	if !strings.Contains(r.logs.String(), "level=WARN msg=\"output topics were missing") || !strings.Contains(r.logs.String(), out) {
		t.Errorf("no warning naming the recreated topic %s in the log:\n%s", out, r.logs.String())
	}
}

// TestOutputTopicMissingWaits: without CreateTopics, a deleted output topic stops every commit and
// makes the runtime unready until someone creates the topic; then the outputs resume, exactly once.
func TestOutputTopicMissingWaits(t *testing.T) {
	b := kafkatest.Start(t)
	src := b.Topic(t, "src", 2)
	out, dlq := b.Topic(t, "out", 2), b.Topic(t, "dlq", 2)
	app := kafkatest.Name(t, "app")
	first := produceInputs(t, b, src, 0, 100, "", 0)
	cfg := fatalConfig(b, t.TempDir())
	cfg.CreateTopics = false
	r := start(t, &Pipeline{
		Name:            app,
		Source:          Source{Topic: src, Format: fatalFormat()},
		Operators:       []Operator{&Forward{Topic: out}},
		DeadLetterTopic: dlq,
	}, cfg)
	b.WaitCaughtUp(t, app, src, 60*time.Second, r.stopped)
	if !r.rt.Ready() {
		t.Fatal("not ready after catching up")
	}
	before := committedOffsets(t, b, app, src)

	deleteTopic(t, b, out)
	second := produceInputs(t, b, src, 100, 100, "", 0)
	waitFor(t, 60*time.Second, "the runtime to become unready", func() bool {
		if err := r.stopped(); err != nil {
			t.Fatal(err)
		}
		return !r.rt.Ready()
	})
	if after := committedOffsets(t, b, app, src); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("offsets moved from %v to %v while the output topic was missing", before, after)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(b.Client(t)).CreateTopic(ctx, 2, 1, nil, out); err != nil {
		t.Fatal(err)
	}
	b.WaitCaughtUp(t, app, src, 60*time.Second, r.stopped)
	waitFor(t, 10*time.Second, "the runtime to become ready again", r.rt.Ready)
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	counts := map[string]int{}
	for _, rec := range b.ReadCommitted(t, out, 30*time.Second) {
		counts[eventIDOf(t, rec.Value)]++
	}
	for _, x := range second {
		if counts[x.id] != 1 {
			t.Errorf("input %s has %d outputs, want 1", x.id, counts[x.id])
		}
	}
	_ = first
	if !strings.Contains(r.logs.String(), "output topics do not exist") {
		t.Errorf("no warning about the missing topic in the log")
	}
}

// waitFor polls cond every 20 ms until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(timeout)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
	}
}

// TestChangelogDeletedStops: a changelog topic deleted while streamd runs stops the runtime with
// ErrChangelogLost, naming the topic, and no cycle commits without its changelog records: the
// source offsets stay where they were and none of the later inputs has an output.
func TestChangelogDeletedStops(t *testing.T) {
	b := kafkatest.Start(t)
	src := b.Topic(t, "src", 2)
	app, out, dlq := kafkatest.Name(t, "app"), kafkatest.Name(t, "out"), kafkatest.Name(t, "dlq")
	in := produceInputs(t, b, src, 0, 200, "", 0)
	r := start(t, &Pipeline{
		Name:            app,
		Source:          Source{Topic: src, Format: fatalFormat()},
		Operators:       []Operator{&countOp{Topic: out}},
		DeadLetterTopic: dlq,
	}, fatalConfig(b, t.TempDir()))
	b.WaitCaughtUp(t, app, src, 60*time.Second, r.stopped)
	before := committedOffsets(t, b, app, src)

	changelog := state.ChangelogTopic(app, "counts")
	deleteTopic(t, b, changelog)
	in = append(in, produceInputs(t, b, src, 200, 200, "", 0)...)
	err := r.wait(t, 90*time.Second)
	if !errors.Is(err, ErrChangelogLost) || !strings.Contains(err.Error(), changelog) {
		t.Fatalf("Run returned %v, want ErrChangelogLost naming %s", err, changelog)
	}
	if after := committedOffsets(t, b, app, src); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("offsets moved from %v to %v without the changelog", before, after)
	}
	if n := checkCommittedOutputs(t, b, app, src, out, in); n != 200 {
		t.Errorf("%d inputs committed, want the 200 before the deletion", n)
	}
}
