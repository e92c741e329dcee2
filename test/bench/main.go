// Command bench measures streamd end to end against a broker and reports every figure as a ratio to
// a baseline taken in the same run: a bare franz-go exactly-once consume→produce loop
// (GroupTransactSession, 100 ms commits) over the same input. Machines here are noisy; the ratio is
// the figure to compare across runs.
//
//	go run ./test/bench -brokers 127.0.0.1:9092 -records 2000000 -workloads baseline,passthrough
//
// The input is produced once: small JSON card transactions (~170 bytes), keys drawn from a Zipf
// distribution over -keys cards, in a topic with -partitions partitions. Each workload then runs in
// its own subprocess (so its peak resident memory is its own) with a fresh consumer group and output
// topic, and is timed from its start until its group has committed the end offset of every input
// partition.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/config"
	"github.com/streamd/streamd/configs"
	"github.com/streamd/streamd/internal/gen"
	"github.com/streamd/streamd/stream"
	"github.com/streamd/streamd/window"
	"github.com/streamd/streamd/window/agg"
)

func main() {
	var (
		brokers    = flag.String("brokers", envOr("KAFKA_BROKERS", "127.0.0.1:9092"), "Kafka brokers")
		records    = flag.Int("records", 2_000_000, "input records")
		keys       = flag.Int("keys", 100_000, "distinct keys (Zipf)")
		roundRobin = flag.Bool("round-robin", false, "use every key in turn instead of Zipf (for a state-size run: all -keys keys have state)")
		winSize    = flag.Duration("window-size", time.Minute, "tumbling window size of the window workload")
		partitions = flag.Int("partitions", 4, "input partitions")
		workloads  = flag.String("workloads", "baseline,passthrough,window", "comma-separated: baseline, passthrough, window, ml (the window, 4 sliding-window features, one FTRL model), full (configs/fraud-pipeline.yaml), restore (of the last window run); ysb and sliding are the jobs of test/peers (-role only)")
		input      = flag.String("input", "", "reuse this input topic instead of producing one")
		profiles   = flag.String("profiles", "", "write each workload's CPU profile into this directory")
		latency    = flag.String("latency", "", "comma-separated workloads (baseline, passthrough, full) to run again at fixed rates, for latency percentiles; each must be in -workloads too, whose rate sets the saturation")
		latFracs   = flag.String("latency-fractions", "0.25,0.5", "the fixed rates of a latency run, as fractions of the workload's saturation rate")
		latDur     = flag.Duration("latency-duration", time.Minute, "how long each latency run produces")
		role       = flag.String("role", "", "internal: run one workload in this process")
		cpuProfile = flag.String("cpuprofile", "", "internal: write the workload's CPU profile here")
		group      = flag.String("group", "", "internal")
		out        = flag.String("out", "", "internal")
	)
	flag.Parse()
	addrs := strings.Split(*brokers, ",")
	profileDir = *profiles
	windowSize = *winSize
	roundRobinKeys = *roundRobin
	if *role != "" {
		if *cpuProfile != "" {
			f, err := os.Create(*cpuProfile)
			if err == nil {
				_ = pprof.StartCPUProfile(f)
				defer pprof.StopCPUProfile()
			}
		}
		if err := runWorkload(*role, addrs, *input, *group, *out); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	lat := latencyPlan{duration: *latDur}
	if *latency != "" {
		lat.workloads = strings.Split(*latency, ",")
		for _, w := range lat.workloads {
			if w != "baseline" && w != "passthrough" && w != "full" && w != "ml" {
				fmt.Fprintf(os.Stderr, "bench: -latency: %q has no output per input record (window results wait for their window to close); use baseline, passthrough, ml or full\n", w)
				os.Exit(2)
			}
		}
		for _, f := range strings.Split(*latFracs, ",") {
			v, err := strconv.ParseFloat(f, 64)
			if err != nil || v <= 0 || v > 1 {
				fmt.Fprintf(os.Stderr, "bench: -latency-fractions: %q is not a fraction in (0, 1]\n", f)
				os.Exit(2)
			}
			lat.fractions = append(lat.fractions, v)
		}
	}
	if err := drive(addrs, *records, *keys, int32(*partitions), strings.Split(*workloads, ","), *input, lat); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

var (
	profileDir     string
	windowSize     time.Duration
	roundRobinKeys bool
)

type result struct {
	name    string
	seconds float64
	rate    float64
	peakRSS int64 // bytes
}

// latencyPlan is which workloads run again at fixed rates, at what fractions of their saturation
// rate, for how long.
type latencyPlan struct {
	workloads []string
	fractions []float64
	duration  time.Duration
}

func drive(addrs []string, n, keys int, partitions int32, workloads []string, input string, lat latencyPlan) error {
	ctx := context.Background()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ProducerLinger(10*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	stamp := strconv.FormatInt(time.Now().Unix(), 36)
	if input == "" {
		input = "bench-input-" + stamp
		if _, err := adm.CreateTopic(ctx, partitions, 1, nil, input); err != nil {
			return err
		}
		start := time.Now()
		if err := produceInput(ctx, cl, input, n, keys); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "produced %d records to %s in %s\n", n, input, time.Since(start).Round(time.Millisecond))
	}
	ends, err := adm.ListEndOffsets(ctx, input)
	if err != nil {
		return err
	}
	var total int64
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })

	self, err := os.Executable()
	if err != nil {
		return err
	}
	var results []result
	var lastWindowGroup, lastWindowOut string
	for i, w := range workloads {
		run := fmt.Sprintf("%s-%s-%d", w, stamp, i)
		grp, outTopic := "bench-"+run, "bench-out-"+run
		if w == "window" {
			lastWindowGroup, lastWindowOut = grp, outTopic
		}
		if w != "restore" {
			if _, err := adm.CreateTopic(ctx, partitions, 1, nil, outTopic); err != nil {
				return err
			}
		}
		if w == "full" || w == "ml" {
			// The model pipelines join a labels topic of the source's partition count; it stays
			// empty, so the models score every event and learn nothing.
			if err := createLabels(ctx, adm, partitions, outTopic+"-labels"); err != nil {
				return err
			}
		}
		if w == "restore" {
			// Restore the state of the last window run into an empty directory.
			grp, outTopic = lastWindowGroup, lastWindowOut
			if grp == "" {
				return errors.New("restore needs a window workload before it")
			}
		}
		args := []string{"-role", w, "-brokers", strings.Join(addrs, ","), "-input", input, "-group", grp, "-out", outTopic,
			"-window-size", windowSize.String()}
		if profileDir != "" {
			args = append(args, "-cpuprofile", filepath.Join(profileDir, run+".pprof"), "-profiles", profileDir)
		}
		cmd := exec.Command(self, args...)
		cmd.Stderr = os.Stderr
		stdout, _ := cmd.StdoutPipe()
		start := time.Now()
		if err := cmd.Start(); err != nil {
			return err
		}
		peak := make(chan workloadOutput, 1)
		go func() { peak <- readOutput(stdout) }()
		if w == "restore" {
			// The workload stops by itself once restored.
			_ = cmd.Wait()
			o := <-peak
			r := result{name: w, seconds: o.restoreSeconds, rate: float64(o.restored) / o.restoreSeconds, peakRSS: o.peakRSS}
			results = append(results, r)
			fmt.Fprintf(os.Stderr, "%-12s %8.2f s  %10.0f changelog records/s (%d records)  peak RSS %4d MiB\n", w, r.seconds, r.rate, o.restored, r.peakRSS>>20)
			continue
		}
		if err := waitCommitted(ctx, adm, grp, input, ends); err != nil {
			_ = cmd.Process.Kill()
			return fmt.Errorf("%s: %w", w, err)
		}
		elapsed := time.Since(start)
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		r := result{name: w, seconds: elapsed.Seconds(), rate: float64(total) / elapsed.Seconds(), peakRSS: (<-peak).peakRSS}
		results = append(results, r)
		fmt.Fprintf(os.Stderr, "%-12s %8.2f s  %10.0f records/s  peak RSS %4d MiB\n", w, r.seconds, r.rate, r.peakRSS>>20)
	}
	base := 0.0
	for _, r := range results {
		if r.name == "baseline" {
			base = r.rate
		}
	}
	fmt.Printf("| workload | records | seconds | records/s | ratio to baseline | peak RSS |\n|---|---|---|---|---|---|\n")
	for _, r := range results {
		ratio := "-"
		if base > 0 {
			ratio = fmt.Sprintf("%.2f", r.rate/base)
		}
		fmt.Printf("| %s | %d | %.2f | %.0f | %s | %d MiB |\n", r.name, total, r.seconds, r.rate, ratio, r.peakRSS>>20)
	}
	if len(lat.workloads) == 0 {
		return nil
	}
	var lrs []latencyResult
	for _, w := range lat.workloads {
		saturation := 0.0
		for _, r := range results {
			if r.name == w {
				saturation = r.rate // the last run of w
			}
		}
		if saturation == 0 {
			return fmt.Errorf("-latency %s: the workload is not in -workloads, so its saturation rate is unknown", w)
		}
		for _, f := range lat.fractions {
			lr, err := latencyRun(ctx, cl, adm, addrs, partitions, keys, w, f, f*saturation, lat.duration, stamp)
			if err != nil {
				return fmt.Errorf("latency %s at %.0f%%: %w", w, f*100, err)
			}
			lrs = append(lrs, lr)
			fmt.Fprintf(os.Stderr, "latency %-12s at %3.0f%%: %8.0f records/s  p50 %v  p99 %v  p99.9 %v  (%d measured, %d missing)  peak RSS %d MiB\n",
				w, f*100, lr.achieved, lr.p50, lr.p99, lr.p999, lr.measured, lr.missing, lr.peakRSS>>20)
		}
	}
	fmt.Printf("\n| workload | share of its saturation | records/s asked | records/s produced | p50 | p99 | p99.9 | records measured | outputs missing | peak RSS |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range lrs {
		fmt.Printf("| %s | %.0f%% | %.0f | %.0f | %s | %s | %s | %d | %d | %d MiB |\n", r.workload, r.fraction*100, r.target, r.achieved,
			ms(r.p50), ms(r.p99), ms(r.p999), r.measured, r.missing, r.peakRSS>>20)
	}
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

type workloadOutput struct {
	peakRSS        int64
	restoreSeconds float64
	restored       int64
}

// readOutput reads the "peak-rss N" (and, for a restore, "restore SECONDS RECORDS") lines a workload
// prints when it stops.
func readOutput(r io.Reader) workloadOutput {
	var o workloadOutput
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "peak-rss "); ok {
			o.peakRSS, _ = strconv.ParseInt(v, 10, 64)
		}
		if v, ok := strings.CutPrefix(sc.Text(), "restore "); ok {
			fmt.Sscan(v, &o.restoreSeconds, &o.restored)
		}
	}
	return o
}

