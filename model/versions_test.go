package model

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestVersionsTopic: against an in-process broker, push checks and publishes versions numbered 1,
// 2, ...; a starting instance has read the topic to its end before it returns (so it starts on
// the version that was live, as after a restart); it follows pushes, rollbacks and a bad version
// written behind push's back (refused, the live version keeps serving); ReadVersions lists them.
func TestVersionsTopic(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	opts := []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	newOp := func() *Operator {
		t.Helper()
		op, err := New(Spec{Features: offlineFeatures(), Output: "p", Labels: LabelSpec{Field: "label"}, VersionsTopic: "app-model-versions",
			Models: []ModelSpec{{Name: "nightly", Offline: &OfflineSpec{Model: loadTestModel(t, "fraud_v1.json")}}}}, offlineFormat(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		return op
	}
	op := newOp()
	if v, err := op.PushVersion(ctx, cl, "nightly", readTestFile(t, "fraud_v2.json")); err != nil || v != 1 {
		t.Fatalf("push: %d, %v", v, err)
	}
	if _, err := op.PushVersion(ctx, cl, "nightly", readTestFile(t, "fraud_regression.json")); err == nil || !strings.Contains(err.Error(), "regression") {
		t.Fatalf("push of a regression model: %v", err)
	}
	if _, err := op.PushVersion(ctx, cl, "daily", readTestFile(t, "fraud_v2.json")); err == nil || !strings.Contains(err.Error(), "nightly") {
		t.Fatalf("push to an unknown model: %v", err)
	}
	if v, err := op.PushVersion(ctx, cl, "nightly", readTestFile(t, "fraud_lgb.txt")); err != nil || v != 2 {
		t.Fatalf("push: %d, %v", v, err)
	}
	if err := op.Rollback(ctx, cl, "nightly", 1); err != nil {
		t.Fatal(err)
	}
	if err := op.Rollback(ctx, cl, "nightly", 5); err == nil || !strings.Contains(err.Error(), "no version 5") {
		t.Fatalf("rollback to a version that is not there: %v", err)
	}

	// An instance starting now knows version 1 is live as soon as it is open.
	inst := newOp()
	log := slog.New(slog.DiscardHandler)
	if err := inst.followWith(opts, log); err != nil {
		t.Fatal(err)
	}
	defer inst.releaseVersions()
	c0 := inst.catalogs[0]
	if v := c0.live.Load(); v != 1 {
		t.Fatalf("live version %d after start, want 1", v)
	}
	waitLive := func(want int64) {
		t.Helper()
		for c0.live.Load() != want {
			if ctx.Err() != nil {
				t.Fatalf("live version %d, want %d", c0.live.Load(), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if err := op.Rollback(ctx, cl, "nightly", 2); err != nil {
		t.Fatal(err)
	}
	waitLive(2)
	// Behind push's back: a version that predicts another task, made live.
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "app-model-versions", Key: []byte("nightly/v/3"), Value: readTestFile(t, "fraud_regression.json")},
		&kgo.Record{Topic: "app-model-versions", Key: []byte("nightly/live"), Value: []byte("3")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for c0.refusals.Load() < 2 {
		if ctx.Err() != nil {
			t.Fatalf("refusals %d, want 2", c0.refusals.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if v := c0.live.Load(); v != 2 {
		t.Fatalf("live version %d after a bad version, want 2", v)
	}
	if err := inst.RollbackLive(ctx, "nightly", 0); err != nil {
		t.Fatal(err)
	}
	waitLive(0)
	// Every task closed, one opens again: the reader reads the topic again, and counts nothing
	// twice.
	inst.releaseVersions()
	if err := inst.followWith(opts, log); err != nil {
		t.Fatal(err)
	}
	if n := c0.refusals.Load(); n != 2 || c0.live.Load() != 0 {
		t.Fatalf("after the reader started again: refusals %d (want 2), live %d (want 0)", n, c0.live.Load())
	}
	hist, err := ReadVersions(ctx, cl, "app-model-versions")
	if err != nil {
		t.Fatal(err)
	}
	if h := hist["nightly"]; h == nil || h.Live != 0 || len(h.Versions) != 3 {
		t.Fatalf("history %+v", hist["nightly"])
	}
}
