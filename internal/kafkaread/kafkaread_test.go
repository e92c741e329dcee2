package kafkaread

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestCommitted: a committed transaction's records come back, an aborted one's and the markers do
// not, and the read ends at the end offsets (a commit marker) without waiting for more.
func TestCommitted(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "t"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	opts := []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if recs, err := Committed(ctx, opts, "t"); err != nil || len(recs) != 0 {
		t.Fatalf("empty topic: %d records, %v", len(recs), err)
	}
	p, err := kgo.NewClient(append(opts, kgo.TransactionalID("tx"), kgo.DefaultProduceTopic("t"))...)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, commit := range []bool{true, false, true} {
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i := range 5 {
			v := fmt.Sprintf("%v-%d", commit, i)
			if err := p.ProduceSync(ctx, &kgo.Record{Key: []byte(v), Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	recs, err := Committed(ctx, opts, "t")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 10 {
		t.Fatalf("%d records, want the 10 committed", len(recs))
	}
	for _, r := range recs {
		if string(r.Value[:4]) != "true" {
			t.Fatalf("record %q of an aborted transaction returned", r.Value)
		}
	}
	done, stop := context.WithCancel(ctx)
	stop()
	if _, err := Committed(done, opts, "t"); !errors.Is(err, context.Canceled) {
		t.Fatalf("with an ended context: %v, want context.Canceled", err)
	}
}
