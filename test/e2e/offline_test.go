package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/gbdt"
	"github.com/streamd/streamd/stream"
	"github.com/streamd/streamd/test/kafkatest"
)

// offlineModelFile is a model of model/testdata (trained by model/testdata/gen.py on amount, the
// channel's code and tx_count_1m).
func offlineModelFile(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "model", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func offlineConfig(t *testing.T, b *kafkatest.Broker, app, src, preds, dlq, versions, stateDir string, port int) string {
	cfg := fmt.Sprintf(`app: %s
instance_id: swap-1
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
features:
  - {name: amount, from: amount}
  - {name: channel, from: channel, encode: onehot}
  - {name: tx_count_1m, window: {kind: sliding, size: 1m, resolution: 1s}, agg: count}
labels:
  field: label
models:
  champion: nightly
  versions_topic: %s
  merge_interval: off
  list:
    - {name: nightly, offline: {file: %s, explain_top_k: 2}}
outputs:
  predictions: %s
  dead_letters: %s
admin:
  listen: 127.0.0.1:%d
log:
  level: info
  format: json
`, app, strings.Join(b.Addrs, ","), stateDir, src, versions, offlineModelFile(t, "fraud_v1.json"), preds, dlq, port)
	path := filepath.Join(t.TempDir(), app+".yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// modelCmd runs `streamd model ARGS...` and returns its exit code and output.
func modelCmd(t *testing.T, args ...string) (int, string) {
	t.Helper()
	out, err := exec.Command(streamdBin, append([]string{"model"}, args...)...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

// liveVersion asks the instance's /v1/models for the offline model's live version (-1 while it is
// not up).
func liveVersion(port int) int64 {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/v1/models", port))
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var v struct {
		Operators []struct {
			Models []struct {
				Live *int64 `json:"live_version"`
			} `json:"models"`
		} `json:"operators"`
	}
	if json.NewDecoder(resp.Body).Decode(&v) != nil || len(v.Operators) == 0 || len(v.Operators[0].Models) == 0 || v.Operators[0].Models[0].Live == nil {
		return -1
	}
	return *v.Operators[0].Models[0].Live
}

func scrapeText(port int) string {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}

// TestOfflineModelHotSwapUnderSIGKILL: an instance scores every event with an offline model while
// versions are pushed, rolled back (CLI and admin API) and a bad one is written behind push's
// back; the instance is SIGKILLed right after each change (while tasks swap) and restarted.
// Afterwards the committed predictions are exactly one per accepted event, and each was made by
// the version it names: its score is that version's score of its features, per partition the
// versions follow the order in which they were made live, and the refused version never scored.
func TestOfflineModelHotSwapUnderSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("long: pushes versions and kills a daemon for ~40 s")
	}
	b := kafkatest.Start(t)
	n, rate := 40_000, 1500.0
	if b.Kind == kafkatest.Fake {
		n, rate = 20_000, 1000.0
	}
	src := b.Topic(t, "tx", 2)
	app := kafkatest.Name(t, "swap")
	preds, dlq, versions := kafkatest.Name(t, "preds"), kafkatest.Name(t, "dlq"), kafkatest.Name(t, "versions")
	port := freePort(t)
	cfg := offlineConfig(t, b, app, src, preds, dlq, versions, t.TempDir(), port)
	logPath := filepath.Join(t.TempDir(), "swap.log")
	t.Cleanup(func() {
		if t.Failed() {
			data, _ := os.ReadFile(logPath)
			if len(data) > 20000 {
				data = data[len(data)-20000:]
			}
			t.Logf("%s (tail):\n%s", logPath, data)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	prodDone := make(chan error, 1)
	go func() {
		prodDone <- produceLabelled(ctx, b.Client(t, kgo.ProducerLinger(5*time.Millisecond)), src, n, rate, 0.02, 11)
	}()
	proc := start(t, logPath, nil, streamdBin, "run", "-config", cfg)
	adm := kadm.NewClient(b.Client(t))
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 15))
	waitLive := func(v int64) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for liveVersion(port) != v {
			if err := proc.exited(); err != nil {
				t.Fatalf("streamd exited: %v", err)
			}
			if time.Now().After(deadline) {
				t.Fatalf("version %d is not live after 60 s (live: %d)", v, liveVersion(port))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	midTxn := 0
	killRestart := func() {
		t.Helper()
		// Within a few cycles of the change: tasks are swapping.
		time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
		proc.kill(t)
		if txnState(ctx, adm, app+"-swap-1") == "Ongoing" {
			midTxn++
		}
		proc = start(t, logPath, nil, streamdBin, "run", "-config", cfg)
	}
	waitLive(0)
	time.Sleep(2 * time.Second)
	// The live history: 0, then 1 (push), 2 (push of a LightGBM model), 1 (rollback, CLI), 2 (admin API).
	history := []int64{0}
	push := func(file string, want int64) {
		t.Helper()
		code, out := modelCmd(t, "push", "-config", cfg, "-name", "nightly", "-file", offlineModelFile(t, file))
		if code != 0 || !strings.Contains(out, fmt.Sprintf("version %d", want)) {
			t.Fatalf("push %s: exit %d: %s", file, code, out)
		}
		history = append(history, want)
	}
	push("fraud_v2.json", 1)
	killRestart()
	waitLive(1)
	time.Sleep(time.Second)
	push("fraud_lgb.txt", 2)
	killRestart()
	waitLive(2)
	// A bad file is refused by push, before it writes anything.
	if code, out := modelCmd(t, "push", "-config", cfg, "-name", "nightly", "-file", offlineModelFile(t, "fraud_needs_merchant_risk.json")); code == 0 || !strings.Contains(out, "merchant_risk") {
		t.Fatalf("push of a model that needs merchant_risk: exit %d: %s", code, out)
	}
	// Written behind push's back, it is refused by the instance, which keeps serving version 2.
	bad, err := os.ReadFile(offlineModelFile(t, "fraud_regression.json"))
	if err != nil {
		t.Fatal(err)
	}
	pc := b.Client(t)
	if err := pc.ProduceSync(ctx, &kgo.Record{Topic: versions, Key: []byte("nightly/v/3"), Value: bad},
		&kgo.Record{Topic: versions, Key: []byte("nightly/live"), Value: []byte("3")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(scrapeText(port), `streamd_model_versions_refused_total{model="nightly"} 2`) {
		if time.Now().After(deadline) {
			t.Fatalf("the instance did not count the bad version and its live pointer as refused:\n%s", scrapeText(port))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if v := liveVersion(port); v != 2 {
		t.Fatalf("live version %d after a bad version was written, want 2", v)
	}
	time.Sleep(time.Second)
	if code, out := modelCmd(t, "rollback", "-config", cfg, "-name", "nightly", "-version", "1"); code != 0 {
		t.Fatalf("rollback: exit %d: %s", code, out)
	}
	history = append(history, 1)
	killRestart()
	waitLive(1)
	time.Sleep(time.Second)
	resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/v1/models/nightly/rollback?version=2", port), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("admin rollback: %s", resp.Status)
	}
	history = append(history, 2)
	killRestart()
	waitLive(2)

	if err := <-prodDone; err != nil {
		t.Fatal(err)
	}
	b.WaitCaughtUp(t, app, src, 3*time.Minute, proc.exited)
	if code, out := modelCmd(t, "list", "-config", cfg); code != 0 || !strings.Contains(out, "nightly: live 2, versions [1 2 3]") {
		t.Errorf("model list: exit %d: %s", code, out)
	}
	proc.stop(t)
	t.Logf("%d of 4 kills landed in an open transaction", midTxn)

	srcRecs := b.ReadCommitted(t, src, time.Minute)
	predRecs := b.ReadCommitted(t, preds, time.Minute)
	rep := verify(srcRecs, predRecs, b.ReadCommitted(t, dlq, time.Minute))
	t.Logf("verifier: %s", rep)
	if !rep.ok() {
		t.Errorf("predictions are not exactly one per accepted event: %s", rep)
	}

	// Each prediction was made by the version it names.
	names := []string{"amount", "channel", "tx_count_1m"}
	scorers := map[int64]*gbdt.Scorer{}
	for v, file := range map[int64]string{0: "fraud_v1.json", 1: "fraud_v2.json", 2: "fraud_lgb.txt"} {
		m, err := gbdt.LoadFile(offlineModelFile(t, file))
		if err != nil {
			t.Fatal(err)
		}
		if scorers[v], err = m.Bind(names); err != nil {
			t.Fatal(err)
		}
	}
	codes := map[string]float64{"pos": 0, "online": 1, "atm": 2}
	type made struct {
		offset  int64
		version int64
	}
	byPartition := map[string][]made{}
	counts := map[int64]int{}
	out := make([]float64, 1)
	wrong := 0
	for _, r := range predRecs {
		var p struct {
			Version     int64          `json:"version"`
			Score       float64        `json:"score"`
			Features    map[string]any `json:"features"`
			Explanation *struct {
				Top []json.RawMessage `json:"top"`
			} `json:"explanation"`
		}
		if err := json.Unmarshal(r.Value, &p); err != nil {
			t.Fatalf("prediction %s: %v", r.Value, err)
		}
		s, ok := scorers[p.Version]
		if !ok {
			t.Fatalf("a prediction names version %d, which was never a valid live version: %s", p.Version, r.Value)
		}
		counts[p.Version]++
		x := []float64{math.NaN(), math.NaN(), math.NaN()}
		if a, ok := p.Features["amount"].(float64); ok {
			x[0] = a
		}
		if c, ok := p.Features["channel"].(string); ok {
			x[1] = codes[c]
		}
		if c, ok := p.Features["tx_count_1m"].(float64); ok {
			x[2] = c
		}
		s.Predict(x, out)
		if math.Abs(out[0]-p.Score) > 1e-12 {
			if wrong++; wrong <= 3 {
				t.Errorf("prediction %s: version %d scores %v", r.Value, p.Version, out[0])
			}
		}
		if p.Explanation == nil || len(p.Explanation.Top) != 2 {
			t.Fatalf("prediction without its explanation: %s", r.Value)
		}
		off, _ := strconv.ParseInt(kafkatest.Header(r, stream.HeaderSourceOffset), 10, 64)
		part := kafkatest.Header(r, stream.HeaderSourcePartition)
		byPartition[part] = append(byPartition[part], made{off, p.Version})
	}
	if wrong > 0 {
		t.Errorf("%d predictions do not match the version they name", wrong)
	}
	// Per partition, in input order, the versions change only as the live history did: the runs
	// of one version follow the history, in order (a task may skip a version that was live only
	// between two of its cycles).
	for part, ms := range byPartition {
		sort.Slice(ms, func(i, j int) bool { return ms[i].offset < ms[j].offset })
		h := 0
		for _, m := range ms {
			for h < len(history) && history[h] != m.version {
				h++
			}
			if h == len(history) {
				t.Fatalf("partition %s: at offset %d version %d comes after the live history %v allows", part, m.offset, m.version, history)
			}
		}
	}
	t.Logf("predictions by version: %v (live history %v)", counts, history)
	for _, v := range []int64{0, 1, 2} {
		if counts[v] == 0 {
			t.Errorf("no prediction by version %d: the swaps did not happen under load", v)
		}
	}
	if midTxn < 1 {
		t.Errorf("none of the 4 kills landed in an open transaction")
	}
}
