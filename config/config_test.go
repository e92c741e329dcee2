package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/streamd/streamd/stream"
)

const good = `
app: fraud
instance_id: a-1
kafka:
  brokers: [127.0.0.1:9092]
source:
  topic: tx
  key: card_id
  event_id: event_id
  event_time: {field: event_time}
  fields:
    amount: {type: number, required: true, min: 0}
    channel: {type: string, values: [pos, online]}
outputs:
  clean: tx-clean
  dead_letters: tx-dlq
`

func noEnv(string) (string, bool) { return "", false }

func TestGoodConfigDefaults(t *testing.T) {
	c, err := parseWithEnv([]byte(good), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if c.Kafka.CommitInterval.D() != 100*time.Millisecond || c.Kafka.TransactionTimeout.D() != 15*time.Second {
		t.Errorf("kafka defaults: %+v", c.Kafka)
	}
	if c.Source.MaxRecordBytes != 1<<20 || c.Source.EventTime.Format != "rfc3339" || !*c.Kafka.CreateTopics {
		t.Errorf("source defaults: %+v", c.Source)
	}
	// The runtime keys take the stream API's defaults: compiling and defaulting again changes nothing.
	rc, err := c.RuntimeConfig()
	if err != nil {
		t.Fatal(err)
	}
	want := rc
	want.EnsureDefaults()
	if rc.StateCacheBytes != stream.DefaultStateCacheBytes || rc.CommitRecords != want.CommitRecords ||
		rc.DeadLetterMaxBytes != want.DeadLetterMaxBytes || rc.IdleTimeout != want.IdleTimeout || rc.ReplicationFactor != -1 {
		t.Errorf("runtime config %+v, want the stream defaults %+v", rc, want)
	}
	p, err := c.Pipeline()
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "fraud" || p.Source.Topic != "tx" || p.DeadLetterTopic != "tx-dlq" || len(p.Operators) != 1 {
		t.Errorf("pipeline: %+v", p)
	}
	if _, ok := p.Source.Format.FieldIndex("amount"); !ok {
		t.Error("amount is not a field of the compiled format")
	}
}

// TestRejectsBadConfig: every kind of mistake is refused with a message that names the key.
func TestRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		edit    func(string) string
		env     map[string]string
		wantKey string
		wantMsg string
	}{
		{"unknown key with suggestion", rep("  brokers:", "  brokrs:"), nil, "kafka.brokrs", `did you mean "brokers"`},
		{"unknown top-level key", add("colour: blue\n"), nil, "colour", "unknown key"},
		{"missing app", rep("app: fraud", ""), nil, "app", "required"},
		{"bad app name", rep("app: fraud", "app: fraud scoring"), nil, "app", "letters, digits"},
		{"no brokers", rep("  brokers: [127.0.0.1:9092]", "  brokers: []"), nil, "kafka.brokers", "at least one broker"},
		{"broker without port", rep("[127.0.0.1:9092]", "[localhost]"), nil, "kafka.brokers[0]", "host:port"},
		{"unparseable duration", add("  commit_interval: 100 millis\n", "kafka:"), nil, "kafka.commit_interval", "not a duration"},
		{"duration out of bounds", add("  commit_interval: 5m\n", "kafka:"), nil, "kafka.commit_interval", "outside [1ms, 1m]"},
		{"transaction timeout not above commit interval", add("  commit_interval: 20s\n  transaction_timeout: 10s\n", "kafka:"), nil, "kafka.transaction_timeout", "longer than kafka.commit_interval"},
		{"session timeout below broker minimum", add("  session_timeout: 1s\n", "kafka:"), nil, "kafka.session_timeout", "outside [6s"},
		{"shutdown timeout too long", add("  shutdown_timeout: 11m\n", "kafka:"), nil, "kafka.shutdown_timeout", "11m is outside [0s, 10m]"},
		{"no commit records", add("  commit_records: -1\n", "kafka:"), nil, "kafka.commit_records", "-1 must be at least 1"},
		{"replication factor below -1", add("  replication_factor: -2\n", "kafka:"), nil, "kafka.replication_factor", "-1 (the broker's default)"},
		{"replication factor past int16", add("  replication_factor: 40000\n", "kafka:"), nil, "kafka.replication_factor", "above 32767"},
		{"state cache too small", add("state: {cache_size: 64KiB}\n"), nil, "state.cache_size", "64KiB is under 1MiB"},
		{"negative standby replicas", add("state: {standby_replicas: -1}\n"), nil, "state.standby_replicas", "-1 is outside [0, 8]"},
		{"too many standby replicas", add("state: {standby_replicas: 9}\n"), nil, "state.standby_replicas", "9 is outside [0, 8]"},
		{"negative out-of-orderness", add("  max_out_of_orderness: -1s\n", "source:"), nil, "source.max_out_of_orderness", "is negative"},
		{"bad size", add("  max_record_bytes: 1 megabyte\n", "source:"), nil, "source.max_record_bytes", "not a size"},
		{"size out of bounds", add("  max_record_bytes: 1GiB\n", "source:"), nil, "source.max_record_bytes", "outside [1KiB, 64MiB]"},
		{"unknown format", add("  format: xml\n", "source:"), nil, "source.format", "avro, json, protobuf"},
		{"avro without a registry", add("  format: avro\n", "source:"), nil, "source.registry", "required with format avro"},
		{"registry with json", add("  registry: {urls: [http://r:8081]}\n", "source:"), nil, "source.registry", "format json reads no schema registry"},
		{"registry url not http", add("  format: avro\n  registry: {urls: [r:8081]}\n", "source:"), nil, "source.registry.urls[0]", "not an http:// or https:// URL"},
		{"registry version without subject", add("  format: avro\n  registry: {urls: http://r:8081, version: 2}\n", "source:"), nil, "source.registry.version", "subject"},
		{"registry password unset", add("  format: avro\n  registry: {urls: http://r:8081, username: u, password_env: NOPE}\n", "source:"), nil, "source.registry.password_env", "NOPE is not set"},
		{"registry token and user", add("  format: avro\n  registry: {urls: http://r:8081, username: u, password_env: PW, token_env: PW}\n", "source:"), map[string]string{"PW": "x"}, "source.registry.token_env", "not both"},
		{"empty path segment", add("    merchant..country: {type: string}\n", "  fields:"), nil, "source.fields.merchant..country", "empty segment"},
		{"unknown time format", rep("{field: event_time}", "{field: event_time, format: unix}"), nil, "source.event_time.format", "rfc3339, epoch_ms"},
		{"time field missing", rep("{field: event_time}", "{format: epoch_ms}"), nil, "source.event_time.field", "required"},
		{"bad not_before", rep("{field: event_time}", "{field: event_time, not_before: yesterday}"), nil, "source.event_time.not_before", "RFC 3339"},
		{"unknown field type", rep("{type: number, required: true, min: 0}", "{type: float}"), nil, "source.fields.amount.type", "number, string or bool"},
		{"min above max", rep("{type: number, required: true, min: 0}", "{type: number, min: 10, max: 1}"), nil, "source.fields.amount.min", "above max"},
		{"min on a string", rep("{type: string, values: [pos, online]}", "{type: string, min: 1}"), nil, "source.fields.channel", "apply to numbers"},
		{"wrong value type", rep("required: true", "required: sometimes"), nil, "source.fields.amount.required", "true or false"},
		{"field shadows the key", add("    card_id: {type: string}\n", "  fields:"), nil, "source.fields.card_id", "already read as source.key"},
		{"missing dead letters", rep("  dead_letters: tx-dlq", ""), nil, "outputs.dead_letters", "required"},
		{"output is the source", rep("clean: tx-clean", "clean: tx"), nil, "outputs.clean", "also source.topic"},
		{"dead letters too big", add("  dead_letter_max_bytes: 2MiB\n", "outputs:"), nil, "outputs.dead_letter_max_bytes", "2MiB is outside [1KiB, source.max_record_bytes = 1MiB]"},
		{"bad admin listen", add("admin: {listen: everywhere}\n"), nil, "admin.listen", "host:port"},
		{"bad log level", add("log: {level: loud}\n"), nil, "log.level", "debug, info, warn or error"},
		{"unknown sasl mechanism", add("  sasl: {mechanism: GSSAPI, username: u, password_env: PW}\n", "kafka:"), map[string]string{"PW": "x"}, "kafka.sasl.mechanism", "SCRAM-SHA-512"},
		{"sasl password env unset", add("  sasl: {mechanism: PLAIN, username: u, password_env: NOPE}\n", "kafka:"), nil, "kafka.sasl.password_env", "NOPE is not set"},
		{"tls file missing", add("  tls: {ca_file: /nonexistent/ca.pem}\n", "kafka:"), nil, "kafka.tls.ca_file", "cannot read"},
		{"unset env reference", rep("[127.0.0.1:9092]", "[\"${BROKERS}\"]"), nil, "kafka.brokers[0]", "BROKERS is not set"},
		{"mapping where a value belongs", rep("topic: tx", "topic: {name: tx}"), nil, "source.topic", "want a single value"},
		{"key given twice", add("app: other\n"), nil, "app", "given twice"},
		{"control characters on a number", rep("{type: number, required: true, min: 0}", "{type: number, allow_control_characters: true}"), nil, "source.fields.amount.allow_control_characters", "applies to strings"},
		{"classes on a number label", add("labels: {field: amount, classes: [a, b]}\n"), nil, "labels.classes", "name string labels"},
		{"classes repeated", add("labels: {field: channel, classes: [a, a]}\n"), nil, "labels.classes[1]", "empty or repeated"},
		{"classes and max_classes", add("labels: {field: channel, classes: [a, b], max_classes: 2}\n"), nil, "labels.max_classes", "leave it out"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
			_, err := parseWithEnv([]byte(tc.edit(good)), env)
			if err == nil {
				t.Fatal("accepted a bad config")
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.wantKey+":") && !strings.Contains(msg, tc.wantKey+" (line") {
				t.Errorf("error does not name %s:\n%s", tc.wantKey, msg)
			}
			if !strings.Contains(msg, tc.wantMsg) {
				t.Errorf("error does not say %q:\n%s", tc.wantMsg, msg)
			}
		})
	}
}

