package main

import (
	"fmt"
	"io"

	"github.com/streamd/streamd/config"
)

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("validate", "-config FILE", "Checks a pipeline config: exits 0, or 1 naming every bad key.", stderr)
	path := fs.String("config", "", "pipeline config file (required)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" {
		fmt.Fprintln(stderr, "streamd validate: -config FILE is required")
		return 2
	}
	cfg, err := config.Load(*path)
	if err == nil {
		_, err = cfg.Pipeline()
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", *path, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok (app %s, source %s, %d fields, dead letters to %s)\n",
		*path, cfg.App, cfg.Source.Topic, len(cfg.Source.Fields), cfg.Outputs.DeadLetters)
	return 0
}
