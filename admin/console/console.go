package console

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamd/streamd/model"
	"github.com/streamd/streamd/stream"
)

// ModelViewer is one model operator's registry (*model.Registry implements it).
type ModelViewer interface {
	View() model.View
}

// DeadLetterSource gives the newest committed dead letters (*stream.Runtime implements it).
type DeadLetterSource interface {
	RecentDeadLetters() []stream.DeadLetterInfo
}

// Options configure a Console. New fills zero fields with defaults; Validate names every bad one.
type Options struct {
	// Gatherer is the registry /metrics serves: the rates, dead-letter counts and restore figures
	// come from it.
	Gatherer prometheus.Gatherer
	// Graph is the pipeline's shape (GraphOf).
	Graph Graph
	// Models are the pipeline's model operators, in pipeline order.
	Models []ModelViewer
	// DeadLetters, when set, lists the newest dead letters; without it the console shows counts only.
	DeadLetters DeadLetterSource
	// DeadLetterContents shows the key and value of the recent dead letters. Off by default: they
	// are the rejected records' data.
	DeadLetterContents bool
	// SampleInterval is how often Run samples the sources. Default DefaultSampleInterval.
	SampleInterval time.Duration
	// History is how many samples of model quality are kept. Default DefaultHistory.
	History int
}

// Defaults and bounds of Options.
const (
	DefaultSampleInterval = 2 * time.Second
	// DefaultHistory at the default interval is an hour of quality history, in about 100 KiB per
	// model and metric.
	DefaultHistory = 1800

	MinSampleInterval = 100 * time.Millisecond
	MaxSampleInterval = time.Minute
	MinHistory        = 10
	MaxHistory        = 100_000
	// maxEvents bounds the version changes, promotions and drift detections kept for the chart.
	maxEvents = 500
)

// ErrBadOptions is matched by Validate's errors.
var ErrBadOptions = errors.New("console: bad options")

// EnsureDefaults fills the zero fields with their defaults.
func (o *Options) EnsureDefaults() {
	if o.SampleInterval == 0 {
		o.SampleInterval = DefaultSampleInterval
	}
	if o.History == 0 {
		o.History = DefaultHistory
	}
}

// Validate reports every bad field at once. Call EnsureDefaults first.
func (o *Options) Validate() error {
	var errs []error
	if o.Gatherer == nil {
		errs = append(errs, fmt.Errorf("%w: Gatherer is required", ErrBadOptions))
	}
	if o.SampleInterval < MinSampleInterval || o.SampleInterval > MaxSampleInterval {
		errs = append(errs, fmt.Errorf("%w: SampleInterval %s is outside [%s, %s]", ErrBadOptions, o.SampleInterval, MinSampleInterval, MaxSampleInterval))
	}
	if o.History < MinHistory || o.History > MaxHistory {
		errs = append(errs, fmt.Errorf("%w: History %d is outside [%d, %d]", ErrBadOptions, o.History, MinHistory, MaxHistory))
	}
	return errors.Join(errs...)
}

// Console samples the pipeline's figures and serves the console. Register it on an admin server
// before the server starts, and Run it for as long as the server serves.
type Console struct {
	opts Options

	mu      sync.Mutex // guards what follows: Run writes, the handlers read
	sampled time.Time
	rates   rates
	graph   Graph
	quality quality
	restore restoreProgress
}

// New builds a console from opts (EnsureDefaults, then Validate) and takes its first sample, so
// that the endpoints answer with figures from the start.
func New(opts Options) (*Console, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	c := &Console{opts: opts, quality: newQuality(opts.History), restore: restoreProgress{initial: map[storePartition]float64{}}}
	c.graph = cloneGraph(opts.Graph)
	c.sample(time.Now())
	return c, nil
}

// Run samples every SampleInterval until ctx is done, then returns ctx's error.
func (c *Console) Run(ctx context.Context) error {
	tick := time.NewTicker(c.opts.SampleInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case now := <-tick.C:
			c.sample(now)
		}
	}
}

// sample reads every source once and updates the rates, the graph, the quality history and the
// restore progress. Gathering and the model views run outside the lock.
func (c *Console) sample(now time.Time) {
	counters, err := gather(c.opts.Gatherer)
	views := make([]model.View, len(c.opts.Models))
	for i, m := range c.opts.Models {
		views[i] = m.View()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil { // a failed gather keeps the last figures rather than showing zeros
		c.rates.update(counters, now.Sub(c.sampled))
		c.rates.apply(&c.graph)
		c.restore.update(counters)
	}
	c.quality.add(now, views)
	c.sampled = now
}

func cloneGraph(g Graph) Graph {
	out := Graph{App: g.App, Nodes: append([]Node{}, g.Nodes...), Edges: append([]Edge{}, g.Edges...)}
	for i := range out.Nodes {
		out.Nodes[i].Stores = append([]string{}, out.Nodes[i].Stores...)
	}
	return out
}
