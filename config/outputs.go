package config

import (
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/streamd/streamd/model"
	"github.com/streamd/streamd/stream"
	"github.com/streamd/streamd/window"
)

// outputRegistryFormats are the values of outputs.format that register a schema; json (the
// default, also spelled as the empty string) registers none.
var outputRegistryFormats = map[string]bool{"avro": true, "protobuf": true}

// validateOutputFormat checks outputs.format; the registry block it needs is checked with the
// source's (validateFormat).
func (c *Config) validateOutputFormat(v *validator) {
	switch c.Outputs.Format {
	case "", "json", "avro", "protobuf":
	default:
		v.bad("outputs.format", "%q is not one of json, avro, protobuf", c.Outputs.Format)
	}
}

// outputEncoders builds, with outputs.format avro or protobuf, the encoders of the predictions topic and of
// every window's output topic, over source.registry. Their schemas are registered when the
// runtime starts (stream.Runtime.Run), not here, so that validating a config needs no registry.
func (c *Config) outputEncoders() (map[string]stream.OutputEncoder, error) {
	if !outputRegistryFormats[c.Outputs.Format] {
		return nil, nil
	}
	reg, err := c.registry()
	if err != nil {
		return nil, err
	}
	encs := map[string]stream.OutputEncoder{}
	add := func(topic, avroSchema, protoSchema string) error {
		if topic == "" || encs[topic] != nil {
			return nil
		}
		var enc stream.OutputEncoder
		var err error
		if c.Outputs.Format == "protobuf" {
			enc, err = stream.NewProtobufOutput(reg, protoSchema)
		} else {
			enc, err = stream.NewAvroOutput(reg, avroSchema)
		}
		if err != nil {
			return err
		}
		encs[topic] = enc
		return nil
	}
	if len(c.Models.List) > 0 {
		if err := add(c.Outputs.Predictions, model.PredictionAvroSchema, model.PredictionProtoSchema); err != nil {
			return nil, err
		}
	}
	for _, w := range c.Windows {
		if err := add(w.Output, window.ResultAvroSchema, window.ResultProtoSchema); err != nil {
			return nil, err
		}
	}
	return encs, nil
}

// outputTopicNames lists the topics the pipeline writes, each once: the ones outputs.topics may
// name.
func (c *Config) outputTopicNames() []string {
	o := &c.Outputs
	var out []string
	seen := map[string]bool{}
	add := func(t string) {
		if t != "" && !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	add(o.DeadLetters)
	add(o.Late)
	add(o.Clean)
	add(o.Predictions)
	add(o.Training)
	for _, w := range c.Windows {
		add(w.Output)
	}
	return out
}

// topicConfigKeys are the topic configs that TopicConfig has a key of its own for: configs may
// not set them too, so that one setting is not written in two places that could disagree.
var topicConfigKeys = map[string]string{"retention.ms": "retention", "cleanup.policy": "cleanup_policy"}

// validateTopics checks outputs.topic_defaults and outputs.topics.
func (c *Config) validateTopics(v *validator) {
	check := func(key string, tc *TopicConfig) {
		switch tc.Timestamp {
		case "", "processing", "event":
		default:
			v.bad(key+".timestamp", "%q is not one of processing, event", tc.Timestamp)
		}
		switch tc.CleanupPolicy {
		case "", "delete", "compact", "compact,delete", "delete,compact":
		default:
			v.bad(key+".cleanup_policy", "%q is not one of delete, compact, compact,delete", tc.CleanupPolicy)
		}
		if rf := tc.ReplicationFactor; rf < -1 || rf > math.MaxInt16 {
			v.bad(key+".replication_factor", "%d: use -1 (the broker's default) or 1 to %d", rf, math.MaxInt16)
		}
		for _, k := range sortedKeys(tc.Configs) {
			if own, ok := topicConfigKeys[k]; ok {
				v.bad(key+".configs", "%s: set it with %s.%s", k, key, own)
			} else if k == "" {
				v.bad(key+".configs", "a config has no name")
			}
		}
	}
	check("outputs.topic_defaults", &c.Outputs.TopicDefaults)
	outputs := c.outputTopicNames()
	for _, name := range sortedKeys(c.Outputs.Topics) {
		key := "outputs.topics." + name
		if !slices.Contains(outputs, name) {
			v.bad(key, "%q is not a topic the pipeline writes (%s)", name, strings.Join(outputs, ", "))
			continue
		}
		if tc := c.Outputs.Topics[name]; tc != nil {
			check(key, tc)
		}
	}
}

// topicSettings compiles outputs.topic_defaults and outputs.topics into the runtime's settings of
// every output topic: a topic's own keys over the defaults, then the broker's defaults.
func (c *Config) topicSettings() map[string]stream.TopicSettings {
	out := map[string]stream.TopicSettings{}
	for _, name := range c.outputTopicNames() {
		tc := c.Outputs.TopicDefaults
		if own := c.Outputs.Topics[name]; own != nil {
			tc = overTopicConfig(tc, *own)
		}
		s := stream.TopicSettings{EventTime: tc.Timestamp == "event", ReplicationFactor: int16(tc.ReplicationFactor)}
		if len(tc.Configs) > 0 || tc.Retention != 0 || tc.CleanupPolicy != "" {
			s.Configs = map[string]string{}
		}
		maps.Copy(s.Configs, tc.Configs)
		if tc.Retention != 0 {
			ms := int64(-1)
			if tc.Retention > 0 {
				ms = time.Duration(tc.Retention).Milliseconds()
			}
			s.Configs["retention.ms"] = strconv.FormatInt(ms, 10)
		}
		if tc.CleanupPolicy != "" {
			s.Configs["cleanup.policy"] = tc.CleanupPolicy
		}
		out[name] = s
	}
	return out
}

// overTopicConfig returns base with the keys own sets; configs merge, own's winning.
func overTopicConfig(base, own TopicConfig) TopicConfig {
	if own.Timestamp != "" {
		base.Timestamp = own.Timestamp
	}
	if own.Retention != 0 {
		base.Retention = own.Retention
	}
	if own.CleanupPolicy != "" {
		base.CleanupPolicy = own.CleanupPolicy
	}
	if own.ReplicationFactor != 0 {
		base.ReplicationFactor = own.ReplicationFactor
	}
	if len(own.Configs) > 0 {
		m := maps.Clone(base.Configs)
		if m == nil {
			m = map[string]string{}
		}
		maps.Copy(m, own.Configs)
		base.Configs = m
	}
	return base
}
