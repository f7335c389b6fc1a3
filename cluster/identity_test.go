package cluster

import (
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

func TestIdentity_ClaimMustMatchName(t *testing.T) {
	if claimMatchesName(&memberlist.Node{Name: "evil"}, nodeMeta{ID: "node1"}) {
		t.Fatal("a member named evil may speak for node1")
	}
	if !claimMatchesName(&memberlist.Node{Name: "node1"}, nodeMeta{ID: "node1"}) {
		t.Fatal("node1 may not speak for itself")
	}
	tbl := newMemberTable(time.Second, time.Second)
	tbl.set(&memberlist.Node{Name: "evil", Meta: []byte(`{"id":"node1","http":"10.0.0.9:80","raft":"10.0.0.9:81"}`)}, GossipAlive)
	if _, ok := tbl.get("node1"); ok {
		t.Fatal("a mismatched claim entered the member table")
	}
}

func TestIdentity_SameHost(t *testing.T) {
	for _, tc := range []struct {
		addrs []string
		want  bool
	}{
		{[]string{"10.0.0.1:8300", "10.0.0.1:8080", "10.0.0.1:8301"}, true},
		{[]string{"10.0.0.1:8300", "10.0.0.2:8080"}, false},
		{[]string{"[::1]:1", "[0:0:0:0:0:0:0:1]:2"}, true},
		{[]string{"10.0.0.1:8300", "garbage"}, false},
	} {
		if got := sameHost(tc.addrs...); got != tc.want {
			t.Errorf("sameHost(%v) = %v", tc.addrs, got)
		}
	}
}

func TestIdentity_ReapForgetsLongGoneMembersNotInRaft(t *testing.T) {
	tbl := newMemberTable(time.Second, time.Second)
	for _, n := range []string{"gone", "kept", "alive"} {
		tbl.set(&memberlist.Node{Name: n, Meta: []byte(`{"id":"` + n + `"}`)}, GossipFailed)
	}
	tbl.set(&memberlist.Node{Name: "alive", Meta: []byte(`{"id":"alive"}`)}, GossipAlive)
	tbl.mu.Lock()
	for id, e := range tbl.nodes {
		e.since = time.Now().Add(-time.Hour)
		tbl.nodes[id] = e
	}
	tbl.mu.Unlock()
	n := tbl.reap(time.Minute, func(id string) bool { return id == "kept" })
	if n != 1 {
		t.Fatalf("reaped %d, want 1", n)
	}
	if _, ok := tbl.get("gone"); ok {
		t.Fatal("gone was not reaped")
	}
	for _, id := range []string{"kept", "alive"} {
		if _, ok := tbl.get(id); !ok {
			t.Fatalf("%s was reaped", id)
		}
	}
}
