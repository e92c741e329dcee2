package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/internal/gen"
	"github.com/streamd/streamd/test/kafkatest"
)

// produceWithLabels produces n generated transactions at rate records/s to topic and, keyed by card
// like the transactions, a label for about labelRatio of the valid ones to labels, labelDelay after
// the event (the rest at the end). It returns the labels produced: event id → label.
func produceWithLabels(ctx context.Context, cl *kgo.Client, topic, labels string, n int, rate, labelRatio float64, labelDelay time.Duration, seed int64) (map[string]float64, error) {
	g, err := gen.New(gen.Config{Seed: seed, Keys: 2000, BadRatio: 0.02, OutOfOrder: time.Second, FraudRate: 0.1,
		LabelRatio: labelRatio, LabelDelay: labelDelay})
	if err != nil {
		return nil, err
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	done := func(_ *kgo.Record, err error) {
		defer wg.Done()
		if err != nil {
			mu.Lock()
			firstErr = cmpOr(firstErr, err)
			mu.Unlock()
		}
	}
	want := map[string]float64{}
	produceLabels := func(ls []gen.Label) {
		for _, l := range ls {
			want[l.EventID] = 0
			if l.Fraud {
				want[l.EventID] = 1
			}
			wg.Add(1)
			cl.Produce(ctx, &kgo.Record{Topic: labels, Key: []byte(l.CardID), Value: gen.AppendLabelJSON(nil, l)}, done)
		}
	}
	var due []gen.Label
	start := time.Now()
	for i := range n {
		if i%50 == 0 {
			if ahead := time.Duration(float64(i)/rate*float64(time.Second)) - time.Since(start); ahead > 0 {
				select {
				case <-ctx.Done():
					return nil, ctx.Err()
				case <-time.After(ahead):
				}
			}
			due = g.DueLabels(due[:0], time.Now())
			produceLabels(due)
		}
		rec := g.Next(time.Now())
		r := &kgo.Record{Topic: topic, Key: rec.Key, Value: rec.Value}
		if rec.Bad != gen.NotBad {
			r.Headers = []kgo.RecordHeader{{Key: badHeader, Value: []byte(rec.Bad.String())}}
		}
		wg.Add(1)
		cl.Produce(ctx, r, done)
	}
	produceLabels(g.DrainLabels(nil))
	wg.Wait()
	return want, firstErr
}

// TestTrainingRowsExactlyOnceUnderSIGKILL: a pipeline that scores transactions and learns from a
// labels topic writes training rows while it is killed at random moments inside open
// transactions. Afterwards a read_committed consumer finds exactly one row per labelled event, with
// its label, and with the features of the event's prediction, byte for byte.
func TestTrainingRowsExactlyOnceUnderSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("long: kills and restarts a daemon for ~30 s")
	}
	b := kafkatest.Start(t)
	n, rate, kills := 40_000, 2000.0, 4
	if b.Kind == kafkatest.Fake {
		n, rate = 15_000, 1500.0
	}
	src, labels := b.Topic(t, "tx", 2), b.Topic(t, "labels", 2)
	app, preds, dlq, training := kafkatest.Name(t, "train"), kafkatest.Name(t, "preds"), kafkatest.Name(t, "dlq"), kafkatest.Name(t, "rows")
	cfgPath := modelConfig(t, b, app, "t-1", src, preds, dlq, t.TempDir(), freePort(t))
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	text := string(cfg)
	for _, e := range []struct{ old, new string }{
		{"labels:\n  field: label\n", "labels:\n  topic: " + labels + "\n  event_id: event_id\n  field: label\n  ttl: 1h\n"},
		{"outputs:\n", "outputs:\n  training: " + training + "\n"},
	} {
		if !strings.Contains(text, e.old) {
			t.Fatalf("the model config has no %q any more; update this test", e.old)
		}
		text = strings.Replace(text, e.old, e.new, 1)
	}
	if err := os.WriteFile(cfgPath, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(t.TempDir(), "streamd.log")
	t.Cleanup(func() {
		if t.Failed() {
			data, _ := os.ReadFile(logPath)
			t.Logf("streamd log (tail):\n%s", tail(string(data), 15000))
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	type produced struct {
		labels map[string]float64
		err    error
	}
	prodDone := make(chan produced, 1)
	go func() {
		l, err := produceWithLabels(ctx, b.Client(t, kgo.ProducerLinger(5*time.Millisecond)), src, labels, n, rate, 0.5, 2*time.Second, 17)
		prodDone <- produced{l, err}
	}()
	proc := start(t, logPath, nil, streamdBin, "run", "-config", cfgPath)
	adm := kadm.NewClient(b.Client(t))
	proc, midTxn := killDuringTransactions(ctx, t, adm, proc, app+"-t-1", kills, 13, func() *process {
		return start(t, logPath, nil, streamdBin, "run", "-config", cfgPath)
	})
	p := <-prodDone
	if p.err != nil {
		t.Fatal(p.err)
	}
	b.WaitCaughtUp(t, app, src, 3*time.Minute, proc.exited)
	b.WaitCaughtUp(t, app, labels, 3*time.Minute, proc.exited)
	_ = proc.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-proc.done; err != nil {
		t.Errorf("streamd did not exit cleanly: %v", err)
	}

	predRecs := b.ReadCommitted(t, preds, time.Minute)
	if rep := verify(b.ReadCommitted(t, src, time.Minute), predRecs, b.ReadCommitted(t, dlq, time.Minute)); !rep.ok() {
		t.Errorf("predictions are not exactly one per accepted event: %s", rep)
	}
	features := map[string]string{}
	for _, r := range predRecs {
		var v struct {
			EventID  string          `json:"event_id"`
			Features json.RawMessage `json:"features"`
		}
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Fatalf("prediction %.200s: %v", r.Value, err)
		}
		features[v.EventID] = string(v.Features)
	}
	rows := map[string]int{}
	var wrongLabel, wrongFeatures, unexpected []string
	for _, r := range b.ReadCommitted(t, training, time.Minute) {
		var v struct {
			EventID  string          `json:"event_id"`
			Label    float64         `json:"label"`
			Features json.RawMessage `json:"features"`
		}
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Fatalf("training row %.200s: %v", r.Value, err)
		}
		rows[v.EventID]++
		want, ok := p.labels[v.EventID]
		switch {
		case !ok:
			unexpected = append(unexpected, v.EventID)
		case v.Label != want:
			wrongLabel = append(wrongLabel, v.EventID)
		}
		if f, ok := features[v.EventID]; !ok || f != string(v.Features) {
			wrongFeatures = append(wrongFeatures, v.EventID+": row "+string(v.Features)+", prediction "+f)
		}
	}
	var missing, twice []string
	for id := range p.labels {
		switch rows[id] {
		case 0:
			missing = append(missing, id)
		case 1:
		default:
			twice = append(twice, id)
		}
	}
	first := func(ids []string) []string { return ids[:min(len(ids), 3)] }
	t.Logf("%d labels, %d training rows for %d events; %d of %d kills landed in an open transaction",
		len(p.labels), len(rows), len(features), midTxn, kills)
	if len(missing)+len(twice)+len(unexpected)+len(wrongLabel)+len(wrongFeatures) > 0 {
		t.Errorf("training rows are not one per labelled event with its label and served features: %d missing %v, %d more than once %v, %d without a label %v, %d with another label %v, %d with other features %v",
			len(missing), first(missing), len(twice), first(twice), len(unexpected), first(unexpected),
			len(wrongLabel), first(wrongLabel), len(wrongFeatures), first(wrongFeatures))
	}
	// streamd export reads the same committed rows into daily Parquet files.
	outDir := t.TempDir()
	exportLog := filepath.Join(t.TempDir(), "export.log")
	exp := start(t, exportLog, nil, streamdBin, "export", "-brokers", strings.Join(b.Addrs, ","), "-topic", training, "-out", outDir)
	if err := <-exp.done; err != nil {
		data, _ := os.ReadFile(exportLog)
		t.Fatalf("streamd export: %v\n%s", err, data)
	}
	data, _ := os.ReadFile(exportLog)
	m := regexp.MustCompile(`exported (\d+) records of \S+ into (\d+) files`).FindStringSubmatch(string(data))
	if m == nil {
		t.Fatalf("streamd export said:\n%s", data)
	}
	exported, _ := strconv.Atoi(m[1])
	files, _ := strconv.Atoi(m[2])
	total := 0
	for _, c := range rows {
		total += c
	}
	if exported != total || files < 1 || !strings.Contains(string(data), "models.ftrl.score") || !strings.Contains(string(data), "features.amount_log") {
		t.Errorf("streamd export wrote %d records in %d files, want the %d rows, with model and feature columns:\n%s", exported, files, total, data)
	}
	if len(p.labels) < n/4 {
		t.Errorf("only %d labels for %d events", len(p.labels), n)
	}
	if midTxn < 1 {
		t.Errorf("no kill landed in an open transaction")
	}
}