func TestAllProblemsReportedAtOnce(t *testing.T) {
	bad := rep("app: fraud", "app: 'a b'")(rep("[127.0.0.1:9092]", "[nope]")(add("log: {level: loud, format: xml}\n")(good)))
	_, err := parseWithEnv([]byte(bad), noEnv)
	if err == nil {
		t.Fatal("accepted")
	}
	for _, key := range []string{"app:", "kafka.brokers[0]:", "log.level:", "log.format:"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("missing %s in:\n%v", key, err)
		}
	}
}

func TestEnvExpansion(t *testing.T) {
	env := func(k string) (string, bool) {
		if k == "BROKERS" {
			return "k1:9092,k2:9092", true
		}
		return "", false
	}
	c, err := parseWithEnv([]byte(rep("[127.0.0.1:9092]", `"${BROKERS}"`)(rep("app: fraud", "app: ${APP:-fraud}")(good))), env)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Kafka.Brokers, []string{"k1:9092", "k2:9092"}) || c.App != "fraud" {
		t.Errorf("brokers %v app %q", c.Kafka.Brokers, c.App)
	}
}

// TestShippedConfigsAreValid keeps configs/ in step with the code.
func TestShippedConfigsAreValid(t *testing.T) {
	files, _ := filepath.Glob("../configs/*.yaml")
	n := 0
	for _, f := range files {
		if strings.Contains(f, "prometheus") {
			continue
		}
		n++
		if _, err := Load(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	if n == 0 {
		t.Fatal("no pipeline configs in configs/")
	}
}

// TestReferenceListsEveryKey keeps docs/config.md complete: every key the decoder accepts is there.
func TestReferenceListsEveryKey(t *testing.T) {
	doc, err := os.ReadFile("../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range keyPaths(reflect.TypeFor[Config](), "") {
		if !strings.Contains(string(doc), "`"+key+"`") {
			t.Errorf("docs/config.md does not list `%s`", key)
		}
	}
}

func keyPaths(t reflect.Type, prefix string) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if tag == "" {
			continue
		}
		key := join(prefix, tag)
		out = append(out, key)
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case ft.Kind() == reflect.Struct:
			out = append(out, keyPaths(ft, key)...)
		case ft.Kind() == reflect.Map && ft.Elem().Kind() == reflect.Pointer && ft.Elem().Elem().Kind() == reflect.Struct:
			out = append(out, keyPaths(ft.Elem().Elem(), key+".<name>")...)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct && ft.Elem().NumField() > 0 && ft.Elem().Field(0).Tag.Get("yaml") != "":
			out = append(out, keyPaths(ft.Elem(), key+"[]")...)
		}
	}
	return out
}

