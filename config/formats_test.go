package config

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/stream"
)

// TestPipelineCompilesFormatThroughRegistry: source.format is looked up in wires, the compiled
// format decodes and validates a record, and the labels topic gets its own format.
func TestPipelineCompilesFormatThroughRegistry(t *testing.T) {
	c, err := parseWithEnv([]byte(good), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Pipeline()
	if err != nil {
		t.Fatal(err)
	}
	sf, ok := p.Source.Format.(*stream.SchemaFormat)
	if !ok {
		t.Fatalf("source format is %T, want *stream.SchemaFormat", p.Source.Format)
	}
	if _, ok := sf.Wire.(*stream.JSONWire); !ok {
		t.Errorf("source.format json compiled to wire %T", sf.Wire)
	}
	if got := strings.Join(p.Source.Format.FieldNames(), ","); got != "amount,channel" {
		t.Errorf("fields %s, want amount,channel", got)
	}
	dec := p.Source.Format.NewDecoder()
	var ev stream.Event
	rec := &kgo.Record{Value: []byte(`{"card_id":"c","event_id":"e","event_time":"2026-01-01T00:00:00Z","amount":3,"channel":"atm"}`)}
	r, ok := stream.AsRejection(dec.Decode(rec, &ev))
	if !ok || r.Reason != stream.ReasonOutOfRange || r.Field != "channel" {
		t.Errorf("a value outside source.fields.channel.values: %v", r)
	}

	lf, err := (&Config{Labels: Labels{Topic: "labels", Key: "card_id", EventID: "event_id", Field: "fraud"}}).labelsFormat()
	if err != nil {
		t.Fatal(err)
	}
	if names := lf.FieldNames(); len(names) != 1 || names[0] != "fraud" {
		t.Errorf("labels fields %v", names)
	}
	if lf, err := (&Config{}).labelsFormat(); lf != nil || err != nil {
		t.Errorf("no labels topic: %v, %v", lf, err)
	}
}

// TestFormatErrors: an unknown name lists the known ones; a schema the stream package refuses is
// refused here too.
func TestFormatErrors(t *testing.T) {
	var c Config
	_, err := c.format("xml", stream.Schema{Time: stream.EventTimeSpec{Format: stream.TimeKafka}})
	if err == nil || !strings.Contains(err.Error(), `"xml" is not one of avro, json, protobuf`) {
		t.Errorf("unknown format: %v", err)
	}
	_, err = c.format("json", stream.Schema{Fields: []stream.FieldSpec{{Name: "x", Type: stream.Number}}})
	if !errors.Is(err, stream.ErrBadFormat) {
		t.Errorf("schema without an event time format: %v, want ErrBadFormat", err)
	}
}

// TestRegistryFormatsCompile: avro and protobuf compile to their wires over one registry client
// with the block's pins.
func TestRegistryFormatsCompile(t *testing.T) {
	for _, format := range []string{"avro", "protobuf"} {
		cfg := strings.Replace(good, "source:\n", "source:\n  format: "+format+"\n  registry: {urls: [\"http://127.0.0.1:1\"], subject: tx-value, version: 3, timeout: 2s}\n", 1)
		c, err := parseWithEnv([]byte(cfg), noEnv)
		if err != nil {
			t.Fatal(err)
		}
		p, err := c.Pipeline()
		if err != nil {
			t.Fatal(err)
		}
		var reg *stream.Registry
		switch w := p.Source.Format.(*stream.SchemaFormat).Wire.(type) {
		case *stream.AvroWire:
			reg = w.Registry
		case *stream.ProtobufWire:
			reg = w.Registry
		default:
			t.Fatalf("%s compiled to %T", format, w)
		}
		if reg.Client == nil || reg.Subject != "tx-value" || reg.Version != 3 || reg.Timeout != 2*time.Second {
			t.Errorf("%s: registry %+v", format, reg)
		}
	}
}
