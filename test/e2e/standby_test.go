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
	keys, bin := failoverSetup(t)
	for _, replicas := range []int{1, 0} {
		t.Run(fmt.Sprintf("standby_replicas=%d", replicas), func(t *testing.T) {
			failover(t, bin, keys, replicas, 2)
		})
	}
}

// TestFailoverToStandbyThree is TestFailoverToStandby with three instances and one standby
// replica each, where the survivors do not stand by for everything: the killed instance's
// partitions resume with only the tail replayed because the group's balancer (standby.Balancer)
// gives each to the survivor holding its replica, and its leader spread the killed instance's
// replicas over both survivors beforehand. Under cooperative-sticky, with replicas chosen by
// instance order (both on one survivor), one of the two partitions restored in full.
func TestFailoverToStandbyThree(t *testing.T) {
	if testing.Short() {
		t.Skip("long: kills an instance and waits out the session timeout")
	}
	keys, bin := failoverSetup(t)
	failover(t, bin, keys, 1, 3)
}

// failoverSetup returns the keys of state to build (failoverKeysEnv) and the daemon to run: the
// race-detector build for the default keys, a plain build for the figures.
func failoverSetup(t *testing.T) (keys int, bin string) {
	keys = failoverKeys
	if v := os.Getenv(failoverKeysEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 100 {
			t.Fatalf("%s=%q: want a key count of at least 100", failoverKeysEnv, v)
		}
		keys = n
	}
	bin = streamdBin
	if keys > failoverKeys {
		// The figures are the daemon's, not the race detector's.
		bin = filepath.Join(t.TempDir(), "streamd")
		build := exec.Command("go", "build", "-o", bin, "../../cmd/streamd")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			t.Fatal(err)
		}
	}
	return keys, bin
}

