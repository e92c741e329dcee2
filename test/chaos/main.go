// Command chaos runs streamd for a while under the faults it promises to survive, and then checks
// that it kept its promises:
//
//	go run ./test/chaos -duration 10m     (or: make chaos)
//
// It starts a single-node Apache Kafka broker of its own (scripts/kafka.sh, free ports, data in a
// temporary directory; or uses -brokers, and then never restarts it), builds the streamd binary and
// runs it on a pipeline with a clean pass-through output, a dead-letter topic, a tumbling count + sum
// window with its output topic, and a late topic. For the whole duration it produces generated card
// transactions at a steady rate, -bad of them deliberately broken. Meanwhile, at seeded random
// moments, it
//
//   - kills streamd with SIGKILL and starts it again;
//   - kills the broker with SIGKILL and starts it again on the same data some seconds later;
//   - makes the task state directories immutable (a disk fault: every write fails), waits for
//     streamd to exit with a "state: ..." error by itself, repairs the disk and starts it again;
//   - kills streamd, garbles a task's Pebble MANIFEST and starts it again, which must rebuild that
//     task's state from the changelog.
//
// At the end it waits until streamd has caught up, stops it with SIGTERM, reads every topic
// read_committed and checks: every valid input exactly once in the clean topic, every broken one
// exactly once among the dead letters, the window results equal to a batch recomputation from the
// input, the late records exactly the late inputs, every corrupted task rebuilt. It prints a summary
// table and exits 1 if any check failed. The work directory (logs of every streamd run, the state)
// is kept when a check failed, or with -keep.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/internal/gen"
)

func main() {
	o := options{}
	flag.DurationVar(&o.duration, "duration", 10*time.Minute, "how long input flows and faults are injected")
	flag.Uint64Var(&o.seed, "seed", 0, "seed of the fault schedule and the input (0: from the clock; printed)")
	flag.StringVar(&o.brokers, "brokers", "", "use these Kafka brokers instead of starting one (then no broker restarts)")
	flag.Float64Var(&o.rate, "rate", 1000, "input records per second")
	flag.Float64Var(&o.bad, "bad", 0.025, "fraction of deliberately broken input records")
	flag.IntVar(&o.keys, "keys", 10_000, "distinct card ids")
	flag.StringVar(&o.faults, "faults", "kill,broker,disk,corrupt", "the kinds of fault to inject, comma-separated")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (logs, state) even when every check passes")
	flag.BoolVar(&o.streamdCreates, "streamd-creates-topics", true,
		"let streamd create its output topics (false: create them with the broker's defaults first)")
	flag.Parse()
	if o.seed == 0 {
		o.seed = uint64(time.Now().UnixNano())
	}
	for _, name := range strings.Split(o.faults, ",") {
		known := false
		for _, k := range faultNames {
			known = known || k.name == name
		}
		if !known {
			fmt.Fprintf(os.Stderr, "chaos: -faults: unknown kind %q (kinds: kill, broker, disk, corrupt)\n", name)
			os.Exit(2)
		}
	}
	ok, err := run(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
	if !ok {
		os.Exit(1)
	}
}

type options struct {
	duration  time.Duration
	seed      uint64
	brokers   string
	rate, bad float64
	keys      int
	keep      bool
	faults    string

	streamdCreates bool
}

// The pipeline's window rules; checkWindows recomputes with the same.
const (
	windowSize  = 5 * time.Second
	maxOOO      = 2 * time.Second
	lateness    = 500 * time.Millisecond
	outOfOrder  = 4 * time.Second // the generator's: some records are later than maxOOO + lateness allows
	app         = "chaos"
	partitions  = 4
	catchUpTime = 5 * time.Minute
)

// counts are the faults injected and what came of them.
type counts struct {
	kills, brokerRestarts, diskFaults, corruptions int
	unexpectedExits                                int
	rebuilt                                        int // task directories moved aside as corrupt
	failures                                       []string
}

func (c *counts) fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	c.failures = append(c.failures, msg)
	fmt.Fprintln(os.Stderr, "chaos: FAIL:", msg)
}

