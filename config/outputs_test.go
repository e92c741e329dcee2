package config

import (
	"strings"
	"testing"

	"github.com/streamd/streamd/stream"
)

const avroOutputsWindow = "windows: [{name: w, kind: tumbling, size: 1m, aggs: [count, {sum: amount}], output: w-out}]\n"

// TestOutputsFormatAvroCompiles: outputs.format avro gives every window output an Avro encoder over
// source.registry, with a JSON source.
func TestOutputsFormatAvroCompiles(t *testing.T) {
	cfg := strings.Replace(good, "source:\n", "source:\n  registry: {urls: [\"http://127.0.0.1:1\"]}\n", 1)
	cfg = strings.Replace(cfg, "outputs:\n", "outputs:\n  format: avro\n", 1) + avroOutputsWindow
	c, err := parseWithEnv([]byte(cfg), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Pipeline()
	if err != nil {
		t.Fatal(err)
	}
	enc, ok := p.OutputEncoders["w-out"].(*stream.AvroOutput)
	if !ok || len(p.OutputEncoders) != 1 || !strings.Contains(enc.Schema(), "WindowResult") {
		t.Fatalf("encoders %v", p.OutputEncoders)
	}

	// json (the default) has none.
	c, err = parseWithEnv([]byte(good+avroOutputsWindow), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if p, err = c.Pipeline(); err != nil || p.OutputEncoders != nil {
		t.Fatalf("json outputs: %v, %v", p.OutputEncoders, err)
	}
}

func TestOutputsFormatErrors(t *testing.T) {
	for _, tc := range []struct{ name, cfg, want string }{
		{"unknown format", strings.Replace(good, "outputs:\n", "outputs:\n  format: xml\n", 1), `outputs.format: "xml" is not one of json, avro, protobuf`},
		{"avro without a registry", strings.Replace(good, "outputs:\n", "outputs:\n  format: avro\n", 1), "source.registry: required with outputs.format avro"},
	} {
		_, err := parseWithEnv([]byte(tc.cfg), noEnv)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}
