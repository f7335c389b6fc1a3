package cluster

import (
	"time"

	"github.com/hashicorp/raft"
)

// RaftServer is one entry of the Raft configuration.
type RaftServer struct {
	ID       string
	Address  string
	Suffrage string // voter, nonvoter
	Leader   bool
}

// RaftInfo is GET /v1/cluster/raft: the configuration and this node's
// progress.
type RaftInfo struct {
	Servers           []RaftServer
	State             string
	LeaderID          string
	Term              uint64
	LastIndex         uint64
	CommitIndex       uint64
	AppliedIndex      uint64
	LastContact       time.Time
	LastSnapshotIndex uint64
}

// RaftInfo reads the Raft configuration and progress.
func (c *Cluster) RaftInfo() (RaftInfo, error) {
	cf := c.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return RaftInfo{}, err
	}
	_, leaderID := c.raft.LeaderWithID()
	info := RaftInfo{
		State:        c.raft.State().String(),
		LeaderID:     string(leaderID),
		Term:         c.raft.CurrentTerm(),
		LastIndex:    c.raft.LastIndex(),
		CommitIndex:  c.raft.CommitIndex(),
		AppliedIndex: c.raft.AppliedIndex(),
		LastContact:  c.raft.LastContact(),
	}
	if list, err := c.snaps.List(); err == nil && len(list) > 0 {
		info.LastSnapshotIndex = list[0].Index
	}
	for _, s := range cf.Configuration().Servers {
		suffrage := "voter"
		if s.Suffrage != raft.Voter {
			suffrage = "nonvoter"
		}
		info.Servers = append(info.Servers, RaftServer{
			ID: string(s.ID), Address: string(s.Address), Suffrage: suffrage, Leader: s.ID == leaderID,
		})
	}
	return info, nil
}

// HasLeft reports whether this node is no longer in the Raft configuration
// (after a leave or a remove-peer).
func (c *Cluster) HasLeft() bool {
	cf := c.raft.GetConfiguration()
	if cf.Error() != nil {
		return false
	}
	for _, s := range cf.Configuration().Servers {
		if s.ID == raft.ServerID(c.opts.NodeID) {
			return false
		}
	}
	return true
}
