package config

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// fuzzEnv is the environment the fuzzed files expand ${...} from.
func fuzzEnv(k string) (string, bool) {
	v, ok := map[string]string{
		"KAFKA_BROKERS":        "127.0.0.1:9092",
		"STREAMD_STATE_DIR":    "/tmp/streamd-fuzz-state",
		"STREAMD_ADMIN_LISTEN": "0.0.0.0:8080",
		"STREAMD_INSTANCE_ID":  "fuzz-0",
		"ADMIN_TOKEN":          "0123456789abcdef0123456789abcdef",
		"SHORT":                "abc",
		"EMPTY":                "",
	}[k]
	return v, ok
}

// FuzzParse loads arbitrary files. Parse must never panic; it refuses a file with an *Error whose
// problems are KeyErrors naming a key (or a file that is not YAML at all), and a file it accepts
// must compile: Pipeline, RuntimeConfig and the admin options all succeed, so that what validation
// lets through never fails later at start.
func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	if b, err := os.ReadFile("../configs/fraud-pipeline.yaml"); err == nil {
		f.Add(b)
	}
	for _, s := range []string{
		good + "admin: {listen: 0.0.0.0:8080, token_env: ADMIN_TOKEN, open_endpoints: [/metrics], max_connections: 8}\n",
		good + "admin: {listen: \"${STREAMD_ADMIN_LISTEN}\", token_env: SHORT}\n",
		good + "windows: [{name: w, kind: hopping, size: 1m, advance: 10s, aggs: [count, {sum: amount}, {p99: amount}], output: w-out}]\n",
		good + "features: [{name: f, from: amount, transform: [log1p, {clip: [0, 10]}, standardize]}]\nmodels: {list: [{name: m, learner: {kind: ftrl_logistic}}]}\nlabels: {field: amount}\n",
		good + "memory: {budget: 64MiB}\nstate: {cache_size: 1e30TB}\n",
		"app: &a x\ninstance_id: *a\nkafka: {brokers: \"${EMPTY:-a:1},b:2\"}\n",
		"- not\n- a mapping\n",
		"app: [unterminated\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parseWithEnv(data, fuzzEnv)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || err.Error() == "" {
				t.Fatalf("Parse(%q) = %T %v, want a *config.Error", data, err, err)
			}
			var notYAML *yamlError
			if errors.As(err, &notYAML) {
				return
			}
			errs := []error{errors.Unwrap(err)}
			if list, ok := errors.Unwrap(err).(interface{ Unwrap() []error }); ok {
				errs = list.Unwrap()
			}
			for _, e := range errs {
				var ke *KeyError
				if !errors.As(e, &ke) || ke.Key == "" || ke.Msg == "" {
					t.Fatalf("Parse(%q): problem %q names no key", data, e)
				}
				if strings.Contains(e.Error(), "0123456789abcdef0123456789abcdef") {
					t.Fatalf("Parse(%q): problem %q contains the admin token", data, e)
				}
			}
			return
		}
		if _, err := c.Pipeline(); err != nil {
			t.Fatalf("Parse accepted %q, but Pipeline fails: %v", data, err)
		}
		if _, err := c.RuntimeConfig(); err != nil {
			t.Fatalf("Parse accepted %q, but RuntimeConfig fails: %v", data, err)
		}
		opts := c.Admin.options(fuzzEnv)
		opts.EnsureDefaults()
		if err := opts.Validate(); err != nil {
			t.Fatalf("Parse accepted %q, but the admin options are refused: %v", data, err)
		}
	})
}
