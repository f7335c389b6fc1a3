package cluster

import (
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/raft"
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
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ap := &autopilot{c: &Cluster{opts: Options{NodeID: "node1", BootstrapExpect: tc.expect}}}
			why := ap.removalUnsafe(tc.servers, gossipView(tc.gossip), raft.ServerID(tc.remove))
			if (why == "") != tc.safe {
				t.Errorf("removalUnsafe(%s) = %q, want safe=%v", tc.remove, why, tc.safe)
			}
		})
	}
}

// TestRemoveDead_KeepsQuorum runs dead-server cleanup on a real
// (in-memory) Raft leader: with one voter failed long enough it is
// removed; with both others failed nothing is, though both are past the
// cleanup time.
func TestRemoveDead_KeepsQuorum(t *testing.T) {
	o := Options{DeadServerCleanup: time.Millisecond, BootstrapExpect: 1}
	t.Run("one failed", func(t *testing.T) {
		nodes := newRaftCluster(t, 3, o)
		l := leader(t, nodes)
		victim := otherThan(nodes, l)[0]
		l.gossip(t, victim.c.opts.NodeID, GossipFailed, nodeMeta{})
		time.Sleep(2 * time.Millisecond) // past DeadServerCleanup
		ap := &autopilot{c: l.c, healthySince: map[raft.ServerID]time.Time{}}
		ap.removeDead(raftServers(t, l), l.c.members.all(l.c.opts.NodeID))
		if _, in := l.configuration(t)[victim.c.opts.NodeID]; in {
			t.Errorf("%s failed past the cleanup time and is still a voter", victim.c.opts.NodeID)
		}
	})
	t.Run("two failed", func(t *testing.T) {
		nodes := newRaftCluster(t, 3, o)
		l := leader(t, nodes)
		for _, n := range otherThan(nodes, l) {
			l.gossip(t, n.c.opts.NodeID, GossipFailed, nodeMeta{})
		}
		time.Sleep(2 * time.Millisecond)
		ap := &autopilot{c: l.c, healthySince: map[raft.ServerID]time.Time{}}
		before := l.configuration(t)
		ap.removeDead(raftServers(t, l), l.c.members.all(l.c.opts.NodeID))
		if after := l.configuration(t); len(after) != len(before) {
			t.Errorf("configuration %v → %v: a voter was removed with no live majority left", before, after)
		}
	})
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
