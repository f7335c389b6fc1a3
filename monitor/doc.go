// Package monitor is LunaSentri's leader-only offline detection.
//
// It owns one thing: each online machine's deadline (last_seen + threshold,
// floored by the failover grace when a leadership term starts) and, when a
// deadline passes, proposing the machine offline with the last_seen it saw as
// a fencepost. The FSM decides; if a newer heartbeat landed in between it
// ignores the proposal and the monitor hears about the heartbeat through
// MachineSeen.
//
// What it must never do:
//
//   - write state itself: every transition is a proposal through the
//     Proposer, which commits one Raft entry per batch;
//   - run on a follower: Run is started by the leadership loop after
//     raft.Barrier() and stopped (context cancelled, returned) when
//     leadership is lost; MachineSeen and MachineGone are cheap no-ops while
//     it is not running, because they are called on every node;
//   - scan all machines per tick: deadlines live in a min-heap indexed by
//     machine ID, so a tick with nothing due costs one peek and a tick with k
//     machines due costs O(k log n);
//   - touch the heap per heartbeat: deadlines are lazy. A heartbeat that
//     moves a deadline later (the normal case) only stores it on the entry,
//     O(1); the heap keeps the older, earlier key as a lower bound, and the
//     tick re-keys an entry whose key came due but whose real deadline did
//     not, about once per threshold per machine. A deadline that moves
//     earlier is fixed in the heap at once. MachinesSeen applies a whole
//     heartbeat batch under one lock.
//
// The package does not import raft or the fsm package: it defines the small
// Source and Proposer interfaces it consumes and the server assembly adapts
// the FSM and the cluster to them.
package monitor
