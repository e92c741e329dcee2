package stream

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamd/streamd/state"
	"github.com/streamd/streamd/state/standby"
)

// Standby replicas (Config.StandbyReplicas, package state/standby) are wired to the group here.
// After every rebalance this instance is part of, and every standbyRefresh besides, the runtime
// describes the group and gives the replicas the partitions standby.Choose picks from the members'
// assignments, leaving out what this instance owns or is opening. A partition assigned here is
// taken from the replicas by its restore goroutine (onAssigned) before its task opens the same
// directory, so a database is only ever held by one of them.
//
// Lock order: r.mu, then the replicas' own lock (refreshStandby calls Set under r.mu; Take is
// called without r.mu).

// standbyRefresh is how often the runtime describes the group to follow changes it got no
// callback for (with cooperative rebalancing, a member whose own assignment did not change is not
// told that others' did); standbyUnsettled is the retry while the group is rebalancing.
const (
	standbyRefresh   = 5 * time.Second
	standbyUnsettled = 500 * time.Millisecond
)

// taskDir is the state directory of a source partition's task (and of its standby replica).
func (r *Runtime) taskDir(topic string, partition int32) string {
	return filepath.Join(r.cfg.StateDir, r.pipeline.Name, fmt.Sprintf("%s-%d", topic, partition))
}

// startStandby starts the replicas and the goroutine that keeps their set, when the config asks
// for replicas and the pipeline keeps state. The returned function stops both and waits; the
// replicas' directories stay.
func (r *Runtime) startStandby(ctx context.Context) (stop func()) {
	if r.cfg.StandbyReplicas == 0 {
		return func() {}
	}
	if len(r.stores) == 0 {
		r.log.Info("standby replicas: the pipeline keeps no state, so there is nothing to keep warm", "standby_replicas", r.cfg.StandbyReplicas)
		return func() {}
	}
	src := r.pipeline.Source.Topic
	r.standby = standby.New(standby.Config{
		Stores:     r.stores,
		Changelog:  func(store string) string { return state.ChangelogTopic(r.pipeline.Name, store) },
		Dir:        func(p int32) string { return r.taskDir(src, p) },
		DB:         state.Options{Cache: r.cache, MemTableSize: r.mem.plan.memTableBytes, Logger: r.log},
		ClientOpts: append(r.restoreOpts(), kgo.ClientID("streamd-standby")),
		Log:        r.log.With("component", "standby"),
		Partitions: r.m.standbyPartitions,
		Lag:        r.m.standbyLag,
	})
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.keepStandby(ctx)
	}()
	return func() {
		cancel()
		wg.Wait()
		r.standby.Close()
	}
}

// nudgeStandby asks keepStandby to describe the group now (a rebalance happened).
func (r *Runtime) nudgeStandby() {
	select {
	case r.standbyNudge <- struct{}{}:
	default:
	}
}

// keepStandby keeps the replicas' set in line with the group until ctx ends.
func (r *Runtime) keepStandby(ctx context.Context) {
	cl, err := kgo.NewClient(append(r.restoreOpts(), kgo.ClientID("streamd-standby"))...)
	if err != nil {
		r.log.Error("standby: no admin client; no standby replicas", "err", err)
		return
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	wait := standbyUnsettled
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.standbyNudge:
		case <-time.After(wait):
		}
		settled, err := r.refreshStandby(ctx, adm)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			r.log.Warn("standby: describing the group failed; the replicas stay as they are", "err", err)
			wait = standbyRefresh
		case !settled:
			wait = standbyUnsettled
		default:
			wait = standbyRefresh
		}
	}
}

