package main

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/streamd/streamd/config"
	"github.com/streamd/streamd/dlq"
	"github.com/streamd/streamd/stream"
)

const dlqUsage = `Usage: streamd dlq replay -config FILE [flags]

Commands:
  replay   re-inject chosen dead letters into their source topic (or -topic), exactly once

Run "streamd dlq replay -h" for its flags.
`

func cmdDLQ(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "replay" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "help" || args[0] == "-help") {
			fmt.Fprint(stdout, dlqUsage)
			return 0
		}
		fmt.Fprint(stderr, dlqUsage)
		return 2
	}
	return cmdDLQReplay(args[1:], stdout, stderr)
}

// timeFlag reads an instant as RFC 3339 or Unix milliseconds.
type timeFlag struct{ t *time.Time }

func (f timeFlag) String() string {
	if f.t == nil || f.t.IsZero() {
		return ""
	}
	return f.t.Format(time.RFC3339Nano)
}

func (f timeFlag) Set(s string) error {
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		*f.t = time.UnixMilli(ms).UTC()
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("%q is neither RFC 3339 (2026-12-02T10:00:00Z) nor Unix milliseconds", s)
	}
	*f.t = t
	return nil
}

func cmdDLQReplay(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("dlq replay", "-config FILE [flags]",
		"Re-injects the pipeline's dead letters (outputs.dead_letters) that the flags select into their source topic and\n"+
			"partition, or -topic, with their key, value, timestamp and headers, exactly once: the replay ledger\n"+
			"<app>-dlq-replayed, written in the same transactions, makes a second run skip what the first replayed, also\n"+
			"after a kill. Prints what it replayed and what it skipped. See docs/operations.md, \"Dead letters and replay\".", stderr)
	path := fs.String("config", "", "pipeline config file (required): brokers, credentials, app and dead-letter topic")
	reasons := fs.String("reason", "", "replay only these reasons, comma-separated (streamd-reason header: missing_field, out_of_range, ...); default all")
	var o dlq.Options
	fs.Var(timeFlag{&o.From}, "from", "replay only dead letters whose record timestamp is at or after this (RFC 3339 or Unix ms)")
	fs.Var(timeFlag{&o.To}, "to", "replay only dead letters whose record timestamp is before this (RFC 3339 or Unix ms)")
	fs.StringVar(&o.Target, "topic", "", "replay into this topic, partitioned by key, instead of each record's source topic and partition")
	fs.BoolVar(&o.DryRun, "dry-run", false, "only report what would be replayed")
	fs.IntVar(&o.MaxReplays, "max-replays", dlq.DefaultMaxReplays, "skip a record already replayed this many times (its streamd-replay-count)")
	fs.IntVar(&o.BatchRecords, "batch", dlq.DefaultBatchRecords, "replayed records per transaction")
	fs.Var(rateFlag{&o.Rate}, "rate", "at most this many records per second, like 1000/s; 0 = as fast as possible")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" {
		fmt.Fprintln(stderr, "streamd dlq replay: -config FILE is required")
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "streamd dlq replay: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	known := map[string]bool{}
	for _, r := range stream.Reasons() {
		known[string(r)] = true
	}
	for _, r := range strings.Split(*reasons, ",") {
		if r = strings.TrimSpace(r); r == "" {
			continue
		}
		if !known[r] {
			fmt.Fprintf(stderr, "streamd dlq replay: -reason %q is not a reason streamd gives\n", r)
			return 2
		}
		o.Reasons = append(o.Reasons, r)
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", *path, err)
		return 1
	}
	if o.ClientOpts, err = cfg.ClientOpts(); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", *path, err)
		return 1
	}
	o.App, o.Brokers, o.DeadLetterTopic = cfg.App, cfg.Kafka.Brokers, cfg.Outputs.DeadLetters
	o.TransactionTimeout = cfg.Kafka.TransactionTimeout.D()
	o.ReplicationFactor = int16(min(cfg.Kafka.ReplicationFactor, math.MaxInt16))
	log := cfg.NewLogger(stderr)
	o.Logger = log
	ctx, stop := signalContext(log)
	defer stop()
	sum, err := dlq.Replay(ctx, o)
	fmt.Fprintln(stdout, sum)
	if err != nil {
		log.Error("replay failed", "err", err)
		return 1
	}
	return 0
}
