// Package cluster owns consensus and membership: hashicorp/raft with
// raft-boltdb log and stable stores and file snapshots under the data
// directory, memberlist gossip for discovery and node addresses,
// bootstrap-expect, and the leadership lifecycle (establishLeadership after a
// Barrier, revokeLeadership the moment leadership is lost).
//
// Issue 11: Raft may run over a mutual-TLS stream layer; readiness compares
// the FSM's own progress with the commit index the leader reported after
// this node (re)started; and gossip metadata is believed only as far as
// Raft confirms it (a member speaks only for its own name, and the leader's
// API address must sit on the host of the Raft address Raft knows).
//
// It must never interpret commands (that is package fsm) nor speak HTTP
// (that is package transport); leader-only work is handed in as a function
// that receives a context cancelled when leadership ends.
package cluster
