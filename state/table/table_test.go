package table

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/state"
	"github.com/streamd/streamd/test/kafkatest"
)

// rows reads every key of keys from a view, as "k=v" for those present.
func rows(t *testing.T, v *View, keys ...string) []string {
	t.Helper()
	var out []string
	for _, k := range keys {
		val, ok, err := v.Get([]byte(k), nil)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			out = append(out, k+"="+string(val))
		}
	}
	sort.Strings(out)
	return out
}

// TestTableFollowsTopic materializes a two-partition topic written in transactions (one aborted,
// one tombstone), checks that views are consistent versions that only move forward, and that a
// reopen replays only the tail.
func TestTableFollowsTopic(t *testing.T) {
	b := kafkatest.Start(t)
	topic := b.Topic(t, "table", 2)
	txn := b.Client(t, kgo.TransactionalID(kafkatest.Name(t, "txn")), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx := context.Background()
	write := func(commit bool, recs ...*kgo.Record) {
		t.Helper()
		if err := txn.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if err := txn.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := txn.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	rec := func(p int32, k, v string) *kgo.Record {
		r := &kgo.Record{Key: []byte(k), Partition: p}
		if v != "" {
			r.Value = []byte(v)
		}
		return r
	}
	write(true, rec(0, "a", "1"), rec(1, "b", "1"), rec(0, "c", "1"))
	write(false, rec(0, "a", "aborted"), rec(1, "d", "aborted"))

	dir := t.TempDir()
	opts := []kgo.Opt{kgo.SeedBrokers(b.Addrs...)}
	open := func() *Table {
		t.Helper()
		tb, err := Open(ctx, Config{Name: "m", Topic: topic, Partitions: []int32{1, 0}, DB: state.Options{Dir: dir}, ClientOpts: opts})
		if err != nil {
			t.Fatal(err)
		}
		return tb
	}
	tb := open()
	v, err := tb.View()
	if err != nil {
		t.Fatal(err)
	}
	if got := rows(t, v, "a", "b", "c", "d"); fmt.Sprint(got) != "[a=1 b=1 c=1]" {
		t.Fatalf("restored %v", got)
	}
	// Partition 0 holds a, c and the aborted a plus two markers: offset 5; partition 1 b, d, two markers: 4.
	if got := v.Position().String(); got != "0:5,1:4" {
		t.Fatalf("position %s, want 0:5,1:4", got)
	}
	first := v.Position()

	write(true, rec(0, "a", "2"), rec(0, "c", ""), rec(1, "e", "1"))
	// The old view does not move.
	if got := rows(t, v, "a", "c", "e"); fmt.Sprint(got) != "[a=1 c=1]" {
		t.Fatalf("old view changed: %v", got)
	}
	v.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		v, err = tb.View()
		if err != nil {
			t.Fatal(err)
		}
		if v.Position().String() == "0:8,1:6" {
			break
		}
		if _, behind := v.Position().Behind(first); behind {
			t.Fatalf("view %s went back from %s", v.Position(), first)
		}
		v.Close()
		if time.Now().After(deadline) {
			t.Fatal("the table did not follow its topic")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := rows(t, v, "a", "b", "c", "e"); fmt.Sprint(got) != "[a=2 b=1 e=1]" {
		t.Fatalf("followed %v", got)
	}
	v.Close()
	if err := tb.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.View(); err != ErrClosed {
		t.Fatalf("view after close: %v", err)
	}

	write(true, rec(1, "b", "3"))
	tb = open()
	defer tb.Close()
	v, err = tb.View()
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if got := rows(t, v, "a", "b", "c", "e"); fmt.Sprint(got) != "[a=2 b=3 e=1]" || v.Position().String() != "0:8,1:8" {
		t.Fatalf("after reopen %v at %s", got, v.Position())
	}
}

func TestPosition(t *testing.T) {
	p, err := ParsePosition("0:17,3:4")
	if err != nil || p.String() != "0:17,3:4" {
		t.Fatalf("%v %v", p, err)
	}
	q := Position{{0, 18}, {3, 4}}
	if po, ok := p.Behind(q); !ok || po.Partition != 0 {
		t.Fatalf("behind: %v %v", po, ok)
	}
	if _, ok := q.Behind(p); ok {
		t.Fatal("q is not behind p")
	}
	for _, bad := range []string{"x", "0:", ":1", "0:1,"} {
		if _, err := ParsePosition(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// BenchmarkViewGet reads rows of a three-partition table of 10,000 rows through one view, as the
// events of a cycle do: hits, and misses (a key no partition holds, read in all three).
func BenchmarkViewGet(b *testing.B) {
	br := kafkatest.Start(b)
	topic := br.Topic(b, "table", 3)
	cl := br.Client(b)
	var recs []*kgo.Record
	for i := range 10000 {
		recs = append(recs, &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "m-%05d", i), Value: fmt.Appendf(nil, `{"risk":{"score":%d},"tier":"gold"}`, i)})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		b.Fatal(err)
	}
	tb, err := Open(context.Background(), Config{Name: "m", Topic: topic, Partitions: []int32{0, 1, 2}, DB: state.Options{Dir: b.TempDir()}, ClientOpts: []kgo.Opt{kgo.SeedBrokers(br.Addrs...)}})
	if err != nil {
		b.Fatal(err)
	}
	defer tb.Close()
	v, err := tb.View()
	if err != nil {
		b.Fatal(err)
	}
	defer v.Close()
	keys := make([][]byte, 1024)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "m-%05d", (i*7919)%10000)
	}
	for _, bc := range []struct {
		name   string
		prefix string
	}{{"hit", ""}, {"miss", "x"}} {
		b.Run(bc.name, func(b *testing.B) {
			ks := keys
			if bc.prefix != "" {
				ks = make([][]byte, len(keys))
				for i, k := range keys {
					ks[i] = append([]byte(bc.prefix), k...)
				}
			}
			var buf []byte
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				var ok bool
				buf, ok, err = v.Get(ks[i%len(ks)], buf[:0])
				if err != nil || ok == (bc.prefix != "") {
					b.Fatalf("get: %v %v", ok, err)
				}
			}
		})
	}
}

// TestTableAfterDeletedRecords: a table whose topic's first records were deleted (retention)
// restores from the first offset the topic holds, instead of failing out of range.
func TestTableAfterDeletedRecords(t *testing.T) {
	b := kafkatest.Start(t)
	b.RequireReal(t, "kfake does not delete records")
	topic := b.Topic(t, "table", 1)
	cl := b.Client(t)
	ctx := context.Background()
	var recs []*kgo.Record
	for i := range 10 {
		recs = append(recs, &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "k%d", i), Value: []byte("v")})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	del := kadm.Offsets{}
	del.Add(kadm.Offset{Topic: topic, Partition: 0, At: 4})
	if resp, err := adm.DeleteRecords(ctx, del); err != nil || resp.Error() != nil {
		t.Fatalf("delete records: %v %v", err, resp.Error())
	}
	tb, err := Open(ctx, Config{Name: "m", Topic: topic, Partitions: []int32{0}, DB: state.Options{Dir: t.TempDir()}, ClientOpts: []kgo.Opt{kgo.SeedBrokers(b.Addrs...)}})
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	v, err := tb.View()
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if got := rows(t, v, "k3", "k4", "k9"); fmt.Sprint(got) != "[k4=v k9=v]" || v.Position().String() != "0:10" {
		t.Fatalf("restored %v at %s, want [k4=v k9=v] at 0:10", got, v.Position())
	}
}