// failover runs n instances over 2n partitions, builds keys of state, kills the first instance
// mid-stream and checks what the survivors replay to take over its partitions.
func failover(t *testing.T, bin string, keys, replicas, n int) {
	b := kafkatest.Start(t)
	partitions := int32(2 * n)
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
		return err == nil && ends.Error() == nil && len(ends[src]) == int(partitions)
	})
	names := make([]string, n)
	ports := make([]int, n)
	procs := make([]*process, n)
	for i := range n {
		names[i], ports[i] = fmt.Sprintf("sb-%c", 'a'+i), freePort(t)
		procs[i] = start(t, logPath, nil, bin, "run", "-config", config(names[i], ports[i]))
	}
	killed := false
	defer func() {
		for i, p := range procs {
			if i > 0 || !killed {
				p.kill(t)
			}
		}
	}()
	survivors := procs[1:]
	stopped := func() error {
		var errs []error
		for _, p := range procs {
			errs = append(errs, p.exited())
		}
		return errors.Join(errs...)
	}
	survivorsStopped := func() error {
		var errs []error
		for _, p := range survivors {
			errs = append(errs, p.exited())
		}
		return errors.Join(errs...)
	}
	metrics := func(i int) string { return "http://127.0.0.1:" + strconv.Itoa(ports[i]) + "/metrics" }
	// scrapeSurvivors sums a sample over the survivors.
	scrapeSurvivors := func(name string) float64 {
		var sum float64
		for i := 1; i < n; i++ {
			sum += scrape(t, metrics(i))[name]
		}
		return sum
	}
	// The input comes once all own their partitions, so that each partition's state is built by
	// one instance only and a survivor has none of another's (a full restore without replicas).
	owned := make([][]int32, n)
	waitUntil(t, 2*time.Minute, "every instance to own partitions and be ready", stopped, func() bool {
		total := 0
		for i := range n {
			var err error
			if owned[i], err = ownedBy(ctx, adm, app, src, names[i]); err != nil || len(owned[i]) == 0 || !ready(ports[i]) {
				return false
			}
			total += len(owned[i])
		}
		return total == int(partitions)
	})
	ofA := owned[0]
	produceKeys(ctx, t, cl(t, b), src, 0, keys)
	b.WaitCaughtUp(t, app, src, 10*time.Minute, stopped)
	if got, err := ownedBy(ctx, adm, app, src, names[0]); err != nil || fmt.Sprint(got) != fmt.Sprint(ofA) {
		t.Fatalf("%s's partitions moved from %v to %v while the input was processed (%v)", names[0], ofA, got, err)
	}
	if replicas > 0 {
		// Every instance keeps min(replicas, n-1) replicas of 2n partitions owned elsewhere,
		// evenly: the survivors together hold every partition of the one killed.
		want := float64(2 * min(replicas, n-1))
		waitUntil(t, 5*time.Minute, "every instance's replicas to catch up", stopped, func() bool {
			for i := range n {
				m := scrape(t, metrics(i))
				if m["streamd_standby_partitions"] != want {
					return false
				}
				for name, v := range m {
					if strings.HasPrefix(name, "streamd_standby_lag_offsets{") && v != 0 {
						return false
					}
				}
			}
			return true
		})
	}
	changelogs := []string{state.ChangelogTopic(app, "activity"), state.ChangelogTopic(app, "task")}
	highBefore := changelogHigh(ctx, t, adm, changelogs, ofA)
	replayedBefore := scrapeSurvivors("streamd_restored_records_total")
	restoreBefore := scrapeSurvivors("streamd_restore_duration_seconds_sum")
	promotionsBefore := scrapeSurvivors("streamd_standby_promotions_total")

	// The kill lands mid-stream: new keys flow at 2,000/s for two seconds before it and on after
	// it, so the killed instance dies with a cycle open and its replicas a little behind.
	producer := cl(t, b)
	flowCtx, stopFlow := context.WithCancel(ctx)
	flowed := make(chan int, 1)
	go func() { flowed <- produceFlow(flowCtx, producer, src, keys, 2000) }()
	time.Sleep(2 * time.Second)
	procs[0].kill(t)
	killed = true
	killedAt := time.Now()
	// What the killed instance wrote after the replicas had caught up: at most this is left to
	// replay (its open transaction's records are aborted and not replayed).
	tail := changelogHigh(ctx, t, adm, changelogs, ofA) - highBefore
	time.Sleep(time.Second)
	stopFlow()
	next := keys + <-flowed
	// The survivors have resumed the killed instance's partitions when they have committed
	// everything.
	produceKeys(ctx, t, producer, src, next, 400)
	b.WaitCaughtUp(t, app, src, 5*time.Minute, survivorsStopped)
	resumed := time.Since(killedAt)

	replayed := scrapeSurvivors("streamd_restored_records_total") - replayedBefore
	restoreSeconds := scrapeSurvivors("streamd_restore_duration_seconds_sum") - restoreBefore
	promotions := scrapeSurvivors("streamd_standby_promotions_total") - promotionsBefore
	t.Logf("%d instances, standby_replicas=%d, %d keys: partitions %v resumed on the survivors %.2fs after the SIGKILL (session timeout 6s); replayed %.0f changelog records in %.3fs of restores (%d offsets written after the replicas caught up); %.0f standby promotions",
		n, replicas, keys, ofA, resumed.Seconds(), replayed, restoreSeconds, tail, promotions)
	if replicas > 0 {
		if replayed > float64(tail) {
			t.Errorf("the survivors replayed %.0f records, more than the %d changelog offsets written after their replicas caught up", replayed, tail)
		}
		if promotions != float64(len(ofA)) {
			t.Errorf("streamd_standby_promotions_total rose by %v over the survivors, want %d", promotions, len(ofA))
		}
	} else if replayed < float64(keys)/(2*float64(n)) {
		t.Errorf("without standby replicas the survivors replayed only %.0f records of the killed instance's ~%d keys", replayed, keys/n)
	}

	// The survivors hold the killed instance's keys: one event each in their open window, on
	// whichever survivor owns the key now.
	checked := 0
	for i := 0; i < keys && checked < 20; i += keys / 97 {
		key := fmt.Sprintf("c%07d", i)
		var answers []string
		found := false
		for j := 1; j < n && !found; j++ {
			resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(ports[j]) + "/v1/state/" + key)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && countOne.Match(body) {
				found = true
			}
			answers = append(answers, fmt.Sprintf("%s: %d %s", names[j], resp.StatusCode, body))
		}
		if !found {
			t.Errorf("GET /v1/state/%s on the survivors, want a count of 1 on one: %v", key, answers)
		}
		checked++
	}
	for _, p := range survivors {
		p.stop(t)
	}
}

// cl is a producing client for the failover input.
func cl(t *testing.T, b *kafkatest.Broker) *kgo.Client {
	return b.Client(t, kgo.ProducerBatchMaxBytes(1<<20), kgo.ProducerLinger(5*time.Millisecond))
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
