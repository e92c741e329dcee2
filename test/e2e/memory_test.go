package e2e

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/configs"
	"github.com/streamd/streamd/internal/gen"
	"github.com/streamd/streamd/internal/units"
	"github.com/streamd/streamd/test/kafkatest"
)

// The memory tests run the example pipeline (configs/fraud-pipeline.yaml: validation, the clean
// stream, two windows, windowed features, two online models learning from a labels topic) under a
// memory budget, on input whose size is well beyond the budget, and check that the daemon's peak
// resident memory (VmHWM) stays within the budget, that every record is processed exactly once,
// and that no transaction outlived the transaction timeout.
//
// The defaults fit CI (a 128MiB budget, records padded to ~1.2KiB so that a few hundred thousand
// of them are twice the budget, a 15 s burst). The environment scales them up to the figures in
// docs/RELIABILITY.md:
//
//	STREAMD_E2E_MEMORY_BUDGET   the daemon's memory.budget (128MiB)
//	STREAMD_E2E_BACKLOG         records in the backlog (220000)
//	STREAMD_E2E_PAD             padding bytes per record (1024)
//	STREAMD_E2E_BURST           how long the burst lasts (15s; 1m for the full test)
//	STREAMD_E2E_BURST_RATE      the sustained rate, records/s; the burst is 10 times it (300)
//
// A build with the race detector takes several times the memory, so these tests build streamd
// without it.

var plainBin = sync.OnceValues(func() (string, error) {
	path := filepath.Join(filepath.Dir(streamdBin), "streamd-plain")
	build := exec.Command("go", "build", "-o", path, "../../cmd/streamd")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building streamd without -race: %v\n%s", err, out)
	}
	return path, nil
})

func envOr[T any](t *testing.T, key string, def T, parse func(string) (T, error)) T {
	t.Helper()
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	x, err := parse(v)
	if err != nil {
		t.Fatalf("%s=%q: %v", key, v, err)
	}
	return x
}

// memorySetup is one run of the example pipeline under a budget.
type memorySetup struct {
	b                        *kafkatest.Broker
	app, src, labels         string
	clean, preds, dlq        string
	budget                   int64
	txnTimeout               time.Duration
	port                     int
	cfgPath, stateDir, logs  string
	pad                      int
	rng                      *rand.Rand
	padBuf                   []byte
	produced, labelsProduced int
}

func newMemorySetup(t *testing.T) *memorySetup {
	b := kafkatest.Start(t)
	b.RequireReal(t, "a backlog of hundreds of megabytes")
	if testing.Short() {
		t.Skip("long: runs the example pipeline through hundreds of megabytes of input")
	}
	s := &memorySetup{
		b:      b,
		app:    kafkatest.Name(t, "app"),
		src:    b.Topic(t, "tx", 4),
		labels: b.Topic(t, "labels", 4),
		clean:  kafkatest.Name(t, "clean"), preds: kafkatest.Name(t, "preds"), dlq: kafkatest.Name(t, "dlq"),
		budget:   envOr(t, "STREAMD_E2E_MEMORY_BUDGET", int64(128<<20), units.ParseBytes),
		pad:      envOr(t, "STREAMD_E2E_PAD", 1024, strconv.Atoi),
		port:     freePort(t),
		stateDir: t.TempDir(),
		logs:     filepath.Join(t.TempDir(), "streamd.log"),
		rng:      rand.New(rand.NewPCG(11, 12)),
	}
	cfg := string(configs.FraudPipeline)
	for _, r := range [][2]string{
		{"app: fraud-scoring", "app: " + s.app},
		{"\nkafka:\n", "\nmemory:\n  budget: " + units.FormatBytes(s.budget) + "\n\nkafka:\n"},
		{"  cache_size: 32MiB\n", ""}, // the budget sizes it
		{"  topic: transactions\n", "  topic: " + s.src + "\n"},
		{"  topic: labels ", "  topic: " + s.labels + " "},
		{"predictions: fraud-scores", "predictions: " + s.preds},
		{"clean: transactions-clean", "clean: " + s.clean},
		{"dead_letters: transactions-dlq", "dead_letters: " + s.dlq},
		{"late: transactions-late", "late: " + kafkatest.Name(t, "late")},
		{"output: card-activity-1m", "output: " + kafkatest.Name(t, "activity")},
		{"output: card-sessions", "output: " + kafkatest.Name(t, "sessions")},
	} {
		if strings.Count(cfg, r[0]) != 1 {
			t.Fatalf("configs/fraud-pipeline.yaml has %d of %q, want 1: update this test", strings.Count(cfg, r[0]), r[0])
		}
		cfg = strings.Replace(cfg, r[0], r[1], 1)
	}
	i := strings.Index(cfg, "transaction_timeout: ")
	if i < 0 {
		t.Fatal("configs/fraud-pipeline.yaml sets no transaction_timeout")
	}
	var err error
	if s.txnTimeout, err = time.ParseDuration(strings.Fields(cfg[i+len("transaction_timeout: "):])[0]); err != nil {
		t.Fatal(err)
	}
	s.cfgPath = filepath.Join(t.TempDir(), "pipeline.yaml")
	if err := os.WriteFile(s.cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			data, _ := os.ReadFile(s.logs)
			if len(data) > 20000 {
				data = data[len(data)-20000:]
			}
			t.Logf("streamd log (tail):\n%s", data)
		}
	})
	return s
}

