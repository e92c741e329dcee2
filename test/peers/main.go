// Command peers runs `make bench-peers`: streamd beside Kafka Streams and Apache Flink on the same
// three jobs, the same input and the same broker, each system's output checked against a reference
// before its time counts (bench/peers/README.md; the figures in docs/BENCHMARKS.md).
//
//	go run ./test/peers -brokers 127.0.0.1:9092 -records 1000000
//
// It produces each input once (card transactions from internal/gen, as test/bench does; ad events
// and a campaign table from AdGen), reads it back as the broker holds it (for the reference), then
// runs every system on every job, one at a time, each in its own process with a fresh consumer
// group and output topic: the bare franz-go exactly-once loop (test/bench -role baseline), streamd
// (test/bench -role window|ysb|sliding), Kafka Streams and Flink (the jars of bench/peers). A run
// is timed from its process's start until its group has committed the end of every input
// partition (and of any topic of its own, such as Kafka Streams' repartition topic); its peak RSS is
// the process's VmHWM then. Before each run a load gate waits (at most -load-wait) for the 1-minute
// load average to fall under -load-max, and the load at the start is recorded: the machine is shared.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/internal/gen"
)

type options struct {
	brokers              []string
	records, keys        int
	partitions           int32
	jobs, systems        []string
	bench, ksJar, flJar  string
	jvmOpts              []string
	results              string
	loadMax              float64
	loadWait, settle     time.Duration
	runTimeout           time.Duration
	flinkCheckpointEvery time.Duration
}

func main() {
	var o options
	brokers := flag.String("brokers", envOr("KAFKA_BROKERS", "127.0.0.1:9092"), "Kafka brokers")
	flag.IntVar(&o.records, "records", 1_000_000, "records of each input (transactions; ad events)")
	flag.IntVar(&o.keys, "keys", 100_000, "distinct cards (Zipf)")
	parts := flag.Int("partitions", 4, "partitions of each input topic")
	jobs := flag.String("jobs", "window,ysb,sliding", "comma-separated jobs")
	systems := flag.String("systems", "baseline,streamd,kstreams,flink", "comma-separated systems, run in this order on each job")
	flag.StringVar(&o.bench, "bench", "bin/bench", "the test/bench binary (the bare loop and streamd)")
	flag.StringVar(&o.ksJar, "kstreams-jar", "bench/peers/kstreams/target/peers-kstreams.jar", "the Kafka Streams jobs")
	flag.StringVar(&o.flJar, "flink-jar", "bench/peers/flink/target/peers-flink.jar", "the Flink jobs")
	jvm := flag.String("jvm-opts", "-Xms1g -Xmx1g -XX:+UseG1GC", "options of both JVMs")
	flag.StringVar(&o.results, "results", "bench/peers/results", "directory of the results (a Markdown table and the raw JSON, named by date)")
	flag.Float64Var(&o.loadMax, "load-max", 1.0, "the load gate: the 1-minute load average to wait for before each run")
	flag.DurationVar(&o.loadWait, "load-wait", 90*time.Second, "the load gate's longest wait")
	flag.DurationVar(&o.settle, "settle", 3*time.Second, "how long a system keeps running after it is done (not timed), so that its last transaction commits")
	flag.DurationVar(&o.runTimeout, "run-timeout", 10*time.Minute, "the longest a run may take")
	flag.DurationVar(&o.flinkCheckpointEvery, "flink-checkpoint", time.Second, "Flink's checkpoint interval (its exactly-once commit interval)")
	flag.Parse()
	o.brokers = strings.Split(*brokers, ",")
	o.partitions = int32(*parts)
	o.jobs = strings.Split(*jobs, ",")
	o.systems = strings.Split(*systems, ",")
	o.jvmOpts = strings.Fields(*jvm)
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "peers:", err)
		os.Exit(1)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// Run is one system on one job: what the table shows and the raw JSON keeps.
