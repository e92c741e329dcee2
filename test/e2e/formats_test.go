package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bufbuild/protocompile"
	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/streamd/streamd/stream"
	"github.com/streamd/streamd/test/kafkatest"
)

// schemaFormat is one registry format under test: four versions of the subject's schema (v2 adds
// channel, v3 removes note, v4 lacks the required amount) and how to encode a transaction with
// one of them (the payload, without the Confluent header).
type schemaFormat struct {
	name     string
	typ      sr.SchemaType
	versions [4]string
	encode   func(t *testing.T, version int, tx map[string]any) []byte
}

var avroVersions = [4]string{
	`{"type":"record","name":"Tx","fields":[{"name":"card_id","type":"string"},{"name":"amount","type":"double"},
	  {"name":"ts","type":"long"},{"name":"note","type":["null","string"],"default":null},
	  {"name":"merchant","type":{"type":"record","name":"M","fields":[{"name":"country","type":"string"}]}}]}`,
	`{"type":"record","name":"Tx","fields":[{"name":"card_id","type":"string"},{"name":"amount","type":"double"},
	  {"name":"ts","type":"long"},{"name":"note","type":["null","string"],"default":null},
	  {"name":"merchant","type":{"type":"record","name":"M","fields":[{"name":"country","type":"string"}]}},
	  {"name":"channel","type":"string","default":"web"}]}`,
	`{"type":"record","name":"Tx","fields":[{"name":"card_id","type":"string"},{"name":"amount","type":"double"},
	  {"name":"ts","type":"long"},
	  {"name":"merchant","type":{"type":"record","name":"M","fields":[{"name":"country","type":"string"}]}},
	  {"name":"channel","type":"string","default":"pos"}]}`,
	`{"type":"record","name":"Tx","fields":[{"name":"card_id","type":"string"},{"name":"ts","type":"long"}]}`,
}

var protoVersions = [4]string{
	`syntax = "proto3"; package e2e;
	 message Tx { string card_id = 1; double amount = 2; int64 ts = 3; optional string note = 4; M merchant = 5; }
	 message M { string country = 1; }`,
	`syntax = "proto3"; package e2e;
	 message Tx { string card_id = 1; double amount = 2; int64 ts = 3; optional string note = 4; M merchant = 5; optional string channel = 6; }
	 message M { string country = 1; }`,
	`syntax = "proto3"; package e2e;
	 message Tx { reserved 4; string card_id = 1; double amount = 2; int64 ts = 3; M merchant = 5; optional string channel = 6; }
	 message M { string country = 1; }`,
	`syntax = "proto3"; package e2e;
	 message Tx { string card_id = 1; int64 ts = 3; }`,
}

