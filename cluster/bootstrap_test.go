package cluster

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestBootstrapCandidates_Guards: a node bootstraps only with
// bootstrap-expect servers in sight, all agreeing on it, and none already
// in a cluster; the configuration is the same sorted list on every node.
func TestBootstrapCandidates_Guards(t *testing.T) {
	cases := []struct {
		name  string
		peers map[string]nodeMeta // id → meta (status alive unless failed below)
		fail  string              // a peer that failed in gossip
		why   string              // "" when it bootstraps
	}{
		{name: "three fresh servers", peers: map[string]nodeMeta{"node2": {BootstrapExpect: 3}, "node3": {BootstrapExpect: 3}}},
		{name: "a peer already belongs to a cluster",
			peers: map[string]nodeMeta{"node2": {BootstrapExpect: 3, HasState: true}, "node3": {BootstrapExpect: 3}},
			why:   "server node2 already belongs to a cluster"},
		{name: "a peer expects another size",
			peers: map[string]nodeMeta{"node2": {BootstrapExpect: 5}, "node3": {BootstrapExpect: 3}},
			why:   "server node2 expects a different bootstrap-expect"},
		{name: "too few in sight", peers: map[string]nodeMeta{"node2": {BootstrapExpect: 3}},
			why: "seen fewer servers than bootstrap-expect"},
		{name: "a failed peer does not count", peers: map[string]nodeMeta{"node2": {BootstrapExpect: 3}, "node3": {BootstrapExpect: 3}},
			fail: "node3", why: "seen fewer servers than bootstrap-expect"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := &testNode{c: &Cluster{opts: Options{NodeID: "node1", BootstrapExpect: 3}, members: newMemberTable(time.Second, time.Second)}}
			n.gossip(t, "node1", GossipAlive, nodeMeta{BootstrapExpect: 3})
			for id, meta := range tc.peers {
				status := GossipAlive
				if id == tc.fail {
					status = GossipFailed
				}
				n.gossip(t, id, status, meta)
			}
			servers, why := n.c.bootstrapCandidates()
			if tc.why != "" {
				if !strings.Contains(why, tc.why) || servers != nil {
					t.Fatalf("bootstrapCandidates = %v, %q; want none, %q", servers, why, tc.why)
				}
				return
			}
			var ids []string
			for _, s := range servers {
				ids = append(ids, string(s.ID))
				if s.Suffrage != raft.Voter || s.Address != raftAddrOf(string(s.ID)) {
					t.Errorf("server %+v: want a voter at its gossiped raft address", s)
				}
			}
			if why != "" || !slices.Equal(ids, []string{"node1", "node2", "node3"}) {
				t.Fatalf("bootstrapCandidates = %v, %q; want node1..3 sorted", ids, why)
			}
		})
	}
}

// TestBootstrap_WipedServerRejoinsEmpty: a server whose data directory was
// wiped comes back with the same id and address and no state. It must not
// bootstrap a cluster of its own (its peers say they have state); the
// leader still lists it, so it rejoins and catches up from nothing: every
// machine and key the cluster has, including those registered while it
// was away.
func TestBootstrap_WipedServerRejoinsEmpty(t *testing.T) {
	nodes := newRaftCluster(t, 3, Options{BootstrapExpect: 3})
	l := leader(t, nodes)
	key1 := l.register(t, "before-wipe")
	victim := otherThan(nodes, l)[0]
	id := victim.c.opts.NodeID
	waitFor(t, 5*time.Second, id+" has the machine", func() bool {
		_, ok := victim.fsm.Authenticate(key1)
		return ok
	})
	victim.stop()
	for _, n := range nodes {
		if n != victim {
			n.trans.Disconnect(raftAddrOf(id))
		}
	}
	key2 := l.register(t, "while-away")
	// Take a snapshot so the newcomer needs an install, not just the log.
	if err := l.c.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}

	fresh := newNode(t, id, Options{BootstrapExpect: 3, DataDir: t.TempDir()})
	if fresh.c.hasRaftState() {
		t.Fatal("a wiped server reports raft state")
	}
	fresh.gossip(t, id, GossipAlive, nodeMeta{BootstrapExpect: 3})
	for _, n := range nodes {
		if n != victim {
			fresh.gossip(t, n.c.opts.NodeID, GossipAlive, nodeMeta{BootstrapExpect: 3, HasState: true})
		}
	}
	if servers, why := fresh.c.bootstrapCandidates(); servers != nil || !strings.Contains(why, "already belongs to a cluster") {
		t.Fatalf("a wiped server among servers with state would bootstrap: %v, %q", servers, why)
	}
	var rest []*testNode
	for _, n := range nodes {
		if n != victim {
			rest = append(rest, n)
		}
	}
	connect(append(rest, fresh)...)
	waitFor(t, 10*time.Second, id+" caught up from empty", func() bool {
		_, ok1 := fresh.fsm.Authenticate(key1)
		_, ok2 := fresh.fsm.Authenticate(key2)
		return ok1 && ok2
	})
	if fresh.c.raft.State() == raft.Leader || leader(t, append(rest, fresh)) != l {
		t.Error("the rejoining server disturbed the leadership")
	}
}
