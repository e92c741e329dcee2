package standby

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"
)

// checkPlan checks what every plan must be, whatever the input: every partition active on exactly
// one member, counts within one, each member keeping at least min(owned, share) of what it owned,
// min(replicas, members-1) distinct standby copies of every partition and none on its owner, and
// warmth preferred: a partition that went to a member other than its owner went to its most
// advanced replica holder unless every more advanced holder ended full.
func checkPlan(t *testing.T, members []Candidate, partitions int32, replicas int, plan Plan) {
	t.Helper()
	n := len(members)
	P := int(partitions)
	base, extra := P/n, P%n
	activeOf := map[int32]string{}
	counts := map[int]int{}
	for _, m := range members {
		ps := plan.Active[m.ID]
		counts[len(ps)]++
		if len(ps) < base || len(ps) > base+1 {
			t.Fatalf("member %s has %d partitions, want %d or %d: %v", m.ID, len(ps), base, base+1, plan.Active)
		}
		for _, p := range ps {
			if p < 0 || p >= partitions {
				t.Fatalf("member %s assigned partition %d of %d", m.ID, p, partitions)
			}
			if o, dup := activeOf[p]; dup {
				t.Fatalf("partition %d assigned to %s and %s", p, o, m.ID)
			}
			activeOf[p] = m.ID
		}
	}
	if len(activeOf) != P {
		t.Fatalf("%d of %d partitions assigned: %v", len(activeOf), P, plan.Active)
	}
	if counts[base+1] > extra {
		t.Fatalf("%d members have %d partitions, only %d can", counts[base+1], base+1, extra)
	}
	// The owner of each partition by the rule: highest generation, first on a tie.
	owner := map[int32]int{}
	for i, m := range members {
		for _, p := range m.Owned {
			if p < 0 || p >= partitions {
				continue
			}
			if o, ok := owner[p]; !ok || m.Generation > members[o].Generation {
				owner[p] = i
			}
		}
	}
	full := func(i int) bool {
		l := len(plan.Active[members[i].ID])
		return l == base+1 || l == base && counts[base+1] == extra
	}
	for i, m := range members {
		var owned, kept int
		in := map[int32]bool{}
		for _, p := range plan.Active[m.ID] {
			in[p] = true
		}
		for p, o := range owner {
			if o == i {
				owned++
				if in[p] {
					kept++
				}
			}
		}
		if kept < min(owned, base) {
			t.Fatalf("member %s kept %d of its %d partitions, want at least %d", m.ID, kept, owned, min(owned, base))
		}
	}
	for p := range partitions {
		got := activeOf[p]
		gi := -1
		for i, m := range members {
			if m.ID == got {
				gi = i
			}
		}
		if o, ok := owner[p]; ok && o == gi {
			continue // sticky
		}
		pos, warm := members[gi].Warm[p]
		for k, m := range members {
			kpos, kwarm := m.Warm[p]
			if k == gi || !kwarm || full(k) {
				continue
			}
			if !warm || kpos > pos {
				t.Fatalf("partition %d went to %s (warm %v at %d) while %s, holding it at %d, had room: %v", p, got, warm, pos, m.ID, kpos, plan.Active)
			}
		}
	}
	r := min(replicas, n-1)
	for p := range partitions {
		seen := map[string]bool{}
		for _, m := range members {
			for _, q := range plan.Standby[m.ID] {
				if q == p {
					if seen[m.ID] {
						t.Fatalf("partition %d stood by for twice on %s", p, m.ID)
					}
					seen[m.ID] = true
				}
			}
		}
		if seen[activeOf[p]] {
			t.Fatalf("partition %d has a standby replica on its owner %s", p, activeOf[p])
		}
		if len(seen) != max(r, 0) {
			t.Fatalf("partition %d has %d standby replicas, want %d: %v", p, len(seen), max(r, 0), plan.Standby)
		}
	}
	for _, m := range members {
		if !sort.SliceIsSorted(plan.Active[m.ID], func(a, b int) bool { return plan.Active[m.ID][a] < plan.Active[m.ID][b] }) {
			t.Fatalf("active partitions of %s not sorted: %v", m.ID, plan.Active[m.ID])
		}
	}
}