func run(o options) (bool, error) {
	work, err := os.MkdirTemp("", "streamd-chaos-")
	if err != nil {
		return false, err
	}
	logf("seed %d, duration %s, work directory %s", o.seed, o.duration, work)
	bin := filepath.Join(work, "streamd")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/streamd").CombinedOutput(); err != nil {
		return false, fmt.Errorf("building streamd: %v\n%s", err, out)
	}
	var b *broker
	if o.brokers != "" {
		b = &broker{addrs: strings.Split(o.brokers, ",")}
	} else {
		if b, err = startBroker(work); err != nil {
			return false, err
		}
		defer b.stop()
	}
	logf("broker %s (own: %v)", strings.Join(b.addrs, ","), b.own())

	ctx := context.Background()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addrs...), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return false, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	stamp := fmt.Sprintf("%d", time.Now().Unix())
	topics := struct{ src, clean, dlq, win, late string }{"chaos-tx-" + stamp, "chaos-clean-" + stamp,
		"chaos-dlq-" + stamp, "chaos-win-" + stamp, "chaos-late-" + stamp}
	create := []string{topics.src}
	if !o.streamdCreates {
		// -streamd-creates-topics=false: the run creates the outputs itself, with the broker's
		// defaults, instead of letting streamd create them (as it does by default).
		create = append(create, topics.clean, topics.dlq, topics.win, topics.late)
	}
	for _, t := range create {
		if _, err := adm.CreateTopic(ctx, partitions, 1, nil, t); err != nil {
			return false, err
		}
	}
	group := app + "-" + stamp
	stateDir := filepath.Join(work, "state")
	cfgPath := filepath.Join(work, "pipeline.yaml")
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf(pipelineYAML, group, strings.Join(b.addrs, ","), stateDir,
		topics.src, maxOOO, windowSize, lateness, topics.win, topics.clean, topics.dlq, topics.late)), 0o644); err != nil {
		return false, err
	}

	d := &daemon{bin: bin, config: cfgPath, logDir: work}
	if err := d.start(); err != nil {
		return false, err
	}
	prodCtx, stopProducing := context.WithTimeout(ctx, o.duration)
	defer stopProducing()
	var prod producer
	prodDone := make(chan error, 1)
	go func() {
		prodDone <- prod.run(prodCtx, cl, topics.src, o.rate,
			gen.Config{Seed: int64(o.seed % (1 << 62)), Keys: o.keys, BadRatio: o.bad, OutOfOrder: outOfOrder})
	}()

	c := &counts{}
	start := time.Now()
	chaos(prodCtx, o, b, d, filepath.Join(stateDir, group), c)
	prodErr := <-prodDone
	if prodErr != nil {
		c.fail("producing the input: %v", prodErr)
	}
	logf("input stopped after %s: %d records (%d broken); waiting for streamd to catch up", time.Since(start).Round(time.Second), prod.records.Load(), prod.bad.Load())
	if err := waitCaughtUp(ctx, adm, group, topics.src, catchUpTime, func() error {
		if exited, err := d.exited(); exited {
			c.unexpectedExits++
			c.fail("streamd exited by itself while catching up (%v); log run-%d.log", err, d.runs)
			if c.unexpectedExits > 20 {
				return errors.New("streamd keeps exiting")
			}
			restart(d, c)
		}
		return nil
	}); err != nil {
		c.fail("%v", err)
	}
	if err := d.terminate(time.Minute); err != nil {
		c.fail("streamd did not stop cleanly on SIGTERM: %v", err)
	}
	elapsed := time.Since(start)
	if c.rebuilt = countRebuilt(stateDir, group); c.rebuilt != c.corruptions {
		c.fail("%d task directories were rebuilt from the changelog, %d were corrupted", c.rebuilt, c.corruptions)
	}

	logf("reading the topics read_committed")
	read := func(topic string) []*kgo.Record {
		recs, err := readCommitted(ctx, b.addrs, topic)
		if err != nil {
			c.fail("%v", err)
		}
		return recs
	}
	src, clean, dlq := read(topics.src), read(topics.clean), read(topics.dlq)
	once := checkOnce(src, clean, dlq)
	win := checkWindows(windowRules{windowSize.Milliseconds(), maxOOO.Milliseconds(), lateness.Milliseconds()},
		src, read(topics.win), read(topics.late))
	if int64(len(src)) != prod.records.Load() {
		c.fail("read %d input records, produced %d", len(src), prod.records.Load())
	}
	if !once.ok() {
		c.fail("exactly once violated: %+v", once)
	}
	if !win.ok() {
		c.fail("window results differ from a batch recomputation: %+v", win)
	}
	if once.bad == 0 || win.lateWant == 0 || win.expected == 0 {
		c.fail("a path went untested: %d broken inputs, %d late inputs, %d closed windows", once.bad, win.lateWant, win.expected)
	}
	if o.faults == "kill,broker,disk,corrupt" && (c.kills == 0 || c.diskFaults == 0 || c.corruptions == 0 || (b.own() && c.brokerRestarts == 0)) {
		c.fail("a fault kind was never injected (kills %d, broker restarts %d, disk faults %d, corruptions %d): run longer",
			c.kills, c.brokerRestarts, c.diskFaults, c.corruptions)
	}
	if c.unexpectedExits > 0 {
		c.fail("streamd exited by itself %d times outside a disk fault", c.unexpectedExits)
	}
	printSummary(o, elapsed, once, win, c, d.peakRSS())
	ok := len(c.failures) == 0
	if ok && !o.keep {
		os.RemoveAll(work)
	} else {
		logf("work directory kept: %s (run-N.log is the log of streamd's N-th run)", work)
	}
	return ok, nil
}

