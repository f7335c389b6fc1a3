package cluster

import (
	"slices"
	"strings"

	"github.com/hashicorp/raft"

	"github.com/lunasentri/lunasentri/internal/clusterinfo"
)

// Status is this node's view of the cluster (GET /v1/status).
type Status = clusterinfo.NodeStatus

// Status returns this node's view of the cluster.
func (c *Cluster) Status() Status {
	_, leaderID := c.raft.LeaderWithID()
	st := Status{
		NodeID:       c.opts.NodeID,
		RaftState:    c.raft.State().String(),
		LeaderID:     string(leaderID),
		Term:         c.raft.CurrentTerm(),
		CommitIndex:  c.raft.CommitIndex(),
		AppliedIndex: c.raft.AppliedIndex(),
	}
	if leaderID != "" {
		st.LeaderHTTPAddr, _ = c.leaderHTTPAddr()
	}
	return st
}

// Leader returns the leader's id and API address, if known. The leader's
// id and Raft address come from Raft itself; its API address from gossip
// only when that member's claims match Raft's (issue 11), so a rogue
// gossip member cannot pose as the leader and receive heartbeats, the
// cluster secret or proxied admin calls.
func (c *Cluster) Leader() (id, httpAddr string, ok bool) {
	_, lid := c.raft.LeaderWithID()
	if lid == "" {
		return "", "", false
	}
	addr, found := c.leaderHTTPAddr()
	return string(lid), addr, found
}

func (c *Cluster) leaderHTTPAddr() (string, bool) {
	laddr, lid := c.raft.LeaderWithID()
	if lid == "" {
		return "", false
	}
	if string(lid) == c.opts.NodeID {
		return c.opts.HTTPAdvertise, true
	}
	return c.trustedHTTPAddr(string(lid), laddr)
}

// HTTPAddrOf returns a server's API address from its gossip metadata,
// checked against the Raft configuration when the server is in it.
func (c *Cluster) HTTPAddrOf(id string) (string, bool) {
	if id == c.opts.NodeID {
		return c.opts.HTTPAdvertise, true
	}
	raftAddr, _ := c.raftAddrOf(id)
	return c.trustedHTTPAddr(id, raftAddr)
}

// Member is one server as gossip and Raft see it (GET /v1/cluster/members).
type Member = clusterinfo.Member

// Members merges the gossip view and the Raft configuration: every server
// in either appears once.
func (c *Cluster) Members() ([]Member, error) {
	byID := map[string]*Member{}
	for id, e := range c.members.all(c.opts.NodeID) {
		byID[id] = &Member{ID: id, HTTPAddr: e.meta.HTTPAddr, RaftAddr: e.meta.RaftAddr, GossipStatus: e.status}
	}
	cf := c.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return nil, err
	}
	_, leaderID := c.raft.LeaderWithID()
	for _, s := range cf.Configuration().Servers {
		m, ok := byID[string(s.ID)]
		if !ok {
			// In Raft but never heard of in gossip since we started.
			m = &Member{ID: string(s.ID), RaftAddr: string(s.Address), GossipStatus: GossipFailed}
			byID[string(s.ID)] = m
		}
		m.Voter = s.Suffrage == raft.Voter
		m.Leader = s.ID == leaderID
	}
	out := make([]Member, 0, len(byID))
	for _, m := range byID {
		out = append(out, *m)
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}
