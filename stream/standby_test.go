package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/streamd/streamd/state"
	"github.com/streamd/streamd/state/standby"
	"github.com/streamd/streamd/test/kafkatest"
)

// changelogHigh sums the high watermarks of the changelog partitions of partitions, over every
// store of the runtime.
func changelogHigh(t *testing.T, b *kafkatest.Broker, rt *Runtime, partitions []int32) int64 {
	t.Helper()
	var sum int64
	for _, store := range rt.stores {
		for _, p := range partitions {
			bd, err := state.ChangelogBounds(context.Background(), rt.restoreOpts(), state.ChangelogTopic(rt.pipeline.Name, store), p, false)
			if err != nil {
				t.Fatal(err)
			}
			sum += bd.High
		}
	}
	return sum
}

// standbyCaughtUp reports whether rt's replicas of partitions stand at their changelogs' ends.
func standbyCaughtUp(t *testing.T, rt *Runtime, partitions []int32) bool {
	t.Helper()
	for _, p := range partitions {
		pos, ok := rt.standby.Position(p)
		if !ok {
			return false
		}
		for _, store := range rt.stores {
			bd, err := state.ChangelogBounds(context.Background(), rt.restoreOpts(), state.ChangelogTopic(rt.pipeline.Name, store), p, false)
			if err != nil || pos.Offsets[store] != bd.High {
				return false
			}
		}
	}
	return true
}

// TestStandbyPromotionReplaysOnlyTheTail: two instances with state.standby_replicas 1 each keep a
// replica of the other's partitions. When one leaves, the survivor takes its partitions over from
// the replicas: the records it replays are at most those written to the changelogs after its
// replicas had caught up (without replicas it would replay every record of those partitions), it
// logs the promotion, and the state it goes on from is right (counts continue exactly once).
func TestStandbyPromotionReplaysOnlyTheTail(t *testing.T) {
	b := kafkatest.Start(t)
	src := b.Topic(t, "src", 4)
	app, out, dlq := kafkatest.Name(t, "app"), kafkatest.Name(t, "out"), kafkatest.Name(t, "dlq")
	p := &Pipeline{
		Name:            app,
		Source:          Source{Topic: src, Format: fatalFormat()},
		Operators:       []Operator{&countOp{Topic: out}},
		DeadLetterTopic: dlq,
	}
	in := produceInputs(t, b, src, 0, 600, "", 0)
	cfgA := fatalConfig(b, t.TempDir())
	cfgA.StandbyReplicas, cfgA.LeaveGroupOnShutdown = 1, true
	a := start(t, p, cfgA)
	b.WaitCaughtUp(t, app, src, 60*time.Second, a.stopped)
	cfgB := fatalConfig(b, t.TempDir())
	cfgB.InstanceID, cfgB.StandbyReplicas = "i2", 1
	second := start(t, p, cfgB)

	var ofA, ofB []int32
	waitFor(t, 60*time.Second, "each instance to own partitions and stand by for all of the other's", func() bool {
		if err := errors.Join(a.stopped(), second.stopped()); err != nil {
			t.Fatal(err)
		}
		ofA, ofB = a.rt.Assigned(), second.rt.Assigned()
		return len(ofA) > 0 && len(ofB) > 0 && len(ofA)+len(ofB) == 4 && a.rt.Ready() && second.rt.Ready() &&
			reflect.DeepEqual(a.rt.standby.Following(), ofB) && reflect.DeepEqual(second.rt.standby.Following(), ofA)
	})
	if got := testutil.ToFloat64(second.rt.m.standbyPartitions); got != float64(len(ofA)) {
		t.Errorf("streamd_standby_partitions = %v, want %d", got, len(ofA))
	}
	waitFor(t, 60*time.Second, "the second instance's replicas to catch up", func() bool { return standbyCaughtUp(t, second.rt, ofA) })
	for _, pa := range ofA {
		if got := testutil.ToFloat64(second.rt.m.standbyLag.WithLabelValues("counts", fmt.Sprint(pa))); got != 0 {
			t.Errorf("streamd_standby_lag_offsets{store=counts,partition=%d} = %v for a caught-up replica", pa, got)
		}
	}
	restoredBefore := testutil.ToFloat64(second.rt.m.restoredRecords)
	highBefore := changelogHigh(t, b, second.rt, ofA)
	var full int
	for _, store := range second.rt.stores {
		for _, r := range b.ReadCommitted(t, state.ChangelogTopic(app, store), 30*time.Second) {
			for _, pa := range ofA {
				if r.Partition == pa {
					full++
				}
			}
		}
	}

	if err := a.stop(t); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the survivor to own every partition", func() bool {
		if err := second.stopped(); err != nil {
			t.Fatal(err)
		}
		return len(second.rt.Assigned()) == 4 && second.rt.Ready()
	})
	tail := changelogHigh(t, b, second.rt, ofA) - highBefore
	replayed := int64(testutil.ToFloat64(second.rt.m.restoredRecords) - restoredBefore)
	if int64(full) <= tail {
		t.Fatalf("the test cannot tell a promotion from a full restore: %d records in the changelogs, %d written after the replicas caught up", full, tail)
	}
	if replayed > tail {
		t.Errorf("the survivor replayed %d changelog records taking over %v, more than the %d offsets written after its replicas caught up (a full restore: %d)", replayed, ofA, tail, full)
	}
	t.Logf("took over %v replaying %d records (tail %d offsets; full restore %d records)", ofA, replayed, tail, full)
	if got := testutil.ToFloat64(second.rt.m.standbyPromotions); got != float64(len(ofA)) {
		t.Errorf("streamd_standby_promotions_total = %v, want %d", got, len(ofA))
	}
	if !strings.Contains(second.logs.String(), "standby promoted") {
		t.Error("no log line for the promotion")
	}
	if got := testutil.ToFloat64(second.rt.m.standbyPartitions); got != 0 {
		t.Errorf("streamd_standby_partitions = %v alone in the group", got)
	}

	// The promoted state is the right one: counting goes on from it exactly once.
	in = append(in, produceInputs(t, b, src, 600, 400, "", 0)...)
	b.WaitCaughtUp(t, app, src, 60*time.Second, second.stopped)
	if err := second.stop(t); err != nil {
		t.Fatal(err)
	}
	if n := checkCommittedOutputs(t, b, app, src, out, in); n != len(in) {
		t.Errorf("%d of %d inputs committed", n, len(in))
	}
	want := map[string]int{}
	for i := range len(in) {
		want[fmt.Sprintf("k%d", i%13)]++
	}
	if got := readCounts(t, b, app); !reflect.DeepEqual(got, want) {
		t.Errorf("counts in the changelog %v, want %v", got, want)
	}
}

