package config

import (
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
