package stream_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/streamd/streamd/stream"
)

// TestConfigValidateNamesEveryField: one *stream.FieldError per bad field, each with its value, the
// bound, and the other fields its rule names.
func TestConfigValidateNamesEveryField(t *testing.T) {
	c := stream.Config{
		InstanceID:         "a b",
		CommitInterval:     2 * time.Minute,
		CommitRecords:      -1,
		TransactionTimeout: time.Minute,
		SessionTimeout:     time.Second,
		RebalanceTimeout:   time.Millisecond,
		ShutdownTimeout:    -time.Second,
		ReplicationFactor:  -2,
		MaxRecordBytes:     100,
		DeadLetterMaxBytes: 2 << 20,
		StateCacheBytes:    1 << 10,
		MaxOutOfOrderness:  -time.Second,
	}
	c.EnsureDefaults()
	err := c.Validate()
	if err == nil {
		t.Fatal("accepted a bad config")
	}
	got := map[string]*stream.FieldError{}
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var fe *stream.FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("%v is not a *stream.FieldError", e)
		}
		if prev, ok := got[fe.Field]; ok && fe.Field != "TransactionTimeout" {
			t.Errorf("%s reported twice: %v and %v", fe.Field, prev, fe)
		}
		got[fe.Field] = fe
	}
	for field, want := range map[string]string{
		"Brokers":            "stream: Config.Brokers: at least one broker",
		"InstanceID":         `"a b" is not 1 to 200`,
		"CommitInterval":     "2m is outside [1ms, 1m]",
		"CommitRecords":      "-1 must be at least 1",
		"TransactionTimeout": "1m must be longer than CommitInterval (2m)",
		"SessionTimeout":     "1s is outside [6s, 30m]",
		"RebalanceTimeout":   "1ms is under 1s",
		"ShutdownTimeout":    "-1s is outside [0s, 10m]",
		"ReplicationFactor":  "-2 must be -1",
		"MaxRecordBytes":     "100B is outside [1KiB, 64MiB]",
		"DeadLetterMaxBytes": "2MiB is outside [1KiB, MaxRecordBytes = 100B]",
		"StateCacheBytes":    "1KiB is under 1MiB",
		"MaxOutOfOrderness":  "-1s is negative",
	} {
		fe, ok := got[field]
		if !ok {
			t.Errorf("%s not reported in:\n%v", field, err)
			continue
		}
		if !strings.Contains(fe.Error(), want) {
			t.Errorf("%s: %q does not say %q", field, fe.Error(), want)
		}
	}
	if refs := got["DeadLetterMaxBytes"].Refs; len(refs) != 1 || refs[0] != "MaxRecordBytes" {
		t.Errorf("DeadLetterMaxBytes refs %v, want [MaxRecordBytes]", refs)
	}
}

// TestConfigDefaultsValidate: the defaults are within the bounds, and the dead-letter limit follows
// a small record limit down.
func TestConfigDefaultsValidate(t *testing.T) {
	c := stream.Config{Brokers: []string{"k:9092"}}
	c.EnsureDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.StateCacheBytes != stream.DefaultStateCacheBytes || c.DeadLetterMaxBytes != stream.DefaultDeadLetterMaxBytes {
		t.Errorf("defaults %+v", c)
	}
	small := stream.Config{Brokers: []string{"k:9092"}, MaxRecordBytes: 64 << 10}
	small.EnsureDefaults()
	if err := small.Validate(); err != nil || small.DeadLetterMaxBytes != 64<<10 {
		t.Errorf("dead letter max bytes %d with max record bytes 64KiB (%v)", small.DeadLetterMaxBytes, err)
	}
}

// TestReasonsIsACopy: changing the returned slice does not change the set.
func TestReasonsIsACopy(t *testing.T) {
	r := stream.Reasons()
	if len(r) == 0 {
		t.Fatal("no reasons")
	}
	r[0] = "mine"
	if stream.Reasons()[0] == "mine" {
		t.Error("Reasons returned the set itself")
	}
}
