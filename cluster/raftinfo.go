package cluster

import (
	"github.com/hashicorp/raft"

	"github.com/lunasentri/lunasentri/internal/clusterinfo"
)

// RaftInfo (GET /v1/cluster/raft) is the configuration and this node's
// progress; RaftServer one entry of the configuration.
type (
	RaftInfo   = clusterinfo.RaftInfo
	RaftServer = clusterinfo.RaftServer
)

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
	}
	if lc := c.raft.LastContact(); !lc.IsZero() {
		lc = lc.UTC()
		info.LastContact = &lc
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
