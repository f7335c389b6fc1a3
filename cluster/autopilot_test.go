package cluster

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	autopilot "github.com/hashicorp/raft-autopilot"
)

func voters(ids ...string) []raft.Server {
	var out []raft.Server
	for _, id := range ids {
		out = append(out, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(id), Address: raft.ServerAddress(id)})
	}
	return out
}

func gossipView(status map[string]string) map[string]memberEntry {
	out := map[string]memberEntry{}
	for id, s := range status {
		out[id] = memberEntry{meta: nodeMeta{ID: id}, status: s}
	}
	return out
}

// TestRemovalUnsafe_QuorumGuard: dead-server cleanup removes a voter only
// when the voters left keep a live majority and stay at or above
// bootstrap-expect. node1 is the leader deciding (always alive).
func TestRemovalUnsafe_QuorumGuard(t *testing.T) {
	nonvoter := raft.Server{Suffrage: raft.Nonvoter, ID: "node9", Address: "node9"}
	cases := []struct {
		name    string
		servers []raft.Server
		gossip  map[string]string
		expect  int
		remove  string
		safe    bool
	}{
		{"one of three failed, expect 2", voters("node1", "node2", "node3"),
			map[string]string{"node2": GossipAlive, "node3": GossipFailed}, 2, "node3", true},
		{"one of three failed, expect 3: never below bootstrap-expect", voters("node1", "node2", "node3"),
			map[string]string{"node2": GossipAlive, "node3": GossipFailed}, 3, "node3", false},
		{"two of three failed: the one left with self is no majority", voters("node1", "node2", "node3"),
			map[string]string{"node2": GossipFailed, "node3": GossipFailed}, 1, "node3", false},
		{"two of five failed: four left, three alive", voters("node1", "node2", "node3", "node4", "node5"),
			map[string]string{"node2": GossipAlive, "node3": GossipAlive, "node4": GossipFailed, "node5": GossipFailed}, 3, "node5", true},
		{"three of five failed: four left, two alive", voters("node1", "node2", "node3", "node4", "node5"),
			map[string]string{"node2": GossipAlive, "node3": GossipFailed, "node4": GossipFailed, "node5": GossipFailed}, 3, "node5", false},
		{"a suspect voter is not counted alive", voters("node1", "node2", "node3"),
			map[string]string{"node2": GossipSuspect, "node3": GossipFailed}, 1, "node3", false},
		{"a voter unknown to gossip is not counted alive", voters("node1", "node2", "node3"),
			map[string]string{"node3": GossipFailed}, 1, "node3", false},
		{"a non-voter does not make a quorum", append(voters("node1", "node2", "node3"), nonvoter),
			map[string]string{"node2": GossipFailed, "node3": GossipFailed, "node9": GossipAlive}, 1, "node3", false},
		{"four voters, one failed, expect 3: three left", voters("node1", "node2", "node3", "node4"),
			map[string]string{"node2": GossipAlive, "node3": GossipAlive, "node4": GossipFailed}, 3, "node4", true},
		{"a non-voter does not count toward bootstrap-expect", append(voters("node1", "node2", "node3"), nonvoter),
			map[string]string{"node2": GossipAlive, "node3": GossipFailed, "node9": GossipAlive}, 3, "node3", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := cleanupRules{self: "node1", expect: tc.expect, logger: hclog.NewNullLogger()}
			why := r.removalUnsafe(tc.servers, gossipView(tc.gossip), raft.ServerID(tc.remove))
			if (why == "") != tc.safe {
				t.Errorf("removalUnsafe(%s) = %q, want safe=%v", tc.remove, why, tc.safe)
			}
		})
	}
}