func (s *memorySetup) start(t *testing.T) *process {
	bin, err := plainBin()
	if err != nil {
		t.Fatal(err)
	}
	return start(t, s.logs, []string{
		"KAFKA_BROKERS=" + strings.Join(s.b.Addrs, ","),
		"STREAMD_STATE_DIR=" + s.stateDir,
		"STREAMD_INSTANCE_ID=mem-1",
		"STREAMD_ADMIN_LISTEN=" + fmt.Sprintf("127.0.0.1:%d", s.port),
		"GOMEMLIMIT=", // unset: the budget sets it
	}, bin, "run", "-config", s.cfgPath)
}

// produce produces n generated transactions at rate records/s (0: as fast as the client takes
// them), each valid one padded with a field of pad random letters, and the labels that fall due
// meanwhile (all of them at the end), like `streamd gen`. Broken records carry badHeader.
func (s *memorySetup) produce(ctx context.Context, cl *kgo.Client, g *gen.Generator, n int, rate float64) error {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		labels   []gen.Label
	)
	done := func(_ *kgo.Record, err error) {
		defer wg.Done()
		if err != nil {
			mu.Lock()
			firstErr = cmpOr(firstErr, err)
			mu.Unlock()
		}
	}
	sendLabels := func(ls []gen.Label, now time.Time) {
		for _, l := range ls {
			wg.Add(1)
			cl.Produce(ctx, &kgo.Record{Topic: s.labels, Key: []byte(l.CardID), Value: gen.AppendLabelJSON(nil, l), Timestamp: now}, done)
			s.labelsProduced++
		}
	}
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
		r := &kgo.Record{Topic: s.src, Key: rec.Key, Value: rec.Value, Timestamp: now}
		if rec.Bad != gen.NotBad {
			r.Headers = []kgo.RecordHeader{{Key: badHeader, Value: []byte(rec.Bad.String())}}
		} else if s.pad > 0 {
			r.Value = s.padded(rec.Value)
		}
		wg.Add(1)
		cl.Produce(ctx, r, done)
		s.produced++
		labels = g.DueLabels(labels[:0], now)
		sendLabels(labels, now)
	}
	sendLabels(g.DrainLabels(labels[:0]), time.Now())
	wg.Wait()
	return firstErr
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// padded returns a copy of the JSON object v with a "note" field of s.pad random letters, which
// no compression shrinks much.
func (s *memorySetup) padded(v []byte) []byte {
	if len(s.padBuf) != s.pad {
		s.padBuf = make([]byte, s.pad)
	}
	for i := 0; i < len(s.padBuf); i += 8 {
		r := s.rng.Uint64()
		for j := i; j < min(i+8, len(s.padBuf)); j++ {
			s.padBuf[j] = 'a' + byte(r%26)
			r >>= 8
		}
	}
	out := make([]byte, 0, len(v)+s.pad+12)
	out = append(out, v[:len(v)-1]...)
	out = append(out, `,"note":"`...)
	out = append(out, s.padBuf...)
	return append(out, `"}`...)
}

