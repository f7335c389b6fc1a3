package cluster

import (
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

// Status is this node's view of the cluster (GET /v1/status).
type Status struct {
	NodeID         string
	RaftState      string // Leader, Follower, Candidate (or Shutdown)
	LeaderID       string
	LeaderHTTPAddr string
	Term           uint64
	CommitIndex    uint64
	AppliedIndex   uint64
	LastIndex      uint64
	LastContact    time.Time // followers: last time the leader was heard
}

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
		LastIndex:    c.raft.LastIndex(),
		LastContact:  c.raft.LastContact(),
	}
	if leaderID != "" {
		st.LeaderHTTPAddr, _ = c.HTTPAddrOf(string(leaderID))
	}
	return st
}

// Leader returns the leader's id and API address, if known.
func (c *Cluster) Leader() (id, httpAddr string, ok bool) {
	_, lid := c.raft.LeaderWithID()
	if lid == "" {
		return "", "", false
	}
	addr, found := c.HTTPAddrOf(string(lid))
	return string(lid), addr, found
}

// HTTPAddrOf returns a server's API address from its gossip metadata.
func (c *Cluster) HTTPAddrOf(id string) (string, bool) {
	if id == c.opts.NodeID {
		return c.opts.HTTPAdvertise, true
	}
	e, ok := c.members.get(id)
	if !ok || e.meta.HTTPAddr == "" {
		return "", false
	}
	return e.meta.HTTPAddr, true
}

// Member is one server as gossip and Raft see it (GET /v1/cluster/members).
type Member struct {
	ID           string
	HTTPAddr     string
	RaftAddr     string
	GossipAddr   string
	GossipStatus string // alive, suspect, failed, left
	Voter        bool
	InRaft       bool
	Leader       bool
}

// Members merges the gossip view and the Raft configuration: every server
// in either appears once.
func (c *Cluster) Members() ([]Member, error) {
	byID := map[string]*Member{}
	for id, e := range c.members.all(c.opts.NodeID) {
		byID[id] = &Member{ID: id, HTTPAddr: e.meta.HTTPAddr, RaftAddr: e.meta.RaftAddr, GossipAddr: e.addr, GossipStatus: e.status}
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
		m.InRaft = true
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