type Run struct {
	Job, System  string
	Records      int64
	Seconds      float64 // from the process's start until done
	Rate         float64 // Records / Seconds
	SteadyRate   float64 // records per second from its first commit until done (start-up left out)
	PeakRSSMiB   int64
	Outputs      int
	Required     int // window results the checker required
	CheckError   string
	Load1Before  float64 // the 1-minute load average when the run started
	LoadWaited   float64 // seconds the load gate waited
	Load1After   float64
	RatioBare    float64
	RatioStreamd float64
}

type input struct {
	topic string
	parts [][]In
	total int64
	ends  kadm.ListedOffsets
}

func run(o options) error {
	ctx := context.Background()
	cl, err := kgo.NewClient(kgo.SeedBrokers(o.brokers...), kgo.ProducerLinger(10*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	stamp := strconv.FormatInt(time.Now().Unix(), 36)
	started := time.Now().UTC()
	fmt.Fprintf(os.Stderr, "== %s, %d cores, %s, broker %s, %d records\n", started.Format(time.RFC3339), runtime.NumCPU(), runtime.Version(), strings.Join(o.brokers, ","), o.records)

	need := map[string]bool{}
	for _, j := range o.jobs {
		switch j {
		case "window", "sliding":
			need["txns"] = true
		case "ysb":
			need["ads"] = true
		default:
			return fmt.Errorf("unknown job %q (window, ysb, sliding)", j)
		}
	}
	inputs := map[string]*input{}
	campaigns := "peers-campaigns-" + stamp
	if need["txns"] {
		in, err := produceTxns(ctx, cl, adm, "peers-txns-"+stamp, o)
		if err != nil {
			return err
		}
		inputs["txns"] = in
	}
	if need["ads"] {
		in, err := produceAds(ctx, cl, adm, "peers-ads-"+stamp, campaigns, o)
		if err != nil {
			return err
		}
		inputs["ads"] = in
	}

	var runs []Run
	for _, job := range o.jobs {
		in := inputs["txns"]
		if job == "ysb" {
			in = inputs["ads"]
		}
		for i, sys := range o.systems {
			name := fmt.Sprintf("peers-%s-%s-%s-%d", job, sys, stamp, i)
			r, err := runOne(ctx, adm, o, job, sys, name, in, campaigns)
			if err != nil {
				return fmt.Errorf("%s on %s: %w", sys, job, err)
			}
			runs = append(runs, r)
			fmt.Fprintf(os.Stderr, "%-8s %-9s %7.2f s %9.0f rec/s (steady %9.0f)  peak RSS %5d MiB  %8d outputs  load %.2f→%.2f  %s\n",
				job, sys, r.Seconds, r.Rate, r.SteadyRate, r.PeakRSSMiB, r.Outputs, r.Load1Before, r.Load1After, checkWord(r))
			if r.CheckError != "" {
				fmt.Fprintln(os.Stderr, "  check:", strings.ReplaceAll(r.CheckError, "\n", "\n  "))
			}
		}
	}
	ratios(runs)
	return write(o, started, runs)
}

func checkWord(r Run) string {
	if r.CheckError != "" {
		return "OUTPUT DIFFERS"
	}
	return "output checked"
}

// ratios sets each run's ratios to the bare loop and to streamd on the same job.
func ratios(runs []Run) {
	for i := range runs {
		for _, b := range runs {
			if b.Job != runs[i].Job || b.CheckError != "" || b.Rate == 0 {
				continue
			}
			switch b.System {
			case "baseline":
				runs[i].RatioBare = runs[i].Rate / b.Rate
			case "streamd":
				runs[i].RatioStreamd = runs[i].Rate / b.Rate
			}
		}
	}
}

// produceTxns produces o.records card transactions as test/bench does (internal/gen, seed 42, keys
// Zipf over o.keys cards, event times 1 ms apart ending now, at most 1 s out of order), keyed by card.
func produceTxns(ctx context.Context, cl *kgo.Client, adm *kadm.Client, topic string, o options) (*input, error) {
	g, err := gen.New(gen.Config{Seed: 42, Keys: min(o.keys, gen.MaxKeys), OutOfOrder: time.Second})
	if err != nil {
		return nil, err
	}
	if _, err := adm.CreateTopic(ctx, o.partitions, 1, nil, topic); err != nil {
		return nil, err
	}
	start := time.Now()
	now := start.Add(-time.Duration(o.records) * time.Millisecond)
	err = produce(ctx, cl, o.records, func(i int) *kgo.Record {
		rec := g.Next(now.Add(time.Duration(i) * time.Millisecond))
		return &kgo.Record{Topic: topic, Key: rec.Key, Value: rec.Value}
	})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "produced %d transactions to %s in %s\n", o.records, topic, time.Since(start).Round(time.Millisecond))
	return readInput(ctx, o.brokers, adm, topic, func(r *kgo.Record) (In, error) {
		var v struct {
			Card   string  `json:"card_id"`
			Time   string  `json:"event_time"`
			Amount float64 `json:"amount"`
		}
		if err := json.Unmarshal(r.Value, &v); err != nil {
			return In{}, err
		}
		t, err := time.Parse(time.RFC3339Nano, v.Time)
		return In{Key: v.Card, Time: t.UnixMilli(), Amount: v.Amount, Counts: true}, err
	})
}

// produceAds produces the campaign table (a compacted topic, ad id → campaign id) and o.records ad
// events (AdGen, seed 42, 1 ms apart ending now), keyed by campaign.
func produceAds(ctx context.Context, cl *kgo.Client, adm *kadm.Client, topic, campaigns string, o options) (*input, error) {
	g := NewAdGen(42)
	table := g.Table()
	compact := "compact"
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": &compact}, campaigns); err != nil {
		return nil, err
	}
	if _, err := adm.CreateTopic(ctx, o.partitions, 1, nil, topic); err != nil {
		return nil, err
	}
	var rows []*kgo.Record
	for ad, c := range table {
		rows = append(rows, &kgo.Record{Topic: campaigns, Key: []byte(ad), Value: []byte(c)})
	}
	if err := cl.ProduceSync(ctx, rows...).FirstErr(); err != nil {
		return nil, err
	}
	start := time.Now()
	now := start.Add(-time.Duration(o.records) * time.Millisecond)
	err := produce(ctx, cl, o.records, func(i int) *kgo.Record {
		k, v := g.Next(now.Add(time.Duration(i) * time.Millisecond))
		return &kgo.Record{Topic: topic, Key: append([]byte(nil), k...), Value: append([]byte(nil), v...)}
	})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "produced %d campaign rows to %s and %d ad events to %s in %s\n", len(rows), campaigns, o.records, topic, time.Since(start).Round(time.Millisecond))
	return readInput(ctx, o.brokers, adm, topic, func(r *kgo.Record) (In, error) {
		var v struct {
			Ad       string `json:"ad_id"`
			Campaign string `json:"campaign_id"`
			Type     string `json:"event_type"`
			Time     string `json:"event_time"`
		}
		if err := json.Unmarshal(r.Value, &v); err != nil {
			return In{}, err
		}
		t, err := time.Parse(time.RFC3339Nano, v.Time)
		c, ok := table[v.Ad]
		if !ok || c != v.Campaign || c != string(r.Key) {
			return In{}, fmt.Errorf("ad event at %d/%d: ad %s, campaign %s, key %s: not the table's campaign %s", r.Partition, r.Offset, v.Ad, v.Campaign, r.Key, c)
		}
		return In{Key: c, Time: t.UnixMilli(), Counts: v.Type == "view"}, err
	})
}