func rep(old, new string) func(string) string {
	return func(s string) string {
		if !strings.Contains(s, old) {
			panic("test edit: " + old + " not in config")
		}
		return strings.Replace(s, old, new, 1)
	}
}

// add inserts text after the line that starts with after, or at the end when after is not given.
func add(text string, after ...string) func(string) string {
	return func(s string) string {
		if len(after) == 0 {
			return s + text
		}
		i := strings.Index(s, "\n"+after[0]+"\n")
		if i < 0 {
			panic("test edit: no line " + after[0])
		}
		i += len(after[0]) + 2
		return s[:i] + text + s[i:]
	}
}

// TestNestedStringLabelsPipeline: the shipped nested-JSON, string-class pipeline validates and
// compiles (what `streamd validate` checks), and learned classes refuse merging.
func TestNestedStringLabelsPipeline(t *testing.T) {
	t.Setenv("KAFKA_BROKERS", "127.0.0.1:9092")
	c, err := Load("../configs/nested-multiclass.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Pipeline(); err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile("../configs/nested-multiclass.yaml")
	if err != nil {
		t.Fatal(err)
	}
	learned := strings.Replace(string(text), "  classes: [legit, fraud, chargeback]", "  max_classes: 3", 1)
	if _, err := parseWithEnv([]byte(learned), os.LookupEnv); err == nil || !strings.Contains(err.Error(), "models.merge_interval") {
		t.Errorf("learned classes with merging: %v, want a models.merge_interval error", err)
	}
	learned = strings.Replace(learned, "models:\n", "models:\n  merge_interval: off\n", 1)
	c, err = parseWithEnv([]byte(learned), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Pipeline(); err != nil {
		t.Fatal(err)
	}
}
