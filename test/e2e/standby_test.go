package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
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

	"github.com/streamd/streamd/state"
	"github.com/streamd/streamd/test/kafkatest"
)

// failoverKeysEnv sets the keys of state TestFailoverToStandby builds (default failoverKeys, which
// keeps it in `make test`); `make failover-bench` runs it with 1,000,000 and a binary built without
// the race detector, for the figures in docs/BENCHMARKS.md.
const (
	failoverKeysEnv = "STREAMD_FAILOVER_KEYS"
	failoverKeys    = 20_000
)

// TestFailoverToStandby: two instances hold the state of distinct keys in 24 h windows (one
// window per key, open for the whole test); one is killed with SIGKILL and the survivor takes its
// partitions over. With state.standby_replicas: 1 the survivor's restore replays only the tail
// written after its replicas caught up (here nothing: the killed instance had no new input); with
// 0 it replays the whole changelog of those partitions, which shows the check can fail. Either way
// the survivor then holds the killed instance's keys. The time from the kill to the survivor having
// committed new input on every partition is logged for both, with the restore's part of it.
func TestFailoverToStandby(t *testing.T) {
	if testing.Short() {
		t.Skip("long: kills an instance and waits out the session timeout")
	}
	keys := failoverKeys
	if v := os.Getenv(failoverKeysEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 100 {
			t.Fatalf("%s=%q: want a key count of at least 100", failoverKeysEnv, v)
		}
		keys = n
	}
	bin := streamdBin
	if keys > failoverKeys {
		// The figures are the daemon's, not the race detector's.
		bin = filepath.Join(t.TempDir(), "streamd")
		build := exec.Command("go", "build", "-o", bin, "../../cmd/streamd")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			t.Fatal(err)
		}
	}
	for _, replicas := range []int{1, 0} {
		t.Run(fmt.Sprintf("standby_replicas=%d", replicas), func(t *testing.T) {
			failover(t, bin, keys, replicas)
		})
	}
}

