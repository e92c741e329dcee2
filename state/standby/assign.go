package standby

import (
	"math"
	"sort"
)

// Candidate is one member of the group as the leader sees it when it assigns: its member ID, the
// source partitions it claims to own (with the generation of that claim), and the partitions it
// holds warm as standby replicas, each with its replica's changelog position (Warmth).
type Candidate struct {
	ID         string
	Owned      []int32
	Generation int32
	// Warm maps a partition this member keeps a replica of to the replica's position: the sum over
	// the partition's stores of the changelog offset its state reflects. Positions of one
	// partition on different members are comparable (the same changelogs), so the highest is the
	// least lag. A member's own partitions count as warmer than any replica.
	Warm map[int32]int64
}

// Plan is an assignment: per member ID, the partitions it processes (Active) and those it keeps
// standby replicas of (Standby), each sorted. Every member of the input has an entry in both.
type Plan struct {
	Active  map[string][]int32
	Standby map[string][]int32
}

// ownedWarmth is the warmth of a partition on its owner: above any replica's position.
const ownedWarmth = math.MaxInt64

// Assign divides partitions 0..partitions-1 among members, and up to replicas standby copies of
// each among the members other than its owner. It is the leader's whole decision; the order of
// members breaks every tie, so the same input gives the same plan.
//
// Active partitions:
//   - Balance: every member gets partitions/len(members) or one more.
//   - Stickiness: a member keeps what it owns, up to its share. A partition claimed by several
//     members belongs to the claim of the highest generation (the others are stale: they missed a
//     rebalance), the first of them on a tie. A member over its share gives up first the partitions
//     another member keeps a replica of, and of those the highest-numbered.
//   - Warmth: a partition without an owner (its owner left, or gave it up) goes to the member with
//     room holding its most advanced replica; partitions with the fewest replica holders go first,
//     so that one warm member's room is not taken by a partition another member holds warm too.
//     A partition nobody holds warm goes to the member with the fewest partitions.
//
// Standby partitions: min(replicas, members-1) members other than its owner, chosen, in this
// order of preference, to be under an even share of the replicas (ceil(partitions*replicas /
// members)), to hold few replicas of the same owner's partitions (so that when an owner fails its
// partitions land warm on several members, not all on one that has no room for them), to hold the
// partition warm already (a replica that keeps running, or the former owner's state), and to hold
// few replicas.
//
// The cooperative protocol's revocations are not Assign's concern: the caller removes from the
// plan what moves between members (kgo.BalancePlan.AdjustCooperative), and the next rebalance
// assigns it from the free pool, where Assign finds it again.
func Assign(members []Candidate, partitions int32, replicas int) Plan {
	plan := Plan{Active: map[string][]int32{}, Standby: map[string][]int32{}}
	for _, m := range members {
		plan.Active[m.ID], plan.Standby[m.ID] = []int32{}, []int32{}
	}
	n := len(members)
	if n == 0 || partitions <= 0 {
		return plan
	}
	P := int(partitions)
	warmth := func(i int, p int32) (int64, bool) {
		pos, ok := members[i].Warm[p]
		return pos, ok
	}

	// The owner of each partition: the claim of the highest generation.
	owner := make([]int, P)
	for p := range owner {
		owner[p] = -1
	}
	for i, m := range members {
		for _, p := range m.Owned {
			if p < 0 || int(p) >= P {
				continue // the topic shrank, or the claim is garbage
			}
			if o := owner[p]; o < 0 || m.Generation > members[o].Generation {
				owner[p] = i
			}
		}
	}
	owned := make([][]int32, n)
	for p, o := range owner {
		if o >= 0 {
			owned[o] = append(owned[o], int32(p))
		}
	}

	base, extra := P/n, P%n
	active := make([][]int32, n)
	assigned := make([]int, P) // the active member of each partition
	for p := range assigned {
		assigned[p] = -1
	}
	// room says whether member i can take one more partition: under the base share, or at it while
	// one of the extra places is left.
	extraUsed := 0
	room := func(i int) bool {
		return len(active[i]) < base || len(active[i]) == base && extraUsed < extra
	}
	take := func(i int, p int32) {
		if len(active[i]) == base {
			extraUsed++
		}
		active[i] = append(active[i], p)
		assigned[p] = i
	}
	untake := func(i int, p int32) {
		for k, q := range active[i] {
			if q == p {
				active[i] = append(active[i][:k], active[i][k+1:]...)
				break
			}
		}
		if len(active[i]) == base {
			extraUsed--
		}
		assigned[p] = -1
	}

	// Stickiness: members with more owned partitions keep theirs first, so that the extra places
	// go to members that would otherwise give up a partition.
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return len(owned[order[a]]) > len(owned[order[b]]) })
	for _, i := range order {
		keep := append([]int32(nil), owned[i]...)
		// Kept first: partitions no other member holds warm, then the lowest-numbered.
		warmElsewhere := func(p int32) bool {
			for j := range members {
				if _, ok := warmth(j, p); ok && j != i {
					return true
				}
			}
			return false
		}
		sort.SliceStable(keep, func(a, b int) bool {
			wa, wb := warmElsewhere(keep[a]), warmElsewhere(keep[b])
			if wa != wb {
				return !wa
			}
			return keep[a] < keep[b]
		})
		for _, p := range keep {
			if !room(i) {
				break
			}
			take(i, p)
		}
	}

	// Warmth: as many free partitions as can be on members holding their replicas (a maximum
	// matching: a greedy pass strands a partition whose holders were filled by partitions that
	// had other holders), then each moved to a more advanced holder with room while there is one,
	// then the rest to the members with the fewest partitions.
	var free []int32
	holders := make([]int, P)
	for p := range P {
		if assigned[p] >= 0 {
			continue
		}
		free = append(free, int32(p))
		for i := range members {
			if _, ok := warmth(i, int32(p)); ok {
				holders[p]++
			}
		}
	}
	sort.SliceStable(free, func(a, b int) bool { return holders[free[a]] < holders[free[b]] })
	for p, i := range warmMatching(free, n, base, extra-extraUsed, active, warmth) {
		take(i, p)
	}
	for moved := true; moved; {
		moved = false
		for _, p := range free {
			j := assigned[p]
			if j < 0 {
				continue
			}
			pos, _ := warmth(j, p)
			untake(j, p)
			best, bestPos := j, pos
			for k := range members {
				if kpos, ok := warmth(k, p); ok && kpos > bestPos && room(k) {
					best, bestPos = k, kpos
				}
			}
			take(best, p)
			moved = moved || best != j
		}
	}
	for _, p := range free {
		if assigned[p] >= 0 {
			continue
		}
		best := -1
		for i := range members {
			if room(i) && (best < 0 || len(active[i]) < len(active[best])) {
				best = i
			}
		}
		take(best, p) // the shares add up to P: some member has room
	}
	for i, m := range members {
		sort.Slice(active[i], func(a, b int) bool { return active[i][a] < active[i][b] })
		plan.Active[m.ID] = active[i]
	}

	// Standby replicas.
	r := min(replicas, n-1)
	if r <= 0 {
		return plan
	}
	standby := make([][]int32, n)
	share := (P*r + n - 1) / n
	sameOwner := make([][]int, n) // sameOwner[j][o]: replicas member j holds of member o's partitions
	for j := range sameOwner {
		sameOwner[j] = make([]int, n)
	}
	// A partition's former owner holds its state too (it is moving away from it).
	warmFor := func(j int, p int32) (int64, bool) {
		if owner[p] == j {
			return ownedWarmth, true
		}
		return warmth(j, p)
	}
	chosen := make([]bool, n)
	for p := range P {
		o := assigned[p]
		clear(chosen)
		for range r {
			best := -1
			better := func(j int) bool {
				if best < 0 {
					return true
				}
				if a, b := len(standby[j]) < share, len(standby[best]) < share; a != b {
					return a
				}
				if a, b := sameOwner[j][o], sameOwner[best][o]; a != b {
					return a < b
				}
				_, wj := warmFor(j, int32(p))
				_, wb := warmFor(best, int32(p))
				if wj != wb {
					return wj
				}
				return len(standby[j]) < len(standby[best])
			}
			for j := range members {
				if j == o || chosen[j] {
					continue
				}
				if better(j) {
					best = j
				}
			}
			chosen[best] = true
			standby[best] = append(standby[best], int32(p))
			sameOwner[best][o]++
		}
	}
	for i, m := range members {
		plan.Standby[m.ID] = standby[i]
	}
	return plan
}

