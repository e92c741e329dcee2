package model

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/stream"
	"github.com/streamd/streamd/test/kafkatest"
)

// TestReplicasMerge runs the scoring operator on two partitions through the runtime and checks that
// the partitions' replicas are merged into new versions, that both partitions adopt them, and that
// every prediction carries a version.
func TestReplicasMerge(t *testing.T) {
	b := kafkatest.Start(t)
	src := b.Topic(t, "tx", 2)
	app, preds := kafkatest.Name(t, "app"), kafkatest.Name(t, "preds")
	p := pipeline(t, false, 1000)
	p.Name, p.Source.Topic = app, src
	op := p.Operators[1].(*Operator)
	op.spec.Output = preds
	op.spec.MergeInterval = 300 * time.Millisecond
	p.DeadLetterTopic = kafkatest.Name(t, "dlq")

	rt, err := stream.NewRuntime(p, stream.Config{
		Brokers: b.Addrs, InstanceID: "m1", CreateTopics: true, StateDir: t.TempDir(), IdleTimeout: -1,
		SessionTimeout: 6 * time.Second, CommitInterval: 50 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registerer: prometheus.NewRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	// Feed labelled events slowly enough that several merge intervals pass while they flow.
	cl := b.Client(t)
	exs := genExamples(rand.New(rand.NewPCG(4, 4)), 12000)
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; i < len(exs); i += 400 {
		var recs []*kgo.Record
		for _, e := range exs[i:min(i+400, len(exs))] {
			r := e.record(true)
			r.Topic = src
			recs = append(recs, r)
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		v := op.Registry().View()
		if allAdopted(v, 3) || time.Now().After(deadline) {
			break
		}
	}
	var v View
	for time.Now().Before(deadline) {
		v = op.Registry().View()
		if allAdopted(v, 2) && v.Merges > 0 {
			break
		}
		// Keep events flowing: a task ticks as it processes.
		r := exs[rand.IntN(len(exs))].record(true)
		r.Topic = src
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("after merging: %+v", v.Models[0].Partitions)
	if v.Merges == 0 || !allAdopted(v, 2) {
		t.Fatalf("replicas were not merged and adopted: merges %v, %+v", v.Merges, v.Models)
	}
	if auc := metric(v, "ftrl", "auc"); auc < 0.6 {
		t.Errorf("merged models did not learn: AUC %.3f", auc)
	}
}

// allAdopted reports whether both partitions' replicas of every model are at version min or later.
func allAdopted(v View, minVersion int64) bool {
	for _, m := range v.Models {
		if len(m.Partitions) != 2 {
			return false
		}
		for _, r := range m.Partitions {
			if r.Version < minVersion {
				return false
			}
		}
	}
	return len(v.Models) > 0
}
