package config

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bufbuild/protocompile"
	"github.com/hamba/avro/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/streamd/streamd/stream"
	"github.com/streamd/streamd/test/kafkatest"
)

// TestOutputsAvroEqualJSON runs one input through the same pipeline twice, with outputs.format json
// and avro, and checks that every prediction and window result decoded from Avro (with the schema
// srfake holds for the id in the record, as a consumer's deserializer would) equals its JSON twin.
func TestOutputsAvroEqualJSON(t *testing.T) { testOutputsEqualJSON(t, "avro") }

// TestOutputsProtobufEqualJSON is TestOutputsAvroEqualJSON with outputs.format protobuf, decoded
// with dynamicpb over the registry's .proto.
func TestOutputsProtobufEqualJSON(t *testing.T) { testOutputsEqualJSON(t, "protobuf") }

func testOutputsEqualJSON(t *testing.T, outFormat string) {
	b := kafkatest.Start(t)
	src := b.Topic(t, "tx", 1)
	reg := srfake.New()
	t.Cleanup(reg.Close)

	cl := b.Client(t)
	base := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC).UnixMilli()
	var recs []*kgo.Record
	for i := 0; i < 300; i++ {
		v := fmt.Sprintf(`{"card_id":"card-%d","event_id":"e%d","event_time":%d,"amount":%g,"channel":"%s"}`,
			i%7, i, base+int64(i)*1000, float64(i%50)+0.25, []string{"pos", "online"}[i%2])
		recs = append(recs, &kgo.Record{Topic: src, Key: []byte(fmt.Sprintf("card-%d", i%7)), Value: []byte(v)})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	run := func(format string) (preds, wins []*kgo.Record) {
		app := kafkatest.Name(t, "app-"+format)
		predTopic, winTopic := b.Topic(t, "preds-"+format, 1), b.Topic(t, "win-"+format, 1)
		registryBlock := "" // source.registry is refused with json outputs and a json source
		if format != "json" {
			registryBlock = fmt.Sprintf("  registry: {urls: [%q]}", reg.URL())
		}
		cfg := fmt.Sprintf(`app: %s
instance_id: %s-1
kafka: {brokers: [%s], commit_interval: 50ms, session_timeout: 6s}
state: {dir: %s}
source:
  topic: %s
%s
  key: card_id
  event_id: event_id
  event_time: {field: event_time, format: epoch_ms}
  idle_timeout: off
  fields:
    amount: {type: number, required: true, min: 0}
    channel: {type: string, values: [pos, online]}
windows: [{name: w, kind: tumbling, size: 1m, aggs: [count, {sum: amount}, {max: amount}], output: %s}]
features:
  - {name: amount, from: amount}
  - {name: channel, from: channel, encode: onehot}
models:
  list: [{name: ftrl, learner: {kind: ftrl_logistic}}]
outputs:
  format: %s
  predictions: %s
  dead_letters: %s
`, app, app, b.Addrs[0], t.TempDir(), src, registryBlock, winTopic, format, predTopic, kafkatest.Name(t, "dlq"))
		c, err := Parse([]byte(cfg))
		if err != nil {
			t.Fatal(err)
		}
		p, err := c.Pipeline()
		if err != nil {
			t.Fatal(err)
		}
		rc, err := c.RuntimeConfig()
		if err != nil {
			t.Fatal(err)
		}
		rc.CreateTopics = true
		rc.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		rc.Registerer = prometheus.NewRegistry()
		rt, err := stream.NewRuntime(p, rc)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- rt.Run(ctx) }()
		stop := func() error {
			select {
			case err := <-done:
				done <- err
				return fmt.Errorf("runtime stopped: %v", err)
			default:
				return nil
			}
		}
		b.WaitCaughtUp(t, app, src, time.Minute, stop)
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
		return b.ReadCommitted(t, predTopic, 30*time.Second), b.ReadCommitted(t, winTopic, 30*time.Second)
	}
	jsonPreds, jsonWins := run("json")
	avroPreds, avroWins := run(outFormat)
	if len(jsonPreds) != 300 || len(avroPreds) != 300 || len(jsonWins) == 0 || len(jsonWins) != len(avroWins) {
		t.Fatalf("predictions json %d avro %d, window results json %d avro %d", len(jsonPreds), len(avroPreds), len(jsonWins), len(avroWins))
	}

	rcl, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	decode := func(r *kgo.Record, subject string) map[string]any {
		t.Helper()
		if len(r.Value) < 5 || r.Value[0] != 0 {
			t.Fatalf("%s: not Confluent wire format: %q", r.Topic, r.Value)
		}
		id := int(binary.BigEndian.Uint32(r.Value[1:5]))
		s, err := rcl.SchemaByID(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if latest, err := rcl.SchemaByVersion(context.Background(), subject, -1); err != nil || latest.ID != id {
			t.Fatalf("record schema id %d, subject %s has %+v (%v)", id, subject, latest, err)
		}
		if outFormat == "protobuf" {
			return normalize(decodeProto(t, s.Schema, r.Value[5:])).(map[string]any)
		}
		sch, err := avro.Parse(s.Schema)
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		if err := avro.Unmarshal(sch, r.Value[5:], &v); err != nil {
			t.Fatalf("%s: %v", r.Topic, err)
		}
		return normalize(v).(map[string]any)
	}
	fromJSON := func(r *kgo.Record, defaults map[string]any) map[string]any {
		t.Helper()
		var v map[string]any
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Fatal(err)
		}
		for k, d := range defaults {
			if _, ok := v[k]; !ok {
				v[k] = d
			}
		}
		return normalize(v).(map[string]any)
	}
	predDefaults := map[string]any{"overflow": []any{}, "explanation": nil, "challengers": map[string]any{}, "label": nil, "probabilities": map[string]any{}}
	for i := range jsonPreds {
		j := fromJSON(jsonPreds[i], predDefaults)
		a := decode(avroPreds[i], avroPreds[i].Topic+"-value")
		if !reflect.DeepEqual(j, a) || string(jsonPreds[i].Key) != string(avroPreds[i].Key) {
			t.Fatalf("prediction %d:\njson %v\navro %v", i, j, a)
		}
	}
	for i := range jsonWins {
		j := fromJSON(jsonWins[i], map[string]any{"overflow": []any{}})
		a := decode(avroWins[i], avroWins[i].Topic+"-value")
		if !reflect.DeepEqual(j, a) || kafkatest.Header(jsonWins[i], stream.HeaderEventTime) != kafkatest.Header(avroWins[i], stream.HeaderEventTime) {
			t.Fatalf("window result %d:\njson %v\navro %v", i, j, a)
		}
	}
}