// randomMembers returns a group of n members with claims and replicas drawn at random: partitions
// claimed by several members at various generations, claims out of range, replicas of partitions
// owned elsewhere or by the member itself, positions anywhere.
func randomMembers(rng *rand.Rand, n int, partitions int32) []Candidate {
	members := make([]Candidate, n)
	for i := range members {
		m := Candidate{ID: fmt.Sprintf("m%02d", i), Generation: int32(rng.IntN(4)), Warm: map[int32]int64{}}
		for range rng.IntN(int(partitions)/max(n, 1) + 3) {
			m.Owned = append(m.Owned, int32(rng.IntN(int(partitions)+2))-1)
		}
		for range rng.IntN(int(partitions) + 1) {
			m.Warm[int32(rng.IntN(int(partitions)))] = int64(rng.IntN(100))
		}
		members[i] = m
	}
	return members
}

func TestAssignRandom(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	for range 3000 {
		n := 1 + rng.IntN(9)
		partitions := int32(1 + rng.IntN(70))
		replicas := rng.IntN(4)
		members := randomMembers(rng, n, partitions)
		plan := Assign(members, partitions, replicas)
		checkPlan(t, members, partitions, replicas, plan)
		if again := Assign(members, partitions, replicas); fmt.Sprint(again) != fmt.Sprint(plan) {
			t.Fatalf("the same input gave two plans:\n%v\n%v", plan, again)
		}
	}
}

// TestAssignEdges: no members, no partitions, more members than partitions, one member.
func TestAssignEdges(t *testing.T) {
	for _, tc := range []struct {
		name       string
		members    int
		partitions int32
		replicas   int
	}{
		{"no members", 0, 4, 1},
		{"no partitions", 3, 0, 1},
		{"more members than partitions", 5, 2, 2},
		{"one member", 1, 6, 2},
		{"replicas beyond members", 3, 6, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var members []Candidate
			for i := range tc.members {
				members = append(members, Candidate{ID: fmt.Sprintf("m%d", i)})
			}
			plan := Assign(members, tc.partitions, tc.replicas)
			if tc.members == 0 {
				if len(plan.Active) != 0 {
					t.Fatalf("plan without members: %v", plan)
				}
				return
			}
			checkPlan(t, members, tc.partitions, tc.replicas, plan)
		})
	}
}

// steady runs Assign on its own output, the standbys becoming the replicas, until the plan stops
// changing, as the group does after members join: the owners' claims are what they were given and
// the replicas' positions are all equal (caught up).
func steady(t *testing.T, ids []string, partitions int32, replicas int) Plan {
	t.Helper()
	plan := Plan{Active: map[string][]int32{}, Standby: map[string][]int32{}}
	for range 10 {
		next := Assign(candidates(ids, plan), partitions, replicas)
		if fmt.Sprint(next) == fmt.Sprint(plan) {
			return plan
		}
		plan = next
	}
	t.Fatalf("no steady plan after 10 rounds: %v", plan)
	return plan
}

func candidates(ids []string, plan Plan) []Candidate {
	var out []Candidate
	for _, id := range ids {
		c := Candidate{ID: id, Owned: plan.Active[id], Generation: 1, Warm: map[int32]int64{}}
		for _, p := range plan.Standby[id] {
			c.Warm[p] = 100
		}
		out = append(out, c)
	}
	return out
}

