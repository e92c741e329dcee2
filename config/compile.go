package config

import (
	"io"
	"log/slog"
	"math"
	"strings"

	"github.com/streamd/streamd/stream"
)

// Pipeline compiles the config into the stream API: the same Pipeline a Go user would build by hand.
func (c *Config) Pipeline() (*stream.Pipeline, error) {
	s := &c.Source
	tf, _ := stream.ParseTimeFormat(s.EventTime.Format)
	nb, err := c.notBefore()
	if err != nil {
		return nil, err
	}
	schema := stream.Schema{
		KeyField: s.Key,
		IDField:  s.EventID,
		Time: stream.EventTimeSpec{
			Field:     s.EventTime.Field,
			Format:    tf,
			MaxFuture: s.EventTime.MaxFuture.D(),
			NotBefore: nb,
		},
		MaxRecordBytes: int(s.MaxRecordBytes),
		Rekey:          s.Rekey,
		Fields:         fieldSpecs(s.Fields),
	}
	f, err := c.format(s.Format, schema)
	if err != nil {
		return nil, err
	}
	if len(c.Tables) > 0 {
		// The tables' fields join the source's: every operator compiled below finds them by name.
		tables, err := c.tables()
		if err != nil {
			return nil, err
		}
		ef := &stream.EnrichedFormat{Source: f, Tables: tables}
		if err := ef.Init(); err != nil {
			return nil, err
		}
		f = ef
	}
	p := &stream.Pipeline{
		Name:            c.App,
		Source:          stream.Source{Topic: s.Topic, Format: f},
		DeadLetterTopic: c.Outputs.DeadLetters,
		LateTopic:       c.Outputs.Late,
	}
	lf, err := c.labelsFormat()
	if err != nil {
		return nil, err
	}
	if lf != nil {
		p.Labels = &stream.Source{Topic: c.Labels.Topic, Format: lf}
	}
	if d := c.dedupOperator(); d != nil {
		p.Operators = append(p.Operators, d) // first: no other operator sees a duplicate
	}
	if c.Outputs.Clean != "" {
		p.Operators = append(p.Operators, &stream.Forward{OpName: "clean", Topic: c.Outputs.Clean})
	}
	wops, err := c.windowOperators(f)
	if err != nil {
		return nil, err
	}
	p.Operators = append(p.Operators, wops...)
	mops, features, err := c.modelOperators(f, lf)
	if err != nil {
		return nil, err
	}
	p.Operators = append(p.Operators, mops...)
	p.Features = features
	if p.OutputEncoders, err = c.outputEncoders(); err != nil {
		return nil, err
	}
	p.Topics = c.topicSettings()
	return p, p.Validate()
}

// fieldSpecs compiles declared fields (source.fields, a table's fields), sorted by name.
func fieldSpecs(fields map[string]*FieldSpec) []stream.FieldSpec {
	var out []stream.FieldSpec
	for _, name := range sortedKeys(fields) {
		fs := fields[name]
		spec := stream.FieldSpec{
			Name:      name,
			Required:  fs.Required,
			Min:       fs.Min,
			Max:       fs.Max,
			MaxLength: int(fs.MaxLength),
			Values:    fs.Values,

			AllowControlCharacters: fs.AllowControlCharacters,
		}
		switch fs.Type {
		case "number":
			spec.Type = stream.Number
		case "string":
			spec.Type = stream.String
		case "bool":
			spec.Type = stream.Bool
		}
		out = append(out, spec)
	}
	return out
}

// RuntimeConfig returns the runtime settings; the caller adds its logger and metrics registerer.
func (c *Config) RuntimeConfig() (stream.Config, error) {
	rc := c.streamConfig()
	opts, err := c.ClientOpts()
	if err != nil {
		return rc, err
	}
	rc.ClientOpts = opts
	rc.AuthAdvice = c.authAdvice
	return rc, nil
}

// streamConfig compiles the file's runtime keys into the stream API's Config, which holds their
// defaults (EnsureDefaults) and bounds (Validate); runtimeKeys names the key of each field.
func (c *Config) streamConfig() stream.Config {
	k := &c.Kafka
	return stream.Config{
		Brokers:              k.Brokers,
		InstanceID:           c.InstanceID,
		CommitInterval:       k.CommitInterval.D(),
		CommitRecords:        k.CommitRecords,
		TransactionTimeout:   k.TransactionTimeout.D(),
		SessionTimeout:       k.SessionTimeout.D(),
		ShutdownTimeout:      k.ShutdownTimeout.D(),
		CreateTopics:         k.CreateTopics != nil && *k.CreateTopics,
		LeaveGroupOnShutdown: k.LeaveGroupOnExit,
		// validate reports a count past int16; it must not wrap into another error here.
		ReplicationFactor:  int16(min(k.ReplicationFactor, math.MaxInt16)),
		MaxRecordBytes:     int(c.Source.MaxRecordBytes),
		DeadLetterMaxBytes: int(c.Outputs.DeadLetterMaxBytes),
		AuthRetryTimeout:   k.AuthRetryTimeout.D(),
		StateDir:           c.State.Dir,
		MemoryBudget:       int64(c.Memory.Budget),
		StateCacheBytes:    int64(c.State.CacheSize),
		StandbyReplicas:    c.State.StandbyReplicas,
		MaxOutOfOrderness:  c.Source.MaxOutOfOrderness.D(),
		IdleTimeout:        c.Source.IdleTimeout.D(),
	}
}

// runtimeKeys maps the fields of stream.Config that streamConfig sets to the keys of the file, so
// that the stream API's errors (*stream.FieldError) name the key. Brokers and InstanceID are
// missing on purpose: validate checks them by the file's rules (each broker, the environment
// variable), and fields without a key keep their defaults, which are valid.
var runtimeKeys = map[string]string{
	"CommitInterval":     "kafka.commit_interval",
	"CommitRecords":      "kafka.commit_records",
	"TransactionTimeout": "kafka.transaction_timeout",
	"SessionTimeout":     "kafka.session_timeout",
	"ShutdownTimeout":    "kafka.shutdown_timeout",
	"ReplicationFactor":  "kafka.replication_factor",
	"MaxRecordBytes":     "source.max_record_bytes",
	"DeadLetterMaxBytes": "outputs.dead_letter_max_bytes",
	"MemoryBudget":       "memory.budget",
	"StateCacheBytes":    "state.cache_size",
	"StandbyReplicas":    "state.standby_replicas",
	"MaxOutOfOrderness":  "source.max_out_of_orderness",
	"IdleTimeout":        "source.idle_timeout",
	"AuthRetryTimeout":   "kafka.auth_retry_timeout",
}

// NewLogger builds the slog logger the log section asks for, writing to w.
func (c *Config) NewLogger(w io.Writer) *slog.Logger {
	return NewLogger(w, c.Log.Level, c.Log.Format)
}

// NewLogger builds a text or JSON slog logger at a level given by name (debug, info, warn, error).
func NewLogger(w io.Writer, level, format string) *slog.Logger {
	var l slog.Level
	switch strings.ToLower(level) {
	case "debug":
		l = slog.LevelDebug
	case "warn":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	default:
		l = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: l}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
