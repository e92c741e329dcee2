package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/streamd/streamd/stream"
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,200}$`)

// validate checks every key against its rule and returns one KeyError per problem, in key order.
func (c *Config) validate(env func(string) (string, bool)) error {
	v := &validator{}
	v.name("app", c.App, true)
	v.name("instance_id", c.InstanceID, true)

	k := &c.Kafka
	if len(k.Brokers) == 0 {
		v.bad("kafka.brokers", "at least one broker is required (host:port)")
	}
	for i, b := range k.Brokers {
		v.hostPort(fmt.Sprintf("kafka.brokers[%d]", i), b)
	}
	c.validateRuntime(v)
	if k.ReplicationFactor > math.MaxInt16 {
		v.bad("kafka.replication_factor", "%d is above %d", k.ReplicationFactor, math.MaxInt16)
	}
	c.validateSecurity(v, env)

	s := &c.Source
	v.name("source.topic", s.Topic, true)
	if _, ok := wires[s.Format]; !ok {
		v.bad("source.format", "%q: the supported formats are %s", s.Format, strings.Join(formatNames(), ", "))
	}
	switch s.EventTime.Format {
	case "rfc3339", "epoch_ms", "epoch_s":
		if s.EventTime.Field == "" {
			v.bad("source.event_time.field", "required with format %s (or use format kafka_timestamp)", s.EventTime.Format)
		}
	case "kafka_timestamp":
		if s.EventTime.Field != "" {
			v.bad("source.event_time.field", "%q: format kafka_timestamp reads no field; remove it", s.EventTime.Field)
		}
	default:
		v.bad("source.event_time.format", "%q: use rfc3339, epoch_ms, epoch_s or kafka_timestamp", s.EventTime.Format)
	}
	if s.EventTime.MaxFuture < 0 {
		v.bad("source.event_time.max_future", "%s is negative", s.EventTime.MaxFuture)
	}
	if _, err := c.notBefore(); err != nil {
		v.bad("source.event_time.not_before", "%v", err)
	}
	if s.IdleTimeout < 0 && s.IdleTimeout != -1 {
		v.bad("source.idle_timeout", "%s is negative (write off to disable)", s.IdleTimeout)
	}
	special := map[string]string{s.Key: "source.key", s.EventID: "source.event_id", s.EventTime.Field: "source.event_time.field"}
	for _, name := range sortedKeys(s.Fields) {
		f := s.Fields[name]
		key := "source.fields." + name
		if other, ok := special[name]; ok && name != "" {
			v.bad(key, "%q is already read as %s; declare it in one place", name, other)
		}
		validateFieldSpec(v, key, f)
	}

	c.validateTables(v)
	c.validateFormat(v, env)
	c.validateDedup(v)
	c.validateWindows(v)
	c.validateModels(v)

	o := &c.Outputs
	v.name("outputs.dead_letters", o.DeadLetters, true)
	c.validateOutputFormat(v)
	v.name("outputs.clean", o.Clean, false)
	v.name("outputs.late", o.Late, false)
	topics := map[string]string{s.Topic: "source.topic"}
	roles := []struct{ key, topic string }{{"outputs.dead_letters", o.DeadLetters}, {"outputs.clean", o.Clean},
		{"outputs.late", o.Late}, {"outputs.predictions", o.Predictions}, {"outputs.training", o.Training}, {"labels.topic", c.Labels.Topic}}
	for i, w := range c.Windows {
		roles = append(roles, struct{ key, topic string }{fmt.Sprintf("windows[%d].output", i), w.Output})
	}
	for _, t := range roles {
		if t.topic == "" {
			continue
		}
		if other, ok := topics[t.topic]; ok {
			v.bad(t.key, "%q is also %s; every topic has one role", t.topic, other)
		}
		topics[t.topic] = t.key
	}
	c.validateTopics(v)

	c.Admin.validate(v, env)
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		v.bad("log.level", "%q: use debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		v.bad("log.format", "%q: use text or json", c.Log.Format)
	}
	return errors.Join(v.errs...)
}

// validateRuntime checks the runtime keys against the stream API's bounds: the file compiles into a
// stream.Config, whose Validate is the one place the bounds are written, and each of its field
// errors is reported under the field's key.
func (c *Config) validateRuntime(v *validator) {
	rc := c.streamConfig()
	rc.EnsureDefaults()
	err := rc.Validate()
	if err == nil {
		return
	}
	errs := []error{err}
	if list, ok := err.(interface{ Unwrap() []error }); ok {
		errs = list.Unwrap()
	}
	for _, err := range errs {
		var fe *stream.FieldError
		if !errors.As(err, &fe) {
			v.errs = append(v.errs, err)
			continue
		}
		key, ok := runtimeKeys[fe.Field]
		if !ok {
			continue // checked by the file's own rules (brokers, instance_id)
		}
		rule := fe.Rule
		for _, ref := range fe.Refs {
			if refKey, ok := runtimeKeys[ref]; ok {
				rule = strings.ReplaceAll(rule, ref, refKey)
			}
		}
		if fe.Value == "" {
			v.bad(key, "%s", rule)
		} else {
			v.bad(key, "%s %s", fe.Value, rule)
		}
	}
}

// notBefore parses source.event_time.not_before: an RFC 3339 time, a date, or "none".
func (c *Config) notBefore() (time.Time, error) {
	s := c.Source.EventTime.NotBefore
	if s == "none" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q: write an RFC 3339 time (2000-01-01T00:00:00Z), a date (2000-01-01) or none", s)
}

type validator struct{ errs []error }

func (v *validator) bad(key, format string, args ...any) {
	v.errs = append(v.errs, &KeyError{Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) name(key, s string, required bool) {
	if s == "" {
		if required {
			v.bad(key, "required")
		}
		return
	}
	if !nameRE.MatchString(s) {
		v.bad(key, "%q: use 1 to 200 letters, digits, '.', '_' or '-'", s)
	}
}

func (v *validator) hostPort(key, s string) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		v.bad(key, "%q is not host:port", s)
		return
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		v.bad(key, "%q: port %q is not a number from 0 to 65535", s, port)
	}
	if strings.ContainsAny(host, " /") {
		v.bad(key, "%q: %q is not a host name", s, host)
	}
}

func (v *validator) file(key, path string) {
	if path == "" {
		return
	}
	if _, err := os.Stat(path); err != nil {
		v.bad(key, "cannot read %s: %v", path, errors.Unwrap(err))
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// validateFieldSpec checks one declared field (of the source or of a table) at key.
func validateFieldSpec(v *validator, key string, f *FieldSpec) {
	if f == nil {
		v.bad(key+".type", "required: number, string or bool")
		return
	}
	if f.AllowControlCharacters && f.Type != "string" {
		v.bad(key+".allow_control_characters", "applies to strings, not %ss", f.Type)
	}
	switch f.Type {
	case "number":
		if f.MaxLength != 0 {
			v.bad(key+".max_length", "applies to strings, not numbers")
		}
		if len(f.Values) > 0 {
			v.bad(key+".values", "applies to strings, not numbers")
		}
		if f.Min != nil && f.Max != nil && *f.Min > *f.Max {
			v.bad(key+".min", "%g is above max %g", *f.Min, *f.Max)
		}
	case "string":
		if f.Min != nil || f.Max != nil {
			v.bad(key, "min and max apply to numbers; use max_length or values for strings")
		}
		if f.MaxLength < 0 {
			v.bad(key+".max_length", "%d is negative", f.MaxLength)
		}
	case "bool":
		if f.Min != nil || f.Max != nil || f.MaxLength != 0 || len(f.Values) > 0 {
			v.bad(key, "a bool takes no min, max, max_length or values")
		}
	case "":
		v.bad(key+".type", "required: number, string or bool")
	default:
		v.bad(key+".type", "%q: use number, string or bool", f.Type)
	}
}
