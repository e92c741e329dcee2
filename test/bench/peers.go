package main

import (
	"bytes"
	"context"
	"os"
	"time"

	"github.com/streamd/streamd/stream"
	"github.com/streamd/streamd/window"
	"github.com/streamd/streamd/window/agg"
)

// The streamd side of two jobs of `make bench-peers` (test/peers, bench/peers/README.md); the third,
// the 60 s tumbling window, is the window workload above.

// ysb is the Yahoo Streaming Benchmark shape: ad events (test/peers/ysb.go), views only, a count per
// campaign per 10 s tumbling window. streamd has no join with a table yet, so the campaign is the
// one each event carries (the source key; the input is partitioned by it), where Kafka Streams and
// Flink look it up from the ad id in the campaign table and repartition by it. Nor has it a filter
// in its YAML: the filter is an operator of this benchmark's own (viewFilter).
func ysb(ctx context.Context, addrs []string, input, group, out string) error {
	f := &stream.JSONFormat{
		KeyField: "campaign_id",
		Time:     stream.EventTimeSpec{Field: "event_time", Format: stream.TimeRFC3339, MaxFuture: time.Hour},
		Fields: []stream.FieldSpec{
			{Name: "ad_id", Type: stream.String, Required: true, MaxLength: 64},
			{Name: "event_type", Type: stream.String, Required: true, MaxLength: 16},
		},
		MaxRecordBytes: 64 << 10,
	}
	if err := f.Init(); err != nil {
		return err
	}
	et, _ := f.FieldIndex("event_type")
	op, err := window.New(window.Spec{Name: "campaign_views", Kind: window.Tumbling, Size: 10 * time.Second,
		Aggs: []window.Agg{{Name: "count", Kind: agg.Count}}, Output: out}, f)
	if err != nil {
		return err
	}
	return runStateful(ctx, addrs, group, input, out, f, viewFilter{field: et}, op)
}

// viewFilter drops every event whose event_type (field index field) is not "view": stream.ErrDrop,
// so later operators do not see it. The checker (test/peers) counts what the windows saw.
type viewFilter struct{ field int }

func (v viewFilter) Name() string { return "view_filter" }

func (v viewFilter) Open(*stream.Task) (stream.Processor, error) { return v, nil }

var view = []byte("view")

func (v viewFilter) Process(_ *stream.Task, ev *stream.Event) error {
	if s, _ := ev.String(v.field); !bytes.Equal(s, view) {
		return stream.ErrDrop
	}
	return nil
}

func (v viewFilter) Close() error { return nil }

// sliding is the fraud-features job: per card, the count and sum of amount over the last 10 min in
// panes of 10 s, as of each event, one result per event to the output topic.
func sliding(ctx context.Context, addrs []string, input, group, out string) error {
	f := benchFormat()
	op, err := window.New(window.Spec{Name: "card_10m", Kind: window.Sliding, Size: 10 * time.Minute, Resolution: 10 * time.Second,
		Aggs:   []window.Agg{{Name: "count", Kind: agg.Count}, {Name: "sum_amount", Kind: agg.Sum, Field: "amount"}},
		Output: out}, f)
	if err != nil {
		return err
	}
	return runStateful(ctx, addrs, group, input, out, f, op)
}

// runStateful runs the operators over input with their state in a temporary directory, removed
// afterwards.
func runStateful(ctx context.Context, addrs []string, group, input, out string, f stream.Format, ops ...stream.Operator) error {
	dir, err := os.MkdirTemp("", "streamd-bench-"+group+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	return runPipeline(ctx, addrs, group, &stream.Pipeline{
		Name:            group,
		Source:          stream.Source{Topic: input, Format: f},
		Operators:       ops,
		DeadLetterTopic: out + "-dlq",
		LateTopic:       out + "-late",
	}, dir)
}