// refreshStandby describes the group and, if it is settled (Stable, every source partition
// assigned) and this instance is in it, sets the replicas from the assignment and removes the state directories of partitions this instance
// neither owns nor stands by for.
func (r *Runtime) refreshStandby(ctx context.Context, adm *kadm.Client) (settled bool, err error) {
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	groups, err := adm.DescribeGroups(dctx, r.pipeline.Name)
	if err != nil {
		return false, err
	}
	g, ok := groups[r.pipeline.Name]
	if !ok {
		return false, fmt.Errorf("stream: group %s not described", r.pipeline.Name)
	}
	if g.Err != nil {
		return false, g.Err
	}
	if g.State != "Stable" {
		return false, nil
	}
	src := r.pipeline.Source.Topic
	members := make([]standby.Member, 0, len(g.Members))
	var self []int32
	// The warm balancer's leader assigned the standby partitions too, in each member's assignment
	// (standby.Balancer); with another protocol each member chooses its own (standby.Choose).
	leaderChose := g.Protocol == standby.Protocol
	var given []int32
	for _, m := range g.Members {
		sm := standby.Member{ID: m.MemberID}
		if m.InstanceID != nil {
			sm.ID = *m.InstanceID
		}
		c, ok := m.Assigned.AsConsumer()
		if ok {
			for _, t := range c.Topics {
				if t.Topic == src {
					sm.Partitions = append(sm.Partitions, t.Partitions...)
				}
			}
		}
		if sm.ID == r.cfg.InstanceID {
			self = sm.Partitions
			if leaderChose && ok {
				if given, err = standby.ParseStandby(c.UserData); err != nil {
					return false, fmt.Errorf("stream: the standby partitions in this member's assignment: %w", err)
				}
			}
		}
		members = append(members, sm)
	}
	// A cooperative rebalance commits in two rounds: the first takes the moving partitions away
	// and leaves them unassigned in a Stable group, the second gives them to their new owners.
	// Between the two the assignment says nothing about those partitions' replicas; acting on it
	// would stop and remove replicas that are about to be wanted again.
	assigned := map[int32]bool{}
	for _, m := range members {
		for _, p := range m.Partitions {
			assigned[p] = true
		}
	}
	if len(assigned) < int(r.partitions) {
		return false, nil
	}
	chosen := given
	if !leaderChose {
		chosen = standby.Choose(members, r.cfg.InstanceID, r.cfg.StandbyReplicas)
	}
	if self == nil && chosen == nil {
		// Not a member (yet, or any more): keep what is there until the group says otherwise.
		return false, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	keep := map[int32]bool{}
	for _, p := range self {
		keep[p] = true
	}
	for p := range r.tasks {
		keep[p] = true
	}
	for p := range r.restoring {
		keep[p] = true
	}
	want := chosen[:0:0]
	for _, p := range chosen {
		if !keep[p] {
			want = append(want, p)
		}
	}
	r.standby.Set(want)
	for _, p := range want {
		keep[p] = true
	}
	r.pruneStateDirs(keep)
	return true, nil
}

// pruneStateDirs removes the state directories of source partitions not in keep: left from a
// partition this instance owned or stood by for before. With standby replicas the disk holds the
// owned and standby partitions only. Directories moved aside as corrupt are not touched. r.mu is
// held.
func (r *Runtime) pruneStateDirs(keep map[int32]bool) {
	base := filepath.Join(r.cfg.StateDir, r.pipeline.Name)
	entries, err := os.ReadDir(base)
	if err != nil {
		return // nothing there yet
	}
	prefix := r.pipeline.Source.Topic + "-"
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok || !e.IsDir() {
			continue
		}
		p, err := strconv.ParseInt(rest, 10, 32)
		if err != nil || keep[int32(p)] {
			continue
		}
		dir := filepath.Join(base, e.Name())
		if err := os.RemoveAll(dir); err != nil {
			r.log.Warn("standby: removing the state of a partition neither owned nor stood by for failed", "partition", p, "dir", dir, "err", err)
			continue
		}
		r.log.Info("standby: removed the state of a partition neither owned nor stood by for", "partition", p, "dir", dir)
	}
}

// takeStandby stops the replica of a partition about to be opened here, if there is one, and
// returns where it stood.
func (r *Runtime) takeStandby(p int32) (standby.Position, bool) {
	if r.standby == nil {
		return standby.Position{}, false
	}
	return r.standby.Take(p)
}
