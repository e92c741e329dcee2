package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/stream"
	"github.com/streamd/streamd/test/kafkatest"
)

// windowSetup is one windowed pipeline under test.
type windowSetup struct {
	b                      *kafkatest.Broker
	app, src, out, dlq, lt string
	size, maxOOO, lateness time.Duration
	logPath                string
}

func newWindowSetup(t *testing.T, partitions int32) *windowSetup {
	b := kafkatest.Start(t)
	w := &windowSetup{
		b: b, src: b.Topic(t, "tx", partitions),
		app: kafkatest.Name(t, "app"), out: kafkatest.Name(t, "win"), dlq: kafkatest.Name(t, "dlq"), lt: kafkatest.Name(t, "late"),
		size: 2 * time.Second, maxOOO: 3 * time.Second, lateness: 500 * time.Millisecond,
		logPath: filepath.Join(t.TempDir(), "streamd.log"),
	}
	t.Cleanup(func() {
		if t.Failed() {
			data, _ := os.ReadFile(w.logPath)
			if len(data) > 30000 {
				data = data[len(data)-30000:]
			}
			t.Logf("streamd log (tail):\n%s", data)
		}
	})
	return w
}

// config writes the pipeline config of one instance: its id, state directory and admin port.
func (w *windowSetup) config(t *testing.T, instance, stateDir string, adminPort int) string {
	cfg := fmt.Sprintf(`app: %s
instance_id: %s
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
  max_out_of_orderness: %s
  idle_timeout: off
  max_record_bytes: 64KiB
  fields:
`+cardFields+`windows:
  - name: activity
    kind: tumbling
    size: %s
    allowed_lateness: %s
    aggs: [count, {sum: amount}]
    output: %s
outputs:
  dead_letters: %s
  late: %s
admin:
  listen: 127.0.0.1:%d
log:
  level: info
  format: json
`, w.app, instance, strings.Join(w.b.Addrs, ","), stateDir, w.src, w.maxOOO, w.size, w.lateness, w.out, w.dlq, w.lt, adminPort)
	path := filepath.Join(t.TempDir(), instance+".yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func readyz(port int) int {
	c := http.Client{Timeout: 200 * time.Millisecond}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", port))
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

type winKey struct {
	key        string
	start, end int64
}

type winAgg struct {
	count int64
	sum   float64
}

// windowReport is what the window verifier found.
type windowReport struct {
	expected, got          int
	missing, dup, wrong    []string
	unexpected             []string
	lateWant, lateGot      int
	lateMissing, lateExtra []string
}

func (r windowReport) ok() bool {
	return len(r.missing)+len(r.dup)+len(r.wrong)+len(r.unexpected)+len(r.lateMissing)+len(r.lateExtra) == 0
}

func (r windowReport) String() string {
	h := func(s []string) string {
		sort.Strings(s)
		if len(s) > 5 {
			return strings.Join(s[:5], " ") + fmt.Sprintf(" ... (%d)", len(s))
		}
		return strings.Join(s, " ")
	}
	return fmt.Sprintf("windows expected %d, got %d; missing [%s]; duplicated [%s]; wrong [%s]; unexpected [%s]; late expected %d, got %d, missing [%s], extra [%s]",
		r.expected, r.got, h(r.missing), h(r.dup), h(r.wrong), h(r.unexpected), r.lateWant, r.lateGot, h(r.lateMissing), h(r.lateExtra))
}

// verifyWindows recomputes the windows from the input in one batch pass — per partition in offset
// order, with the same watermark and lateness rules — and compares them with the committed results:
// every window that must have closed appears exactly once with the same count and sum, and the late
// records are exactly the ones the rules make late.
func (w *windowSetup) verifyWindows(src, results, late []*kgo.Record) windowReport {
	size, maxOOO, lateness := w.size.Milliseconds(), w.maxOOO.Milliseconds(), w.lateness.Milliseconds()
	byPart := map[int32][]*kgo.Record{}
	for _, r := range src {
		byPart[r.Partition] = append(byPart[r.Partition], r)
	}
	want := map[winKey]winAgg{}
	wantLate := map[string]bool{}
	for p, recs := range byPart {
		sort.Slice(recs, func(i, j int) bool { return recs[i].Offset < recs[j].Offset })
		maxSeen := int64(math.MinInt64)
		open := map[winKey]winAgg{}
		for _, r := range recs {
			if kafkatest.Header(r, badHeader) != "" {
				continue
			}
			var v struct {
				Card   string  `json:"card_id"`
				Time   string  `json:"event_time"`
				Amount float64 `json:"amount"`
			}
			if err := json.Unmarshal(r.Value, &v); err != nil {
				continue
			}
			ts, _ := time.Parse(time.RFC3339Nano, v.Time)
			t := ts.UnixMilli()
			start := int64(math.Floor(float64(t)/float64(size))) * size
			k := winKey{v.Card, start, start + size}
			wm := int64(math.MinInt64)
			if maxSeen != math.MinInt64 {
				wm = maxSeen - maxOOO
			}
			if k.end+lateness <= wm {
				wantLate[fmt.Sprintf("%d@%d", p, r.Offset)] = true
			} else {
				a := open[k]
				a.count++
				a.sum += v.Amount
				open[k] = a
			}
			maxSeen = max(maxSeen, t)
		}
		final := maxSeen - maxOOO
		for k, a := range open {
			if k.end+lateness <= final {
				want[k] = a
			}
		}
	}
	var rep windowReport
	rep.expected, rep.got = len(want), len(results)
	seen := map[winKey]int{}
	for _, r := range results {
		var v struct {
			Key   string             `json:"key"`
			Start int64              `json:"start"`
			End   int64              `json:"end"`
			Emit  string             `json:"emit"`
			Count int64              `json:"count"`
			Aggs  map[string]float64 `json:"aggs"`
		}
		if err := json.Unmarshal(r.Value, &v); err != nil || v.Emit != "final" {
			rep.unexpected = append(rep.unexpected, string(r.Value))
			continue
		}
		k := winKey{v.Key, v.Start, v.End}
		seen[k]++
		name := fmt.Sprintf("%s[%d,%d)", k.key, k.start, k.end)
		exp, ok := want[k]
		switch {
		case !ok:
			rep.unexpected = append(rep.unexpected, name)
		case seen[k] > 1:
			rep.dup = append(rep.dup, name)
		case exp.count != v.Count || math.Abs(exp.sum-v.Aggs["sum_amount"]) > 1e-6*math.Max(1, math.Abs(exp.sum)):
			rep.wrong = append(rep.wrong, fmt.Sprintf("%s count %d sum %v, want %d %v", name, v.Count, v.Aggs["sum_amount"], exp.count, exp.sum))
		}
	}
	for k := range want {
		if seen[k] == 0 {
			rep.missing = append(rep.missing, fmt.Sprintf("%s[%d,%d)", k.key, k.start, k.end))
		}
	}
	rep.lateWant, rep.lateGot = len(wantLate), len(late)
	gotLate := map[string]int{}
	for _, r := range late {
		id := kafkatest.Header(r, stream.HeaderSourcePartition) + "@" + kafkatest.Header(r, stream.HeaderSourceOffset)
		gotLate[id]++
		if !wantLate[id] || gotLate[id] > 1 {
			rep.lateExtra = append(rep.lateExtra, id)
		}
	}
	for id := range wantLate {
		if gotLate[id] == 0 {
			rep.lateMissing = append(rep.lateMissing, id)
		}
	}
	return rep
}

// TestWindowsExactlyOnceUnderSIGKILL: windows over ≥ 200k records and ≥ 10k keys while the daemon is
// killed at random moments, twice right after a start with its state directory wiped (so the kill
// lands during a full restore from the changelog). Afterwards every closed window appears exactly
// once with the values of a batch recomputation, and the late records are exactly the late inputs.
func TestWindowsExactlyOnceUnderSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("long: kills and restarts a daemon for about a minute")
	}
	w := newWindowSetup(t, 4)
	n, keys, rate, kills := 200_000, 10_000, 4000.0, 6
	if w.b.Kind == kafkatest.Fake {
		n, keys, rate, kills = 30_000, 10_000, 2500.0, 5
	}
	stateDir := t.TempDir()
	port := freePort(t)
	cfg := w.config(t, "w-1", stateDir, port)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	prodDone := make(chan error, 1)
	go func() {
		prodDone <- produceInputWith(ctx, w.b.Client(t, kgo.ProducerLinger(5*time.Millisecond)), w.src, n, keys, 5*time.Second, rate, 0.02, 21)
	}()
	adm := kadm.NewClient(w.b.Client(t))
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 5))
	proc := start(t, w.logPath, nil, streamdBin, "run", "-config", cfg)
	midTxn, duringRestore := 0, 0
	for i := 0; i < kills; i++ {
		wipe := i == 2 || i == 4
		wait := time.Duration(2000+rng.IntN(3000)) * time.Millisecond
		if wipe {
			// Kill soon after a start that has to restore everything: first let the daemon start.
			wait = time.Duration(100+rng.IntN(300)) * time.Millisecond
		}
		time.Sleep(wait)
		if err := proc.exited(); err != nil {
			t.Fatalf("streamd died by itself before kill %d: %v", i+1, err)
		}
		status := readyz(port)
		proc.kill(t)
		state := txnState(ctx, adm, w.app+"-w-1")
		if state == "Ongoing" {
			midTxn++
		}
		if status == http.StatusServiceUnavailable {
			duringRestore++
		}
		t.Logf("kill %d after %s: /readyz %d, transaction %s", i+1, wait, status, state)
		if i == 1 || i == 3 {
			// The next start has no local state: a full restore from the changelog, then a kill.
			if err := os.RemoveAll(stateDir); err != nil {
				t.Fatal(err)
			}
		}
		proc = start(t, w.logPath, nil, streamdBin, "run", "-config", cfg)
	}
	if err := <-prodDone; err != nil {
		t.Fatal(err)
	}
	w.b.WaitCaughtUp(t, w.app, w.src, 3*time.Minute, proc.exited)
	_ = proc.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-proc.done; err != nil {
		t.Errorf("streamd did not exit cleanly on SIGTERM: %v", err)
	}
	if midTxn < 2 {
		t.Errorf("only %d of %d kills landed in an open transaction", midTxn, kills)
	}
	t.Logf("%d kills landed in an open transaction, %d while /readyz said restoring", midTxn, duringRestore)
	src := w.b.ReadCommitted(t, w.src, time.Minute)
	rep := w.verifyWindows(src, w.b.ReadCommitted(t, w.out, time.Minute), w.b.ReadCommitted(t, w.lt, time.Minute))
	t.Logf("window verifier: %s", rep)
	if rep.lateWant == 0 {
		t.Error("no input was late; the late path went untested")
	}
	if rep.expected < 1000 {
		t.Errorf("only %d windows closed; the test proves little", rep.expected)
	}
	if !rep.ok() {
		t.Errorf("window results differ from a batch recomputation: %s", rep)
	}
	dead := verify(src, nil, w.b.ReadCommitted(t, w.dlq, time.Minute))
	if len(dead.duplicated) > 0 || dead.deadCount != dead.bad {
		t.Errorf("dead letters: %d for %d broken inputs (duplicated %v)", dead.deadCount, dead.bad, dead.duplicated)
	}
}

