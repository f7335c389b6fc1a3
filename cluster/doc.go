// Package cluster owns consensus and membership: hashicorp/raft with
// raft-boltdb log and stable stores and file snapshots under the data
// directory, memberlist gossip for discovery and node addresses,
// bootstrap-expect, and the leadership lifecycle (establishLeadership after a
// Barrier, revokeLeadership the moment leadership is lost).
//
// It must never interpret commands (that is package fsm) nor speak HTTP
// (that is package transport); leader-only work is handed in as a function
// that receives a context cancelled when leadership ends.
package cluster