// warmMatching returns a maximum assignment of the free partitions to members holding them warm
// (warmth), within the members' room: base minus what each has, and extraLeft members may take
// one more. It is a maximum flow by augmenting paths (Ford-Fulkerson: at most len(free) paths,
// each a search over partitions×members edges), on source → partition (1) → holder (1) → member's
// base room, or → the shared extra node (1 per member) → sink (extraLeft). Partitions are tried in
// the order given and holders in order of position, most advanced first.
func warmMatching(free []int32, n, base, extraLeft int, active [][]int32, warmth func(int, int32) (int64, bool)) map[int32]int {
	F := len(free)
	src, xnode, sink := 0, F+n+1, F+n+2
	type edge struct{ to, cap, rev int }
	g := make([][]edge, F+n+3)
	add := func(a, b, c int) {
		g[a] = append(g[a], edge{b, c, len(g[b])})
		g[b] = append(g[b], edge{a, 0, len(g[a]) - 1})
	}
	for k, p := range free {
		add(src, 1+k, 1)
		var hs []int
		for i := range n {
			if _, ok := warmth(i, p); ok {
				hs = append(hs, i)
			}
		}
		sort.SliceStable(hs, func(a, b int) bool {
			pa, _ := warmth(hs[a], p)
			pb, _ := warmth(hs[b], p)
			return pa > pb
		})
		for _, i := range hs {
			add(1+k, 1+F+i, 1)
		}
	}
	for i := range n {
		if r := base - len(active[i]); r > 0 {
			add(1+F+i, sink, r)
		}
		if len(active[i]) <= base {
			add(1+F+i, xnode, 1)
		}
	}
	if extraLeft > 0 {
		add(xnode, sink, extraLeft)
	}
	seen := make([]bool, len(g))
	var augment func(v int) bool
	augment = func(v int) bool {
		if v == sink {
			return true
		}
		seen[v] = true
		for k := range g[v] {
			e := &g[v][k]
			if e.cap > 0 && !seen[e.to] && augment(e.to) {
				e.cap--
				g[e.to][e.rev].cap++
				return true
			}
		}
		return false
	}
	for range F {
		clear(seen)
		if !augment(src) {
			break
		}
	}
	out := map[int32]int{}
	for k, p := range free {
		for _, e := range g[1+k] {
			if e.to > F && e.to <= F+n && e.cap == 0 {
				out[p] = e.to - 1 - F
			}
		}
	}
	return out
}