// peakRSS returns the process's peak resident set size (VmHWM) in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("reading the daemon's status: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmHWM %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/<pid>/status")
	return 0
}

// scrape returns the daemon's metrics.
func (s *memorySetup) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", s.port))
	if err != nil {
		t.Fatalf("scraping the daemon: %v", err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing the metrics: %v", err)
	}
	return mfs
}

// checkRun scrapes the daemon, then checks what every memory test checks: the peak resident
// memory within the budget, no transaction that outlived the transaction timeout (the histogram
// has a bucket there), every input
// exactly once among the clean records and the dead letters, and every valid one exactly once
// among the predictions. A backlog must be larger than the budget.
func (s *memorySetup) checkRun(t *testing.T, proc *process, elapsed time.Duration, backlog bool) {
	t.Helper()
	peak := peakRSS(t, proc.cmd.Process.Pid)
	mfs := s.scrape(t)
	proc.stop(t)

	var txns uint64
	longest := "none"
	if mf := mfs["streamd_transaction_duration_seconds"]; mf != nil && len(mf.GetMetric()) == 1 {
		h := mf.GetMetric()[0].GetHistogram()
		txns = h.GetSampleCount()
		within := false
		for _, b := range h.GetBucket() {
			if b.GetCumulativeCount() == txns && longest == "none" {
				longest = fmt.Sprintf("at most %gs", b.GetUpperBound())
			}
			if b.GetUpperBound() == s.txnTimeout.Seconds() {
				within = b.GetCumulativeCount() == txns
				if !within {
					t.Errorf("%d of %d transactions outlived the transaction timeout (%s)", txns-b.GetCumulativeCount(), txns, s.txnTimeout)
				}
			}
		}
		if !within && !t.Failed() {
			t.Errorf("streamd_transaction_duration_seconds has no bucket at the transaction timeout (%s)", s.txnTimeout)
		}
	}
	if txns == 0 {
		t.Error("no streamd_transaction_duration_seconds observations")
	}
	value := func(name string) float64 {
		var v float64
		if mf := mfs[name]; mf != nil {
			for _, m := range mf.GetMetric() {
				v += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
		return v
	}
	var inBytes int64
	srcRecs := s.b.ReadCommitted(t, s.src, 2*time.Minute)
	for _, r := range srcRecs {
		inBytes += int64(len(r.Key) + len(r.Value))
	}
	dropValues(srcRecs)
	t.Logf("%d records (%s) and %d labels in %s: %.0f records/s; peak RSS %s of a %s budget; %d transactions, the longest %s; %v memory pauses",
		len(srcRecs), units.FormatBytes(inBytes&^(1<<20-1)), s.labelsProduced, elapsed.Round(time.Second),
		float64(len(srcRecs))/elapsed.Seconds(), units.FormatBytes(peak&^(1<<20-1)), units.FormatBytes(s.budget), txns, longest,
		value("streamd_memory_pauses_total"))
	if data, err := os.ReadFile(s.logs); err == nil {
		var warns []string
		for _, line := range strings.Split(string(data), "\n") {
			if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
				warns = append(warns, line)
			}
		}
		if len(warns) > 0 {
			t.Logf("%d warnings and errors in streamd's log, the first:\n%s", len(warns), strings.Join(warns[:min(len(warns), 10)], "\n"))
		}
	}
	if peak > s.budget {
		t.Errorf("peak resident memory %d bytes, over the budget %d", peak, s.budget)
	}
	if backlog && inBytes < s.budget && s.pad > 0 {
		t.Errorf("the input (%d bytes) is smaller than the budget: the test proves little", inBytes)
	}

	dead := s.b.ReadCommitted(t, s.dlq, 2*time.Minute)
	rep := verify(srcRecs, dropValues(s.b.ReadCommitted(t, s.clean, 2*time.Minute)), dead)
	t.Logf("verifier, clean and dead letters: %s", rep)
	if rep.inputs != s.produced || !rep.ok() {
		t.Errorf("exactly-once violated (%d produced): %s", s.produced, rep)
	}
	if rep.bad == 0 {
		t.Error("no broken inputs: the dead-letter path was not exercised")
	}
	// Predictions: one per valid input, so the dead letters stand in for the broken ones.
	preds := verify(srcRecs, dropValues(s.b.ReadCommitted(t, s.preds, 2*time.Minute)), dead)
	if !preds.ok() {
		t.Errorf("predictions: %s", preds)
	}
	if value("streamd_labels_total") == 0 {
		t.Error("no labels were consumed: the learning path was not exercised")
	}
}

// dropValues lets go of the records' values, which the verifier does not read: the test's own
// memory, for inputs of hundreds of megabytes.
func dropValues(recs []*kgo.Record) []*kgo.Record {
	for _, r := range recs {
		r.Value = nil
	}
	return recs
}

// TestBacklogWithinMemoryBudget: the example pipeline starts on a backlog several times its memory
// budget (transactions and their labels, all produced before it starts) and works through it
// within the budget.
func TestBacklogWithinMemoryBudget(t *testing.T) {
	s := newMemorySetup(t)
	n := envOr(t, "STREAMD_E2E_BACKLOG", 220_000, strconv.Atoi)
	if _, err := plainBin(); err != nil {
		t.Fatal(err)
	}
	g, err := gen.New(gen.Config{Seed: 21, Keys: 20_000, BadRatio: 0.01, OutOfOrder: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	began := time.Now()
	if err := s.produce(ctx, s.b.Client(t, kgo.ProducerLinger(5*time.Millisecond)), g, n, 0); err != nil {
		t.Fatalf("producing the backlog: %v", err)
	}
	t.Logf("produced %d records and %d labels in %s", s.produced, s.labelsProduced, time.Since(began).Round(time.Millisecond))

	began = time.Now()
	proc := s.start(t)
	s.b.WaitCaughtUp(t, s.app, s.src, envOr(t, "STREAMD_E2E_TIMEOUT", 15*time.Minute, time.ParseDuration), proc.exited)
	s.b.WaitCaughtUp(t, s.app, s.labels, time.Minute, proc.exited)
	s.checkRun(t, proc, time.Since(began), true)
}

// TestBurstWithinMemoryBudget: the example pipeline runs at a sustained rate, then at ten times
// that rate (more than it processes on a small machine) for STREAMD_E2E_BURST, then at the
// sustained rate again until it has caught up, within its memory budget.
func TestBurstWithinMemoryBudget(t *testing.T) {
	s := newMemorySetup(t)
	rate := envOr(t, "STREAMD_E2E_BURST_RATE", 300.0, func(v string) (float64, error) { return strconv.ParseFloat(v, 64) })
	burst := envOr(t, "STREAMD_E2E_BURST", 15*time.Second, time.ParseDuration)
	steady := 10 * time.Second
	g, err := gen.New(gen.Config{Seed: 22, Keys: 20_000, BadRatio: 0.01, OutOfOrder: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	proc := s.start(t)
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute+2*burst)
	defer cancel()
	cl := s.b.Client(t, kgo.ProducerLinger(5*time.Millisecond))
	for _, phase := range []struct {
		rate float64
		for_ time.Duration
	}{{rate, steady}, {10 * rate, burst}, {rate, steady}} {
		n := int(math.Round(phase.rate * phase.for_.Seconds()))
		if err := s.produce(ctx, cl, g, n, phase.rate); err != nil {
			t.Fatalf("producing at %.0f/s: %v", phase.rate, err)
		}
		if err := proc.exited(); err != nil {
			t.Fatalf("streamd died during the burst: %v", err)
		}
	}
	t.Logf("produced %d records (a burst of %s at %.0f/s) and %d labels", s.produced, burst, 10*rate, s.labelsProduced)
	s.b.WaitCaughtUp(t, s.app, s.src, envOr(t, "STREAMD_E2E_TIMEOUT", 10*time.Minute, time.ParseDuration), proc.exited)
	s.b.WaitCaughtUp(t, s.app, s.labels, time.Minute, proc.exited)
	s.checkRun(t, proc, time.Since(began), false)
}