// TestRebalanceRestoresState: three instances share the group; one is killed, later a new one with an
// empty state directory joins. Partitions move, their state is restored from the changelogs, and the
// results still equal a batch recomputation, each window exactly once.
func TestRebalanceRestoresState(t *testing.T) {
	if testing.Short() {
		t.Skip("long: runs several daemons for about a minute")
	}
	w := newWindowSetup(t, 6)
	n, rate := 120_000, 3000.0
	if w.b.Kind == kafkatest.Fake {
		n, rate = 30_000, 1500.0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	prodDone := make(chan error, 1)
	go func() {
		prodDone <- produceInputWith(ctx, w.b.Client(t, kgo.ProducerLinger(5*time.Millisecond)), w.src, n, 10_000, 5*time.Second, rate, 0.02, 33)
	}()
	// Each instance logs to its own file, printed when the test fails; the shared log (w.logPath)
	// collects them all at the end for the restore count.
	logs := map[string]string{}
	startInstance := func(id string) *process {
		logs[id] = filepath.Join(t.TempDir(), id+".log")
		return start(t, logs[id], nil, streamdBin, "run", "-config", w.config(t, id, t.TempDir(), freePort(t)))
	}
	t.Cleanup(func() {
		if t.Failed() {
			for id, l := range logs {
				data, _ := os.ReadFile(l)
				if len(data) > 8000 {
					data = data[len(data)-8000:]
				}
				t.Logf("instance %s log (tail):\n%s", id, data)
			}
		}
	})
	procs := map[string]*process{"a": startInstance("a"), "b": startInstance("b"), "c": startInstance("c")}
	time.Sleep(8 * time.Second)
	procs["b"].kill(t)
	delete(procs, "b")
	t.Log("killed instance b; its partitions move after the session timeout")
	time.Sleep(12 * time.Second)
	procs["d"] = startInstance("d")
	t.Log("started instance d with an empty state directory")
	if err := <-prodDone; err != nil {
		t.Fatal(err)
	}
	anyExited := func() error {
		for id, p := range procs {
			if err := p.exited(); err != nil {
				return fmt.Errorf("instance %s: %w", id, err)
			}
		}
		return nil
	}
	w.b.WaitCaughtUp(t, w.app, w.src, 3*time.Minute, anyExited)
	for id, p := range procs {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		if err := <-p.done; err != nil {
			t.Errorf("instance %s did not exit cleanly: %v", id, err)
		}
	}
	restores := 0
	for _, l := range logs {
		data, _ := os.ReadFile(l)
		restores += strings.Count(string(data), `"msg":"state restored"`)
	}
	t.Logf("%d store restores logged", restores)
	if restores == 0 {
		t.Error("no state was restored from a changelog: partitions did not move with their state")
	}
	src := w.b.ReadCommitted(t, w.src, time.Minute)
	rep := w.verifyWindows(src, w.b.ReadCommitted(t, w.out, time.Minute), w.b.ReadCommitted(t, w.lt, time.Minute))
	t.Logf("window verifier: %s", rep)
	if !rep.ok() {
		t.Errorf("window results differ from a batch recomputation: %s", rep)
	}
}
