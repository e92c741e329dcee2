package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/streamd/streamd/admin"
	"github.com/streamd/streamd/admin/console"
	"github.com/streamd/streamd/config"
	"github.com/streamd/streamd/model"
	"github.com/streamd/streamd/stream"
)

func cmdRun(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("run", "-config FILE", "Runs a pipeline as a daemon until SIGTERM, SIGINT or SIGHUP, which commit the open transaction first.", stderr)
	path := fs.String("config", "", "pipeline config file (required)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" {
		fmt.Fprintln(stderr, "streamd run: -config FILE is required")
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", *path, err)
		return 1
	}
	log := cfg.NewLogger(stderr)
	ctx, stop := signalContext(log)
	defer stop()
	d, err := startDaemon(ctx, cfg, log, cfg.Admin.Listen)
	if err != nil {
		log.Error("start failed", "err", err)
		return 1
	}
	if err := d.wait(); err != nil {
		return 1
	}
	return 0
}

// signalContext is cancelled by the first SIGINT or SIGTERM, which starts a clean shutdown; a second
// signal exits at once (the broker aborts the open transaction after its timeout).
func signalContext(log *slog.Logger) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP) // SIGHUP: the terminal went away; stop as cleanly
	go func() {
		s, ok := <-sig
		if !ok {
			return
		}
		log.Info("signal received: finishing the open transaction and stopping (send again to exit at once)", "signal", s.String())
		cancel()
		if s, ok := <-sig; ok {
			log.Warn("second signal: exiting now", "signal", s.String())
			os.Exit(1)
		}
	}()
	return ctx, func() {
		signal.Stop(sig)
		close(sig)
		cancel()
	}
}

// daemon is a running pipeline with its admin server.
type daemon struct {
	rt    *stream.Runtime
	adm   *admin.Server
	reg   *prometheus.Registry
	log   *slog.Logger
	done  chan error
	start time.Time
	// stopConsole stops the console's sampler and waits for it; a no-op without a console.
	stopConsole func()
}

// newRegistry returns a registry with the Go runtime, process and build-info collectors.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "streamd_build_info",
		Help:        "Always 1; the labels say which streamd build runs.",
		ConstLabels: prometheus.Labels{"version": version()},
	})
	info.Set(1)
	reg.MustRegister(info)
	return reg
}

// startDaemon builds the pipeline from cfg, starts the admin server on listen (with the rest of
// cfg's admin settings) and runs the pipeline until ctx is cancelled.
func startDaemon(ctx context.Context, cfg *config.Config, log *slog.Logger, listen string) (*daemon, error) {
	p, err := cfg.Pipeline()
	if err != nil {
		return nil, err
	}
	rc, err := cfg.RuntimeConfig()
	if err != nil {
		return nil, err
	}
	reg := newRegistry()
	rc.Logger, rc.Registerer = log, reg
	rt, err := stream.NewRuntime(p, rc)
	if err != nil {
		return nil, err
	}
	opts := cfg.AdminOptions()
	opts.Listen, opts.Gatherer, opts.Registerer, opts.Ready, opts.Logger = listen, reg, reg, rt.Readiness, log
	adm := admin.New(opts)
	in := inspection(rt, p)
	if !*cfg.Admin.ExposeState {
		in.State = nil
	}
	if !*cfg.Admin.ExposeFeatures {
		in.Features = nil
	}
	adm.HandleInspection(in)
	if cfg.Admin.Pprof {
		handlePprof(adm)
	}
	var con *console.Console
	if *cfg.Admin.Console.Enabled {
		co := cfg.ConsoleOptions()
		co.Gatherer, co.Graph, co.Models, co.DeadLetters = reg, console.GraphOf(p), consoleModels(in), rt
		if con, err = console.New(co); err != nil {
			return nil, err
		}
		con.Register(adm)
	}
	if err := adm.Start(); err != nil {
		return nil, fmt.Errorf("admin server on %s: %w", listen, err)
	}
	log.Info("admin server listening", "addr", adm.Addr(), "tls", adm.TLS(), "console", con != nil)
	d := &daemon{rt: rt, adm: adm, reg: reg, log: log, done: make(chan error, 1), start: time.Now(), stopConsole: func() {}}
	if con != nil {
		cctx, cancel := context.WithCancel(context.Background())
		stopped := make(chan struct{})
		go func() { defer close(stopped); _ = con.Run(cctx) }()
		d.stopConsole = func() { cancel(); <-stopped }
	}
	go func() { d.done <- rt.Run(ctx) }()
	return d, nil
}

// consoleModels are the model operators' registries, as the console takes them.
func consoleModels(in admin.Inspection) []console.ModelViewer {
	var out []console.ModelViewer
	for _, m := range in.Models {
		out = append(out, m)
	}
	return out
}

// consoleURL is where a browser finds the admin server's console.
func (d *daemon) consoleURL() string {
	scheme := "http"
	if d.adm.TLS() {
		scheme = "https"
	}
	return scheme + "://" + d.adm.Addr() + "/"
}

// wait waits for the pipeline to stop, then closes the admin server.
func (d *daemon) wait() error {
	err := <-d.done
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = d.adm.Close(ctx)
	d.stopConsole()
	if err != nil && !errors.Is(err, context.Canceled) {
		d.log.Error("pipeline failed", "err", err)
		return err
	}
	return nil
}

// inspection gathers the sources of the admin API's inspection endpoints: the runtime (watermarks,
// key state) and the pipeline's model operators.
func inspection(rt *stream.Runtime, p *stream.Pipeline) admin.Inspection {
	in := admin.Inspection{Watermarks: rt, State: rt, Features: rt}
	for _, op := range p.Operators {
		if m, ok := op.(*model.Operator); ok {
			in.Models = append(in.Models, m.Registry())
			if m.VersionsTopic() != "" {
				in.Rollbacks = append(in.Rollbacks, m)
			}
		}
	}
	return in
}
