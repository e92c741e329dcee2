package config

import (
	"time"

	"github.com/streamd/streamd/admin/console"
	"github.com/streamd/streamd/internal/units"
)

// AdminConsole is the web console the admin server serves at / (admin/console). Its defaults and
// bounds are console.Options'.
type AdminConsole struct {
	// Enabled serves the console; default true.
	Enabled *bool `yaml:"enabled"`
	// DeadLetterContents shows the key and value of recent dead letters in the console; default
	// false, as they are the rejected records' data.
	DeadLetterContents bool `yaml:"dead_letter_contents"`
	// SampleInterval is how often the console samples rates and model quality.
	SampleInterval Duration `yaml:"sample_interval"`
	// History is how many quality samples it keeps.
	History int `yaml:"history"`
}

func (c *AdminConsole) ensureDefaults() {
	if c.Enabled == nil {
		yes := true
		c.Enabled = &yes
	}
	var d console.Options
	d.EnsureDefaults()
	setDuration(&c.SampleInterval, d.SampleInterval)
	if c.History == 0 {
		c.History = d.History
	}
}

func (c *AdminConsole) validate(v *validator) {
	if d := c.SampleInterval.D(); d < console.MinSampleInterval || d > console.MaxSampleInterval {
		f := units.FormatDuration
		v.bad("admin.console.sample_interval", "%s is outside [%s, %s]", f(d), f(console.MinSampleInterval), f(console.MaxSampleInterval))
	}
	if c.History < console.MinHistory || c.History > console.MaxHistory {
		v.bad("admin.console.history", "%d is outside [%d, %d] samples", c.History, console.MinHistory, console.MaxHistory)
	}
}

// ConsoleOptions compiles admin.console into the console's options; the caller adds its sources
// (the Gatherer, the graph, the models, the dead letters).
func (c *Config) ConsoleOptions() console.Options {
	a := &c.Admin.Console
	return console.Options{DeadLetterContents: a.DeadLetterContents, SampleInterval: time.Duration(a.SampleInterval), History: a.History}
}
