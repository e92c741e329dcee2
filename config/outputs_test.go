package config

import (
	"reflect"
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

// TestTopicSettingsCompile: outputs.topic_defaults apply to every output topic, outputs.topics
// override them per topic (configs merged), and the typed keys become the topic configs.
func TestTopicSettingsCompile(t *testing.T) {
	cfg := strings.Replace(good, "outputs:\n", `outputs:
  topic_defaults: {retention: 30d, replication_factor: 3, configs: {min.insync.replicas: "2"}}
  topics:
    tx-clean: {timestamp: event, retention: forever, cleanup_policy: delete, configs: {segment.ms: "3600000"}}
`, 1)
	c, err := parseWithEnv([]byte(cfg), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Pipeline()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]stream.TopicSettings{
		"tx-dlq": {ReplicationFactor: 3, Configs: map[string]string{"retention.ms": "2592000000", "min.insync.replicas": "2"}},
		"tx-clean": {EventTime: true, ReplicationFactor: 3, Configs: map[string]string{"retention.ms": "-1", "cleanup.policy": "delete",
			"min.insync.replicas": "2", "segment.ms": "3600000"}},
	}
	if !reflect.DeepEqual(p.Topics, want) {
		t.Errorf("topic settings\n got %+v\nwant %+v", p.Topics, want)
	}

	// Without the keys every output gets processing-time timestamps and the broker's defaults.
	c, err = parseWithEnv([]byte(good), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if p, err = c.Pipeline(); err != nil {
		t.Fatal(err)
	}
	for topic, s := range p.Topics {
		if s.EventTime || s.Configs != nil || s.ReplicationFactor != 0 {
			t.Errorf("%s: %+v without outputs.topic_defaults", topic, s)
		}
	}
}

func TestTopicSettingsErrors(t *testing.T) {
	with := func(block string) string { return strings.Replace(good, "outputs:\n", "outputs:\n"+block, 1) }
	for _, tc := range []struct{ name, cfg, want string }{
		{"timestamp", with("  topic_defaults: {timestamp: wall}\n"), `outputs.topic_defaults.timestamp: "wall" is not one of processing, event`},
		{"retention", with("  topic_defaults: {retention: 0s}\n"), "outputs.topic_defaults.retention"},
		{"cleanup", with("  topics: {tx-clean: {cleanup_policy: keep}}\n"), `outputs.topics.tx-clean.cleanup_policy: "keep" is not one of`},
		{"replication", with("  topics: {tx-clean: {replication_factor: -2}}\n"), "outputs.topics.tx-clean.replication_factor: -2"},
		{"typed config in configs", with("  topic_defaults: {configs: {retention.ms: \"1\"}}\n"), "outputs.topic_defaults.configs: retention.ms: set it with outputs.topic_defaults.retention"},
		{"training without models", with("  training: tx-train\n"), "outputs.training: training rows are the rows models saw"},
		{"training is the clean topic", with("  training: tx-clean\n"), `outputs.training: "tx-clean" is also outputs.clean`},
		{"unknown topic", with("  topics: {tx-cleen: {timestamp: event}}\n"), `outputs.topics.tx-cleen: "tx-cleen" is not a topic the pipeline writes (tx-dlq, tx-clean)`},
	} {
		_, err := parseWithEnv([]byte(tc.cfg), noEnv)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}