// TestPruneStateDirs: with standby replicas the directories of partitions neither owned nor stood
// by for go; corrupt ones moved aside, other topics' and other files stay.
func TestPruneStateDirs(t *testing.T) {
	dir := t.TempDir()
	rt := &Runtime{cfg: Config{StateDir: dir}, pipeline: &Pipeline{Name: "app", Source: Source{Topic: "tx"}}, log: slog.New(slog.DiscardHandler)}
	names := []string{"tx-0", "tx-1", "tx-2", "tx-3", "tx-1.corrupt-20261202T000000.000000000Z", "tx-2-0", "other-1"}
	for _, n := range names {
		if err := os.MkdirAll(filepath.Join(dir, "app", n), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	rt.pruneStateDirs(map[int32]bool{0: true, 2: true})
	for _, n := range names {
		_, err := os.Stat(filepath.Join(dir, "app", n))
		if gone, want := err != nil, n == "tx-1" || n == "tx-3"; gone != want {
			t.Errorf("%s: removed %v, want %v", n, gone, want)
		}
	}
}

// TestStandbyWithThreeInstances: with three instances and standby_replicas 1 every partition has
// one replica, not on its owner, as the group leader's warm balancer assigned them: each instance's
// two partitions have their replicas on the two other instances, one each (so that if it fails
// both land warm), and each instance's state directory holds exactly the partitions it owns or
// stands by for: the first instance, which owned everything before the others joined, has removed
// the rest.
func TestStandbyWithThreeInstances(t *testing.T) {
	b := kafkatest.Start(t)
	src := b.Topic(t, "src", 6)
	app, out, dlq := kafkatest.Name(t, "app"), kafkatest.Name(t, "out"), kafkatest.Name(t, "dlq")
	p := &Pipeline{
		Name:            app,
		Source:          Source{Topic: src, Format: fatalFormat()},
		Operators:       []Operator{&countOp{Topic: out}},
		DeadLetterTopic: dlq,
	}
	produceInputs(t, b, src, 0, 300, "", 0)
	var rs []*running
	var dirs []string
	for i := range 3 {
		cfg := fatalConfig(b, t.TempDir())
		cfg.InstanceID, cfg.StandbyReplicas = fmt.Sprintf("i%d", i+1), 1
		dirs = append(dirs, filepath.Join(cfg.StateDir, app))
		rs = append(rs, start(t, p, cfg))
		if i == 0 {
			b.WaitCaughtUp(t, app, src, 60*time.Second, rs[0].stopped)
		}
	}
	onDisk := func(dir string) []int32 {
		entries, _ := os.ReadDir(dir)
		var ps []int32
		for _, e := range entries {
			var p int32
			if _, err := fmt.Sscanf(strings.TrimPrefix(e.Name(), src+"-"), "%d", &p); err == nil {
				ps = append(ps, p)
			}
		}
		slices.Sort(ps)
		return ps
	}
	waitFor(t, 90*time.Second, "every instance to own two partitions and stand by for one of each other instance's, with only those on disk", func() bool {
		for i, r := range rs {
			if err := r.stopped(); err != nil {
				t.Fatal(err)
			}
			owned := r.rt.Assigned()
			following := r.rt.standby.Following()
			if len(owned) != 2 || !r.rt.Ready() || len(following) != 2 {
				return false
			}
			for j, o := range rs {
				if j == i {
					continue
				}
				of := 0
				for _, p := range o.rt.Assigned() {
					if slices.Contains(following, p) {
						of++
					}
				}
				if of != 1 {
					return false
				}
			}
			want := append(append([]int32(nil), owned...), r.rt.standby.Following()...)
			slices.Sort(want)
			if !reflect.DeepEqual(onDisk(dirs[i]), want) {
				return false
			}
		}
		return true
	})
	replicas := map[int32]int{}
	for _, r := range rs {
		for _, p := range r.rt.standby.Following() {
			replicas[p]++
		}
	}
	for p := range int32(6) {
		if replicas[p] != 1 {
			t.Errorf("partition %d has %d replicas, want 1", p, replicas[p])
		}
	}
}

// TestStandbyWarmBalancerKeepsLabels: with a labels topic and standby replicas the group runs the
// warm balancer (cooperative) instead of the range balancer, and it still gives every member
// partition p of the labels topic with partition p of the source, through a join, a rebalance
// that moves partitions (revoke, then assign) and a member leaving.
func TestStandbyWarmBalancerKeepsLabels(t *testing.T) {
	b := kafkatest.Start(t)
	src, labels := b.Topic(t, "src", 4), b.Topic(t, "labels", 4)
	app, out, dlq := kafkatest.Name(t, "app"), kafkatest.Name(t, "out"), kafkatest.Name(t, "dlq")
	p := &Pipeline{
		Name:            app,
		Source:          Source{Topic: src, Format: fatalFormat()},
		Labels:          &Source{Topic: labels, Format: fatalFormat()},
		Operators:       []Operator{&countOp{Topic: out}},
		DeadLetterTopic: dlq,
	}
	adm := kadm.NewClient(b.Client(t))
	// A real broker can answer metadata without a topic it has just created: wait for both, so
	// that the runtime's start-up check does not find the source missing.
	waitFor(t, 30*time.Second, "the new topics in the metadata", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		td, err := adm.ListTopics(ctx, src, labels)
		return err == nil && td.Has(src) && td.Has(labels) && td[src].Err == nil && td[labels].Err == nil
	})
	// coPartitioned reports whether the group is stable under the warm protocol with every source
	// partition assigned, to members each holding the same numbers of both topics.
	coPartitioned := func(members int) bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		gs, err := adm.DescribeGroups(ctx, app)
		if err != nil || gs[app].State != "Stable" || len(gs[app].Members) != members {
			return false
		}
		if gs[app].Protocol != standby.Protocol {
			t.Fatalf("the group's protocol is %q, want %q", gs[app].Protocol, standby.Protocol)
		}
		n := 0
		for _, m := range gs[app].Members {
			c, ok := m.Assigned.AsConsumer()
			if !ok {
				return false
			}
			got := map[string][]int32{}
			for _, tp := range c.Topics {
				got[tp.Topic] = tp.Partitions
			}
			if !slices.Equal(got[src], got[labels]) {
				t.Fatalf("member %s was assigned %s %v and %s %v", m.MemberID, src, got[src], labels, got[labels])
			}
			n += len(got[src])
		}
		return n == 4
	}
	var rs []*running
	for i := range 2 {
		cfg := fatalConfig(b, t.TempDir())
		cfg.InstanceID, cfg.StandbyReplicas = fmt.Sprintf("i%d", i+1), 1
		rs = append(rs, start(t, p, cfg))
		waitFor(t, 60*time.Second, "the group to settle, labels with their events", func() bool {
			for _, r := range rs {
				if err := r.stopped(); err != nil {
					t.Fatal(err)
				}
			}
			return coPartitioned(len(rs)) && rs[len(rs)-1].rt.Ready() && len(rs[len(rs)-1].rt.Assigned()) == 4/len(rs)
		})
	}
	if err := rs[1].stop(t); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the survivor to own every partition, labels with their events", func() bool {
		if err := rs[0].stopped(); err != nil {
			t.Fatal(err)
		}
		return len(rs[0].rt.Assigned()) == 4 && coPartitioned(1)
	})
	if err := rs[0].stop(t); err != nil {
		t.Fatal(err)
	}
}
