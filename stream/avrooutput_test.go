package stream

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

const testOutputSchema = `{"type":"record","name":"Out","fields":[
{"name":"key","type":"string"},
{"name":"n","type":"long"},
{"name":"p","type":"int"},
{"name":"score","type":["null","double"]},
{"name":"label","type":["null","boolean","long","string"],"default":null},
{"name":"src","type":{"type":"record","name":"Src","fields":[{"name":"topic","type":"string"}]}},
{"name":"features","type":{"type":"map","values":["null","boolean","double","string"]}},
{"name":"overflow","type":{"type":"array","items":"string"},"default":[]},
{"name":"opt","type":["null",{"type":"record","name":"Opt","fields":[{"name":"x","type":"double"}]}],"default":null}]}`

func newTestAvroOutput(t *testing.T) (*AvroOutput, *srfake.Registry) {
	t.Helper()
	fake := srfake.New()
	t.Cleanup(fake.Close)
	cl, err := sr.NewClient(sr.URLs(fake.URL()))
	if err != nil {
		t.Fatal(err)
	}
	enc, err := NewAvroOutput(&Registry{Client: cl, Timeout: time.Second}, testOutputSchema)
	if err != nil {
		t.Fatal(err)
	}
	if err := enc.Register(context.Background(), "out"); err != nil {
		t.Fatal(err)
	}
	return enc, fake
}

