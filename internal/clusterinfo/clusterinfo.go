package clusterinfo

import "time"

// NodeStatus is one node's view of the cluster (GET /v1/status).
type NodeStatus struct {
	NodeID         string `json:"node_id"`
	RaftState      string `json:"raft_state"` // Leader, Follower, Candidate (or Shutdown)
	LeaderID       string `json:"leader_id"`
	LeaderHTTPAddr string `json:"leader_http_addr"`
	Term           uint64 `json:"term"`
	CommitIndex    uint64 `json:"commit_index"`
	AppliedIndex   uint64 `json:"applied_index"`
}

// Member is one server as gossip and Raft see it (GET
// /v1/cluster/members).
type Member struct {
	ID           string `json:"id"`
	HTTPAddr     string `json:"http_addr"`
	RaftAddr     string `json:"raft_addr"`
	GossipStatus string `json:"gossip_status"` // alive, suspect, failed, left
	Voter        bool   `json:"voter"`
	Leader       bool   `json:"leader"`
}

// RaftInfo is the Raft configuration and this node's progress (GET
// /v1/cluster/raft).
type RaftInfo struct {
	Servers           []RaftServer `json:"servers"`
	State             string       `json:"raft_state"`
	LeaderID          string       `json:"leader_id"`
	Term              uint64       `json:"term"`
	LastIndex         uint64       `json:"last_index"`
	CommitIndex       uint64       `json:"commit_index"`
	AppliedIndex      uint64       `json:"applied_index"`
	LastContact       *time.Time   `json:"last_contact"` // nil: never heard from a leader
	LastSnapshotIndex uint64       `json:"last_snapshot_index"`
}

// RaftServer is one server in the Raft configuration.
type RaftServer struct {
	ID       string `json:"id"`
	Address  string `json:"address"`
	Suffrage string `json:"suffrage"` // voter, nonvoter
	Leader   bool   `json:"leader"`
}
