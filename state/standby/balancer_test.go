package standby

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// simMember is a group member as the cooperative protocol sees it: what it owns (per topic), the
// generation of that, and its replicas' positions.
type simMember struct {
	id      string
	b       *Balancer
	owned   map[string][]int32
	gen     int32
	warm    map[int32]int64
	standby []int32
}

// rebalance runs JoinGroup and SyncGroup rounds through the balancer of the first member (the
// leader) until no member revokes anything, as franz-go's cooperative consumers do (a member that
// loses partitions revokes them and rejoins). At every sync it checks that no partition is given
// to a member while another still owns it. It returns the rounds run.
func rebalance(t *testing.T, members []*simMember, topics map[string]int32) int {
	t.Helper()
	for round := 1; round <= 5; round++ {
		var join []kmsg.JoinGroupResponseMember
		for _, m := range members {
			interests := slices.Sorted(maps.Keys(topics))
			jm := kmsg.NewJoinGroupResponseMember()
			jm.MemberID = m.id
			jm.ProtocolMetadata = m.b.JoinGroupMetadata(interests, m.owned, m.gen)
			join = append(join, jm)
		}
		gmb, _, err := members[0].b.MemberBalancer(join)
		if err != nil {
			t.Fatal(err)
		}
		into, err := gmb.(kgo.GroupMemberBalancerOrError).BalanceOrError(topics)
		if err != nil {
			t.Fatal(err)
		}
		next := map[string]map[string][]int32{}
		for _, a := range into.IntoSyncAssignment() {
			var ca kmsg.ConsumerMemberAssignment
			if err := ca.ReadFrom(a.MemberAssignment); err != nil {
				t.Fatal(err)
			}
			got := map[string][]int32{}
			for _, tp := range ca.Topics {
				got[tp.Topic] = tp.Partitions
			}
			next[a.MemberID] = got
			sb, err := ParseStandby(ca.UserData)
			if err != nil {
				t.Fatalf("round %d: standby of %s: %v", round, a.MemberID, err)
			}
			for _, m := range members {
				if m.id == a.MemberID {
					m.standby = sb
				}
			}
		}
		revoked := false
		for _, m := range members {
			for topic, ps := range next[m.id] {
				for _, p := range ps {
					if slices.Contains(m.owned[topic], p) {
						continue
					}
					for _, o := range members {
						if o != m && slices.Contains(o.owned[topic], p) {
							t.Fatalf("round %d: %s/%d given to %s while %s still owns it", round, topic, p, m.id, o.id)
						}
					}
				}
			}
			for topic, ps := range m.owned {
				for _, p := range ps {
					if !slices.Contains(next[m.id][topic], p) {
						revoked = true
					}
				}
			}
		}
		for _, m := range members {
			m.owned = next[m.id]
			m.gen++
		}
		if !revoked {
			return round
		}
	}
	t.Fatal("no stable assignment after 5 rounds")
	return 0
}

func newSim(topics []string, replicas int, ids ...string) []*simMember {
	var out []*simMember
	for _, id := range ids {
		m := &simMember{id: id, owned: map[string][]int32{}}
		m.b = NewBalancer(BalancerConfig{Topics: topics, Replicas: replicas, Warm: func() map[int32]int64 { return m.warm }})
		out = append(out, m)
	}
	return out
}

// catchUp makes every member's replicas those it was given, all at the same position.
func catchUp(members []*simMember) {
	for _, m := range members {
		m.warm = map[int32]int64{}
		for _, p := range m.standby {
			m.warm[p] = 1000
		}
	}
}

// TestBalancerCooperativeFailover runs the balancer as a group of three with a labels topic: they
// join, settle with standby replicas, one dies, the survivors take its partitions onto their
// replicas of them, and it comes back. Labels partitions go with source partitions throughout,
// and no partition is ever owned by two members (the check in rebalance).
func TestBalancerCooperativeFailover(t *testing.T) {
	const src, labels = "events", "labels"
	topics := map[string]int32{src: 6, labels: 6}
	ms := newSim([]string{src, labels}, 1, "a", "b", "c")
	rebalance(t, ms, topics)
	catchUp(ms)
	rebalance(t, ms, topics)
	check := func(ms []*simMember) {
		t.Helper()
		all := map[int32]string{}
		for _, m := range ms {
			if fmt.Sprint(m.owned[src]) != fmt.Sprint(m.owned[labels]) {
				t.Fatalf("%s owns %s %v but %s %v", m.id, src, m.owned[src], labels, m.owned[labels])
			}
			if l := len(m.owned[src]); l != 6/len(ms) {
				t.Fatalf("%s owns %d partitions, want %d", m.id, l, 6/len(ms))
			}
			for _, p := range m.owned[src] {
				all[p] = m.id
			}
			for _, p := range m.standby {
				if slices.Contains(m.owned[src], p) {
					t.Fatalf("%s stands by for its own partition %d", m.id, p)
				}
			}
		}
		if len(all) != 6 {
			t.Fatalf("partitions owned: %v", all)
		}
	}
	check(ms)

	dead := ms[2]
	lost := dead.owned[src]
	survivors := ms[:2]
	warmOn := map[int32]string{}
	for _, m := range survivors {
		for _, p := range m.standby {
			warmOn[p] = m.id
		}
	}
	// The coordinator expels the dead member; the survivors rejoin with what they own.
	if rounds := rebalance(t, survivors, topics); rounds != 1 {
		t.Errorf("the failover took %d rounds; nothing is revoked, so one", rounds)
	}
	check(survivors)
	for _, p := range lost {
		for _, m := range survivors {
			if slices.Contains(m.owned[src], p) && warmOn[p] != m.id {
				t.Errorf("the lost partition %d went to %s; its replica was on %q", p, m.id, warmOn[p])
			}
		}
	}

	// The dead member restarts with nothing; it gets its share back in a revoke round and an
	// assign round.
	catchUp(survivors)
	dead.owned, dead.warm, dead.gen = map[string][]int32{}, nil, 0
	if rounds := rebalance(t, ms, topics); rounds != 2 {
		t.Errorf("the rejoin took %d rounds, want 2 (revoke, then assign)", rounds)
	}
	check(ms)
}