// TestCleanupRules_Filter: what the promoter lets autopilot remove, given
// how long each server has been gone from gossip, and the quorum
// arithmetic across several removals in one pass.
func TestCleanupRules_Filter(t *testing.T) {
	now := time.Unix(1700000000, 0)
	const after = 30 * time.Second
	view := func(entries map[string]struct {
		status string
		ago    time.Duration
	}) map[string]memberEntry {
		out := map[string]memberEntry{}
		for id, e := range entries {
			out[id] = memberEntry{meta: nodeMeta{ID: id}, status: e.status, since: now.Add(-e.ago)}
		}
		return out
	}
	type gone = struct {
		status string
		ago    time.Duration
	}
	srv := func(ids ...string) []*autopilot.Server {
		var out []*autopilot.Server
		for _, id := range ids {
			out = append(out, &autopilot.Server{ID: raft.ServerID(id)})
		}
		return out
	}
	ids := func(ss []*autopilot.Server) []string {
		var out []string
		for _, s := range ss {
			out = append(out, string(s.ID))
		}
		return out
	}
	cases := []struct {
		name      string
		servers   []raft.Server
		gossip    map[string]gone
		expect    int
		failedV   []string
		failedNV  []string
		wantV     []string
		wantNV    []string
		staleKept bool
	}{
		{"failed for less than the cleanup time: kept", voters("node1", "node2", "node3", "node4"),
			map[string]gone{"node2": {GossipAlive, 0}, "node3": {GossipAlive, 0}, "node4": {GossipFailed, after - time.Second}},
			3, []string{"node4"}, nil, nil, nil, false},
		{"failed past the cleanup time: removed", voters("node1", "node2", "node3", "node4"),
			map[string]gone{"node2": {GossipAlive, 0}, "node3": {GossipAlive, 0}, "node4": {GossipFailed, after}},
			3, []string{"node4"}, nil, []string{"node4"}, nil, false},
		{"left gossip without leaving raft (a restart): the same cleanup time", voters("node1", "node2", "node3", "node4"),
			map[string]gone{"node2": {GossipAlive, 0}, "node3": {GossipAlive, 0}, "node4": {GossipLeft, after / 2}},
			3, []string{"node4"}, nil, nil, nil, false},
		{"left long enough: removed", voters("node1", "node2", "node3", "node4"),
			map[string]gone{"node2": {GossipAlive, 0}, "node3": {GossipAlive, 0}, "node4": {GossipLeft, 2 * after}},
			3, []string{"node4"}, nil, []string{"node4"}, nil, false},
		{"suspect is no evidence", voters("node1", "node2", "node3", "node4"),
			map[string]gone{"node2": {GossipAlive, 0}, "node3": {GossipAlive, 0}, "node4": {GossipSuspect, time.Hour}},
			3, []string{"node4"}, nil, nil, nil, false},
		{"never heard of in gossip is no evidence", voters("node1", "node2", "node3", "node4"),
			map[string]gone{"node2": {GossipAlive, 0}, "node3": {GossipAlive, 0}},
			3, []string{"node4"}, nil, nil, nil, false},
		{"two of five past the time: both go, quorum counted after each", voters("node1", "node2", "node3", "node4", "node5"),
			map[string]gone{"node2": {GossipAlive, 0}, "node3": {GossipAlive, 0}, "node4": {GossipFailed, time.Hour}, "node5": {GossipFailed, time.Hour}},
			3, []string{"node4", "node5"}, nil, []string{"node4", "node5"}, nil, false},
		{"two of five past the time, expect 4: only one goes", voters("node1", "node2", "node3", "node4", "node5"),
			map[string]gone{"node2": {GossipAlive, 0}, "node3": {GossipAlive, 0}, "node4": {GossipFailed, time.Hour}, "node5": {GossipFailed, time.Hour}},
			4, []string{"node4", "node5"}, nil, []string{"node4"}, nil, false},
		{"three of five failed: none goes", voters("node1", "node2", "node3", "node4", "node5"),
			map[string]gone{"node2": {GossipAlive, 0}, "node3": {GossipFailed, time.Hour}, "node4": {GossipFailed, time.Hour}, "node5": {GossipFailed, time.Hour}},
			1, []string{"node3", "node4", "node5"}, nil, nil, nil, false},
		{"a failed non-voter goes after the time, whatever the quorum", append(voters("node1", "node2", "node3"), raft.Server{Suffrage: raft.Nonvoter, ID: "node9"}),
			map[string]gone{"node2": {GossipAlive, 0}, "node3": {GossipAlive, 0}, "node9": {GossipFailed, after}},
			3, nil, []string{"node9"}, nil, []string{"node9"}, false},
		{"the leader itself never goes", voters("node1", "node2", "node3", "node4"),
			map[string]gone{"node1": {GossipFailed, time.Hour}, "node2": {GossipAlive, 0}, "node3": {GossipAlive, 0}},
			1, []string{"node1"}, nil, nil, nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := cleanupRules{self: "node1", expect: tc.expect, after: after, logger: hclog.NewNullLogger()}
			failed := &autopilot.FailedServers{
				FailedVoters: srv(tc.failedV...), FailedNonVoters: srv(tc.failedNV...),
				StaleVoters: []raft.ServerID{"node7"}, StaleNonVoters: []raft.ServerID{"node8"},
			}
			got := r.filter(failed, tc.servers, view(tc.gossip), now)
			if g := ids(got.FailedVoters); !slices.Equal(g, tc.wantV) {
				t.Errorf("voters removed = %v, want %v", g, tc.wantV)
			}
			if g := ids(got.FailedNonVoters); !slices.Equal(g, tc.wantNV) {
				t.Errorf("non-voters removed = %v, want %v", g, tc.wantNV)
			}
			if len(got.StaleVoters)+len(got.StaleNonVoters) != 0 {
				t.Errorf("stale servers let through: %v %v", got.StaleVoters, got.StaleNonVoters)
			}
		})
	}
}

