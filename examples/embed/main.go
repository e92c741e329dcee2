// Command embed shows streamd as a Go library: a pipeline built in code, with an operator of our own,
// run exactly once against Kafka. It starts an in-process broker (franz-go's kfake) so that
// `go run ./examples/embed` needs nothing else; point -brokers at a real cluster to use that instead.
//
// The operator, LargeAmountAlert, publishes an alert for every transaction over a threshold and
// refuses transactions in a currency it does not know (they go to the dead-letter topic with the
// reason operator_rejected, like any record the source format refuses).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/stream"
)

// LargeAmountAlert is a custom operator. The Operator is a factory; Open makes one Processor per
// task (input partition), which runs on that task's goroutine and needs no locks.
type LargeAmountAlert struct {
	Topic     string
	Threshold float64
	amount    int // field indexes, resolved once in Open, not per record
	currency  int
}

func (a *LargeAmountAlert) Name() string                                { return "large-amount-alert" }
func (a *LargeAmountAlert) OutputTopics() []string                      { return []string{a.Topic} }
func (a *LargeAmountAlert) Open(*stream.Task) (stream.Processor, error) { return &alerter{a, nil}, nil }

type alerter struct {
	cfg *LargeAmountAlert
	buf []byte // reused for every alert: Emit copies it
}

func (p *alerter) Process(t *stream.Task, ev *stream.Event) error {
	if cur, ok := ev.String(p.cfg.currency); ok && string(cur) != "EUR" && string(cur) != "USD" {
		return stream.Reject(stream.ReasonOperator, "unknown currency %q", cur)
	}
	amount, _ := ev.Number(p.cfg.amount)
	if amount <= p.cfg.Threshold {
		return nil
	}
	p.buf = append(p.buf[:0], `{"card_id":"`...)
	p.buf = append(p.buf, ev.Key...)
	p.buf = append(p.buf, `","amount":`...)
	p.buf = strconv.AppendFloat(p.buf, amount, 'f', 2, 64)
	p.buf = append(p.buf, '}')
	t.Emit(p.cfg.Topic, ev.Key, p.buf, ev.Time)
	return nil
}

func (p *alerter) Close() error { return nil }

func main() {
	brokers := flag.String("brokers", "", "Kafka brokers (default: an in-process broker)")
	flag.Parse()
	if err := run(context.Background(), *brokers, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "embed:", err)
		os.Exit(1)
	}
}

// run builds and runs the pipeline over a handful of transactions and prints the alerts.
func run(ctx context.Context, brokers string, out *os.File) error {
	if brokers == "" {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "payments"))
		if err != nil {
			return err
		}
		defer c.Close()
		brokers = c.ListenAddrs()[0]
	}
	addrs := strings.Split(brokers, ",")

	format := &stream.JSONFormat{
		KeyField: "card_id",
		Time:     stream.EventTimeSpec{Field: "ts", Format: stream.TimeEpochMillis},
		Fields: []stream.FieldSpec{
			{Name: "amount", Type: stream.Number, Required: true},
			{Name: "currency", Type: stream.String},
		},
	}
	if err := format.Init(); err != nil {
		return err
	}
	alert := &LargeAmountAlert{Topic: "payment-alerts", Threshold: 1000}
	alert.amount, _ = format.FieldIndex("amount")
	alert.currency, _ = format.FieldIndex("currency")
	pipeline := &stream.Pipeline{
		Name:            "embed-example",
		Source:          stream.Source{Topic: "payments", Format: format},
		Operators:       []stream.Operator{alert},
		DeadLetterTopic: "payments-dlq",
	}
	rt, err := stream.NewRuntime(pipeline, stream.Config{
		Brokers: addrs, InstanceID: "embed-1", CreateTopics: true,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return err
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		return err
	}
	defer cl.Close()
	now := time.Now().UnixMilli()
	inputs := []string{
		`{"card_id":"c1","ts":%d,"amount":12.5,"currency":"EUR"}`,
		`{"card_id":"c2","ts":%d,"amount":4200,"currency":"EUR"}`,
		`{"card_id":"c3","ts":%d,"amount":99,"currency":"XXX"}`,
		`{"card_id":"c1","ts":%d,"amount":1500.75,"currency":"USD"}`,
		`{"card_id":"c4","ts":%d,"amount":"lots"}`,
	}
	for _, in := range inputs {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "payments", Value: fmt.Appendf(nil, in, now)}).FirstErr(); err != nil {
			return err
		}
	}

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- rt.Run(runCtx) }()

	// Read the committed alerts and dead letters until all five inputs are accounted for.
	reader, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics("payment-alerts", "payments-dlq"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		stop()
		return err
	}
	defer reader.Close()
	alerts, dead := 0, 0
	deadline, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for alerts+dead < 4 { // two alerts, two dead letters; the small EUR payment produces nothing
		fs := reader.PollFetches(deadline)
		if deadline.Err() != nil {
			stop()
			return fmt.Errorf("timed out with %d alerts and %d dead letters", alerts, dead)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Topic == "payment-alerts" {
				alerts++
				fmt.Fprintf(out, "alert        %s\n", r.Value)
				return
			}
			dead++
			reason := ""
			for _, h := range r.Headers {
				if h.Key == stream.HeaderReason || h.Key == stream.HeaderError {
					reason += " " + h.Key + "=" + string(h.Value)
				}
			}
			fmt.Fprintf(out, "dead letter  %s%s\n", r.Value, reason)
		})
	}
	stop()
	return <-done
}
