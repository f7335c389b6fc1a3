// Package transport is LunaSentri's HTTP surface: the public API (routing,
// auth, request limits, JSON), the heartbeat intake with its coalescer, and
// the node-to-node calls that carry forwarded writes and heartbeat batches to
// the leader.
//
// Auth (issue 11): the -admin-token is the bootstrap admin token; role
// tokens (read ⊂ write ⊂ admin) are replicated as hashes and checked per
// route (403 for a valid token without the role, 401 for unknown or
// expired), every write leaves one audit line with the token's name, and a
// key or token this node has not applied yet is checked with the leader
// (rate-limited) before any 401 — or answered 503. Other packages check
// tokens with API.TokenRole and RoleAllows.
//
// It reads state only from the local FSM replica and writes only by
// proposing commands through the leader. It must never block a heartbeat on
// Raft, take a global lock on the heartbeat path, or answer a bad request
// with anything but a 4xx and a JSON error.
package transport