// TestKnownServers_ListsAllOfRaft: the delegate lists every Raft server,
// those gossip has not reported as "unknown", so the library never prunes
// one as stale; gossip statuses map to autopilot's.
func TestKnownServers_ListsAllOfRaft(t *testing.T) {
	nodes := newRaftCluster(t, 3, Options{})
	l := leader(t, nodes)
	others := otherThan(nodes, l)
	// A fresh member table: the leader has heard of nobody yet (a new
	// leader after a restart) but one member, failed; plus a stranger
	// alive in gossip and a leaving one.
	l.c.members = newMemberTable(time.Second, 500*time.Millisecond)
	l.gossip(t, others[0].c.opts.NodeID, GossipFailed, nodeMeta{})
	l.gossip(t, "node7", GossipAlive, nodeMeta{})
	l.gossip(t, "node8", GossipAlive, nodeMeta{Leaving: true})
	known := (&apDelegate{c: l.c}).KnownServers()
	want := map[string]autopilot.NodeStatus{
		l.c.opts.NodeID:         autopilot.NodeAlive,
		others[0].c.opts.NodeID: autopilot.NodeFailed,
		others[1].c.opts.NodeID: autopilot.NodeUnknown,
		"node7":                 autopilot.NodeAlive,
		"node8":                 autopilot.NodeLeft,
	}
	for id, st := range want {
		s, ok := known[raft.ServerID(id)]
		switch {
		case !ok:
			t.Errorf("%s missing from KnownServers", id)
		case s.NodeStatus != st:
			t.Errorf("%s status = %s, want %s", id, s.NodeStatus, st)
		case s.NodeType != autopilot.NodeVoter:
			t.Errorf("%s node type = %q: the library then never counts it as a potential voter", id, s.NodeType)
		}
	}
	if !known[raft.ServerID(l.c.opts.NodeID)].IsLeader {
		t.Error("the leader is not marked as leader")
	}
}

// TestAutopilot_RemovesFailedVoterKeepsQuorum runs the library on an
// in-memory Raft leader: with one voter failed past the cleanup time it is
// removed; with both others failed nothing is, though both are past it.
func TestAutopilot_RemovesFailedVoterKeepsQuorum(t *testing.T) {
	o := Options{DeadServerCleanup: time.Millisecond, BootstrapExpect: 1, ReconcileInterval: 20 * time.Millisecond}
	t.Run("one failed", func(t *testing.T) {
		nodes := newRaftCluster(t, 3, o)
		l := leader(t, nodes)
		victim := otherThan(nodes, l)[0]
		l.gossip(t, victim.c.opts.NodeID, GossipFailed, nodeMeta{})
		startPilot(t, l, nil)
		waitFor(t, 10*time.Second, victim.c.opts.NodeID+" removed", func() bool {
			_, in := l.configuration(t)[victim.c.opts.NodeID]
			return !in
		})
	})
	t.Run("two failed", func(t *testing.T) {
		nodes := newRaftCluster(t, 3, o)
		l := leader(t, nodes)
		for _, n := range otherThan(nodes, l) {
			l.gossip(t, n.c.opts.NodeID, GossipFailed, nodeMeta{})
		}
		before := l.configuration(t)
		passes := make(chan struct{}, 100)
		startPilot(t, l, passes)
		// Removals run synchronously after the filter: once the filter has
		// run twice, the first pass's removals are done.
		for range 2 {
			select {
			case <-passes:
			case <-time.After(10 * time.Second):
				t.Fatal("autopilot never considered removals")
			}
		}
		if after := l.configuration(t); len(after) != len(before) {
			t.Errorf("configuration %v → %v: a voter was removed with no live majority left", before, after)
		}
	})
}

// countingPromoter notes every pass of the removal filter.
type countingPromoter struct {
	*promoter
	passes chan<- struct{}
}

func (p countingPromoter) FilterFailedServerRemovals(c *autopilot.Config, s *autopilot.State, f *autopilot.FailedServers) *autopilot.FailedServers {
	out := p.promoter.FilterFailedServerRemovals(c, s, f)
	if len(f.FailedVoters) > 0 {
		select {
		case p.passes <- struct{}{}:
		default:
		}
	}
	return out
}

