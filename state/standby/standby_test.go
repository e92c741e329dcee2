package standby

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/state"
	"github.com/streamd/streamd/test/kafkatest"
)

func TestChoose(t *testing.T) {
	three := []Member{{"c", []int32{4, 5}}, {"a", []int32{0, 1}}, {"b", []int32{2, 3}}}
	for _, tc := range []struct {
		name    string
		members []Member
		self    string
		n       int
		want    []int32
	}{
		{"two members: everything the other owns", []Member{{"a", []int32{0, 2}}, {"b", []int32{1, 3}}}, "a", 1, []int32{1, 3}},
		{"two members, n above the count", []Member{{"a", []int32{0, 2}}, {"b", []int32{1, 3}}}, "b", 5, []int32{0, 2}},
		{"three members, n=1: the next one's", three, "a", 1, []int32{2, 3}},
		{"three members, n=1, wrapping around", three, "c", 1, []int32{0, 1}},
		{"three members, n=2: both others", three, "b", 2, []int32{0, 1, 4, 5}},
		{"alone", []Member{{"a", []int32{0, 1}}}, "a", 1, nil},
		{"not a member", three, "x", 1, nil},
		{"n=0", three, "a", 0, nil},
		{"a member with nothing assigned", []Member{{"a", nil}, {"b", []int32{0, 1}}, {"c", nil}}, "a", 1, []int32{0, 1}},
		{"a partition seen twice during a move is not its own standby", []Member{{"a", []int32{0}}, {"b", []int32{0, 1}}}, "a", 1, []int32{1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Choose(tc.members, tc.self, tc.n); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Choose(%v, %q, %d) = %v, want %v", tc.members, tc.self, tc.n, got, tc.want)
			}
		})
	}
	// Every partition has min(n, members-1) copies, none on its owner.
	copies := map[int32]int{}
	for _, m := range three {
		for _, p := range Choose(three, m.ID, 2) {
			copies[p]++
		}
	}
	for p := range int32(6) {
		if copies[p] != 2 {
			t.Errorf("partition %d has %d replicas with n=2 over three members, want 2", p, copies[p])
		}
	}
}

// fixture is a changelog topic of one store "s" on a test broker, and Replicas following it.
type fixture struct {
	b       *kafkatest.Broker
	topic   string
	dir     string
	lag     *prometheus.GaugeVec
	count   prometheus.Gauge
	r       *Replicas
	txnSeq  int
	txnBase string
}

func newFixture(t *testing.T, partitions int32) *fixture {
	b := kafkatest.Start(t)
	f := &fixture{b: b, topic: kafkatest.Name(t, "s-changelog"), dir: t.TempDir(), txnBase: kafkatest.Name(t, "txn")}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(b.Client(t)).CreateTopic(ctx, partitions, 1, state.ChangelogConfigs(), f.topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatal(err)
	}
	f.lag = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lag"}, []string{"store", "partition"})
	f.count = prometheus.NewGauge(prometheus.GaugeOpts{Name: "count"})
	f.r = New(Config{
		Stores:     []string{"s"},
		Changelog:  func(string) string { return f.topic },
		Dir:        f.partitionDir,
		ClientOpts: append([]kgo.Opt{kgo.SeedBrokers(b.Addrs...)}, b.ClientOpts...),
		Partitions: f.count,
		Lag:        f.lag,
	})
	t.Cleanup(f.r.Close)
	return f
}

func (f *fixture) partitionDir(p int32) string { return filepath.Join(f.dir, fmt.Sprintf("src-%d", p)) }

