package observability

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// restorePipeline keeps state for every key for the length of the test (a day-long tumbling window
// and hour-long sessions), so that the changelogs hold one record or more per key: a new instance
// must replay them all before it is ready.
const restorePipeline = `app: %[1]s
kafka:
  brokers: ["${KAFKA_BROKERS}"]
  commit_interval: 100ms
  transaction_timeout: 15s
  session_timeout: 10s
state:
  dir: "${STREAMD_STATE_DIR}"
source:
  topic: %[2]s
  key: card_id
  event_id: event_id
  event_time: {field: event_time, format: rfc3339}
  fields:
    amount: {type: number, required: true, min: 0}
    merchant: {type: string, max_length: 64}
windows:
  - name: card_day
    kind: tumbling
    size: 24h
    aggs: [count, {sum: amount}, {p99: amount}, {distinct: merchant}]
    output: %[2]s-day
  - name: card_sessions
    kind: session
    gap: 1h
    aggs: [count, {mean: amount}, {max: amount}]
    output: %[2]s-sessions
outputs:
  dead_letters: %[2]s-dlq
admin:
  listen: "${STREAMD_ADMIN_LISTEN}"
log:
  level: info
  format: json
`

// readiness is one poll of a restarting instance: metrics before, /readyz and /healthz, metrics after.
type readiness struct {
	at                   time.Duration
	ready, health        int // HTTP status, 0 if the server did not answer
	storesBefore, stores float64
	restoredBefore       float64
	restored             float64
	assigned             float64
	scrapedBefore        bool
	scraped              bool
}

// TestReadyzDuringRestore shows that /readyz answers 503 while the state restores from the
// changelogs and 200 after, and that /healthz answers 200 throughout (a liveness probe must not
// kill a pod that restores). Against a real broker: `streamd gen` writes the input, a first
// `streamd run` builds the state and stops; a second run with the same instance id and an empty
// state directory (a pod that lost its volume) must restore every changelog before it is ready.
//
// "During restore" is observed, not assumed: a 503 counts only if, in the same poll, the metrics
// read before it show a store already restored (streamd_restore_duration_seconds_count > 0) and the
// metrics read after it show stores still to restore. After the first 200, no store may restore any
// more.
func TestReadyzDuringRestore(t *testing.T) {
	brokers := os.Getenv("KAFKA_BROKERS")
	if brokers == "" {
		t.Skip("KAFKA_BROKERS is not set: restoring from changelogs needs a real Kafka broker (`make kafka-up`)")
	}
	const (
		records = 1_000_000
		keys    = 400_000
	)
	suffix := randomSuffix()
	topic, app := "obs-readyz-"+suffix, "obs-readyz-"+suffix
	cfgPath := filepath.Join(t.TempDir(), "pipeline.yaml")
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf(restorePipeline, app, topic)), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteTopics(t, brokers, topic, app) })

	// The input.
	start := time.Now()
	gen := startProc(t, "streamd-gen", nil, streamdBin, "gen", "-brokers", brokers, "-topic", topic,
		"-labels-topic", "", "-count", strconv.Itoa(records), "-rate", "0", "-keys", strconv.Itoa(keys),
		"-zipf", "1.01", "-partitions", "4")
	if err, done := gen.wait(90 * time.Second); !done || err != nil {
		t.Fatalf("streamd gen: %v (done %v)\n%s", err, done, gen.tail(20))
	}
	t.Logf("%d records on %s in %s", records, topic, time.Since(start).Round(time.Millisecond))

	// Run 1 builds the state.
	env := func(stateDir, admin string) []string {
		return []string{"KAFKA_BROKERS=" + brokers, "STREAMD_STATE_DIR=" + stateDir,
			"STREAMD_ADMIN_LISTEN=" + admin, "STREAMD_INSTANCE_ID=obs-readyz-0"}
	}
	admin1 := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	start = time.Now()
	run1 := startProc(t, "streamd-run-1", env(t.TempDir(), admin1), streamdBin, "run", "-config", cfgPath)
	waitHTTP(t, "http://"+admin1+"/healthz", 30*time.Second, run1)
	var changelog float64
	for deadline := time.Now().Add(120 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		if run1.exited() {
			t.Fatalf("run 1 exited: %v\n%s", run1.err, run1.tail(20))
		}
		fams, _, err := scrape("http://" + admin1 + "/metrics")
		if err == nil && total(fams, "streamd_records_consumed_total") >= records {
			changelog = total(fams, "streamd_changelog_records_total")
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("run 1 did not consume %d records within 2 minutes (consumed %.0f)", records, total(fams, "streamd_records_consumed_total"))
		}
	}
	if err := run1.stop(t, 30*time.Second); err != nil {
		t.Fatalf("run 1 did not stop cleanly: %v\n%s", err, run1.tail(20))
	}
	t.Logf("run 1: consumed %d records, %.0f changelog records, in %s", records, changelog, time.Since(start).Round(time.Millisecond))
	if changelog < keys/4 {
		t.Fatalf("only %.0f changelog records: the state is too small for this test", changelog)
	}

	// Run 2: the same instance on an empty state directory restores every changelog.
	admin2 := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	base := "http://" + admin2
	start = time.Now()
	run2 := startProc(t, "streamd-run-2", env(t.TempDir(), admin2), streamdBin, "run", "-config", cfgPath)
	var polls []readiness
	client := &http.Client{Timeout: 2 * time.Second}
	status := func(path string) int {
		resp, err := client.Get(base + path)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if run2.exited() {
			t.Fatalf("run 2 exited: %v\n%s", run2.err, run2.tail(20))
		}
		var r readiness
		if fams, _, err := scrape(base + "/metrics"); err == nil {
			r.scrapedBefore = true
			r.storesBefore = total(fams, "streamd_restore_duration_seconds")
			r.restoredBefore = total(fams, "streamd_restored_records_total")
		}
		r.at = time.Since(start)
		r.ready, r.health = status("/readyz"), status("/healthz")
		if fams, _, err := scrape(base + "/metrics"); err == nil {
			r.scraped = true
			r.stores = total(fams, "streamd_restore_duration_seconds")
			r.restored = total(fams, "streamd_restored_records_total")
			r.assigned = total(fams, "streamd_assigned_partitions")
		}
		polls = append(polls, r)
		if r.ready == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("run 2 was not ready within 90 s; last poll %+v", r)
		}
	}
	ready := polls[len(polls)-1]
	time.Sleep(time.Second)
	after, _, err := scrape(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	finalStores := total(after, "streamd_restore_duration_seconds")
	finalRestored := total(after, "streamd_restored_records_total")

	var during []readiness
	for _, r := range polls {
		if r.health != 0 && r.health != http.StatusOK {
			t.Errorf("/healthz answered %d at %s (ready %d): liveness must hold while restoring", r.health, r.at, r.ready)
		}
		if r.ready == http.StatusServiceUnavailable && r.scrapedBefore && r.storesBefore > 0 && r.scraped && r.stores < finalStores {
			during = append(during, r)
		}
	}
	t.Logf("run 2: %d polls; %d answered 503 while restoring (first at %s, %.0f of %.0f stores, %.0f records restored); ready (200) at %s",
		len(polls), len(during), firstAt(during), firstStores(during), finalStores, firstRestored(during), ready.at)
	if len(during) == 0 {
		t.Errorf("/readyz never answered 503 while stores were restoring (%d polls, %.0f stores restored in all)", len(polls), finalStores)
	}
	if finalStores != ready.stores || finalRestored != ready.restored {
		t.Errorf("restores went on after /readyz answered 200: %.0f stores and %.0f records when ready, %.0f and %.0f a second later",
			ready.stores, ready.restored, finalStores, finalRestored)
	}
	if ready.assigned != 4 {
		t.Errorf("ready with %.0f assigned partitions, want 4", ready.assigned)
	}
	if finalRestored <= 0 {
		t.Errorf("no changelog record was restored")
	}
	t.Logf("restored %.0f changelog records (run 1 produced %.0f) into %.0f stores", finalRestored, changelog, finalStores)

	if err := run2.stop(t, 30*time.Second); err != nil {
		t.Errorf("run 2 did not stop cleanly: %v", err)
	}
	checkJSONLogs(t, run2.output(), app)
}

