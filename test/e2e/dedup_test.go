package e2e

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/internal/gen"
	"github.com/streamd/streamd/stream"
	"github.com/streamd/streamd/test/kafkatest"
)

// TestDedupUnderSIGKILL: a producer that retries writes 5 % of its events twice (the same key,
// value and event id, a little later). With source.dedup the scoring pipeline, killed with SIGKILL
// at random moments and restarted, publishes exactly one prediction per distinct event id: a
// duplicate is dropped whether its first copy was accepted in the same cycle, in an earlier cycle
// that committed before a kill, or in a cycle that a kill aborted (then the replayed first copy is
// accepted, and the duplicate dropped, again).
func TestDedupUnderSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("long: kills and restarts a daemon for ~30 s")
	}
	b := kafkatest.Start(t)
	n, rate, kills := 40_000, 2000.0, 4
	if b.Kind == kafkatest.Fake {
		n, rate = 20_000, 1500.0
	}
	src := b.Topic(t, "tx", 2)
	app, preds, dlq := kafkatest.Name(t, "dedup"), kafkatest.Name(t, "preds"), kafkatest.Name(t, "dlq")
	port := freePort(t)
	cfgPath := modelConfig(t, b, app, "d-1", src, preds, dlq, t.TempDir(), port)
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	const anchor = "  event_id: event_id\n"
	if !strings.Contains(string(cfg), anchor) {
		t.Fatal("the model config no longer reads event_id; update this test")
	}
	cfg = []byte(strings.Replace(string(cfg), anchor, anchor+"  dedup: {ttl: 24h}\n", 1))
	if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(t.TempDir(), "streamd.log")
	t.Cleanup(func() {
		if t.Failed() {
			data, _ := os.ReadFile(logPath)
			if len(data) > 15000 {
				data = data[len(data)-15000:]
			}
			t.Logf("streamd log (tail):\n%s", data)
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	prodDone := make(chan error, 1)
	go func() {
		prodDone <- produceWithRetries(ctx, b.Client(t, kgo.ProducerLinger(5*time.Millisecond)), src, n, rate, 0.05, 11)
	}()
	proc := start(t, logPath, nil, streamdBin, "run", "-config", cfgPath)
	adm := kadm.NewClient(b.Client(t))
	proc, midTxn := killDuringTransactions(ctx, t, adm, proc, app+"-d-1", kills, 12, func() *process {
		return start(t, logPath, nil, streamdBin, "run", "-config", cfgPath)
	})
	if err := <-prodDone; err != nil {
		t.Fatal(err)
	}
	b.WaitCaughtUp(t, app, src, 3*time.Minute, proc.exited)
	_ = proc.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-proc.done; err != nil {
		t.Errorf("streamd did not exit cleanly: %v", err)
	}

	// The ground truth: the distinct event ids of the source records, and how many records repeat
	// one.
	type idOnly struct {
		EventID string `json:"event_id"`
	}
	distinct, repeats := map[string]bool{}, 0
	for _, r := range b.ReadCommitted(t, src, time.Minute) {
		var v idOnly
		if err := json.Unmarshal(r.Value, &v); err != nil || v.EventID == "" {
			t.Fatalf("source record without an event id: %.200s", r.Value)
		}
		if distinct[v.EventID] {
			repeats++
		}
		distinct[v.EventID] = true
	}
	// The verifier can fail: without dedup every repeat would be a second prediction.
	if repeats < n/25 {
		t.Fatalf("only %d of %d source records repeat an event id; the test needs about 5 %%", repeats, n)
	}
	predicted, records := map[string]int{}, 0
	for _, r := range b.ReadCommitted(t, preds, time.Minute) {
		records++
		var v idOnly
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Fatalf("prediction %.200s: %v", r.Value, err)
		}
		predicted[v.EventID]++
	}
	var missing, twice []string
	for id := range distinct {
		switch c := predicted[id]; {
		case c == 0:
			missing = append(missing, id)
		case c > 1:
			twice = append(twice, id)
		}
	}
	unexpected := len(predicted) - (len(distinct) - len(missing))
	// Every record is valid (and a duplicate is dropped, not dead-lettered, by default).
	if dl := b.ReadCommitted(t, dlq, time.Minute); len(dl) > 0 {
		t.Errorf("%d dead letters, the first with reason %s", len(dl), kafkatest.Header(dl[0], stream.HeaderReason))
	}
	t.Logf("%d distinct event ids, %d repeats; %d predictions; %d of %d kills landed in an open transaction",
		len(distinct), repeats, records, midTxn, kills)
	first := func(ids []string) []string { return ids[:min(len(ids), 5)] }
	if len(missing) > 0 || len(twice) > 0 || unexpected != 0 {
		t.Errorf("not one prediction per distinct event id: %d missing (%v), %d predicted more than once (%v), %d not from any input",
			len(missing), first(missing), len(twice), first(twice), unexpected)
	}
	if midTxn < 1 {
		t.Errorf("no kill landed in an open transaction")
	}
}

// produceWithRetries produces n generated records at rate records/s, as a producer that retries
// does: about retryRatio of the records are a second copy of a valid record sent a little earlier
// (among the last 500), the same key, value and event id.
func produceWithRetries(ctx context.Context, cl *kgo.Client, topic string, n int, rate, retryRatio float64, seed int64) error {
	rng := rand.New(rand.NewPCG(uint64(seed), 1))
	var recent []*kgo.Record
	cfg := gen.Config{Seed: seed, Keys: 2000, BadRatio: 0, OutOfOrder: time.Second, FraudRate: 0.1}
	return produceGenerated(ctx, cl, topic, n, rate, cfg, func(r *kgo.Record, _ gen.Record) {
		if len(recent) > 0 && rng.Float64() < retryRatio {
			first := recent[rng.IntN(len(recent))]
			r.Key, r.Value = first.Key, first.Value
			return
		}
		recent = append(recent, &kgo.Record{Key: r.Key, Value: r.Value})
		if len(recent) > 500 {
			recent = recent[1:]
		}
	})
}