func failover(t *testing.T, bin string, keys, replicas int) {
	b := kafkatest.Start(t)
	const partitions = 4
	src := b.Topic(t, "tx", partitions)
	app := kafkatest.Name(t, "app")
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
	config := func(instance string, port int) string {
		cfg := fmt.Sprintf(`app: %s
instance_id: %s
kafka:
  brokers: [%s]
  commit_interval: 100ms
  transaction_timeout: 10s
  session_timeout: 6s
state:
  dir: %s
  standby_replicas: %d
source:
  topic: %s
  key: card_id
  event_id: event_id
  event_time: {field: event_time, format: rfc3339, max_future: 1h}
  idle_timeout: off
  fields:
    amount: {type: number, required: true, min: 0}
windows:
  - name: activity
    kind: tumbling
    size: 24h
    aggs: [count, {sum: amount}]
    output: %s
outputs:
  dead_letters: %s
admin:
  listen: 127.0.0.1:%d
log:
  level: info
  format: json
`, app, instance, strings.Join(b.Addrs, ","), t.TempDir(), replicas, src, kafkatest.Name(t, "win"), kafkatest.Name(t, "dlq"), port)
		path := filepath.Join(t.TempDir(), instance+".yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	adm := kadm.NewClient(b.Client(t))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	// A new topic takes a moment to reach every broker's metadata; a daemon that starts before
	// then refuses a missing source.
	waitUntil(t, 30*time.Second, "the source topic to be listed", func() error { return nil }, func() bool {
		ends, err := adm.ListEndOffsets(ctx, src)
		return err == nil && ends.Error() == nil && len(ends[src]) == partitions
	})
	portA, portB := freePort(t), freePort(t)
	a := start(t, logPath, nil, bin, "run", "-config", config("sb-a", portA))
	survivor := start(t, logPath, nil, bin, "run", "-config", config("sb-b", portB))
	aKilled := false
	defer func() {
		if !aKilled {
			a.kill(t)
		}
		survivor.kill(t)
	}()

	cl := b.Client(t, kgo.ProducerBatchMaxBytes(1<<20), kgo.ProducerLinger(5*time.Millisecond))
	stopped := func() error { return errors.Join(a.exited(), survivor.exited()) }
	// The input comes once both own their partitions, so that each partition's state is built by
	// one instance only and the survivor has none of the other's (a full restore without replicas).
	var ofA []int32
	waitUntil(t, 2*time.Minute, "both instances to own partitions and be ready", stopped, func() bool {
		var errA, errB error
		var ofB []int32
		ofA, errA = ownedBy(ctx, adm, app, src, "sb-a")
		ofB, errB = ownedBy(ctx, adm, app, src, "sb-b")
		return errA == nil && errB == nil && len(ofA) > 0 && len(ofB) > 0 && len(ofA)+len(ofB) == partitions &&
			ready(portA) && ready(portB)
	})
	produceKeys(ctx, t, cl, src, 0, keys)
	b.WaitCaughtUp(t, app, src, 10*time.Minute, stopped)
	if got, err := ownedBy(ctx, adm, app, src, "sb-a"); err != nil || fmt.Sprint(got) != fmt.Sprint(ofA) {
		t.Fatalf("sb-a's partitions moved from %v to %v while the input was processed (%v)", ofA, got, err)
	}
	metricsB := "http://127.0.0.1:" + strconv.Itoa(portB) + "/metrics"
	if replicas > 0 {
		waitUntil(t, 5*time.Minute, "the survivor's replicas of "+fmt.Sprint(ofA)+" to catch up", stopped, func() bool {
			m := scrape(t, metricsB)
			if m["streamd_standby_partitions"] != float64(len(ofA)) {
				return false
			}
			for name, v := range m {
				if strings.HasPrefix(name, "streamd_standby_lag_offsets{") && v != 0 {
					return false
				}
			}
			return true
		})
	}
	changelogs := []string{state.ChangelogTopic(app, "activity"), state.ChangelogTopic(app, "task")}
	highBefore := changelogHigh(ctx, t, adm, changelogs, ofA)
	before := scrape(t, metricsB)

	// The kill lands mid-stream: new keys flow at 2,000/s for two seconds before it and on after
	// it, so the killed instance dies with a cycle open and its replicas a little behind.
	flowCtx, stopFlow := context.WithCancel(ctx)
	flowed := make(chan int, 1)
	go func() { flowed <- produceFlow(flowCtx, cl, src, keys, 2000) }()
	time.Sleep(2 * time.Second)
	a.kill(t)
	aKilled = true
	killed := time.Now()
	// What the killed instance wrote after the replicas had caught up: at most this is left to
	// replay (its open transaction's records are aborted and not replayed).
	tail := changelogHigh(ctx, t, adm, changelogs, ofA) - highBefore
	time.Sleep(time.Second)
	stopFlow()
	next := keys + <-flowed
	// The survivor has resumed the killed instance's partitions when it has committed everything.
	produceKeys(ctx, t, cl, src, next, 400)
	b.WaitCaughtUp(t, app, src, 5*time.Minute, survivor.exited)
	resumed := time.Since(killed)

	after := scrape(t, metricsB)
	replayed := after["streamd_restored_records_total"] - before["streamd_restored_records_total"]
	restoreSeconds := after["streamd_restore_duration_seconds_sum"] - before["streamd_restore_duration_seconds_sum"]
	t.Logf("standby_replicas=%d, %d keys: partitions %v resumed on the survivor %.2fs after the SIGKILL (session timeout 6s); replayed %.0f changelog records in %.3fs of restores (%d offsets written after the replicas caught up)",
		replicas, keys, ofA, resumed.Seconds(), replayed, restoreSeconds, tail)
	if replicas > 0 {
		if replayed > float64(tail) {
			t.Errorf("the survivor replayed %.0f records, more than the %d changelog offsets written after its replicas caught up", replayed, tail)
		}
		if got := after["streamd_standby_promotions_total"]; got != float64(len(ofA)) {
			t.Errorf("streamd_standby_promotions_total = %v, want %d", got, len(ofA))
		}
	} else if replayed < float64(keys)/4 {
		t.Errorf("without standby replicas the survivor replayed only %.0f records of the killed instance's ~%d keys", replayed, keys/2)
	}

	// The survivor holds the killed instance's keys: one event each in their open window.
	base := "http://127.0.0.1:" + strconv.Itoa(portB) + "/v1/state/"
	checked := 0
	for i := 0; i < keys && checked < 20; i += keys / 97 {
		key := fmt.Sprintf("c%07d", i)
		resp, err := http.Get(base + key)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET /v1/state/%s on the survivor: %d %s", key, resp.StatusCode, body)
			continue
		}
		if !countOne.Match(body) {
			t.Errorf("GET /v1/state/%s on the survivor: %s, want a count of 1", key, body)
		}
		checked++
	}
	survivor.stop(t)
}

// ready reports whether the admin server on port answers /readyz with 200.
func ready(port int) bool {
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// produceFlow produces one event for each key c<from>, c<from+1>, ... at rate per second until
// ctx ends, and returns how many it produced (all acknowledged).
func produceFlow(ctx context.Context, cl *kgo.Client, topic string, from int, rate float64) int {
	start := time.Now()
	n := 0
	for ctx.Err() == nil {
		if ahead := time.Duration(float64(n)/rate*float64(time.Second)) - time.Since(start); ahead > 0 {
			time.Sleep(min(ahead, 50*time.Millisecond))
			continue
		}
		i := from + n
		key := fmt.Sprintf("c%07d", i)
		v := fmt.Sprintf(`{"card_id":%q,"event_id":"e%d","event_time":%q,"amount":1.5}`, key, i, time.Now().UTC().Format(time.RFC3339Nano))
		cl.Produce(context.Background(), &kgo.Record{Topic: topic, Key: []byte(key), Value: []byte(v)}, nil)
		n++
	}
	_ = cl.Flush(context.Background())
	return n
}

// countOne finds a window's count of 1 in a /v1/state answer.
var countOne = regexp.MustCompile(`"count":\s*1\b`)

// produceKeys produces one event for each key c<from> ... c<from+n-1>, and returns when all are
// acknowledged.
func produceKeys(ctx context.Context, t *testing.T, cl *kgo.Client, topic string, from, n int) {
	t.Helper()
	now := time.Now().UTC().Format(time.RFC3339Nano)
	errs := make(chan error, 1)
	for i := from; i < from+n; i++ {
		key := fmt.Sprintf("c%07d", i)
		v := fmt.Sprintf(`{"card_id":%q,"event_id":"e%d","event_time":%q,"amount":1.5}`, key, i, now)
		cl.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte(key), Value: []byte(v)}, func(_ *kgo.Record, err error) {
			if err != nil {
				select {
				case errs <- err:
				default:
				}
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errs:
		t.Fatalf("producing input: %v", err)
	default:
	}
}

// ownedBy returns the source partitions the group assigns to instance.
func ownedBy(ctx context.Context, adm *kadm.Client, group, topic, instance string) ([]int32, error) {
	gs, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return nil, err
	}
	var out []int32
	for _, m := range gs[group].Members {
		if m.InstanceID == nil || *m.InstanceID != instance {
			continue
		}
		if c, ok := m.Assigned.AsConsumer(); ok {
			for _, tp := range c.Topics {
				if tp.Topic == topic {
					out = append(out, tp.Partitions...)
				}
			}
		}
	}
	return out, nil
}

// changelogHigh sums the high watermarks of the changelogs' partitions.
func changelogHigh(ctx context.Context, t *testing.T, adm *kadm.Client, topics []string, partitions []int32) int64 {
	t.Helper()
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, topic := range topics {
		for _, p := range partitions {
			o, ok := ends.Lookup(topic, p)
			if !ok || o.Err != nil {
				t.Fatalf("end offset of %s/%d: %v", topic, p, o.Err)
			}
			sum += o.Offset
		}
	}
	return sum
}

// scrape returns the samples of a Prometheus text endpoint, by name with labels as written.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// waitUntil polls cond every 200 ms until it holds, failing the test after timeout or when stop
// reports an error.
func waitUntil(t *testing.T, timeout time.Duration, what string, stop func() error, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if err := stop(); err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
