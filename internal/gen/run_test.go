package gen

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func newCluster(t *testing.T) (*kfake.Cluster, *kgo.Client) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "tx", "labels"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return c, cl
}

// fakeClock advances one millisecond per call; Run calls it from its own goroutine only.
func fakeClock() func() time.Time {
	i := 0
	return func() time.Time {
		i++
		return clockAt(i)
	}
}

// consume reads records from topics until want records arrived or the deadline passes.
func consume(t *testing.T, c *kfake.Cluster, want int, topics ...string) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for len(recs) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records from %v before the deadline", len(recs), want, topics)
		}
		if err := fs.Err(); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, fs.Records()...)
	}
	return recs
}

func TestRunKfake(t *testing.T) {
	c, cl := newCluster(t)
	const n = 5000
	cfg := Config{Seed: 3, BadRatio: 0.1, LabelDelay: time.Second}
	g := mustNew(t, cfg)
	var st Stats
	rc := RunConfig{Topic: "tx", LabelsTopic: "labels", Count: n, FlushLabels: true, Clock: fakeClock()}
	if err := Run(context.Background(), cl, g, rc, &st); err != nil {
		t.Fatal(err)
	}
	s := st.Snapshot()
	t.Logf("stats %+v", s)
	if s.Records != n || s.Errors != 0 || s.Bad < n/20 || s.Labels != n-s.Bad || s.Fraud == 0 {
		t.Fatalf("stats %+v", s)
	}
	if g.Seq() != n || g.PendingLabels() != 0 {
		t.Fatalf("generator at %d with %d labels pending", g.Seq(), g.PendingLabels())
	}

	// The keys are those of the same generator run anew (card choice does not depend on the clock).
	ref := mustNew(t, cfg)
	var wantKeys []string
	valid := map[string]string{} // event id -> card id
	for i := range n {
		rec := ref.Next(clockAt(i))
		wantKeys = append(wantKeys, string(rec.Key))
		if rec.Bad == NotBad {
			valid[rec.Tx.EventID] = rec.Tx.CardID
		}
	}

	recs := consume(t, c, n+len(valid), "tx", "labels")
	var gotKeys []string
	labels := map[string]bool{}
	for _, r := range recs {
		switch r.Topic {
		case "tx":
			gotKeys = append(gotKeys, string(r.Key))
			if !r.Timestamp.Equal(r.Timestamp.Truncate(time.Millisecond)) || r.Timestamp.Before(t0) {
				t.Fatalf("record timestamp %v is not from the clock", r.Timestamp)
			}
		case "labels":
			var l struct {
				EventID string `json:"event_id"`
				CardID  string `json:"card_id"`
				Label   *int   `json:"label"`
			}
			if err := json.Unmarshal(r.Value, &l); err != nil {
				t.Fatalf("label %s: %v", r.Value, err)
			}
			card, ok := valid[l.EventID]
			if !ok || card != l.CardID || string(r.Key) != card || l.Label == nil || labels[l.EventID] {
				t.Fatalf("label %s with key %q", r.Value, r.Key)
			}
			labels[l.EventID] = true
		}
	}
	slices.Sort(wantKeys)
	slices.Sort(gotKeys)
	if !slices.Equal(wantKeys, gotKeys) {
		t.Errorf("consumed %d transaction keys, not the %d generated ones", len(gotKeys), len(wantKeys))
	}
	if len(labels) != len(valid) {
		t.Errorf("%d labels for %d valid records", len(labels), len(valid))
	}
}

