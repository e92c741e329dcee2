// Command streamd runs real-time machine-learning pipelines over Kafka, exactly once.
//
//	streamd run -config FILE        run a pipeline (the daemon)
//	streamd validate -config FILE   check a config and name every bad key
//	streamd demo                    an in-process broker, a generator and the example pipeline, live
//	streamd gen -brokers HOST:PORT  produce the synthetic card-transaction stream to any broker
//	streamd dlq replay -config FILE re-inject chosen dead letters after a fix, exactly once
//	streamd model push|rollback|list  manage the versions of offline models
//	streamd version                 print the version
package main

import (
	"fmt"
	"io"
	"os"
)

const usage = `streamd: real-time machine-learning pipelines over Kafka, exactly once.

Usage:
  streamd run -config FILE        run a pipeline (the daemon)
  streamd validate -config FILE   check a config; exit 0, or name every bad key
  streamd demo [-duration 30s]    in-process broker + generator + the example pipeline, with live progress
  streamd gen -brokers HOST:PORT  produce the synthetic card-transaction stream to a broker
  streamd dlq replay -config FILE re-inject chosen dead letters (-reason, -from, -to) exactly once
  streamd model push|rollback|list -config FILE ...  publish, roll back or list offline model versions
  streamd export -topic T -out DIR  a topic of JSON outputs (training rows) as Parquet or JSON-lines files
  streamd version                 print the version

Run "streamd COMMAND -h" for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches a command and returns the process exit code: 0 success, 1 failure, 2 bad usage.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:], stdout, stderr)
	case "validate":
		return cmdValidate(args[1:], stdout, stderr)
	case "demo":
		return cmdDemo(args[1:], stdout, stderr)
	case "gen":
		return cmdGen(args[1:], stdout, stderr)
	case "dlq":
		return cmdDLQ(args[1:], stdout, stderr)
	case "export":
		return cmdExport(args[1:], stdout, stderr)
	case "model":
		return cmdModel(args[1:], stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "streamd", version())
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "streamd: unknown command %q\n\n%s", args[0], usage)
	return 2
}
