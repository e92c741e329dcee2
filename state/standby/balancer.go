package standby

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Protocol is the group protocol name of Balancer. A group uses it once every member offers it;
// until then (a rolling upgrade) the members agree on the next balancer they all list.
const Protocol = "streamd-warm"

// wireVersion is the first byte of the user data Balancer writes, in the member metadata and in
// the assignments.
const wireVersion = 1

// BalancerConfig configures a Balancer.
type BalancerConfig struct {
	// Topics are the consumed topics, the source first. They have the same partition count, and
	// partition p of every one goes to the same member (a labels topic goes with the events it
	// labels). The source's partition count is the one assigned.
	Topics []string
	// Replicas is the standby copies to assign of every partition (state.standby_replicas).
	Replicas int
	// Warm, called at every join, returns this member's replicas and their positions (Candidate.
	// Warm). It may be nil: no replicas. It is called on the client's goroutine and must not block.
	Warm func() map[int32]int64
}

// Balancer is a cooperative kgo.GroupBalancer that knows where the standby replicas are. Every
// member puts its replicas' positions in its JoinGroup metadata (the consumer protocol's user
// data, beside the owned partitions cooperative rebalancing needs); the leader assigns with Assign
// and sends every member, in its assignment's user data, the partitions it is to keep standby
// replicas of (ParseStandby reads them back from the group's description).
//
// The plan goes through kgo's BalancePlan.AdjustCooperative, as franz-go's cooperative-sticky
// balancer's does: a partition that moves from one member to another is first only taken from its
// owner, which revokes it and rejoins; the rebalance that follows assigns it from the free pool.
// Labels partitions move with their source partitions, so both are revoked in one round and
// assigned in one round.
type Balancer struct {
	cfg BalancerConfig
}

// NewBalancer returns a Balancer; cfg.Topics must name at least the source.
func NewBalancer(cfg BalancerConfig) *Balancer {
	if len(cfg.Topics) == 0 {
		panic("standby: NewBalancer without topics")
	}
	return &Balancer{cfg: cfg}
}

var _ kgo.GroupBalancer = (*Balancer)(nil)

// ProtocolName implements kgo.GroupBalancer.
func (*Balancer) ProtocolName() string { return Protocol }

// IsCooperative implements kgo.GroupBalancer: it is.
func (*Balancer) IsCooperative() bool { return true }

// JoinGroupMetadata implements kgo.GroupBalancer: the consumer protocol's metadata (version 2:
// owned partitions and their generation), with this member's replica positions as user data.
func (b *Balancer) JoinGroupMetadata(interests []string, current map[string][]int32, generation int32) []byte {
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Version = 2
	meta.Topics = interests
	meta.Generation = generation
	for topic, partitions := range current {
		owned := kmsg.NewConsumerMemberMetadataOwnedPartition()
		owned.Topic = topic
		owned.Partitions = partitions
		meta.OwnedPartitions = append(meta.OwnedPartitions, owned)
	}
	sort.Slice(meta.OwnedPartitions, func(i, j int) bool { return meta.OwnedPartitions[i].Topic < meta.OwnedPartitions[j].Topic })
	var warm map[int32]int64
	if b.cfg.Warm != nil {
		warm = b.cfg.Warm()
	}
	meta.UserData = AppendWarm(nil, warm)
	return meta.AppendTo(nil)
}

// ParseSyncAssignment implements kgo.GroupBalancer.
func (*Balancer) ParseSyncAssignment(assignment []byte) (map[string][]int32, error) {
	return kgo.ParseConsumerSyncAssignment(assignment)
}

// MemberBalancer implements kgo.GroupBalancer.
func (b *Balancer) MemberBalancer(members []kmsg.JoinGroupResponseMember) (kgo.GroupMemberBalancer, map[string]struct{}, error) {
	cb, err := kgo.NewConsumerBalancer(b, members)
	return cb, cb.MemberTopics(), err
}

// Balance implements kgo.ConsumerBalancerBalance: the leader's assignment.
func (b *Balancer) Balance(cb *kgo.ConsumerBalancer, topics map[string]int32) kgo.IntoSyncAssignment {
	src := b.cfg.Topics[0]
	partitions, ok := topics[src]
	if !ok {
		cb.SetError(fmt.Errorf("standby: no partition count of the source topic %s to balance", src))
		return nil
	}
	var cands []Candidate
	cb.EachMember(func(m *kmsg.JoinGroupResponseMember, meta *kmsg.ConsumerMemberMetadata) {
		c := Candidate{ID: m.MemberID, Generation: meta.Generation}
		for _, t := range meta.OwnedPartitions {
			if t.Topic == src {
				c.Owned = append(c.Owned, t.Partitions...)
			}
		}
		// A member whose user data cannot be read (another version's) is assigned as if it had no
		// replicas: warmth is a preference, not a constraint.
		c.Warm, _ = ParseWarm(meta.UserData)
		cands = append(cands, c)
	})
	plan := Assign(cands, partitions, b.cfg.Replicas)
	bp := cb.NewPlan()
	cb.EachMember(func(m *kmsg.JoinGroupResponseMember, meta *kmsg.ConsumerMemberMetadata) {
		ps := plan.Active[m.MemberID]
		if len(ps) == 0 {
			return
		}
		for _, topic := range b.cfg.Topics {
			if _, known := topics[topic]; known && subscribes(meta, topic) {
				bp.AddPartitions(m, topic, append([]int32(nil), ps...))
			}
		}
	})
	bp.AdjustCooperative(cb)
	return withStandby{plan: bp, standby: plan.Standby}
}

