package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/dlq"
	"github.com/streamd/streamd/stream"
	"github.com/streamd/streamd/test/kafkatest"
)

// replayConfig is a scoring pipeline whose amount rule is amountRule: the test's first config
// bounds amounts too tightly, its fix does not.
func replayConfig(t *testing.T, b *kafkatest.Broker, app, src, preds, dlqTopic, amountRule, name string) string {
	cfg := fmt.Sprintf(`app: %s
instance_id: r-1
kafka:
  brokers: [%s]
  commit_interval: 100ms
  transaction_timeout: 10s
  session_timeout: 6s
state:
  dir: %s
source:
  topic: %s
  key: card_id
  event_id: event_id
  event_time: {field: event_time, format: rfc3339, max_future: 1h}
  idle_timeout: off
  max_record_bytes: 64KiB
  fields:
    amount: %s
    merchant: {type: string, max_length: 64}
    country: {type: string, max_length: 2}
    channel: {type: string, values: [pos, online, atm]}
    mcc: {type: number, min: 0, max: 9999}
    label: {type: number}
features:
  - {name: amount_log, from: amount, transform: [log1p, standardize]}
  - {name: channel, from: channel, encode: onehot}
labels:
  field: label
models:
  merge_interval: off
  list:
    - {name: ftrl, learner: {kind: ftrl_logistic}}
outputs:
  predictions: %s
  dead_letters: %s
admin:
  listen: 127.0.0.1:0
log:
  level: info
  format: json
`, app, strings.Join(b.Addrs, ","), filepath.Join(t.TempDir(), "state"), src, amountRule, preds, dlqTopic)
	path := filepath.Join(t.TempDir(), name+".yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

var replayedRE = regexp.MustCompile(`^replayed (\d+) of (\d+) dead letters.*; skipped (\d+) by filter, (\d+) already replayed`)

// runReplay runs streamd dlq replay to its end and returns its replayed and already-replayed counts.
func runReplay(t *testing.T, logPath string, args ...string) (replayed, already int) {
	t.Helper()
	out, err := exec.Command(streamdBin, append([]string{"dlq", "replay"}, args...)...).Output()
	if err != nil {
		data, _ := os.ReadFile(logPath)
		t.Fatalf("streamd dlq replay: %v\n%s\n%s", err, out, data)
	}
	m := replayedRE.FindStringSubmatch(strings.TrimSpace(string(out)))
	if m == nil {
		t.Fatalf("streamd dlq replay printed %q", out)
	}
	t.Logf("streamd dlq replay: %s", strings.TrimSpace(string(out)))
	replayed, _ = strconv.Atoi(m[1])
	already, _ = strconv.Atoi(m[4])
	return replayed, already
}

// TestDeadLetterReplayAfterAConfigFix: a pipeline whose amount bound is too tight sends valid
// transactions to the dead-letter topic as out_of_range; after the fix, streamd dlq replay
// -reason out_of_range re-injects them while the fixed pipeline runs. A first replay is SIGKILLed
// midway, a second finishes it, a third finds nothing left. Every valid transaction then has
// exactly one committed prediction (from the first pipeline, or from its replay), with its
// original event time; every broken one none.
func TestDeadLetterReplayAfterAConfigFix(t *testing.T) {
	b := kafkatest.Start(t)
	n := 4000
	src := b.Topic(t, "tx", 4)
	app := kafkatest.Name(t, "app")
	preds, dlqTopic := kafkatest.Name(t, "preds"), kafkatest.Name(t, "dlq")
	tight := replayConfig(t, b, app, src, preds, dlqTopic, "{type: number, required: true, min: 0, max: 100}", "tight")
	fixed := replayConfig(t, b, app, src, preds, dlqTopic, "{type: number, required: true, min: 0}", "fixed")
	logPath := filepath.Join(t.TempDir(), "streamd.log")
	t.Cleanup(func() {
		if t.Failed() {
			data, _ := os.ReadFile(logPath)
			if len(data) > 15000 {
				data = data[len(data)-15000:]
			}
			t.Logf("%s (tail):\n%s", logPath, data)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	if err := produceLabelled(ctx, b.Client(t, kgo.ProducerLinger(5*time.Millisecond)), src, n, 0, 0.03, 11); err != nil {
		t.Fatal(err)
	}

	first := start(t, logPath, nil, streamdBin, "run", "-config", tight)
	b.WaitCaughtUp(t, app, src, 3*time.Minute, first.exited)
	first.stop(t)
	tooTight := 0
	for _, r := range b.ReadCommitted(t, dlqTopic, time.Minute) {
		if kafkatest.Header(r, stream.HeaderReason) == string(stream.ReasonOutOfRange) && kafkatest.Header(r, badHeader) == "" {
			tooTight++
		}
	}
	if tooTight < 200 {
		t.Fatalf("only %d valid transactions were out of range under the tight bound; the test needs more", tooTight)
	}

	second := start(t, logPath, nil, streamdBin, "run", "-config", fixed)
	defer func() {
		if second.exited() == nil {
			second.stop(t)
		}
	}()
	// The first replay, throttled so that the kill lands midway: killed once the ledger shows a
	// batch (its end offset; committed or not).
	killed := start(t, logPath, nil, streamdBin, "dlq", "replay", "-config", fixed, "-reason", "out_of_range", "-batch", "25", "-rate", "300/s")
	ledgerEnd := func() int64 {
		// A client per look-up: one that asked before the ledger existed keeps answering that it
		// does not.
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addrs...))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, dlq.LedgerTopic(app))
		if o, ok := ends.Lookup(dlq.LedgerTopic(app), 0); err == nil && ok && o.Err == nil {
			return o.Offset
		}
		return 0
	}
	for ledgerEnd() == 0 {
		if err := killed.exited(); err != nil {
			t.Fatalf("the first replay ended before it produced anything: %v", err)
		}
		if ctx.Err() != nil {
			t.Fatal(ctx.Err())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if err := killed.exited(); err != nil {
		t.Fatalf("the first replay finished before the kill; slow it down: %v", err)
	}
	killed.kill(t)
	// The replay sleeps for -rate inside its open transaction: the kill almost always lands in one.
	t.Logf("replay transaction at the kill: %s", txnState(ctx, kadm.NewClient(b.Client(t)), dlq.TransactionalID(app)))
	ledger := b.ReadCommitted(t, dlq.LedgerTopic(app), time.Minute)
	if len(ledger) == 0 || len(ledger) >= tooTight {
		t.Fatalf("the kill did not land midway: the ledger holds %d of at least %d replays", len(ledger), tooTight)
	}

	replayed, already := runReplay(t, logPath, "-config", fixed, "-reason", "out_of_range")
	if already != len(ledger) || replayed+already < tooTight {
		t.Errorf("the rerun replayed %d and found %d already replayed; the killed run committed %d of at least %d", replayed, already, len(ledger), tooTight)
	}
	if again, _ := runReplay(t, logPath, "-config", fixed, "-reason", "out_of_range"); again != 0 {
		// Broken records replayed once and rejected again are new dead letters; those of the
		// generator's negative amounts are out_of_range again, so a third run may replay them,
		// but never a record the ledger names.
		t.Logf("third run replayed %d dead letters of the rerun's own rejections", again)
	}
	b.WaitCaughtUp(t, app, src, 3*time.Minute, second.exited)
	second.stop(t)

	// The source as the pipeline read it: originals and replays.
	byID := map[string]*kgo.Record{} // event id → original record
	replays := 0
	for _, r := range b.ReadCommitted(t, src, time.Minute) {
		if kafkatest.Header(r, stream.HeaderReplayedFrom) != "" {
			replays++
			if kafkatest.Header(r, stream.HeaderReplayCount) == "" {
				t.Errorf("replayed record at %d@%d without a replay count", r.Partition, r.Offset)
			}
			continue
		}
		if id := jsonField(r.Value, "event_id"); id != "" && kafkatest.Header(r, badHeader) == "" {
			byID[id] = r
		}
	}
	if replays < tooTight {
		t.Errorf("%d replayed records in the source, want at least %d", replays, tooTight)
	}
	type pred struct {
		EventID   string `json:"event_id"`
		EventTime int64  `json:"event_time"`
	}
	got := map[string]int{}
	for _, r := range b.ReadCommitted(t, preds, time.Minute) {
		var p pred
		if err := json.Unmarshal(r.Value, &p); err != nil {
			t.Fatalf("prediction %s: %v", r.Value, err)
		}
		got[p.EventID]++
		orig, ok := byID[p.EventID]
		if !ok {
			t.Errorf("prediction for %s, which is not a valid transaction", p.EventID)
			continue
		}
		ts, _ := time.Parse(time.RFC3339Nano, jsonField(orig.Value, "event_time"))
		if ts.UnixMilli() != p.EventTime {
			t.Errorf("prediction for %s has event time %d, the transaction %d", p.EventID, p.EventTime, ts.UnixMilli())
		}
	}
	missing, dup := 0, 0
	for id := range byID {
		switch got[id] {
		case 0:
			missing++
		case 1:
		default:
			dup++
		}
	}
	if missing > 0 || dup > 0 {
		t.Fatalf("%d valid transactions: %d without a prediction, %d with more than one", len(byID), missing, dup)
	}
	t.Logf("%d valid transactions, %d of them dead letters under the tight bound and replayed; one prediction each", len(byID), tooTight)
}