func firstAt(rs []readiness) time.Duration {
	if len(rs) == 0 {
		return 0
	}
	return rs[0].at.Round(time.Millisecond)
}

func firstStores(rs []readiness) float64 {
	if len(rs) == 0 {
		return 0
	}
	return rs[0].stores
}

func firstRestored(rs []readiness) float64 {
	if len(rs) == 0 {
		return 0
	}
	return rs[0].restored
}

// checkJSONLogs checks what docs/operations.md says of `log.format: json`: one JSON object per
// line, with time, level and msg, and the app on the pipeline's lines.
func checkJSONLogs(t *testing.T, out, app string) {
	t.Helper()
	lines, withApp, withPartition := 0, 0, 0
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("a log line is not JSON: %q", line)
			continue
		}
		lines++
		for _, k := range []string{"time", "level", "msg"} {
			if _, ok := m[k]; !ok {
				t.Errorf("log line without %q: %s", k, line)
			}
		}
		if m["app"] == app {
			withApp++
		}
		if _, ok := m["partition"]; ok {
			withPartition++
		}
	}
	if withApp == 0 || withPartition == 0 {
		t.Errorf("of %d JSON log lines, %d carry app=%s and %d a partition", lines, withApp, app, withPartition)
	}
}

// deleteTopics removes the test's topics from the shared broker: the source, the outputs and the
// changelogs, which all start with the topic or app name.
func deleteTopics(t *testing.T, brokers string, prefixes ...string) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...))
	if err != nil {
		return
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		t.Logf("cleanup: list topics: %v", err)
		return
	}
	var del []string
	for _, name := range topics.Names() {
		for _, p := range prefixes {
			if strings.HasPrefix(name, p) {
				del = append(del, name)
				break
			}
		}
	}
	if len(del) > 0 {
		if _, err := adm.DeleteTopics(ctx, del...); err != nil {
			t.Logf("cleanup: delete topics %v: %v", del, err)
		}
	}
}