func produce(ctx context.Context, cl *kgo.Client, n int, rec func(int) *kgo.Record) error {
	errc := make(chan error, 1)
	for i := range n {
		cl.Produce(ctx, rec(i), func(_ *kgo.Record, err error) {
			if err != nil {
				select {
				case errc <- err:
				default:
				}
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

// readInput reads topic whole, each partition in offset order, for the reference.
func readInput(ctx context.Context, brokers []string, adm *kadm.Client, topic string, decode func(*kgo.Record) (In, error)) (*input, error) {
	in := &input{topic: topic}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	in.ends = ends
	in.parts = make([][]In, len(ends[topic]))
	var derr error
	err = readTopic(ctx, brokers, topic, ends, func(r *kgo.Record) {
		e, err := decode(r)
		if err != nil && derr == nil {
			derr = err
		}
		in.parts[r.Partition] = append(in.parts[r.Partition], e)
		in.total++
	})
	if err != nil {
		return nil, err
	}
	return in, derr
}

// readTopic reads topic with read_committed from the start until every partition's position has
// reached its offset in ends (or, since transaction markers take offsets that no record has, until
// nothing came for two seconds), calling f for each record in partition order.
func readTopic(ctx context.Context, brokers []string, topic string, ends kadm.ListedOffsets, f func(*kgo.Record)) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return err
	}
	defer cl.Close()
	next := map[int32]int64{}
	done := func() bool {
		all := true
		ends.Each(func(o kadm.ListedOffset) {
			if next[o.Partition] < o.Offset {
				all = false
			}
		})
		return all
	}
	idle := time.Now()
	for !done() && time.Since(idle) < 2*time.Second {
		pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		fs := cl.PollFetches(pctx)
		cancel()
		if err := fs.Err0(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		fs.EachRecord(func(r *kgo.Record) {
			idle = time.Now()
			next[r.Partition] = r.Offset + 1
			f(r)
		})
	}
	return nil
}

// runOne runs one system on one job, checks its output and measures it.
func runOne(ctx context.Context, adm *kadm.Client, o options, job, sys, name string, in *input, campaigns string) (Run, error) {
	r := Run{Job: job, System: sys, Records: in.total}
	r.LoadWaited, r.Load1Before = loadGate(o.loadMax, o.loadWait)
	out := name + "-out"
	if _, err := adm.CreateTopic(ctx, o.partitions, 1, nil, out); err != nil {
		return r, err
	}
	dir, err := os.MkdirTemp("", "peers-state-")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(dir)
	brokers := strings.Join(o.brokers, ",")
	var cmd *exec.Cmd
	switch sys {
	case "baseline":
		cmd = exec.Command(o.bench, "-role", "baseline", "-brokers", brokers, "-input", in.topic, "-group", name, "-out", out)
	case "streamd":
		role := job
		cmd = exec.Command(o.bench, "-role", role, "-brokers", brokers, "-input", in.topic, "-group", name, "-out", out, "-window-size", "1m")
	case "kstreams", "flink":
		jar := o.ksJar
		args := append([]string{}, o.jvmOpts...)
		if sys == "flink" {
			jar = o.flJar
			args = append(args, "-Dpeers.checkpoint.ms="+strconv.FormatInt(o.flinkCheckpointEvery.Milliseconds(), 10))
		}
		args = append(args, "-jar", jar, job, brokers, in.topic, out, name, dir)
		if job == "ysb" {
			args = append(args, campaigns)
		}
		cmd = exec.Command("java", args...)
	default:
		return r, fmt.Errorf("unknown system %q (baseline, streamd, kstreams, flink)", sys)
	}
	logf, err := os.Create(filepath.Join(os.TempDir(), name+".log"))
	if err != nil {
		return r, err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return r, err
	}
	// exited is closed when the process has exited; waitErr is its error then.
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	first, firstAt, err := waitDone(ctx, adm, name, in, exited, o.runTimeout)
	doneAt := time.Now()
	if err != nil {
		_ = cmd.Process.Kill()
		<-exited
		return r, fmt.Errorf("%w: %v (its output: %s)", err, waitErr, logf.Name())
	}
	r.Seconds = doneAt.Sub(start).Seconds()
	r.Rate = float64(in.total) / r.Seconds
	if s := doneAt.Sub(firstAt).Seconds(); s > 0 && first < in.total {
		r.SteadyRate = float64(in.total-first) / s
	}
	select {
	case <-exited:
		return r, fmt.Errorf("exited before it was stopped: %v (its output: %s)", waitErr, logf.Name())
	case <-time.After(o.settle):
	}
	r.PeakRSSMiB = peakRSS(cmd.Process.Pid) >> 20
	r.Load1After = load1()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}

	ends, err := adm.ListEndOffsets(ctx, out)
	if err != nil {
		return r, err
	}
	var outs []Out
	n := 0
	var perr error
	if err := readTopic(ctx, o.brokers, out, ends, func(rec *kgo.Record) {
		n++
		if sys == "baseline" {
			return
		}
		v, err := ParseOut(rec.Value)
		if err != nil && perr == nil {
			perr = fmt.Errorf("output %d/%d: %w", rec.Partition, rec.Offset, err)
		}
		outs = append(outs, v)
	}); err != nil {
		return r, err
	}
	var res Result
	switch {
	case perr != nil:
		res = Result{Outputs: n, Err: perr.Error()}
	case sys == "baseline":
		res = CheckCopy(int(in.total), n)
	case job == "window":
		res = CheckWindows(in.parts, time.Minute, outs)
	case job == "ysb":
		res = CheckWindows(in.parts, 10*time.Second, outs)
	case job == "sliding":
		res = CheckSliding(in.parts, outs)
	}
	r.Outputs, r.Required, r.CheckError = res.Outputs, res.Required, res.Err
	return r, nil
}

// waitDone waits until group has committed the end of every partition of the input, and every
// other topic it has committed offsets on (an internal repartition topic) is committed to its end.
// It returns the records committed at the first commit and when that was seen.
func waitDone(ctx context.Context, adm *kadm.Client, group string, in *input, exited <-chan struct{}, timeout time.Duration) (int64, time.Time, error) {
	deadline := time.Now().Add(timeout)
	first, firstAt := int64(-1), time.Time{}
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return 0, time.Time{}, errors.New("exited before it was done")
		case <-time.After(100 * time.Millisecond):
		}
		committed, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			continue
		}
		var sum int64
		done := true
		in.ends.Each(func(o kadm.ListedOffset) {
			c, _ := committed.Lookup(in.topic, o.Partition)
			sum += max(c.At, 0)
			if c.At < o.Offset {
				done = false
			}
		})
		if sum > 0 && first < 0 {
			first, firstAt = sum, time.Now()
		}
		if !done {
			continue
		}
		var others []string
		for t := range committed {
			if t != in.topic {
				others = append(others, t)
			}
		}
		if len(others) > 0 {
			ends, err := adm.ListEndOffsets(ctx, others...)
			if err != nil {
				continue
			}
			ends.Each(func(o kadm.ListedOffset) {
				// A transactional topic's end includes the commit marker after the last record.
				if c, _ := committed.Lookup(o.Topic, o.Partition); c.At < o.Offset-1 {
					done = false
				}
			})
		}
		if done {
			return first, firstAt, nil
		}
	}
	return 0, time.Time{}, fmt.Errorf("not done within %v", timeout)
}

// loadGate waits, at most wait, for the 1-minute load average to fall under limit, and returns how
// long it waited (seconds) and the load then.
func loadGate(limit float64, wait time.Duration) (float64, float64) {
	start := time.Now()
	l := load1()
	for l >= limit && time.Since(start) < wait {
		time.Sleep(2 * time.Second)
		l = load1()
	}
	return time.Since(start).Seconds(), l
}

func load1() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// peakRSS returns a process's peak resident set size (VmHWM) in bytes.
func peakRSS(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
