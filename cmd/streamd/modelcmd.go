package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/config"
	"github.com/streamd/streamd/model"
)

const modelUsage = `Usage:
  streamd model push -config FILE -name MODEL -file MODEL_FILE      publish a new version, live at once
  streamd model rollback -config FILE -name MODEL -version V         make version V live again (0: the configured file)
  streamd model list -config FILE                                    the versions in the versions topic

The pipeline config gives the brokers, the versions topic (models.versions_topic) and the features a
version must bind to: push and rollback check the model before they write anything.
`

// cmdModel runs `streamd model SUBCOMMAND`.
func cmdModel(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, modelUsage)
		return 2
	}
	sub, args := args[0], args[1:]
	fs := newFlagSet("model "+sub, "-config FILE ...", "Manages the versions of the pipeline's offline models.", stderr)
	path := fs.String("config", "", "pipeline config file (required)")
	name := fs.String("name", "", "the offline model (models.list[].name)")
	file := fs.String("file", "", "push: the model file (XGBoost JSON or UBJSON, LightGBM text; gzip'd or not)")
	version := fs.Int64("version", -1, "rollback: the version to make live")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait for the brokers")
	switch sub {
	case "push", "rollback", "list":
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, modelUsage)
		return 0
	default:
		fmt.Fprintf(stderr, "streamd model: unknown subcommand %q\n\n%s", sub, modelUsage)
		return 2
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" {
		fmt.Fprintf(stderr, "streamd model %s: -config FILE is required\n", sub)
		return 2
	}
	if sub != "list" && *name == "" {
		fmt.Fprintf(stderr, "streamd model %s: -name MODEL is required\n", sub)
		return 2
	}
	if sub == "push" && *file == "" {
		fmt.Fprintln(stderr, "streamd model push: -file MODEL_FILE is required")
		return 2
	}
	if sub == "rollback" && *version < 0 {
		fmt.Fprintln(stderr, "streamd model rollback: -version V (0 or more) is required")
		return 2
	}
	op, cl, err := modelOperator(*path)
	if err != nil {
		fmt.Fprintf(stderr, "streamd model %s: %v\n", sub, err)
		return 1
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	switch sub {
	case "push":
		data, err := os.ReadFile(*file)
		if err != nil {
			fmt.Fprintf(stderr, "streamd model push: %v\n", err)
			return 1
		}
		v, err := op.PushVersion(ctx, cl, *name, data)
		if err != nil {
			fmt.Fprintf(stderr, "streamd model push: %s: %v\n", *file, err)
			return 1
		}
		fmt.Fprintf(stdout, "%s: version %d published to %s and live; every instance swaps to it at its next commit\n", *name, v, op.VersionsTopic())
	case "rollback":
		if err := op.Rollback(ctx, cl, *name, *version); err != nil {
			fmt.Fprintf(stderr, "streamd model rollback: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "%s: version %d is live; every instance swaps to it at its next commit\n", *name, *version)
	case "list":
		hist, err := model.ReadVersions(ctx, cl, op.VersionsTopic())
		if err != nil {
			fmt.Fprintf(stderr, "streamd model list: %v\n", err)
			return 1
		}
		names := make([]string, 0, len(hist))
		for n := range hist {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			h := hist[n]
			fmt.Fprintf(stdout, "%s: live %d, versions %v\n", n, h.Live, h.Versions)
		}
	}
	return 0
}

// modelOperator compiles the config's pipeline (which checks every offline model's file) and
// returns its model operator and a client for its brokers.
func modelOperator(path string) (*model.Operator, *kgo.Client, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, nil, err
	}
	p, err := cfg.Pipeline()
	if err != nil {
		return nil, nil, err
	}
	var op *model.Operator
	for _, o := range p.Operators {
		if m, ok := o.(*model.Operator); ok && m.VersionsTopic() != "" {
			op = m
		}
	}
	if op == nil {
		return nil, nil, fmt.Errorf("%s has no offline model (models.list[].offline)", path)
	}
	rc, err := cfg.RuntimeConfig()
	if err != nil {
		return nil, nil, err
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(rc.Brokers...), kgo.ClientID("streamd-model")}, rc.ClientOpts...)...)
	if err != nil {
		return nil, nil, err
	}
	return op, cl, nil
}