func avroEncode(t *testing.T, version int, tx map[string]any) []byte {
	s := avro.MustParse(avroVersions[version])
	v := map[string]any{}
	for _, f := range s.(*avro.RecordSchema).Fields() {
		if x, ok := tx[f.Name()]; ok {
			v[f.Name()] = x
		}
	}
	b, err := avro.Marshal(s, v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func protoEncode(t *testing.T, version int, tx map[string]any) []byte {
	comp := protocompile.Compiler{Resolver: &protocompile.SourceResolver{
		Accessor: protocompile.SourceAccessorFromMap(map[string]string{"tx.proto": protoVersions[version]})}}
	fds, err := comp.Compile(context.Background(), "tx.proto")
	if err != nil {
		t.Fatal(err)
	}
	md := fds[0].FindDescriptorByName("e2e.Tx").(protoreflect.MessageDescriptor)
	m := dynamicpb.NewMessage(md)
	js := fmt.Sprintf(`{"card_id":%q,"amount":%v,"ts":"%d","merchant":{"country":%q}`, tx["card_id"], tx["amount"], tx["ts"], tx["merchant"].(map[string]any)["country"])
	if note, ok := tx["note"].(string); ok {
		js += fmt.Sprintf(`,"note":%q`, note)
	}
	if ch, ok := tx["channel"].(string); ok {
		js += fmt.Sprintf(`,"channel":%q`, ch)
	}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal([]byte(js+"}"), m); err != nil {
		t.Fatal(err)
	}
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte{0}, b...) // message indexes [0]
}

func confluentFrame(id int, payload []byte) []byte {
	out := []byte{0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(out[1:], uint32(id))
	return append(out, payload...)
}

// TestSchemaRegistryFormatsEvolveMidStream runs streamd on Avro and on Protobuf streams whose
// schema changes mid-stream (a field added, then one removed), with hostile records mixed in (an
// unknown schema id, a truncated payload, a wrong magic byte, a schema without the required
// amount), while the registry does not answer for the first seconds: every valid record must be
// scored exactly once, every hostile one must be a dead letter with its reason, and the outage
// must dead-letter nothing.
func TestSchemaRegistryFormatsEvolveMidStream(t *testing.T) {
	for _, f := range []schemaFormat{
		{name: "avro", typ: sr.TypeAvro, versions: avroVersions, encode: avroEncode},
		{name: "protobuf", typ: sr.TypeProtobuf, versions: protoVersions, encode: protoEncode},
	} {
		t.Run(f.name, func(t *testing.T) { testFormatEvolution(t, f) })
	}
}

func testFormatEvolution(t *testing.T, f schemaFormat) {
	b := kafkatest.Start(t)
	src, preds, dlq := b.Topic(t, "src", 2), b.Topic(t, "preds", 2), b.Topic(t, "dlq", 2)
	app := kafkatest.Name(t, "app")

	reg := srfake.New()
	t.Cleanup(reg.Close)
	var upAt atomic.Int64 // the registry answers 503 until this time (Unix ns)
	upAt.Store(time.Now().Add(time.Hour).UnixNano())
	var refused atomic.Int64
	reg.Intercept(func(w http.ResponseWriter, _ *http.Request) bool {
		if time.Now().UnixNano() < upAt.Load() {
			refused.Add(1)
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	var ids [4]int
	for i, s := range f.versions {
		id, _, err := reg.RegisterSchema("tx-value", sr.Schema{Schema: s, Type: f.typ})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
	}

	// The stream: 600 records, the first third written with v1, then v2, then v3; every 20th
	// record is hostile, of the four kinds in turn.
	const n = 600
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cl := b.Client(t)
	now := time.Now().UnixMilli()
	kinds := []stream.Reason{stream.ReasonUnknownSchema, f.malformed(), stream.ReasonBadWireFormat, stream.ReasonSchemaMissingField}
	var recs []*kgo.Record
	for i := 0; i < n; i++ {
		version := i * 3 / n
		tx := map[string]any{"card_id": fmt.Sprintf("card-%d", i%37), "amount": float64(i%90) + 0.5, "ts": now + int64(i),
			"note": "n", "channel": "app", "merchant": map[string]any{"country": []string{"DE", "FR", "NL"}[i%3]}}
		value := confluentFrame(ids[version], f.encode(t, version, tx))
		rec := &kgo.Record{Topic: src, Key: []byte(tx["card_id"].(string))}
		if i%20 == 7 {
			kind := kinds[(i/20)%len(kinds)]
			switch kind {
			case stream.ReasonUnknownSchema:
				value = confluentFrame(424242, value[5:])
			case f.malformed():
				value = confluentFrame(ids[version], truncated(t, f, version))
			case stream.ReasonBadWireFormat:
				value[0] = 1
			case stream.ReasonSchemaMissingField:
				value = confluentFrame(ids[3], f.encode(t, 3, tx))
			}
			rec.Headers = []kgo.RecordHeader{{Key: badHeader, Value: []byte(kind)}}
		}
		rec.Value = value
		recs = append(recs, rec)
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	cfg := fmt.Sprintf(`app: %s
instance_id: %s-1
kafka:
  brokers: [%s]
  commit_interval: 100ms
  transaction_timeout: 10s
  session_timeout: 6s
state:
  dir: %s
source:
  topic: %s
  format: %s
  registry: {urls: ["%s"], subject: tx-value, timeout: 1s}
  key: card_id
  event_time: {field: ts, format: epoch_ms}
  idle_timeout: off
  fields:
    amount: {type: number, required: true, min: 0}
    merchant.country: {type: string, values: [DE, FR, NL]}
    channel: {type: string}
features:
  - {name: amount, from: amount, transform: [log1p]}
  - {name: country, from: merchant.country, encode: onehot}
models:
  list:
    - {name: ftrl, learner: {kind: ftrl_logistic}}
outputs:
  predictions: %s
  dead_letters: %s
admin:
  listen: 127.0.0.1:0
`, app, app, strings.Join(b.Addrs, ","), filepath.Join(dir, "state"), src, f.name, reg.URL(), preds, dlq)
	cfgPath := filepath.Join(dir, "pipeline.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "streamd.log")
	proc := start(t, logPath, nil, streamdBin, "run", "-config", cfgPath)
	defer func() {
		if t.Failed() {
			if log, err := os.ReadFile(logPath); err == nil {
				t.Logf("streamd log:\n%s", tail(string(log), 4000))
			}
		}
	}()
	// Let streamd meet the unreachable registry, then let it answer.
	deadline := time.Now().Add(time.Minute)
	for refused.Load() < 2 {
		if err := proc.exited(); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("streamd never asked the registry")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second)
	upAt.Store(time.Now().UnixNano())
	b.WaitCaughtUp(t, app, src, 2*time.Minute, proc.exited)
	proc.stop(t)

	// Ground truth by source position.
	type pos struct {
		p   int32
		off int64
	}
	want := map[pos]string{} // "" for valid, else the reason
	srcRecs := b.ReadCommitted(t, src, 30*time.Second)
	for _, r := range srcRecs {
		want[pos{r.Partition, r.Offset}] = kafkatest.Header(r, badHeader)
	}
	if len(want) != n {
		t.Fatalf("read %d source records, want %d", len(want), n)
	}
	lineage := func(r *kgo.Record) pos {
		p, _ := strconv.Atoi(kafkatest.Header(r, stream.HeaderSourcePartition))
		o, _ := strconv.ParseInt(kafkatest.Header(r, stream.HeaderSourceOffset), 10, 64)
		return pos{int32(p), o}
	}
	seen := map[pos]int{}
	var problems []string
	for _, r := range b.ReadCommitted(t, preds, 30*time.Second) {
		at := lineage(r)
		seen[at]++
		if reason, ok := want[at]; !ok || reason != "" {
			problems = append(problems, fmt.Sprintf("prediction for %v, which is %q", at, reason))
		}
	}
	byReason := map[string]int{}
	for _, r := range b.ReadCommitted(t, dlq, 30*time.Second) {
		at := lineage(r)
		seen[at]++
		got := kafkatest.Header(r, stream.HeaderReason)
		byReason[got]++
		if w := want[at]; w != got {
			problems = append(problems, fmt.Sprintf("dead letter %v with reason %s (%s), want %q", at, got, kafkatest.Header(r, stream.HeaderError), w))
		}
	}
	for at := range want {
		if seen[at] != 1 {
			problems = append(problems, fmt.Sprintf("%v is in the outputs %d times", at, seen[at]))
		}
	}
	if len(problems) > 0 {
		if len(problems) > 10 {
			problems = append(problems[:10], fmt.Sprintf("... (%d)", len(problems)))
		}
		t.Fatalf("%d problems:\n%s", len(problems), strings.Join(problems, "\n"))
	}
	for _, k := range kinds {
		if byReason[string(k)] == 0 {
			t.Errorf("no dead letter with reason %s", k)
		}
	}
	log, _ := os.ReadFile(logPath)
	if !strings.Contains(string(log), "could not reach the schema registry") {
		t.Error("streamd's log does not show that it waited for the registry")
	}
	t.Logf("%d records: dead letters by reason %v; the registry refused %d requests", n, byReason, refused.Load())
}

func (f schemaFormat) malformed() stream.Reason {
	if f.typ == sr.TypeProtobuf {
		return stream.ReasonMalformedProtobuf
	}
	return stream.ReasonMalformedAvro
}

// truncated is a payload cut in the middle of a field: for Protobuf, inside the card id's bytes
// (a cut between two fields would be a valid shorter message).
func truncated(t *testing.T, f schemaFormat, version int) []byte {
	p := f.encode(t, version, map[string]any{"card_id": "card-truncated", "amount": 1.5, "ts": int64(1), "merchant": map[string]any{"country": "DE"}})
	if f.typ == sr.TypeProtobuf {
		// indexes byte, then tag 1 (0x0a), length 14, the id: cut inside the id.
		return p[:6]
	}
	return p[:len(p)-2]
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