// startPilot runs autopilot on n until the test ends; passes, if set,
// hears each removal pass that saw failed voters.
func startPilot(t *testing.T, n *testNode, passes chan<- struct{}) {
	t.Helper()
	if n.c.opts.ReconcileInterval == 0 {
		n.c.opts.ReconcileInterval = 20 * time.Millisecond
	}
	var p autopilot.Promoter = &promoter{Promoter: autopilot.DefaultPromoter(), c: n.c}
	if passes != nil {
		p = countingPromoter{promoter: p.(*promoter), passes: passes}
	}
	n.c.pilot = newAutopilot(n.c, p)
	ctx, cancel := context.WithCancel(context.Background())
	n.c.pilot.Start(ctx)
	t.Cleanup(func() { cancel(); <-n.c.pilot.Stop() })
}

// TestAutopilot_PromotesStableNonvoter: a non-voter alive in gossip is
// promoted by the library's default promoter once stable.
func TestAutopilot_PromotesStableNonvoter(t *testing.T) {
	o := Options{ServerStabilization: 50 * time.Millisecond, ReconcileInterval: 20 * time.Millisecond}
	nodes := newRaftCluster(t, 3, o)
	l := leader(t, nodes)
	n4 := newNode(t, "node4", o)
	connect(append(nodes, n4)...)
	l.gossip(t, "node4", GossipAlive, nodeMeta{})
	startPilot(t, l, nil)
	l.c.addFromGossip()
	if s, ok := l.configuration(t)["node4"]; !ok || s != raft.Nonvoter {
		t.Fatalf("node4 after addFromGossip: %v (in raft %v), want a non-voter", s, ok)
	}
	waitFor(t, 10*time.Second, "node4 promoted", func() bool { return l.configuration(t)["node4"] == raft.Voter })
}

// TestRemoveServer_RefusesToLoseQuorum: the operator's remove (POST
// /v1/cluster/remove-peer) refuses to remove a healthy voter while another
// is down, which would leave one live voter of two; removing the dead one
// is fine. A non-voter can always go.
func TestRemoveServer_RefusesToLoseQuorum(t *testing.T) {
	nodes := newRaftCluster(t, 3, Options{})
	l := leader(t, nodes)
	others := otherThan(nodes, l)
	dead, healthy := others[0], others[1]
	l.gossip(t, dead.c.opts.NodeID, GossipFailed, nodeMeta{})

	before := l.configuration(t)
	err := l.c.RemoveServer(healthy.c.opts.NodeID)
	if !errors.Is(err, ErrWouldLoseQuorum) {
		t.Fatalf("RemoveServer(%s) with %s failed = %v, want ErrWouldLoseQuorum", healthy.c.opts.NodeID, dead.c.opts.NodeID, err)
	}
	if after := l.configuration(t); len(after) != len(before) {
		t.Fatalf("refused, but the configuration changed: %v → %v", before, after)
	}
	if err := l.c.RemoveServer("node-nobody"); !errors.Is(err, ErrUnknownServer) {
		t.Errorf("RemoveServer(unknown) = %v, want ErrUnknownServer", err)
	}
	if err := l.c.RemoveServer(dead.c.opts.NodeID); err != nil {
		t.Fatalf("RemoveServer(%s), the failed one = %v", dead.c.opts.NodeID, err)
	}
	if _, in := l.configuration(t)[dead.c.opts.NodeID]; in {
		t.Fatalf("%s still in the configuration", dead.c.opts.NodeID)
	}
	// Two voters left, both alive: removing either would leave one voter,
	// alive, which is a majority of one.
	if err := l.c.raft.AddNonvoter("node9", "node9", 0, time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	if err := l.c.RemoveServer("node9"); err != nil {
		t.Errorf("RemoveServer(non-voter) = %v", err)
	}
	if err := healthy.c.RemoveServer(l.c.opts.NodeID); !errors.Is(err, ErrNotLeader) {
		t.Errorf("RemoveServer on a follower = %v, want ErrNotLeader", err)
	}
}

func otherThan(nodes []*testNode, not *testNode) []*testNode {
	var out []*testNode
	for _, n := range nodes {
		if n != not {
			out = append(out, n)
		}
	}
	return out
}

func raftServers(t *testing.T, n *testNode) []raft.Server {
	t.Helper()
	f := n.c.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		t.Fatal(err)
	}
	return f.Configuration().Servers
}