func produceInput(ctx context.Context, cl *kgo.Client, topic string, n, keys int) error {
	g, err := gen.New(gen.Config{Seed: 42, Keys: min(keys, gen.MaxKeys), OutOfOrder: time.Second})
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	now := time.Now().Add(-time.Duration(n) * time.Millisecond)
	for i := 0; i < n; i++ {
		rec := g.Next(now.Add(time.Duration(i) * time.Millisecond))
		if roundRobinKeys {
			// Every key in turn: rewrite the card id in place (same length) and the record key.
			card := fmt.Appendf(nil, "card-%07d", i%keys)
			rec.Value = []byte(strings.Replace(string(rec.Value), `"card_id":"`+string(rec.Key)+`"`, `"card_id":"`+string(card)+`"`, 1))
			rec.Key = card
		}
		cl.Produce(ctx, &kgo.Record{Topic: topic, Key: rec.Key, Value: rec.Value}, func(_ *kgo.Record, err error) {
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

func waitCommitted(ctx context.Context, adm *kadm.Client, group, topic string, ends kadm.ListedOffsets) error {
	deadline := time.Now().Add(30 * time.Minute)
	for time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		committed, err := adm.FetchOffsetsForTopics(ctx, group, topic)
		if err != nil {
			continue
		}
		done := true
		ends.Each(func(o kadm.ListedOffset) {
			c, _ := committed.Lookup(topic, o.Partition)
			if c.At < o.Offset {
				done = false
			}
		})
		if done {
			return nil
		}
	}
	return errors.New("did not finish within 30 minutes")
}

// runWorkload runs one workload until interrupted, then prints its peak resident memory.
func runWorkload(name string, addrs []string, input, group, out string) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		sig := make(chan os.Signal, 1)
		signalNotify(sig)
		<-sig
		cancel()
	}()
	var err error
	switch name {
	case "baseline":
		err = baseline(ctx, addrs, input, group, out)
	case "passthrough":
		err = passthrough(ctx, addrs, input, group, out)
	case "window":
		err = windowed(ctx, addrs, input, group, out)
	case "full":
		err = full(ctx, addrs, input, group, out, configs.FraudPipeline)
	case "ml":
		err = full(ctx, addrs, input, group, out, mlPipeline)
	case "restore":
		err = restore(addrs, input, group, out)
	case "ysb":
		err = ysb(ctx, addrs, input, group, out)
	case "sliding":
		err = sliding(ctx, addrs, input, group, out)
	default:
		err = fmt.Errorf("unknown workload %q", name)
	}
	if profileDir != "" {
		if f, ferr := os.Create(filepath.Join(profileDir, name+"-heap.pprof")); ferr == nil {
			_ = pprof.Lookup("heap").WriteTo(f, 0)
			f.Close()
		}
	}
	fmt.Printf("peak-rss %d\n", peakRSS())
	return err
}

// baseline is the ceiling: a bare franz-go exactly-once consume→produce loop with 100 ms commits,
// copying each record's key and value to the output topic.
func baseline(ctx context.Context, addrs []string, input, group, out string) error {
	sess, err := kgo.NewGroupTransactSession(
		kgo.SeedBrokers(addrs...),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(input),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.TransactionalID(group+"-txn"),
		kgo.TransactionTimeout(15*time.Second),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.BlockRebalanceOnPoll(),
		kgo.MaxBufferedRecords(1<<20),
	)
	if err != nil {
		return err
	}
	defer sess.Close()
	for ctx.Err() == nil {
		start := time.Now()
		began := false
		for time.Since(start) < 100*time.Millisecond && ctx.Err() == nil {
			pctx, c := context.WithTimeout(ctx, 100*time.Millisecond-time.Since(start))
			fs := sess.PollFetches(pctx)
			c()
			if fs.Empty() {
				continue
			}
			if !began {
				if err := sess.Begin(); err != nil {
					return err
				}
				began = true
			}
			fs.EachRecord(func(r *kgo.Record) {
				// The timestamp is copied so that a latency run can read the input's produce time.
				sess.Produce(ctx, &kgo.Record{Topic: out, Key: r.Key, Value: r.Value, Timestamp: r.Timestamp}, nil)
			})
		}
		if began {
			if _, err := sess.End(context.Background(), kgo.TryCommit); err != nil {
				return err
			}
		}
		sess.AllowRebalance()
	}
	return nil
}

// passthrough is streamd's decode → validate → forward pipeline over the same input.
func passthrough(ctx context.Context, addrs []string, input, group, out string) error {
	return runPipeline(ctx, addrs, group, &stream.Pipeline{
		Name:            group,
		Source:          stream.Source{Topic: input, Format: benchFormat()},
		Operators:       []stream.Operator{&stream.Forward{Topic: out}},
		DeadLetterTopic: out + "-dlq",
	}, "")
}

// windowed is the DESIGN's reference workload: a tumbling count + sum per key (60 s by default),
// with state in Pebble and changelogs, exactly once.
func windowed(ctx context.Context, addrs []string, input, group, out string) error {
	p, err := windowPipeline(input, group, out)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "streamd-bench-state-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	return runPipeline(ctx, addrs, group, p, dir)
}

// full is the example pipeline, configs/fraud-pipeline.yaml (validation, clean output, two windows,
// windowed features, two online models), or another pipeline's YAML (ml), compiled by config/ as
// `streamd run` does, over the same input, with its topics renamed after the run.
func full(ctx context.Context, addrs []string, input, group, out string, yaml []byte) error {
	dir, err := os.MkdirTemp("", "streamd-bench-full-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	os.Setenv("KAFKA_BROKERS", strings.Join(addrs, ","))
	c, err := config.Parse(yaml)
	if err != nil {
		return err
	}
	c.App, c.InstanceID, c.State.Dir = group, "bench", dir
	c.Source.Topic, c.Labels.Topic = input, out+"-labels"
	c.Outputs.Predictions, c.Outputs.Clean = out, out+"-clean"
	c.Outputs.DeadLetters, c.Outputs.Late = out+"-dlq", out+"-late"
	for i := range c.Windows {
		c.Windows[i].Output = out + "-" + c.Windows[i].Name
	}
	c.Source.IdleTimeout = -1
	p, err := c.Pipeline()
	if err != nil {
		return err
	}
	rc, err := c.RuntimeConfig()
	if err != nil {
		return err
	}
	rc.LeaveGroupOnShutdown = true
	rc.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: benchLogLevel()}))
	rc.Registerer = prometheus.NewRegistry()
	rt, err := stream.NewRuntime(p, rc)
	if err != nil {
		return err
	}
	return rt.Run(ctx)
}

