package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/stream"
	"github.com/streamd/streamd/test/kafkatest"
)

// TestNestedJSONWithStringClasses: a pipeline whose fields are nested JSON paths (the key, the
// amount, an array element) and whose labels are class names (labels.classes) runs end to end.
// Every valid record has exactly one prediction, which names its class by the user's label, and the
// classes are learned (most late predictions are right); every hostile record (a duplicate key, a
// lone surrogate, a control character, a field key that differs from the Kafka key, a label not in
// the classes) is exactly one dead letter with its reason.
func TestNestedJSONWithStringClasses(t *testing.T) {
	b := kafkatest.Start(t)
	src, preds, dlq := b.Topic(t, "src", 2), b.Topic(t, "preds", 2), b.Topic(t, "dlq", 2)
	app := kafkatest.Name(t, "app")
	classes := []string{"legit", "fraud", "chargeback"}
	hostile := []stream.Reason{stream.ReasonDuplicateField, stream.ReasonInvalidString, stream.ReasonControlCharacters,
		stream.ReasonKeyMismatch, stream.ReasonUnknownLabel}
	const n, hdr = 900, "e2e-expect"

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	now := time.Now().UnixMilli()
	var recs []*kgo.Record
	for i := range n {
		card := fmt.Sprintf("card-%d", i%41)
		class := i % 3
		channel := []string{"pos", "online", "atm"}[class] // the class follows from the channel
		value := fmt.Sprintf(`{"event_id":"e%d","card":{"id":%q},"ts":%d,"payment":{"amount":%d.5,"channel":%q},"items":[{"price":%d}],"outcome":%q}`,
			i, card, now+int64(i), 10+class*40, channel, 3+class, classes[class])
		rec := &kgo.Record{Topic: src, Key: []byte(card)}
		if i%25 == 11 {
			kind := hostile[(i/25)%len(hostile)]
			switch kind {
			case stream.ReasonDuplicateField:
				value = strings.Replace(value, `"amount":`, `"amount":-7,"amount":`, 1)
			case stream.ReasonInvalidString:
				value = strings.Replace(value, `"items"`, `"note":"\ud800","items"`, 1)
			case stream.ReasonControlCharacters:
				value = strings.Replace(value, `"e`+strconv.Itoa(i)+`"`, `"e`+strconv.Itoa(i)+`\u001b"`, 1)
			case stream.ReasonKeyMismatch:
				rec.Key = []byte("card-other")
			case stream.ReasonUnknownLabel:
				value = strings.Replace(value, `"outcome":"`+classes[class]+`"`, `"outcome":"refund"`, 1)
			}
			rec.Headers = []kgo.RecordHeader{{Key: hdr, Value: []byte(kind)}}
		}
		rec.Value = []byte(value)
		recs = append(recs, rec)
	}
	cl := b.Client(t)
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
  key: card.id
  event_id: event_id
  event_time: {field: ts, format: epoch_ms}
  idle_timeout: off
  fields:
    payment.amount: {type: number, required: true, min: 0}
    payment.channel: {type: string, values: [pos, online, atm]}
    items.0.price: {type: number}
    outcome: {type: string}
features:
  - {name: amount, from: payment.amount, transform: [log1p]}
  - {name: channel, from: payment.channel, encode: onehot}
  - {name: first_price, from: items.0.price}
labels:
  field: outcome
  classes: [legit, fraud, chargeback]
models:
  list:
    - {name: softmax, learner: {kind: softmax, classes: 3}}
outputs:
  predictions: %s
  dead_letters: %s
admin:
  listen: 127.0.0.1:0
`, app, app, strings.Join(b.Addrs, ","), filepath.Join(dir, "state"), src, preds, dlq)
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
	b.WaitCaughtUp(t, app, src, 2*time.Minute, proc.exited)
	proc.stop(t)

	type pos struct {
		p   int32
		off int64
	}
	want := map[pos]string{}
	for _, r := range b.ReadCommitted(t, src, 30*time.Second) {
		want[pos{r.Partition, r.Offset}] = kafkatest.Header(r, hdr)
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
	right, late := 0, 0
	for _, r := range b.ReadCommitted(t, preds, 30*time.Second) {
		at := lineage(r)
		seen[at]++
		if reason, ok := want[at]; !ok || reason != "" {
			problems = append(problems, fmt.Sprintf("prediction for %v, which is %q", at, reason))
		}
		var p struct {
			EventID string `json:"event_id"`
			Key     string `json:"key"`
			Warm    bool   `json:"warm"`
			Class   *int   `json:"class"`
			Label   string `json:"label"`
		}
		if err := json.Unmarshal(r.Value, &p); err != nil {
			t.Fatal(err)
		}
		if !p.Warm {
			// A cold model (before its min_examples) decides no class.
			if p.Class != nil || p.Label != "" {
				problems = append(problems, fmt.Sprintf("cold prediction %s decides a class", r.Value))
			}
			continue
		}
		if *p.Class < 0 || *p.Class >= len(classes) || p.Label != classes[*p.Class] || !strings.HasPrefix(p.Key, "card-") {
			problems = append(problems, fmt.Sprintf("prediction %s does not name its class", r.Value))
		}
		if i, _ := strconv.Atoi(strings.TrimPrefix(p.EventID, "e")); i >= n/2 {
			late++
			if p.Label == classes[i%3] {
				right++
			}
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
	for _, k := range hostile {
		if byReason[string(k)] == 0 {
			t.Errorf("no dead letter with reason %s", k)
		}
	}
	if right < late*2/3 {
		t.Errorf("%d of %d late predictions name the right class: the classes were not learned by name", right, late)
	}
	t.Logf("%d records: dead letters by reason %v; %d of %d late predictions right", n, byReason, right, late)
}
