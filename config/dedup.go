package config

import "github.com/streamd/streamd/stream"

// Dedup is source.dedup: drop the events whose event id was already accepted within TTL of event
// time (stream.Dedup says how, docs/config.md what a user sees).
type Dedup struct {
	TTL        Duration `yaml:"ttl"`
	DeadLetter bool     `yaml:"dead_letter"`
}

func (c *Config) validateDedup(v *validator) {
	d := c.Source.Dedup
	if d == nil {
		return
	}
	if c.Source.EventID == "" {
		v.bad("source.dedup", "needs source.event_id: without it every record's id is its own position, and no two are alike")
	}
	if d.TTL <= 0 {
		v.bad("source.dedup.ttl", "required: how long in event time an accepted id is remembered (24h, 7d)")
	} else if d.TTL.D().Milliseconds() < 1 {
		v.bad("source.dedup.ttl", "%s is under 1ms", d.TTL)
	}
}

// dedupOperator is the pipeline's first operator when source.dedup is set.
func (c *Config) dedupOperator() *stream.Dedup {
	d := c.Source.Dedup
	if d == nil {
		return nil
	}
	return &stream.Dedup{TTL: d.TTL.D(), DeadLetter: d.DeadLetter}
}