// TestAssignFailoverLandsWarm: in a steady group of n members with standby replicas, the
// partitions of any one member that fails all land on members holding their replicas, and the
// survivors keep their own. Standby replicas chosen without spreading one owner's partitions
// (standby.Choose gives them all to one member) fail this from three members on: the one holder
// has room for a share only.
func TestAssignFailoverLandsWarm(t *testing.T) {
	for _, tc := range []struct {
		members    int
		partitions int32
		replicas   int
	}{
		{2, 4, 1}, {3, 6, 1}, {3, 12, 1}, {4, 12, 1}, {4, 8, 1}, {5, 20, 1}, {3, 7, 1},
		{4, 12, 2}, {6, 24, 2}, {3, 6, 2}, {5, 40, 3},
	} {
		t.Run(fmt.Sprintf("members=%d/partitions=%d/replicas=%d", tc.members, tc.partitions, tc.replicas), func(t *testing.T) {
			var ids []string
			for i := range tc.members {
				ids = append(ids, fmt.Sprintf("i%d", i))
			}
			plan := steady(t, ids, tc.partitions, tc.replicas)
			for dead := range ids {
				var alive []string
				for i, id := range ids {
					if i != dead {
						alive = append(alive, id)
					}
				}
				cands := candidates(alive, plan)
				after := Assign(cands, tc.partitions, tc.replicas)
				checkPlan(t, cands, tc.partitions, tc.replicas, after)
				for _, id := range alive {
					warm := map[int32]bool{}
					for _, p := range plan.Standby[id] {
						warm[p] = true
					}
					had := map[int32]bool{}
					for _, p := range plan.Active[id] {
						had[p] = true
					}
					for _, p := range after.Active[id] {
						if !had[p] && !warm[p] {
							t.Errorf("%s failed: its partition %d went to %s, which held no replica of it (before %v, after %v)", ids[dead], p, id, plan, after)
						}
					}
				}
			}
		})
	}
}

// TestAssignJoinKeepsOwners: a member joining a steady group takes its share from the others, each
// of which keeps at least its new share of what it had.
func TestAssignJoinKeepsOwners(t *testing.T) {
	ids := []string{"a", "b", "c"}
	plan := steady(t, ids, 12, 1)
	cands := append(candidates(ids, plan), Candidate{ID: "d"})
	after := Assign(cands, 12, 1)
	checkPlan(t, cands, 12, 1, after)
	moved := 0
	for _, id := range ids {
		had := map[int32]bool{}
		for _, p := range plan.Active[id] {
			had[p] = true
		}
		for _, p := range after.Active[id] {
			if !had[p] {
				t.Errorf("%s was given partition %d it did not own: a join moves only what the newcomer takes", id, p)
			}
		}
		moved += len(plan.Active[id]) - len(after.Active[id])
	}
	if moved != 3 {
		t.Errorf("%d partitions moved to the newcomer, want 3: %v → %v", moved, plan, after)
	}
}

// TestAssignMostAdvancedReplica: of two replica holders with room, the one with the higher
// position gets the lost partition.
func TestAssignMostAdvancedReplica(t *testing.T) {
	members := []Candidate{
		{ID: "a", Owned: []int32{0}, Warm: map[int32]int64{2: 40}},
		{ID: "b", Owned: []int32{1}, Warm: map[int32]int64{2: 90}},
	}
	plan := Assign(members, 3, 1)
	if fmt.Sprint(plan.Active["b"]) != "[1 2]" {
		t.Fatalf("partition 2 should go to b, its most advanced replica: %v", plan.Active)
	}
	members[0].Warm[2] = 95
	plan = Assign(members, 3, 1)
	if fmt.Sprint(plan.Active["a"]) != "[0 2]" {
		t.Fatalf("partition 2 should go to a, its most advanced replica: %v", plan.Active)
	}
}

// TestAssignStaleClaim: a partition claimed by two members goes to the claim of the higher
// generation (the other missed a rebalance).
func TestAssignStaleClaim(t *testing.T) {
	members := []Candidate{
		{ID: "a", Owned: []int32{0, 1}, Generation: 3},
		{ID: "b", Owned: []int32{1, 2, 3}, Generation: 4},
	}
	plan := Assign(members, 4, 0)
	if fmt.Sprint(plan.Active["b"]) != "[1 2]" && fmt.Sprint(plan.Active["b"]) != "[1 3]" {
		t.Fatalf("b, the newer claim, should keep partition 1 (and one of 2, 3): %v", plan.Active)
	}
}