func TestRunRate(t *testing.T) {
	_, cl := newCluster(t)
	g := mustNew(t, Config{Seed: 1})
	var st Stats
	start := time.Now()
	err := Run(context.Background(), cl, g, RunConfig{Topic: "tx", Rate: 2000, Count: 200}, &st)
	if err != nil {
		t.Fatal(err)
	}
	// 200 records at 2000/s take 100 ms of tokens; the first come after one tick.
	if el := time.Since(start); el < 90*time.Millisecond {
		t.Errorf("200 records at 2000/s took only %v", el)
	}
	if s := st.Snapshot(); s.Records != 200 || s.Labels != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestRunUntilCancelled(t *testing.T) {
	c, cl := newCluster(t)
	g := mustNew(t, Config{Seed: 2, LabelDelay: -1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	calls := 0
	clock := func() time.Time {
		calls++
		if calls == 3000 {
			cancel()
		}
		return clockAt(calls)
	}
	var st Stats
	if err := Run(ctx, cl, g, RunConfig{Topic: "tx", LabelsTopic: "labels", Clock: clock}, &st); err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
	s := st.Snapshot()
	// Generation stops at the first batch boundary after the cancel (batches of 512 at Rate 0).
	if s.Records < 1000 || s.Records > 3000+fastBatch || s.Errors != 0 || s.Records != g.Seq() {
		t.Fatalf("stats %+v, generated %d", s, g.Seq())
	}
	// Everything handed to the client was delivered despite the cancelled context.
	consume(t, c, int(s.Records), "tx")
}

func TestRunProduceError(t *testing.T) {
	_, cl := newCluster(t)
	// Records above the client's 1 MB batch limit fail at once.
	g := mustNew(t, Config{Seed: 2, BadRatio: 0.5, BadKinds: []BadKind{Huge}, HugeBytes: 2 << 20})
	var st Stats
	err := Run(context.Background(), cl, g, RunConfig{Topic: "tx", Count: 1000}, &st)
	if !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("err = %v, want MessageTooLarge", err)
	}
	if s := st.Snapshot(); s.Errors == 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestRunConfigValidate(t *testing.T) {
	err := RunConfig{LabelsTopic: "", Rate: -1, Count: -1, Partitions: -2, FlushTimeout: -1}.Validate()
	for _, s := range []string{"Topic", "Rate = -1", "Count = -1", "Partitions = -2", "FlushTimeout = -1ns"} {
		if err == nil || !strings.Contains(err.Error(), s) {
			t.Errorf("error %v does not mention %q", err, s)
		}
	}
	if err := (RunConfig{Topic: "a", LabelsTopic: "a"}).Validate(); err == nil {
		t.Error("same topic for transactions and labels accepted")
	}
	_, cl := newCluster(t)
	if err := Run(context.Background(), cl, mustNew(t, Config{}), RunConfig{}, nil); err == nil {
		t.Error("Run without a topic")
	}
}

// partitions lists topics with a fresh client: a client caches metadata for a moment.
func partitions(t *testing.T, c *kfake.Cluster, topics ...string) map[string]int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	td, err := kadm.NewClient(cl).ListTopics(context.Background(), topics...)
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, d := range td {
		n[d.Topic] = len(d.Partitions)
	}
	return n
}

func TestEnsureTopics(t *testing.T) {
	c, cl := newCluster(t)
	ctx := context.Background()
	for range 2 { // the second time everything exists
		if err := EnsureTopics(ctx, cl, 3, "tx", "fresh-a", "fresh-b"); err != nil {
			t.Fatal(err)
		}
	}
	got := partitions(t, c, "tx", "fresh-a", "fresh-b")
	if want := map[string]int{"tx": 4, "fresh-a": 3, "fresh-b": 3}; !maps.Equal(got, want) {
		t.Errorf("partitions %v, want %v", got, want)
	}

	// Run creates its topics when asked.
	g := mustNew(t, Config{})
	rc := RunConfig{Topic: "new-tx", LabelsTopic: "new-labels", Count: 10, CreateTopics: true, Partitions: 2}
	if err := Run(ctx, cl, g, rc, nil); err != nil {
		t.Fatal(err)
	}
	got = partitions(t, c, "new-tx", "new-labels")
	if want := map[string]int{"new-tx": 2, "new-labels": 2}; !maps.Equal(got, want) {
		t.Errorf("partitions %v, want %v", got, want)
	}
}
