package fsm

import "github.com/hashicorp/raft"

// LockHeld reports whether anyone holds the FSM lock, read or write. Only
// meaningful when nothing else is using the FSM at the same time.
func (f *FSM) LockHeld() bool {
	if f.mu.TryLock() {
		f.mu.Unlock()
		return false
	}
	return true
}

// SnapshotWithHook is Snapshot with a function that runs after Persist has
// copied each shard, so a test can apply commands in the middle of a copy.
func (f *FSM) SnapshotWithHook(afterShard func(shard int)) raft.FSMSnapshot {
	snap, _ := f.Snapshot()
	snap.(*snapshot).capture.afterShard = afterShard
	return snap
}

// MapShards is the number of shards a snapshot copies one at a time.
const MapShards = mapShards

// DecodeBody is the FSM's command body decoder (for the heartbeat batch's
// hand decoder, issue 14).
func DecodeBody(data []byte, v any) error { return decodeBody(data, v) }