// TestBalancerUnreadableWarmth: a member whose user data is not the balancer's is assigned as if
// it had no replicas, and the group still balances.
func TestBalancerUnreadableWarmth(t *testing.T) {
	b := NewBalancer(BalancerConfig{Topics: []string{"events"}, Replicas: 1})
	var join []kmsg.JoinGroupResponseMember
	for i, ud := range [][]byte{nil, {9, 9, 9}, AppendWarm(nil, map[int32]int64{3: 5})} {
		meta := kmsg.NewConsumerMemberMetadata()
		meta.Version = 2
		meta.Topics = []string{"events"}
		meta.UserData = ud
		jm := kmsg.NewJoinGroupResponseMember()
		jm.MemberID = fmt.Sprintf("m%d", i)
		jm.ProtocolMetadata = meta.AppendTo(nil)
		join = append(join, jm)
	}
	gmb, _, err := b.MemberBalancer(join)
	if err != nil {
		t.Fatal(err)
	}
	into, err := gmb.(kgo.GroupMemberBalancerOrError).BalanceOrError(map[string]int32{"events": 4})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]int32{}
	for _, a := range into.IntoSyncAssignment() {
		m, err := kgo.ParseConsumerSyncAssignment(a.MemberAssignment)
		if err != nil {
			t.Fatal(err)
		}
		got[a.MemberID] = m["events"]
	}
	if !slices.Contains(got["m2"], 3) {
		t.Errorf("partition 3 should go to m2, its replica holder: %v", got)
	}
	n := 0
	for _, ps := range got {
		n += len(ps)
	}
	if n != 4 {
		t.Errorf("%d partitions assigned, want 4: %v", n, got)
	}
}

func TestBalancerMissingSource(t *testing.T) {
	b := NewBalancer(BalancerConfig{Topics: []string{"events"}})
	jm := kmsg.NewJoinGroupResponseMember()
	jm.MemberID = "m"
	jm.ProtocolMetadata = b.JoinGroupMetadata([]string{"events"}, nil, -1)
	gmb, _, err := b.MemberBalancer([]kmsg.JoinGroupResponseMember{jm})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gmb.(kgo.GroupMemberBalancerOrError).BalanceOrError(map[string]int32{"other": 3}); err == nil {
		t.Fatal("balancing without the source topic's partition count succeeded")
	}
}

func TestWire(t *testing.T) {
	warm := map[int32]int64{0: 0, 7: 123456789, 2: 1 << 40}
	got, err := ParseWarm(AppendWarm(nil, warm))
	if err != nil || !maps.Equal(got, warm) {
		t.Fatalf("ParseWarm(AppendWarm(%v)) = %v, %v", warm, got, err)
	}
	if got, err := ParseWarm(nil); err != nil || got != nil {
		t.Fatalf("ParseWarm(nil) = %v, %v; want no replicas", got, err)
	}
	ps := []int32{1, 4, 9}
	if got, err := ParseStandby(AppendPartitions(nil, ps)); err != nil || !slices.Equal(got, ps) {
		t.Fatalf("ParseStandby(AppendPartitions(%v)) = %v, %v", ps, got, err)
	}
	full := AppendWarm(nil, warm)
	for name, data := range map[string][]byte{
		"another version":    {2, 0},
		"truncated":          full[:len(full)-1],
		"trailing bytes":     append(append([]byte(nil), full...), 0),
		"huge count":         {1, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"negative partition": AppendPartitions(nil, []int32{-1}),
	} {
		_, err1 := ParseWarm(data)
		_, err2 := ParseStandby(data)
		if !errors.Is(err1, ErrWire) || !errors.Is(err2, ErrWire) {
			t.Errorf("%s: ParseWarm: %v, ParseStandby: %v; want ErrWire from both", name, err1, err2)
		}
	}
}

// FuzzParseWarm: no input panics, and what parses appends to bytes that parse to the same.
func FuzzParseWarm(f *testing.F) {
	f.Add(AppendWarm(nil, map[int32]int64{1: 2, 3: 4}))
	f.Add([]byte{1, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		warm, err := ParseWarm(data)
		if err != nil {
			return
		}
		again, err := ParseWarm(AppendWarm(nil, warm))
		if err != nil || !maps.Equal(again, warm) {
			t.Fatalf("%x parsed to %v, which appends to what parses to %v, %v", data, warm, again, err)
		}
	})
}
