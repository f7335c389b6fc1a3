// Package transport is LunaSentri's HTTP surface: the public API (routing,
// auth, request limits, JSON), the heartbeat intake with its coalescer, and
// the node-to-node calls that carry forwarded writes and heartbeat batches to
// the leader.
//
// It reads state only from the local FSM replica and writes only by
// proposing commands through the leader. It must never block a heartbeat on
// Raft, take a global lock on the heartbeat path, or answer a bad request
// with anything but a 4xx and a JSON error.
package transport