// pipelineYAML is the pipeline under test. Its arguments: app, brokers, state dir, source topic,
// max_out_of_orderness, window size, allowed lateness, window output, clean, dead letters, late.
const pipelineYAML = `app: %s
instance_id: chaos-1
kafka:
  brokers: [%s]
  commit_interval: 100ms
  transaction_timeout: 10s
  session_timeout: 6s
  shutdown_timeout: 20s
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
    amount: {type: number, required: true, min: 0}
    merchant: {type: string, max_length: 64}
    country: {type: string, max_length: 2}
    channel: {type: string, values: [pos, online, atm]}
    mcc: {type: number, min: 0, max: 9999}
windows:
  - name: activity
    kind: tumbling
    size: %s
    allowed_lateness: %s
    aggs: [count, {sum: amount}]
    output: %s
outputs:
  clean: %s
  dead_letters: %s
  late: %s
admin:
  listen: 127.0.0.1:0
log:
  level: info
  format: json
`

// fault is one kind of fault the chaos loop injects.
type fault int

const (
	killDaemon fault = iota
	restartBroker
	diskFault
	corruptState
)

// faultNames are the names -faults takes, and each kind's weight in the random part of the schedule.
// Their order is part of what a -seed repeats.
var faultNames = []struct {
	name   string
	f      fault
	weight int
}{{"kill", killDaemon, 6}, {"disk", diskFault, 1}, {"corrupt", corruptState, 1}, {"broker", restartBroker, 2}}

// schedule returns the faults to inject, in order: one of each enabled kind first (so that even a
// short run has every kind), then kinds drawn by weight, as many as fit in the duration on average.
// A broker restart is enabled only for the run's own broker.
func schedule(rng *rand.Rand, o options, ownBroker bool) []fault {
	var first, weights []fault
	for _, k := range faultNames {
		if !strings.Contains(","+o.faults+",", ","+k.name+",") || (k.f == restartBroker && !ownBroker) {
			continue
		}
		first = append(first, k.f)
		for range k.weight {
			weights = append(weights, k.f)
		}
	}
	rng.Shuffle(len(first), func(i, j int) { first[i], first[j] = first[j], first[i] })
	if len(weights) == 0 {
		return first
	}
	for range int(o.duration / (20 * time.Second)) {
		first = append(first, weights[rng.IntN(len(weights))])
	}
	return first
}

// chaos injects faults at random moments until ctx ends (the input's duration), restarting streamd
// after each, and counts them in c.
func chaos(ctx context.Context, o options, b *broker, d *daemon, appStateDir string, c *counts) {
	rng := rand.New(rand.NewPCG(o.seed, 10))
	for _, f := range schedule(rng, o, b.own()) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(5000+rng.IntN(15000)) * time.Millisecond):
		}
		if exited, err := d.exited(); exited {
			c.unexpectedExits++
			c.fail("streamd exited by itself (%v); log run-%d.log", err, d.runs)
			restart(d, c)
		}
		switch f {
		case killDaemon:
			d.kill()
			c.kills++
			logf("fault: SIGKILL streamd (kill %d)", c.kills)
			restart(d, c)
		case restartBroker:
			down := 3 + rng.IntN(13)
			logf("fault: SIGKILL the broker, back after %d s", down)
			if err := b.restart(down); err != nil {
				c.fail("restarting the broker: %v", err)
				continue
			}
			c.brokerRestarts++
		case diskFault:
			injectDiskFault(d, appStateDir, c)
		case corruptState:
			dirs, err := taskDirs(filepath.Dir(appStateDir), filepath.Base(appStateDir))
			if err != nil || len(dirs) == 0 {
				logf("no task state yet (%v); corruption skipped", err)
				continue
			}
			d.kill()
			c.kills++
			path, err := corruptManifest(dirs[rng.IntN(len(dirs))])
			if err != nil {
				c.fail("corrupting the state: %v", err)
			} else {
				c.corruptions++
				logf("fault: SIGKILL streamd, garbled %s", path)
			}
			restart(d, c)
		}
	}
	<-ctx.Done()
}

