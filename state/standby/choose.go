package standby

import "sort"

// Member is one member of the consumer group as DescribeGroups reports it after a rebalance: its
// stable name (the static group.instance.id, else the member id) and the source partitions it
// was assigned.
type Member struct {
	ID         string
	Partitions []int32
}

// Choose returns the source partitions that member self keeps standby replicas of, sorted: every
// partition owned by the n members that follow self in the order of their IDs, wrapping around.
// A partition owned by member j is thus stood by for by the n members before j, so every
// partition has min(n, members-1) warm copies, each on a different instance, and none on its
// owner. With two members and n >= 1 each member stands by for all of the other's partitions.
//
// Every member computes its own share from the same assignment, so the choice needs no
// coordination. It returns nil when self is not among members (it has not joined yet, or the
// description is stale) or n is not positive.
func Choose(members []Member, self string, n int) []int32 {
	sorted := append([]Member(nil), members...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].ID < sorted[j].ID })
	at := -1
	for i, m := range sorted {
		if m.ID == self {
			at = i
			break
		}
	}
	if at < 0 || n <= 0 {
		return nil
	}
	own := map[int32]bool{}
	for _, p := range sorted[at].Partitions {
		own[p] = true
	}
	seen := map[int32]bool{}
	var out []int32
	for k := 1; k <= n && k < len(sorted); k++ {
		for _, p := range sorted[(at+k)%len(sorted)].Partitions {
			if !own[p] && !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
