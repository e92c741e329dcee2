package spend_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	spend "github.com/streamd/streamd/examples/streamtest"
	"github.com/streamd/streamd/stream"
	"github.com/streamd/streamd/stream/streamtest"
)

// newDriver builds the pipeline a Go user would (source format, the operator) and a driver for it.
func newDriver(t *testing.T) *streamtest.Driver {
	t.Helper()
	f := &stream.JSONFormat{
		KeyField: "card_id",
		Time:     stream.EventTimeSpec{Field: "ts", Format: stream.TimeEpochMillis},
		Fields:   []stream.FieldSpec{{Name: "amount", Type: stream.Number, Required: true}},
	}
	if err := f.Init(); err != nil {
		t.Fatal(err)
	}
	op := &spend.CardSpend{Topic: "card-totals"}
	op.Amount, _ = f.FieldIndex("amount")
	p := &stream.Pipeline{Name: "spend", Source: stream.Source{Topic: "payments", Format: f},
		Operators: []stream.Operator{op}, DeadLetterTopic: "payments-dlq"}
	d, err := streamtest.NewDriver(p, streamtest.Config{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

var offset int64

func payment(card string, amount float64) *kgo.Record {
	offset++
	v := fmt.Sprintf(`{"card_id":%q,"ts":%d,"amount":%g}`, card, 1_700_000_000_000+offset, amount)
	return &kgo.Record{Topic: "payments", Offset: offset, Value: []byte(v)}
}

func totals(d *streamtest.Driver) string {
	var b strings.Builder
	for _, r := range d.Outputs("card-totals") {
		b.WriteString(string(r.Value))
		b.WriteByte('\n')
	}
	return b.String()
}

// TestCardSpend: totals per card, the metric counting committed transactions only, and the state
// surviving an abort, a crash, a crash after the transaction committed, and the loss of the disk.
func TestCardSpend(t *testing.T) {
	d := newDriver(t)
	step := func(name string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	step("process", d.Process(payment("c1", 10), payment("c2", 5), payment("c1", 2.5)))
	step("commit", d.Commit())

	// An aborted cycle leaves no output, no state and no count behind.
	step("process", d.Process(payment("c1", 1000)))
	step("abort", d.Abort())

	// A crash loses the open cycle; the disk keeps the committed state.
	step("process", d.Process(payment("c2", 1000)))
	step("restart", d.Restart())
	step("process", d.Process(payment("c2", 1)))
	step("commit", d.Commit())

	// The transaction commits, the process dies before the local state does: the reopened task
	// replays the changelog's tail.
	step("process", d.Process(payment("c1", 100)))
	step("commit then crash", d.CommitThenCrash())
	step("process", d.Process(payment("c1", 1)))
	step("commit", d.Commit())

	// A new machine: the state is restored from the changelog alone.
	step("restart on an empty disk", d.RestartFromChangelog())
	step("process", d.Process(payment("c1", 0.5), payment("c2", 0.5)))
	step("commit", d.Commit())

	want := `{"card_id":"c1","total":10.00}
{"card_id":"c2","total":5.00}
{"card_id":"c1","total":12.50}
{"card_id":"c2","total":6.00}
{"card_id":"c1","total":112.50}
{"card_id":"c1","total":113.50}
{"card_id":"c1","total":114.00}
{"card_id":"c2","total":6.50}
`
	if got := totals(d); got != want {
		t.Errorf("totals:\n%s\nwant:\n%s", got, want)
	}
	// The metric is in the driver's registry; the cycle lost in the crash after its transaction
	// was never counted, as in the runtime (metrics are published once the local commit is done).
	n, err := testutil.GatherAndCount(d.Registry(), "spend_transactions_total")
	if err != nil || n != 1 {
		t.Fatalf("spend_transactions_total: %d series (%v)", n, err)
	}
	if err := testutil.GatherAndCompare(d.Registry(), strings.NewReader(`
# HELP spend_transactions_total Transactions added to a card's total.
# TYPE spend_transactions_total counter
spend_transactions_total 7
`), "spend_transactions_total"); err != nil {
		t.Error(err)
	}
}

// TestRejectsWithoutAmount: an event the operator refuses goes to the dead-letter topic, with the
// reason in its headers.
func TestRejectsWithoutAmount(t *testing.T) {
	d := newDriver(t)
	offset++
	if err := d.Process(&kgo.Record{Topic: "payments", Offset: offset, Value: []byte(`{"card_id":"c1","ts":1}`)}); err != nil {
		t.Fatal(err)
	}
	if err := d.Commit(); err != nil {
		t.Fatal(err)
	}
	dl := d.Outputs("payments-dlq")
	if len(dl) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dl))
	}
	for _, h := range dl[0].Headers {
		if h.Key == stream.HeaderReason && string(h.Value) != string(stream.ReasonMissingField) {
			t.Errorf("reason %s", h.Value)
		}
	}
}

// Example runs the operator over three payments without a broker and prints the committed totals.
func Example() {
	f := &stream.JSONFormat{
		KeyField: "card_id",
		Time:     stream.EventTimeSpec{Field: "ts", Format: stream.TimeEpochMillis},
		Fields:   []stream.FieldSpec{{Name: "amount", Type: stream.Number, Required: true}},
	}
	if err := f.Init(); err != nil {
		panic(err)
	}
	op := &spend.CardSpend{Topic: "card-totals"}
	op.Amount, _ = f.FieldIndex("amount")
	dir, err := os.MkdirTemp("", "spend-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	d, err := streamtest.NewDriver(&stream.Pipeline{Name: "spend", Source: stream.Source{Topic: "payments", Format: f},
		Operators: []stream.Operator{op}, DeadLetterTopic: "payments-dlq"}, streamtest.Config{StateDir: dir})
	if err != nil {
		panic(err)
	}
	defer d.Close()
	for i, amount := range []float64{20, 22.5, 7} {
		v := fmt.Sprintf(`{"card_id":"c1","ts":%d,"amount":%g}`, time.Date(2024, 1, 1, 0, 0, i, 0, time.UTC).UnixMilli(), amount)
		if err := d.Process(&kgo.Record{Topic: "payments", Offset: int64(i), Value: []byte(v)}); err != nil {
			panic(err)
		}
	}
	if err := d.Commit(); err != nil {
		panic(err)
	}
	for _, r := range d.Outputs("card-totals") {
		fmt.Println(string(r.Value))
	}
	// Output:
	// {"card_id":"c1","total":20.00}
	// {"card_id":"c1","total":42.50}
	// {"card_id":"c1","total":49.50}
}
