package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/config"
	"github.com/streamd/streamd/configs"
	"github.com/streamd/streamd/internal/gen"
)

// demoPartitions is the partition count of the demo's topics.
const demoPartitions = 4

func cmdDemo(args []string, stdout, stderr io.Writer) int {
	return runDemo(context.Background(), args, stdout, stderr)
}

// runDemo is cmdDemo until parent is done (a test's way to stop it early), a signal or -duration.
func runDemo(parent context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("demo", "[flags]", "Runs the example pipeline (or -config FILE) against an in-process Kafka broker fed by the generator,\nwith live progress, then reads the topics back to show every record exactly once.", stderr)
	var duration time.Duration
	fs.Var(durationFlag{&duration}, "duration", "stop after this long (0 = until Ctrl-C)")
	port := fs.Int("port", 0, "port of the in-process Kafka broker on 127.0.0.1 (0 = a free one)")
	listen := fs.String("admin", "127.0.0.1:8080", "admin HTTP address (/metrics, /healthz, /readyz); a free port if it is taken")
	cfgPath := fs.String("config", "", "pipeline config (default: the embedded configs/fraud-pipeline.yaml)")
	logLevel := fs.String("log-level", "warn", "log level of the pipeline's logs (debug, info, warn, error)")
	var g genFlags
	g.register(fs, 2000, 0.01) // the demo shows the dead-letter path by default
	if err := fs.Parse(args); err != nil {
		return 2
	}
	g.cfg.SetDefaults()
	generator, err := gen.New(g.cfg)
	if err != nil {
		fmt.Fprintln(stderr, "streamd demo:", err)
		return 2
	}
	log := config.NewLogger(stderr, *logLevel, "text")
	ctx, stop := signalContext(log)
	defer stop()
	ctx, stopParent := context.WithCancel(ctx)
	defer stopParent()
	defer context.AfterFunc(parent, stopParent)()
	if duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, duration)
		defer cancel()
	}

	// The pipeline config, with the in-process broker's address.
	data := configs.FraudPipeline
	if *cfgPath != "" {
		if data, err = os.ReadFile(*cfgPath); err != nil {
			fmt.Fprintln(stderr, "streamd demo:", err)
			return 1
		}
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(*port), kfake.DefaultNumPartitions(demoPartitions))
	if err != nil {
		fmt.Fprintln(stderr, "streamd demo: in-process broker:", err)
		return 1
	}
	defer cluster.Close()
	addr := cluster.ListenAddrs()[0]
	stateDir, err := os.MkdirTemp("", "streamd-demo-state-")
	if err != nil {
		fmt.Fprintln(stderr, "streamd demo:", err)
		return 1
	}
	defer os.RemoveAll(stateDir)
	cfg, err := config.ParseWithEnv(data, func(name string) (string, bool) {
		switch name {
		case "KAFKA_BROKERS":
			return addr, true
		case "STREAMD_STATE_DIR":
			return stateDir, true
		}
		return os.LookupEnv(name)
	})
	if err != nil {
		fmt.Fprintln(stderr, "streamd demo:", err)
		return 1
	}
	cfg.InstanceID = "demo"
	const labelsTopic = "labels"

	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		fmt.Fprintln(stderr, "streamd demo:", err)
		return 1
	}
	defer cl.Close()
	if err := gen.EnsureTopics(ctx, cl, demoPartitions, cfg.Source.Topic, labelsTopic); err != nil {
		fmt.Fprintln(stderr, "streamd demo:", err)
		return 1
	}

	adminAddr := *listen
	if ln, err := net.Listen("tcp", adminAddr); err != nil {
		adminAddr = "127.0.0.1:0"
	} else {
		ln.Close()
	}
	pipeCtx, stopPipe := context.WithCancel(context.Background())
	defer stopPipe()
	d, err := startDaemon(pipeCtx, cfg, config.NewLogger(stderr, *logLevel, "text"), adminAddr)
	if err != nil {
		fmt.Fprintln(stderr, "streamd demo:", err)
		return 1
	}

	// The console's address comes first, where it cannot scroll away before it is seen.
	fmt.Fprintf(stdout, "console  %s   (open it in a browser: the pipeline's graph, lag, model quality, dead letters)\n\n", d.consoleURL())
	fmt.Fprintf(stdout, `streamd demo — the example pipeline (configs/fraud-pipeline.yaml) on an in-process Kafka broker

  broker        %s   (attach your own client: kcat -b %s -C -t %s)
  input         %s (card transactions, %s, %.0f%% deliberately broken), %s (fraud labels, later)
  outputs       %s (scores, exactly once), %s (validated events), %s (rejected records, reason in a header),
                %s (windows, state in Pebble + changelogs), %s (records after their window closed)
  admin         http://%s/metrics  /healthz  /readyz  /v1/models  /v1/watermarks  /v1/state/{key}  /v1/pipeline
  stop          Ctrl-C%s

`, addr, addr, cfg.Outputs.Clean, cfg.Source.Topic, rateFlag{&g.rate}, 100*g.cfg.BadRatio, labelsTopic,
		cfg.Outputs.Predictions, cfg.Outputs.Clean, cfg.Outputs.DeadLetters, windowList(cfg), cfg.Outputs.Late, d.adm.Addr(), durationNote(duration))

	var st gen.Stats
	genDone := make(chan error, 1)
	go func() {
		genDone <- gen.Run(ctx, cl, generator, gen.RunConfig{Topic: cfg.Source.Topic, LabelsTopic: labelsTopic, Rate: g.rate}, &st)
	}()

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	start := time.Now()
	prev, prevAt := readSnapshot(d.reg), start
	windowTopics := map[string]bool{}
	for _, w := range cfg.Windows {
		windowTopics[w.Output] = true
	}
	windowResults := func(s snapshot) float64 {
		n := 0.0
		for topic, v := range s.produced {
			if windowTopics[topic] {
				n += v
			}
		}
		return n
	}
	champion := cfg.Models.Champion
	if champion == "" && len(cfg.Models.List) > 0 {
		champion = cfg.Models.List[0].Name
	}
	src := cfg.Source.Topic
	// Two groups of columns, labelled as such: rates over the last second, and totals since the
	// start. commit is the mean time to end a cycle over the last second (exact, from the
	// histogram's sum and count), not a bucket bound.
	const (
		head  = "%6s │ %8s %8s %8s %6s %8s │ %10s %8s %7s %8s │ %8s │ %6s %7s %5s %6s %6s\n"
		row   = "%6s │ %8.0f %8.0f %8.0f %6.1f %8s │ %10d %8.0f %7.0f %8.0f │ %8.0f │ %6s %7s %5s %6.0f %6.0f\n"
		group = "%6s │ %-42s │ %-36s │ %8s │ %-35s\n"
	)
	// warm: the champion's partitions that have learned its min_examples (cold ones publish
	// "warm":false and no class); cold: its predictions published cold; drifts: detections, each
	// also a log line (level warn) that says where it fired and what the action did.
	fmt.Fprintf(stdout, group, "", "per second (last 1 s)", "total since start", "now", "model (rolling; warm of partitions)")
	fmt.Fprintf(stdout, head, "time", "in", "clean", "pred", "txn", "commit", "generated", "dead", "late", "windows", "lag", "AUC", "logloss", "warm", "cold", "drifts")
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err := <-d.done:
			d.done <- err
			fmt.Fprintln(stderr, "streamd demo: the pipeline stopped:", err)
			break loop
		case now := <-tick.C:
			s := readSnapshot(d.reg)
			dt := now.Sub(prevAt).Seconds()
			commit := math.NaN()
			if n := s.commitCount - prev.commitCount; n > 0 {
				commit = (s.commitSum - prev.commitSum) / float64(n)
			}
			fmt.Fprintf(stdout, row,
				now.Sub(start).Round(time.Second),
				(s.consumedBy[src]-prev.consumedBy[src])/dt, (s.produced[cfg.Outputs.Clean]-prev.produced[cfg.Outputs.Clean])/dt,
				(s.produced[cfg.Outputs.Predictions]-prev.produced[cfg.Outputs.Predictions])/dt,
				(s.committed-prev.committed)/dt, fmtSeconds(commit),
				st.Snapshot().Records, sumValues(s.deadLetters), s.late, windowResults(s), s.lag,
				fmtMetric(s.evaluation, champion+"/auc"), fmtMetric(s.evaluation, champion+"/logloss"),
				fmt.Sprintf("%.0f/%d", s.warm[champion], demoPartitions), s.cold[champion], sumValues(s.drifts))
			prev, prevAt = s, now
		}
	}

	// Stop the generator, let the pipeline drain, stop it, and account for every record.
	genErr := <-genDone
	fmt.Fprintln(stdout, "\nstopping: generator stopped, waiting for the pipeline to drain ...")
	gs := st.Snapshot()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) && readSnapshot(d.reg).consumedBy[src] < float64(gs.Records) {
		time.Sleep(100 * time.Millisecond)
	}
	final := readSnapshot(d.reg) // the model figures go with the tasks when the pipeline stops
	stopPipe()
	runErr := d.wait()
	s := readSnapshot(d.reg)
	s.evaluation = final.evaluation
	fmt.Fprintf(stdout, "\ngenerated %d records (%d deliberately broken), %d labels\n", gs.Records, gs.Bad, gs.Labels)
	fmt.Fprintf(stdout, "pipeline  %.0f transactions and %.0f labels consumed, %.0f to %s, %.0f predictions, %.0f dead letters (%s)\n",
		s.consumedBy[src], s.consumed-s.consumedBy[src], s.produced[cfg.Outputs.Clean], cfg.Outputs.Clean,
		s.produced[cfg.Outputs.Predictions], sumValues(s.deadLetters), reasons(s.deadLetters))
	if champion != "" {
		fmt.Fprintf(stdout, "model     %s (champion): rolling AUC %s, logloss %s over the last 1000 labelled predictions\n",
			champion, fmtMetric(s.evaluation, champion+"/auc"), fmtMetric(s.evaluation, champion+"/logloss"))
		fmt.Fprintf(stdout, "          warm in %.0f of the partitions at the end; %.0f predictions published cold (\"warm\":false, no class) before min_examples\n",
			final.warm[champion], s.cold[champion])
		fmt.Fprintf(stdout, "          %.0f drift detections (%s; each logged at level warn with its partition, offset and event time)\n",
			sumValues(s.drifts), driftNote(cfg))
	}
	fmt.Fprintf(stdout, "          %.0f window results, %.0f late records, %.0f transactions committed, %.0f aborted\n",
		windowResults(s), s.late, s.committed, s.aborted)
	// The check that matters is not the counters but the topics: read them back as a
	// read_committed consumer would, and match every output to its source record by lineage.
	rctx, rcancel := context.WithTimeout(context.Background(), time.Minute)
	rb, rbErr := checkReadBack(rctx, []string{addr}, src, cfg.Outputs.Clean, cfg.Outputs.DeadLetters, cfg.Outputs.Predictions)
	rcancel()
	switch {
	case rbErr != nil:
		fmt.Fprintln(stdout, "read back: could not read the topics:", rbErr)
	case int64(rb.source) != gs.Records:
		fmt.Fprintf(stdout, "read back: %d records in %s, but the generator acknowledged %d\n", rb.source, src, gs.Records)
	case !rb.exactlyOnce(cfg.Outputs.Predictions != ""):
		fmt.Fprintf(stdout, "read back: NOT exactly once: of %d source records %d have no clean record or dead letter (the pipeline had not caught up?), %d have more than one; %d predictions duplicated, %d clean records without a prediction\n",
			rb.source, rb.missing, rb.duplicated, rb.predDuplicated, rb.cleanWithoutPrediction)
	default:
		fmt.Fprintf(stdout, "read back (read_committed, matched by lineage headers): each of the %d generated records is exactly once in %s (%d) or %s (%d), and each clean one has exactly one prediction (%d)\n",
			rb.source, cfg.Outputs.Clean, rb.clean, cfg.Outputs.DeadLetters, rb.dead, rb.predictions)
	}
	if genErr != nil && !errors.Is(genErr, context.Canceled) {
		fmt.Fprintln(stderr, "streamd demo: generator:", genErr)
		return 1
	}
	if runErr != nil {
		return 1
	}
	return 0
}

func driftNote(cfg *config.Config) string {
	d := cfg.Models.Drift
	if d.Detector == "" {
		return "no detector configured"
	}
	sig := d.Signal
	if sig == "" {
		sig = "loss"
	}
	return d.Detector + " on the champion's " + sig
}

func fmtMetric(m map[string]float64, key string) string {
	v, ok := m[key]
	if !ok || math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf("%.3f", v)
}

func windowList(cfg *config.Config) string {
	var out []string
	for _, w := range cfg.Windows {
		out = append(out, w.Output)
	}
	return strings.Join(out, ", ")
}

func durationNote(d time.Duration) string {
	if d > 0 {
		return fmt.Sprintf(" (or it stops by itself after %s)", d)
	}
	return ""
}

func fmtSeconds(s float64) string {
	switch {
	case math.IsNaN(s):
		return "-"
	case math.IsInf(s, 1):
		return ">8s"
	case s < 1:
		return fmt.Sprintf("%.0fms", s*1000)
	}
	return fmt.Sprintf("%.1fs", s)
}
