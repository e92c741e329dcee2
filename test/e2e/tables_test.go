package e2e

import (
	"context"
	"encoding/json"
	"fmt"
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
	"github.com/streamd/streamd/state/table"
	"github.com/streamd/streamd/stream"
	"github.com/streamd/streamd/test/kafkatest"
)

// tablesConfig is the scoring pipeline enriched from a global table of merchants (joined by the
// event's merchant field) and a co-partitioned table of cards (joined by the card id), whose
// fields are features.
func tablesConfig(t *testing.T, b *kafkatest.Broker, app, src, merchants, cards, preds, dlq, stateDir string, port int) string {
	cfg := fmt.Sprintf(`app: %s
instance_id: t-1
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
`+cardFields+`    label: {type: number}
tables:
  - name: merchants
    topic: %s
    kind: global
    join: merchant
    fields:
      risk.score: {type: number, min: 0}
      tier: {type: string, values: [gold, silver, bronze]}
  - name: cards
    topic: %s
    kind: co_partitioned
    fields:
      limit: {type: number}
features:
  - {name: amount_log, from: amount, transform: [log1p, standardize]}
  # No transforms on the table features: a prediction shows what the model received, so these
  # are the rows' values as they were joined, which the test replays.
  - {name: risk, from: merchants.risk.score}
  - {name: tier, from: merchants.tier, encode: hash, buckets: 16}
  - {name: limit, from: cards.limit}
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
  listen: 127.0.0.1:%d
log:
  level: info
  format: json
`, app, strings.Join(b.Addrs, ","), stateDir, src, merchants, cards, preds, dlq, port)
	path := filepath.Join(t.TempDir(), app+".yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// updateTables writes rows to the merchants and cards tables in transactions (about one in ten
// aborted, one row in ten a tombstone) until ctx ends: merchants with an even number and cards
// whose number is not a multiple of 3 get rows, the others never do (misses).
func updateTables(ctx context.Context, cl *kgo.Client, merchants, cards string, seed uint64, initial bool) error {
	rng := rand.New(rand.NewPCG(seed, 3))
	tiers := []string{"gold", "silver", "bronze"}
	merchant := func(m int) *kgo.Record {
		r := &kgo.Record{Topic: merchants, Key: fmt.Appendf(nil, "m-%04d", m)}
		if rng.IntN(10) != 0 || initial {
			r.Value = fmt.Appendf(nil, `{"risk":{"score":%d},"tier":%q}`, rng.IntN(1000), tiers[rng.IntN(3)])
		}
		return r
	}
	card := func(c int) *kgo.Record {
		r := &kgo.Record{Topic: cards, Key: fmt.Appendf(nil, "card-%06d", c)}
		if rng.IntN(10) != 0 || initial {
			r.Value = fmt.Appendf(nil, `{"limit":%d}`, 100*(1+rng.IntN(100)))
		}
		return r
	}
	txn := func(recs []*kgo.Record, commit bool) error {
		if err := cl.BeginTransaction(); err != nil {
			return err
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			_ = cl.EndTransaction(context.Background(), kgo.TryAbort)
			return err
		}
		return cl.EndTransaction(ctx, kgo.TransactionEndTry(commit))
	}
	if initial {
		var recs []*kgo.Record
		for m := 0; m < 3000; m += 2 {
			recs = append(recs, merchant(m))
		}
		for c := range 2000 {
			if c%3 != 0 {
				recs = append(recs, card(c))
			}
		}
		return txn(recs, true)
	}
	for ctx.Err() == nil {
		var recs []*kgo.Record
		for range 20 {
			recs = append(recs, merchant(2*rng.IntN(1500)))
			if c := rng.IntN(2000); c%3 != 0 {
				recs = append(recs, card(c))
			}
		}
		if err := txn(recs, rng.IntN(10) != 0); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// TestTablesUnderSIGKILL: events are enriched from a global and a co-partitioned table while both
// tables change (in transactions, some aborted, with tombstones), and the daemon is killed with
// SIGKILL inside open transactions and restarted. Every event has exactly one prediction, and each
// prediction's table features equal those of a replay of the tables' topics in offset order up to
// the version in its streamd-table-NAME headers (docs/architecture.md, Tables); across each
// partition's predictions, in offset order, versions never go back, kills included.
func TestTablesUnderSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("long: kills and restarts a daemon for ~30 s")
	}
	b := kafkatest.Start(t)
	n, rate, kills := 30_000, 1500.0, 4
	if b.Kind == kafkatest.Fake {
		n, rate = 15_000, 1000.0
	}
	// Not compacted: the verifier replays every version of the tables.
	src := b.Topic(t, "tx", 2)
	merchants, cards := b.Topic(t, "merchants", 3), b.Topic(t, "cards", 2)
	app, preds, dlq := kafkatest.Name(t, "tables"), kafkatest.Name(t, "preds"), kafkatest.Name(t, "dlq")
	cfgPath := tablesConfig(t, b, app, src, merchants, cards, preds, dlq, t.TempDir(), freePort(t))
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
	tables := b.Client(t, kgo.TransactionalID(kafkatest.Name(t, "tables-writer")))
	if err := updateTables(ctx, tables, merchants, cards, 1, true); err != nil {
		t.Fatal(err)
	}
	updCtx, stopUpdates := context.WithCancel(ctx)
	updDone := make(chan error, 1)
	go func() { updDone <- updateTables(updCtx, tables, merchants, cards, 2, false) }()
	prodDone := make(chan error, 1)
	go func() {
		cfg := gen.Config{Seed: 21, Keys: 2000, BadRatio: 0, OutOfOrder: time.Second, FraudRate: 0.1}
		prodDone <- produceGenerated(ctx, b.Client(t, kgo.ProducerLinger(5*time.Millisecond)), src, n, rate, cfg, nil)
	}()

	proc := start(t, logPath, nil, streamdBin, "run", "-config", cfgPath)
	adm := kadm.NewClient(b.Client(t))
	proc, midTxn := killDuringTransactions(ctx, t, adm, proc, app+"-t-1", kills, 22, func() *process {
		return start(t, logPath, nil, streamdBin, "run", "-config", cfgPath)
	})
	if err := <-prodDone; err != nil {
		t.Fatal(err)
	}
	stopUpdates()
	if err := <-updDone; err != nil {
		t.Fatal(err)
	}
	b.WaitCaughtUp(t, app, src, 3*time.Minute, proc.exited)
	_ = proc.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-proc.done; err != nil {
		t.Errorf("streamd did not exit cleanly: %v", err)
	}

	ref := func(topic string) (*table.Reference, table.Position) {
		var recs []table.RefRecord
		end := map[int32]int64{}
		for _, r := range b.ReadCommitted(t, topic, time.Minute) {
			recs = append(recs, table.RefRecord{Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value})
			end[r.Partition] = max(end[r.Partition], r.Offset+1)
		}
		var last table.Position
		for p := range int32(len(end) + 3) {
			if o, ok := end[p]; ok {
				last = append(last, table.PartitionOffset{Partition: p, Offset: o})
			}
		}
		return table.NewReference(recs), last
	}
	mref, mlast := ref(merchants)
	cref, clast := ref(cards)
	type merchantRow struct {
		Risk struct {
			Score *float64 `json:"score"`
		} `json:"risk"`
		Tier *string `json:"tier"`
	}
	type cardRow struct {
		Limit *float64 `json:"limit"`
	}
	// What the features of a prediction should be, from the tables at the given versions.
	want := func(merchant, card []byte, mpos, cpos table.Position) (risk, tier, limit string) {
		risk, tier, limit = "<nil>", "<nil>", "<nil>"
		if row, ok := mref.Get(merchant, mpos); ok {
			var m merchantRow
			if err := json.Unmarshal(row, &m); err != nil {
				t.Fatal(err)
			}
			if m.Risk.Score != nil {
				risk = fmt.Sprint(*m.Risk.Score)
			}
			if m.Tier != nil {
				tier = *m.Tier
			}
		}
		if row, ok := cref.Get(card, cpos); ok {
			var c cardRow
			if err := json.Unmarshal(row, &c); err != nil {
				t.Fatal(err)
			}
			if c.Limit != nil {
				limit = fmt.Sprint(*c.Limit)
			}
		}
		return
	}
	// The merchant of each event, from the source.
	type txOnly struct {
		EventID  string `json:"event_id"`
		Merchant string `json:"merchant"`
		CardID   string `json:"card_id"`
	}
	events := map[string]txOnly{}
	for _, r := range b.ReadCommitted(t, src, time.Minute) {
		var v txOnly
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Fatal(err)
		}
		events[v.EventID] = v
	}
	type prediction struct {
		EventID string `json:"event_id"`
		Source  struct {
			Partition int32 `json:"partition"`
			Offset    int64 `json:"offset"`
		} `json:"source"`
		Features map[string]any `json:"features"`
	}
	predicted := map[string]int{}
	bad, stale, misses := 0, 0, 0
	versions := map[string]bool{}
	var lastByPartition [2]struct {
		offset int64
		m, c   table.Position
	}
	for i := range lastByPartition {
		lastByPartition[i].offset = -1
	}
	recs := b.ReadCommitted(t, preds, time.Minute)
	for _, r := range recs {
		var p prediction
		if err := json.Unmarshal(r.Value, &p); err != nil {
			t.Fatal(err)
		}
		predicted[p.EventID]++
		ev, ok := events[p.EventID]
		if !ok {
			t.Fatalf("a prediction for event %s, which is not in the source", p.EventID)
		}
		mpos, err1 := table.ParsePosition(kafkatest.Header(r, stream.HeaderTablePrefix+"merchants"))
		cpos, err2 := table.ParsePosition(kafkatest.Header(r, stream.HeaderTablePrefix+"cards"))
		if err1 != nil || err2 != nil || len(mpos) != 3 || len(cpos) != 1 || cpos[0].Partition != p.Source.Partition {
			t.Fatalf("prediction of %s: table versions %q %q", p.EventID, kafkatest.Header(r, stream.HeaderTablePrefix+"merchants"), kafkatest.Header(r, stream.HeaderTablePrefix+"cards"))
		}
		versions[mpos.String()] = true
		risk, tier, limit := want([]byte(ev.Merchant), []byte(ev.CardID), mpos, cpos)
		got := [3]string{fmt.Sprint(p.Features["risk"]), fmt.Sprint(p.Features["tier"]), fmt.Sprint(p.Features["limit"])}
		if got != [3]string{risk, tier, limit} {
			if bad++; bad <= 5 {
				t.Errorf("prediction of %s (merchant %s, card %s): risk, tier, limit = %v; a replay of the tables to merchants %s, cards %s gives %v",
					p.EventID, ev.Merchant, ev.CardID, got, mpos, cpos, [3]string{risk, tier, limit})
			}
		}
		if risk == "<nil>" {
			misses++
		}
		// The verifier can fail: the tables' final versions give other values for many predictions.
		if r2, t2, l2 := want([]byte(ev.Merchant), []byte(ev.CardID), mlast, clast); [3]string{r2, t2, l2} != got {
			stale++
		}
		// Versions never go back along a partition's offsets.
		lp := &lastByPartition[p.Source.Partition]
		if p.Source.Offset > lp.offset {
			if _, back := mpos.Behind(lp.m); back {
				t.Errorf("partition %d offset %d read merchants at %s, older than %s at offset %d", p.Source.Partition, p.Source.Offset, mpos, lp.m, lp.offset)
			}
			if _, back := cpos.Behind(lp.c); back {
				t.Errorf("partition %d offset %d read cards at %s, older than %s at offset %d", p.Source.Partition, p.Source.Offset, cpos, lp.c, lp.offset)
			}
			lp.offset, lp.m, lp.c = p.Source.Offset, mpos, cpos
		}
	}
	var missing, twice int
	for id := range events {
		switch predicted[id] {
		case 0:
			missing++
		case 1:
		default:
			twice++
		}
	}
	if dl := b.ReadCommitted(t, dlq, time.Minute); len(dl) > 0 {
		t.Errorf("%d dead letters, the first with reason %s: %s", len(dl), kafkatest.Header(dl[0], stream.HeaderReason), kafkatest.Header(dl[0], stream.HeaderError))
	}
	t.Logf("%d events, %d predictions; %d read a table version with values other than the tables' last; %d merchants versions (the tables end at merchants %s, cards %s); %d merchant misses; %d of %d kills landed in an open transaction",
		len(events), len(recs), stale, len(versions), mlast, clast, misses, midTxn, kills)
	if missing > 0 || twice > 0 {
		t.Errorf("not one prediction per event: %d missing, %d more than once", missing, twice)
	}
	if bad > 0 {
		t.Errorf("%d of %d predictions have table features other than a replay of the tables at their versions", bad, len(recs))
	}
	if stale < len(recs)/100 || len(versions) < 10 || misses == 0 {
		t.Errorf("the table updates did not race the events: %d stale, %d versions, %d misses", stale, len(versions), misses)
	}
	if midTxn < 1 {
		t.Errorf("no kill landed in an open transaction")
	}
}