// produce writes key→value records to partition p in one transaction, committed or aborted, as a
// task's commit cycle does; a nil value is a tombstone.
func (f *fixture) produce(t *testing.T, p int32, commit bool, kvs ...string) {
	t.Helper()
	f.txnSeq++
	cl := f.b.Client(t, kgo.TransactionalID(fmt.Sprintf("%s-%d", f.txnBase, f.txnSeq)), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(kvs); i += 2 {
		rec := &kgo.Record{Topic: f.topic, Partition: p, Key: []byte(kvs[i])}
		if kvs[i+1] != "<nil>" {
			rec.Value = []byte(kvs[i+1])
		}
		if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) high(t *testing.T, p int32) int64 {
	t.Helper()
	b, err := state.ChangelogBounds(context.Background(), f.r.cfg.ClientOpts, f.topic, p, false)
	if err != nil {
		t.Fatal(err)
	}
	return b.High
}

// waitCaughtUp waits until p's replica stands at the changelog's end.
func (f *fixture) waitCaughtUp(t *testing.T, p int32) {
	t.Helper()
	end := f.high(t, p)
	deadline := time.Now().Add(30 * time.Second)
	for {
		pos, ok := f.r.Position(p)
		if ok && pos.Offsets["s"] == end && pos.TotalLag() == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replica of partition %d is at %v (lag %v), the changelog ends at %d", p, pos.Offsets, pos.Lag, end)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// contents opens p's directory and returns store s as a map, with its changelog offset.
func (f *fixture) contents(t *testing.T, p int32) (map[string]string, int64) {
	t.Helper()
	db, err := state.Open(state.Options{Dir: f.partitionDir(p)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := db.Store("s")
	if err != nil {
		t.Fatal(err)
	}
	it, err := s.NewIter(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for ; it.Valid(); it.Next() {
		got[string(it.Key())] = string(it.Value())
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	return got, s.ChangelogOffset()
}

// TestReplicaIsTheCommittedChangelog: a replica holds exactly the committed changelog (aborted
// records and deleted keys absent), records its offset at the changelog's end, and once taken, a
// restore of the same directory replays only what was written after it.
func TestReplicaIsTheCommittedChangelog(t *testing.T) {
	f := newFixture(t, 2)
	f.produce(t, 0, true, "a", "1", "b", "1", "c", "1")
	f.r.Set([]int32{0})
	f.produce(t, 0, false, "a", "aborted", "z", "aborted")
	f.produce(t, 0, true, "b", "2", "c", "<nil>")
	f.waitCaughtUp(t, 0)
	if got := testutil.ToFloat64(f.count); got != 1 {
		t.Errorf("partitions gauge = %v, want 1", got)
	}
	if got := testutil.ToFloat64(f.lag.WithLabelValues("s", "0")); got != 0 {
		t.Errorf("lag of a caught-up replica = %v", got)
	}
	pos, ok := f.r.Take(0)
	if !ok {
		t.Fatal("Take: partition 0 not followed")
	}
	if got := f.r.Following(); len(got) != 0 {
		t.Errorf("following %v after Take", got)
	}
	if testutil.CollectAndCount(f.lag) != 0 {
		t.Error("the lag series of a taken replica is still exported")
	}
	got, off := f.contents(t, 0)
	if want := map[string]string{"a": "1", "b": "2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("replica holds %v, want %v", got, want)
	}
	if end := f.high(t, 0); off != end || pos.Offsets["s"] != end {
		t.Errorf("replica's offset %d (position %d), the changelog ends at %d", off, pos.Offsets["s"], end)
	}

	// The owner writes on after the take; the restore of the taken directory replays only that.
	f.produce(t, 0, true, "d", "1", "a", "<nil>")
	db, err := state.Open(state.Options{Dir: f.partitionDir(0)})
	if err != nil {
		t.Fatal(err)
	}
	s, err := db.Store("s")
	if err != nil {
		t.Fatal(err)
	}
	st, err := state.RestoreFromKafka(context.Background(), f.r.cfg.ClientOpts, f.topic, 0, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Records != 2 || st.Full {
		t.Errorf("restore after the take replayed %d records (full %v), want the 2 of the tail", st.Records, st.Full)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.contents(t, 0); !reflect.DeepEqual(got, map[string]string{"b": "2", "d": "1"}) {
		t.Errorf("after the tail: %v", got)
	}
}

// TestReplicaAheadOfChangelogIsWiped: a directory whose state reflects more than the changelog
// holds (the topic was recreated) is wiped and restored from the start, not continued.
func TestReplicaAheadOfChangelogIsWiped(t *testing.T) {
	f := newFixture(t, 1)
	f.produce(t, 0, true, "a", "1", "b", "1")
	db, err := state.Open(state.Options{Dir: f.partitionDir(0)})
	if err != nil {
		t.Fatal(err)
	}
	s, err := db.Store("s")
	if err != nil {
		t.Fatal(err)
	}
	r := s.NewRestorer()
	if err := r.Apply([]byte("ghost"), []byte("from another topic"), false, 1000); err != nil {
		t.Fatal(err)
	}
	if err := r.Finish(1000); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	f.r.Set([]int32{0})
	f.waitCaughtUp(t, 0)
	f.r.Take(0)
	got, off := f.contents(t, 0)
	if want := map[string]string{"a": "1", "b": "1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("replica holds %v, want %v", got, want)
	}
	if end := f.high(t, 0); off != end {
		t.Errorf("offset %d, changelog end %d", off, end)
	}
}

// TestSetRemovesWhatItStops: a partition dropped from the standby set loses its directory; Take
// and Close keep theirs.
func TestSetRemovesWhatItStops(t *testing.T) {
	f := newFixture(t, 3)
	for p := range int32(3) {
		f.produce(t, p, true, "k", fmt.Sprint(p))
	}
	f.r.Set([]int32{0, 1, 2})
	for p := range int32(3) {
		f.waitCaughtUp(t, p)
	}
	f.r.Take(2)
	f.r.Set([]int32{1})
	exists := func(p int32) bool { _, err := os.Stat(f.partitionDir(p)); return err == nil }
	if exists(0) {
		t.Error("the directory of partition 0, dropped from the standby set, is still there")
	}
	if !exists(2) {
		t.Error("the directory of partition 2, taken, was removed")
	}
	if got := f.r.Following(); !reflect.DeepEqual(got, []int32{1}) {
		t.Errorf("following %v, want [1]", got)
	}
	f.r.Close()
	if !exists(1) {
		t.Error("Close removed the directory of partition 1")
	}
	if got := testutil.ToFloat64(f.count); got != 0 {
		t.Errorf("partitions gauge after Close = %v", got)
	}
	f.r.Set([]int32{0})
	if got := f.r.Following(); len(got) != 0 {
		t.Errorf("Set after Close started %v", got)
	}
}