func subscribes(meta *kmsg.ConsumerMemberMetadata, topic string) bool {
	for _, t := range meta.Topics {
		if t == topic {
			return true
		}
	}
	return false
}

// withStandby is a plan whose assignments carry each member's standby partitions as user data.
type withStandby struct {
	plan    *kgo.BalancePlan
	standby map[string][]int32
}

func (w withStandby) IntoSyncAssignment() []kmsg.SyncGroupRequestGroupAssignment {
	out := w.plan.IntoSyncAssignment()
	for i := range out {
		var a kmsg.ConsumerMemberAssignment
		if err := a.ReadFrom(out[i].MemberAssignment); err != nil {
			panic(fmt.Sprintf("standby: kgo wrote an assignment it cannot read: %v", err)) // programmer error
		}
		a.UserData = AppendPartitions(nil, w.standby[out[i].MemberID])
		out[i].MemberAssignment = a.AppendTo(nil)
	}
	return out
}

// ErrWire is wrapped by the errors of ParseWarm and ParseStandby: user data that is not
// Balancer's, or not of this version.
var ErrWire = errors.New("standby: balancer user data")

// AppendWarm appends the member metadata's user data for warm: the version byte, the count, and
// per partition (ascending) its number and position, as varints.
func AppendWarm(dst []byte, warm map[int32]int64) []byte {
	ps := make([]int32, 0, len(warm))
	for p := range warm {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	dst = append(dst, wireVersion)
	dst = binary.AppendUvarint(dst, uint64(len(ps)))
	for _, p := range ps {
		dst = binary.AppendVarint(dst, int64(p))
		dst = binary.AppendVarint(dst, warm[p])
	}
	return dst
}

// ParseWarm reads what AppendWarm wrote. Empty data is no replicas.
func ParseWarm(data []byte) (map[int32]int64, error) {
	if len(data) == 0 {
		return nil, nil
	}
	rd, err := newWireReader(data)
	if err != nil {
		return nil, err
	}
	n := rd.count()
	warm := make(map[int32]int64, n)
	for range n {
		p := rd.partition()
		pos := rd.varint()
		warm[p] = pos
	}
	if err := rd.done(); err != nil {
		return nil, err
	}
	return warm, nil
}

// AppendPartitions appends an assignment's user data: the version byte, the count, and the
// standby partitions as varints.
func AppendPartitions(dst []byte, ps []int32) []byte {
	dst = append(dst, wireVersion)
	dst = binary.AppendUvarint(dst, uint64(len(ps)))
	for _, p := range ps {
		dst = binary.AppendVarint(dst, int64(p))
	}
	return dst
}

// ParseStandby reads the standby partitions from a member's assignment user data, as the group
// describes it (kadm's DescribedGroupMember.Assigned.AsConsumer().UserData).
func ParseStandby(data []byte) ([]int32, error) {
	rd, err := newWireReader(data)
	if err != nil {
		return nil, err
	}
	n := rd.count()
	ps := make([]int32, 0, n)
	for range n {
		ps = append(ps, rd.partition())
	}
	if err := rd.done(); err != nil {
		return nil, err
	}
	return ps, nil
}

// wireReader reads varints and remembers the first error; done reports it, or trailing bytes.
type wireReader struct {
	data []byte
	err  error
}

func newWireReader(data []byte) (*wireReader, error) {
	if len(data) == 0 || data[0] != wireVersion {
		return nil, fmt.Errorf("%w: not version %d", ErrWire, wireVersion)
	}
	return &wireReader{data: data[1:]}, nil
}

func (r *wireReader) uvarint() uint64 { return readVarint(r, binary.Uvarint) }

func (r *wireReader) varint() int64 { return readVarint(r, binary.Varint) }

// readVarint reads one varint with decode (binary.Uvarint or binary.Varint).
func readVarint[T uint64 | int64](r *wireReader, decode func([]byte) (T, int)) T {
	if r.err != nil {
		return 0
	}
	v, n := decode(r.data)
	if n <= 0 {
		r.err = fmt.Errorf("%w: truncated", ErrWire)
		return 0
	}
	r.data = r.data[n:]
	return v
}

// count reads an entry count, bounded by the bytes left (each entry takes at least one), so that
// garbage cannot ask for a huge allocation.
func (r *wireReader) count() int {
	n := r.uvarint()
	if n > uint64(len(r.data)) {
		if r.err == nil {
			r.err = fmt.Errorf("%w: %d entries in %d bytes", ErrWire, n, len(r.data))
		}
		return 0
	}
	return int(n)
}

func (r *wireReader) partition() int32 {
	v := r.varint()
	if v < 0 || v > 1<<31-1 {
		if r.err == nil {
			r.err = fmt.Errorf("%w: partition %d", ErrWire, v)
		}
		return 0
	}
	return int32(v)
}

func (r *wireReader) done() error {
	if r.err == nil && len(r.data) > 0 {
		r.err = fmt.Errorf("%w: %d trailing bytes", ErrWire, len(r.data))
	}
	return r.err
}