// injectDiskFault makes every task directory immutable, waits for streamd to stop with a state
// error, makes the directories writable again and restarts streamd.
func injectDiskFault(d *daemon, appStateDir string, c *counts) {
	dirs, err := taskDirs(filepath.Dir(appStateDir), filepath.Base(appStateDir))
	if err != nil || len(dirs) == 0 {
		logf("no task state yet (%v); disk fault skipped", err)
		return
	}
	if err := setImmutable(dirs, true); err != nil {
		logf("disk fault skipped: %v", err)
		_ = setImmutable(dirs, false)
		return
	}
	logf("fault: the state disk fails (%d task directories immutable)", len(dirs))
	c.diskFaults++
	exited, exitErr := d.wait(time.Minute)
	if err := setImmutable(dirs, false); err != nil {
		c.fail("repairing the disk: %v", err)
	}
	switch failed := pipelineError(d.log()); {
	case !exited:
		c.fail("streamd kept running for a minute on a failed state disk")
		d.kill()
	case exitErr == nil:
		c.fail("streamd exited with status 0 on a failed state disk")
	case !strings.Contains(failed, "state: "):
		c.fail("streamd exited (%v) without a \"state: ...\" error (%q), run-%d.log", exitErr, failed, d.runs)
	default:
		logf("streamd stopped on the disk fault: %.200s", failed)
	}
	restart(d, c)
}

func restart(d *daemon, c *counts) {
	if err := d.start(); err != nil {
		c.fail("starting streamd: %v", err)
	}
}

// pipelineError returns the err of the log's last "pipeline failed" line, or "".
func pipelineError(log string) string {
	var last string
	for _, line := range strings.Split(log, "\n") {
		var l struct{ Msg, Err string }
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "pipeline failed" {
			last = l.Err
		}
	}
	return last
}

func printSummary(o options, elapsed time.Duration, once onceReport, win windowReport, c *counts, peak int64) {
	status := "PASS"
	if len(c.failures) > 0 {
		status = "FAIL"
	}
	rows := [][2]string{
		{"seed", fmt.Sprint(o.seed)},
		{"duration (input / total)", fmt.Sprintf("%s / %s", o.duration, elapsed.Round(time.Second))},
		{"input records", fmt.Sprint(once.valid + once.bad)},
		{"bad records", fmt.Sprint(once.bad)},
		{"streamd SIGKILLs", fmt.Sprint(c.kills)},
		{"broker restarts (SIGKILL)", fmt.Sprint(c.brokerRestarts)},
		{"disk faults", fmt.Sprint(c.diskFaults)},
		{"corrupt states / rebuilt from the changelog", fmt.Sprintf("%d / %d", c.corruptions, c.rebuilt)},
		{"exits by itself (not on a disk fault)", fmt.Sprint(c.unexpectedExits)},
		{"clean outputs", fmt.Sprint(once.clean)},
		{"dead letters (without a reason)", fmt.Sprintf("%d (%d)", once.dead, once.noReason)},
		{"duplicates", fmt.Sprint(once.duplicated + win.duplicated)},
		{"losses", fmt.Sprint(once.missing + win.missing)},
		{"in the wrong topic / from no input", fmt.Sprintf("%d / %d", once.wrongOut, once.unexpected+win.unexpected)},
		{"window results checked", fmt.Sprintf("%d (expected %d, wrong %d)", win.got, win.expected, win.wrong)},
		{"late records", fmt.Sprintf("%d (expected %d, differing %d)", win.lateGot, win.lateWant, win.lateDiff)},
		{"peak RSS of streamd", fmt.Sprintf("%d MiB", peak>>20)},
		{"result", status},
	}
	fmt.Println("| figure | value |\n|---|---|")
	for _, r := range rows {
		fmt.Printf("| %s | %s |\n", r[0], r[1])
	}
	for _, f := range c.failures {
		fmt.Println("FAIL:", f)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s chaos: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}
