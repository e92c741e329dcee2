package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/config"
	"github.com/streamd/streamd/export"
)

func cmdExport(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("export", "-topic TOPIC -out DIR (-config FILE | -brokers HOST:PORT) [flags]",
		"Writes a snapshot of a topic of streamd's JSON outputs (training rows, predictions, window results) as files,\n"+
			"one per hour or day of event time: Parquet with typed columns, or JSON lines. Reads read_committed, up to each\n"+
			"partition's last stable offset when it starts. See docs/training-data.md.", stderr)
	path := fs.String("config", "", "pipeline config file: brokers and credentials, and the default -topic (outputs.training)")
	brokers := fs.String("brokers", "", "comma-separated seed brokers, without -config")
	var o export.Options
	fs.StringVar(&o.Topic, "topic", "", "the topic to export (default: the config's outputs.training)")
	fs.StringVar(&o.Format, "format", export.Parquet, "parquet or jsonl")
	fs.StringVar(&o.Dir, "out", "", "directory for the files (required; created if missing)")
	roll := fs.String("roll", "day", "the event-time period of a file: hour or day")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "streamd export: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	switch *roll {
	case "hour":
		o.Roll = time.Hour
	case "day":
		o.Roll = 24 * time.Hour
	default:
		fmt.Fprintf(stderr, "streamd export: -roll %q is not hour or day\n", *roll)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	switch {
	case *path != "" && *brokers != "":
		fmt.Fprintln(stderr, "streamd export: -config and -brokers: give one")
		return 2
	case *path != "":
		cfg, err := config.Load(*path)
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", *path, err)
			return 1
		}
		if o.ClientOpts, err = cfg.ClientOpts(); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", *path, err)
			return 1
		}
		o.ClientOpts = append([]kgo.Opt{kgo.SeedBrokers(cfg.Kafka.Brokers...)}, o.ClientOpts...)
		if o.Topic == "" {
			o.Topic = cfg.Outputs.Training
		}
		log = cfg.NewLogger(stderr)
	case *brokers != "":
		o.ClientOpts = []kgo.Opt{kgo.SeedBrokers(strings.Split(*brokers, ",")...)}
	default:
		fmt.Fprintln(stderr, "streamd export: -config FILE or -brokers HOST:PORT is required")
		return 2
	}
	if err := o.Validate(); err != nil {
		fmt.Fprintf(stderr, "streamd export: %v\n", err)
		return 2
	}
	o.Logger = log
	ctx, stop := signalContext(log)
	defer stop()
	sum, err := export.Run(ctx, o)
	if err != nil {
		log.Error("export failed", "err", err)
		return 1
	}
	fmt.Fprintf(stdout, "exported %d records of %s into %d files in %s\n", sum.Records, o.Topic, len(sum.Files), o.Dir)
	for _, f := range sum.Files {
		fmt.Fprintf(stdout, "  %s  %d records\n", f.Path, f.Records)
	}
	if len(sum.Columns) > 0 {
		fmt.Fprintln(stdout, "columns:")
		for _, c := range sum.Columns {
			fmt.Fprintf(stdout, "  %-40s %s\n", c.Name, c.Type)
		}
	}
	return 0
}