// decodeProto reads a Confluent Protobuf payload (message indexes, message) with dynamicpb and
// turns it into the JSON record's shape: every field of the message (an unset implicit scalar is
// its zero, an unset optional or message null), a wrapper message (one field, or one oneof) its
// value.
func decodeProto(t *testing.T, schema string, b []byte) map[string]any {
	t.Helper()
	comp := protocompile.Compiler{Resolver: &protocompile.SourceResolver{
		Accessor: protocompile.SourceAccessorFromMap(map[string]string{"s.proto": schema})}}
	fds, err := comp.Compile(context.Background(), "s.proto")
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 || b[0] != 0 {
		t.Fatalf("message indexes: want [0] (one zero byte), got % x", b[:min(len(b), 4)])
	}
	m := dynamicpb.NewMessage(fds[0].Messages().Get(0))
	if err := proto.Unmarshal(b[1:], m); err != nil {
		t.Fatal(err)
	}
	return protoGeneric(m).(map[string]any)
}

func protoGeneric(m protoreflect.Message) any {
	fs := m.Descriptor().Fields()
	if fs.Len() == 1 || (fs.Get(0).ContainingOneof() != nil && !fs.Get(0).ContainingOneof().IsSynthetic()) {
		for i := 0; i < fs.Len(); i++ {
			if m.Has(fs.Get(i)) {
				return protoScalar(m.Get(fs.Get(i)))
			}
		}
		return nil
	}
	out := map[string]any{}
	for i := 0; i < fs.Len(); i++ {
		fd := fs.Get(i)
		v := m.Get(fd)
		switch {
		case fd.IsMap():
			mm := map[string]any{}
			v.Map().Range(func(k protoreflect.MapKey, x protoreflect.Value) bool {
				if fd.MapValue().Kind() == protoreflect.MessageKind {
					mm[k.String()] = protoGeneric(x.Message())
				} else {
					mm[k.String()] = protoScalar(x)
				}
				return true
			})
			out[string(fd.Name())] = mm
		case fd.IsList():
			xs := []any{}
			for j := 0; j < v.List().Len(); j++ {
				xs = append(xs, protoScalar(v.List().Get(j)))
			}
			out[string(fd.Name())] = xs
		case fd.HasPresence() && !m.Has(fd):
			out[string(fd.Name())] = nil
		case fd.Kind() == protoreflect.MessageKind:
			out[string(fd.Name())] = protoGeneric(v.Message())
		default:
			out[string(fd.Name())] = protoScalar(v)
		}
	}
	return out
}

func protoScalar(v protoreflect.Value) any {
	switch x := v.Interface().(type) {
	case protoreflect.Message:
		return protoGeneric(x)
	case int32:
		return float64(x)
	case int64:
		return float64(x)
	}
	return v.Interface()
}

// normalize makes JSON and Avro generic values comparable: every number a float64.
func normalize(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			v[k] = normalize(x)
		}
		return v
	case []any:
		for i, x := range v {
			v[i] = normalize(x)
		}
		return v
	case int:
		return float64(v)
	case int32:
		return float64(v)
	case int64:
		return float64(v)
	}
	return v
}

// TestOutputsAvroRegistryRefusalStopsStartUp: a registry that refuses the output schema (HTTP 409,
// incompatible) makes Run return its answer before reading anything.
func TestOutputsAvroRegistryRefusalStopsStartUp(t *testing.T) {
	b := kafkatest.Start(t)
	src := b.Topic(t, "tx", 1)
	reg := srfake.New()
	t.Cleanup(reg.Close)
	reg.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPost {
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusConflict)
		_ = json.NewEncoder(w).Encode(map[string]any{"error_code": 409, "message": "Schema being registered is incompatible with an earlier schema"})
		return true
	})
	cfg := fmt.Sprintf(`app: %s
kafka: {brokers: [%s]}
state: {dir: %s}
source:
  topic: %s
  registry: {urls: [%q]}
  key: card_id
  event_time: {field: event_time, format: epoch_ms}
  fields:
    amount: {type: number, required: true}
windows: [{name: w, kind: tumbling, size: 1m, aggs: [count], output: %s}]
outputs:
  format: avro
  dead_letters: %s
`, kafkatest.Name(t, "app"), b.Addrs[0], t.TempDir(), src, reg.URL(), kafkatest.Name(t, "win"), kafkatest.Name(t, "dlq"))
	c, err := Parse([]byte(cfg))
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Pipeline()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := c.RuntimeConfig()
	if err != nil {
		t.Fatal(err)
	}
	rc.CreateTopics = true
	rc.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	rc.Registerer = prometheus.NewRegistry()
	rt, err := stream.NewRuntime(p, rc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = rt.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "-value") || !strings.Contains(err.Error(), "incompatible") {
		t.Fatalf("Run: %v", err)
	}
	t.Logf("Run: %v", err)
}