func windowPipeline(input, group, out string) (*stream.Pipeline, error) {
	f := benchFormat()
	op, err := window.New(window.Spec{Name: "activity", Kind: window.Tumbling, Size: windowSize,
		Aggs:   []window.Agg{{Name: "count", Kind: agg.Count}, {Name: "sum_amount", Kind: agg.Sum, Field: "amount"}},
		Output: out}, f)
	if err != nil {
		return nil, err
	}
	return &stream.Pipeline{
		Name:            group,
		Source:          stream.Source{Topic: input, Format: f},
		Operators:       []stream.Operator{op},
		DeadLetterTopic: out + "-dlq",
		LateTopic:       out + "-late",
	}, nil
}

// restore starts the window pipeline of an earlier run (same name, so the same changelogs) with an
// empty state directory, and measures the time from start until every assigned partition is
// restored and the runtime is ready. The group is a fresh one, so that it gets every partition.
func restore(addrs []string, input, group, out string) error {
	p, err := windowPipeline(input, group, out)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "streamd-bench-restore-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	reg := prometheus.NewRegistry()
	rt, err := stream.NewRuntime(p, stream.Config{
		Brokers: addrs, InstanceID: "bench-restore", StateDir: dir, IdleTimeout: -1,
		Logger:     slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Registerer: reg,
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	for !rt.Ready() {
		select {
		case err := <-done:
			cancel()
			return err
		case <-time.After(5 * time.Millisecond):
		}
	}
	elapsed := time.Since(start)
	var restored float64
	if mfs, err := reg.Gather(); err == nil {
		for _, mf := range mfs {
			if mf.GetName() == "streamd_restored_records_total" {
				restored = mf.GetMetric()[0].GetCounter().GetValue()
			}
		}
	}
	cancel()
	<-done
	fmt.Printf("restore %f %d\n", elapsed.Seconds(), int64(restored))
	return nil
}

func benchFormat() *stream.JSONFormat {
	zero := 0.0
	f := &stream.JSONFormat{
		KeyField: "card_id", IDField: "event_id",
		Time: stream.EventTimeSpec{Field: "event_time", Format: stream.TimeRFC3339, MaxFuture: time.Hour},
		Fields: []stream.FieldSpec{
			{Name: "amount", Type: stream.Number, Required: true, Min: &zero},
			{Name: "merchant", Type: stream.String, MaxLength: 64},
			{Name: "country", Type: stream.String, MaxLength: 2},
		},
		MaxRecordBytes: 64 << 10,
	}
	if err := f.Init(); err != nil {
		panic(err)
	}
	return f
}

func runPipeline(ctx context.Context, addrs []string, group string, p *stream.Pipeline, stateDir string) error {
	rt, err := stream.NewRuntime(p, stream.Config{
		Brokers: addrs, InstanceID: "bench", CreateTopics: true, StateDir: stateDir, IdleTimeout: -1,
		LeaveGroupOnShutdown: true,
		Logger:               slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Registerer:           prometheus.NewRegistry(),
	})
	if err != nil {
		return err
	}
	return rt.Run(ctx)
}

// peakRSS returns the process's peak resident set size (VmHWM) in bytes.
func peakRSS() int64 {
	data, err := os.ReadFile("/proc/self/status")
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

// benchLogLevel is the workloads' log level: warnings, or BENCH_LOG_LEVEL (e.g. DEBUG for every
// commit cycle's phases).
func benchLogLevel() slog.Level {
	var l slog.Level = slog.LevelWarn
	if v := os.Getenv("BENCH_LOG_LEVEL"); v != "" {
		_ = l.UnmarshalText([]byte(v))
	}
	return l
}
