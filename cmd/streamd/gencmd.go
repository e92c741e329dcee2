package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/streamd/streamd/config"
	"github.com/streamd/streamd/internal/gen"
)

// genFlags are the generator's settings, shared by the gen and demo commands.
type genFlags struct {
	cfg  gen.Config
	rate float64
}

func (g *genFlags) register(fs *flag.FlagSet, defaultRate, defaultBadRatio float64) {
	g.rate = defaultRate
	fs.Var(rateFlag{&g.rate}, "rate", "records per second, like 5000/s or 300/min; 0 = as fast as possible")
	fs.IntVar(&g.cfg.Keys, "keys", gen.DefaultKeys, "distinct cards (entity keys)")
	fs.Float64Var(&g.cfg.ZipfS, "zipf", gen.DefaultZipfS, "key skew (Zipf s > 1): higher means a few hotter cards")
	g.cfg.OutOfOrder = gen.DefaultOutOfOrder
	fs.Var(durationFlag{&g.cfg.OutOfOrder}, "out-of-order", "event times lag the clock by up to this much, at random")
	fs.Float64Var(&g.cfg.BadRatio, "bad-ratio", defaultBadRatio, "fraction of deliberately broken records (malformed JSON, missing fields, 1970/2100 times, huge, ...)")
	fs.Float64Var(&g.cfg.FraudRate, "fraud-rate", gen.DefaultFraudRate, "approximate fraud base rate")
	g.cfg.LabelDelay = gen.DefaultLabelDelay
	fs.Var(durationFlag{&g.cfg.LabelDelay}, "label-delay", "a fraud label arrives on the labels topic this long after its event")
	fs.Int64Var(&g.cfg.Seed, "seed", gen.DefaultSeed, "random seed: the same seed gives the same stream")
	fs.Int64Var(&g.cfg.DriftAt, "drift-at", 0, "if > 0, the fraud pattern changes abruptly after this many records")
}

func cmdGen(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("gen", "[flags]", "Produces the synthetic card-transaction stream (and its fraud labels, later) to a Kafka broker.", stderr)
	defBrokers := os.Getenv("KAFKA_BROKERS")
	if defBrokers == "" {
		defBrokers = "127.0.0.1:9092"
	}
	brokers := fs.String("brokers", defBrokers, "Kafka brokers, host:port[,host:port] ($KAFKA_BROKERS when set)")
	topic := fs.String("topic", "transactions", "transactions topic")
	labels := fs.String("labels-topic", "labels", `labels topic ("" for none)`)
	count := fs.Int64("count", 0, "records to produce; 0 = until interrupted")
	partitions := fs.Int("partitions", gen.DefaultPartitions, "partitions of topics that do not exist yet")
	create := fs.Bool("create-topics", true, "create missing topics")
	format := fs.String("format", "json", "record format: json, avro or protobuf (Confluent's wire format; the schema is registered first)")
	registry := fs.String("registry", "http://127.0.0.1:8081", "schema registry URL, for -format avro or protobuf")
	subject := fs.String("subject", "", `subject to register the schema under (default "<topic>-value")`)
	var g genFlags
	g.register(fs, 1000, 0)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	g.cfg.SetDefaults()
	generator, err := gen.New(g.cfg)
	if err != nil {
		fmt.Fprintln(stderr, "streamd gen:", err)
		return 2
	}
	log := config.NewLogger(stderr, "info", "text")
	ctx, stop := signalContext(log)
	defer stop()
	var enc *gen.Encoding
	switch *format {
	case "json":
	case "avro", "protobuf":
		if *subject == "" {
			*subject = *topic + "-value"
		}
		e, err := registerGenSchema(ctx, *format, *registry, *subject)
		if err != nil {
			fmt.Fprintln(stderr, "streamd gen:", err)
			return 1
		}
		enc = e
		fmt.Fprintf(stdout, "registered the %s schema under %s at %s: id %d\n", *format, *subject, *registry, e.SchemaID)
	default:
		fmt.Fprintf(stderr, "streamd gen: -format %q: use json, avro or protobuf\n", *format)
		return 2
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(*brokers, ",")...), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		fmt.Fprintln(stderr, "streamd gen:", err)
		return 1
	}
	defer cl.Close()
	var st gen.Stats
	done := make(chan error, 1)
	go func() {
		done <- gen.Run(ctx, cl, generator, gen.RunConfig{
			Topic: *topic, LabelsTopic: *labels, Rate: g.rate, Count: *count,
			CreateTopics: *create, Partitions: int32(*partitions), AwaitLabels: true, Encoding: enc,
		}, &st)
	}()
	fmt.Fprintf(stdout, "producing to %s (labels to %q) on %s at %s\n", *topic, *labels, *brokers, rateFlag{&g.rate})
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	start, last := time.Now(), st.Snapshot()
	for {
		select {
		case err := <-done:
			s := st.Snapshot()
			fmt.Fprintf(stdout, "done: %d records (%d broken, %d fraud), %d labels in %s\n",
				s.Records, s.Bad, s.Fraud, s.Labels, time.Since(start).Round(time.Millisecond))
			if err != nil && ctx.Err() == nil {
				fmt.Fprintln(stderr, "streamd gen:", err)
				return 1
			}
			return 0
		case <-tick.C:
			s := st.Snapshot()
			fmt.Fprintf(stdout, "%6s  %8d records  %7.0f/s  %d broken  %d labels\n",
				time.Since(start).Round(time.Second), s.Records, float64(s.Records-last.Records)/2, s.Bad, s.Labels)
			last = s
		}
	}
}

// registerGenSchema registers the generator's schema of format under subject (or finds it there)
// and returns the encoding that frames records with its id.
func registerGenSchema(ctx context.Context, format, url, subject string) (*gen.Encoding, error) {
	cl, err := sr.NewClient(sr.URLs(url), sr.UserAgent("streamd-gen"))
	if err != nil {
		return nil, err
	}
	s := sr.Schema{Schema: gen.AvroSchema, Type: sr.TypeAvro}
	if format == "protobuf" {
		s = sr.Schema{Schema: gen.ProtobufSchema, Type: sr.TypeProtobuf}
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ss, err := cl.CreateSchema(rctx, subject, s)
	if err != nil {
		return nil, fmt.Errorf("registering the %s schema under %s at %s: %w", format, subject, url, err)
	}
	return &gen.Encoding{Protobuf: format == "protobuf", SchemaID: ss.ID}, nil
}