// decodeOutput reads a wire-format record with the schema the registry holds for its id, as a
// consumer would.
func decodeOutput(t *testing.T, fake *srfake.Registry, b []byte) map[string]any {
	t.Helper()
	if len(b) < 5 || b[0] != 0 {
		t.Fatalf("not Confluent wire format: % x", b)
	}
	cl, err := sr.NewClient(sr.URLs(fake.URL()))
	if err != nil {
		t.Fatal(err)
	}
	id := int(binary.BigEndian.Uint32(b[1:5]))
	s, err := cl.SchemaByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	sch, err := avro.Parse(s.Schema)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := avro.Unmarshal(sch, b[5:], &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestAvroOutputEncodesJSONValues(t *testing.T) {
	enc, fake := newTestAvroOutput(t)
	in := `{"key":"k1","n":9007199254740993,"p":3,"score":0.25,"label":"fraud","src":{"topic":"tx"},
		"features":{"amount":12.5,"country":"DE","gone":null,"flag":true},"overflow":["sum"],"opt":{"x":1.5}}`
	b, err := enc.Encode([]byte("prefix"), []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if string(b[:6]) != "prefix" {
		t.Fatalf("Encode does not append to dst: %q", b)
	}
	got := decodeOutput(t, fake, b[6:])
	want := map[string]any{
		"key": "k1", "n": int64(9007199254740993), "p": 3, "score": 0.25, "label": "fraud",
		"src":      map[string]any{"topic": "tx"},
		"features": map[string]any{"amount": 12.5, "country": "DE", "gone": nil, "flag": true},
		"overflow": []any{"sum"}, "opt": map[string]any{"Opt": map[string]any{"x": 1.5}}, // hamba names a record branch
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded\n%#v\nwant\n%#v", got, want)
	}

	// Absent optional fields take their defaults; a null score and an integral label pick their
	// union branches.
	b, err = enc.Encode(nil, []byte(`{"key":"k2","n":-1,"p":0,"score":null,"label":2,"src":{"topic":"tx"},"features":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	got = decodeOutput(t, fake, b)
	want = map[string]any{"key": "k2", "n": int64(-1), "p": 0, "score": nil, "label": int64(2),
		"src": map[string]any{"topic": "tx"}, "features": map[string]any{}, "overflow": []any{}, "opt": nil}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded\n%#v\nwant\n%#v", got, want)
	}
}

func TestAvroOutputRefusesValuesOutsideItsSchema(t *testing.T) {
	enc, _ := newTestAvroOutput(t)
	for _, in := range []string{
		`{"n":1,"p":0,"score":1,"src":{"topic":"t"},"features":{}}`,             // key missing, no default
		`{"key":"k","n":1.5,"p":0,"score":1,"src":{"topic":"t"},"features":{}}`, // long not integral
		`{"key":"k","n":1,"p":4294967296,"score":1,"src":{"topic":"t"},"features":{}}`,
		`{"key":"k","n":1,"p":0,"score":"x","src":{"topic":"t"},"features":{}}`,
		`{"key":"k","n":1,"p":0,"score":1,"src":{"topic":"t"},"features":{"a":[1]}}`,
		`not json`,
	} {
		if _, err := enc.Encode(nil, []byte(in)); err == nil {
			t.Errorf("Encode(%s) = nil error", in)
		}
	}
}

func TestAvroOutputRegisterIsIdempotentAndReportsRefusal(t *testing.T) {
	enc, fake := newTestAvroOutput(t)
	first := enc.ID()
	if err := enc.Register(context.Background(), "out"); err != nil {
		t.Fatal(err)
	}
	if enc.ID() != first || first == 0 {
		t.Fatalf("second registration: id %d, first %d", enc.ID(), first)
	}
	fake.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPost {
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusConflict)
		json.NewEncoder(w).Encode(map[string]any{"error_code": 409, "message": "Schema being registered is incompatible with an earlier schema"})
		return true
	})
	err := enc.Register(context.Background(), "other")
	if err == nil || !strings.Contains(err.Error(), "other-value") || !strings.Contains(err.Error(), "incompatible") {
		t.Fatalf("refused registration: %v", err)
	}
}

func BenchmarkAvroOutputEncode(b *testing.B) {
	fake := srfake.New()
	defer fake.Close()
	cl, _ := sr.NewClient(sr.URLs(fake.URL()))
	enc, err := NewAvroOutput(&Registry{Client: cl}, testOutputSchema)
	if err != nil {
		b.Fatal(err)
	}
	if err := enc.Register(context.Background(), "out"); err != nil {
		b.Fatal(err)
	}
	in := []byte(`{"key":"card-004211","n":1764105513123,"p":2,"score":0.0213,"label":0,"src":{"topic":"transactions"},
		"features":{"amount_log":3.74,"country":"DE","tx_count_10m":3}}`)
	var dst []byte
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if dst, err = enc.Encode(dst[:0], in); err != nil {
			b.Fatal(err)
		}
	}
}

func TestAvroOutputIsDeterministic(t *testing.T) {
	enc, _ := newTestAvroOutput(t)
	in := []byte(`{"key":"k","n":1,"p":0,"score":1,"src":{"topic":"t"},"features":{"a":1,"b":"x","c":true,"d":null,"e":2,"f":3}}`)
	first, err := enc.Encode(nil, in)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		b, err := enc.Encode(nil, in)
		if err != nil || string(b) != string(first) {
			t.Fatalf("encoding %d differs: %v", i, err)
		}
	}
}

// TestTaskEmitEncodesAndFailsOnBadValue: Emit and EmitRecord write an encoded topic's values in
// its format and leave other topics' alone; a value the encoder refuses stops the task and is not
// produced.
func TestTaskEmitEncodesAndFailsOnBadValue(t *testing.T) {
	enc, fake := newTestAvroOutput(t)
	var sent []*kgo.Record
	task := newTestTask(t, benchFormat(), nil, &sent)
	task.encoders = map[string]OutputEncoder{"out": enc}
	good := `{"key":"k","n":1,"p":0,"score":1,"src":{"topic":"t"},"features":{}}`
	task.Emit("out", []byte("k"), []byte(good), 1)
	task.EmitRecord("out", []byte("k"), []byte(good), 1)
	task.Emit("plain", []byte("k"), []byte(good), 1)
	if len(sent) != 3 || task.fatalErr != nil {
		t.Fatalf("sent %d, err %v", len(sent), task.fatalErr)
	}
	for _, r := range sent[:2] {
		if got := decodeOutput(t, fake, r.Value); got["key"] != "k" {
			t.Fatalf("decoded %v", got)
		}
	}
	if string(sent[2].Value) != good {
		t.Fatalf("unencoded topic got %q", sent[2].Value)
	}
	task.Emit("out", []byte("k"), []byte(`{"key":"k"}`), 1)
	if len(sent) != 3 || task.fatalErr == nil || !strings.Contains(task.fatalErr.Error(), "encoding a record for out") {
		t.Fatalf("refused value: sent %d, err %v", len(sent), task.fatalErr)
	}
}
