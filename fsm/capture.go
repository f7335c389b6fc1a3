package fsm

import (
	"errors"
	"iter"
	"slices"
)

// Stall-free snapshots (issue 14).
//
// Raft calls Snapshot on the goroutine that applies entries, so whatever
// Snapshot does blocks every heartbeat batch, transition and admin write.
// Copying a million machines there froze Apply for hundreds of
// milliseconds at every snapshot interval. Instead Snapshot copies only the
// small, bounded sections (channels, events, silences, notices, storms,
// tokens) and opens a capture; Persist then copies the per-machine state one
// shard at a time, each under a short hold of the read lock.
//
// Apply keeps changing machines meanwhile. Before it changes a machine or
// its history in a shard the capture has not copied yet, it saves the value
// as it was (once per key): the capture's undo log. A shard's copy is then
// the live shard with the undo log laid over it, which is exactly the state
// at the snapshot's index. A shard already copied needs no undo, so the log
// holds at most the keys Apply touched before Persist got to them.
//
// Chosen over copy-on-write pointers (every mutation would have to replace
// the map's value) and persistent maps (a cost on every beat, snapshot or
// not): between snapshots this costs one length check per change.

// errSnapshotAborted: a Restore replaced the state while a snapshot was
// being persisted; Raft retries at its next interval.
var errSnapshotAborted = errors.New("snapshot aborted: the state was restored meanwhile")

// undo is a key's value when the snapshot was taken; existed is false for a
// key created since.
type undo[V any] struct {
	v       V
	existed bool
}

// capture is one snapshot between Snapshot and the end of its Persist. Its
// fields are written under the FSM's write lock (Apply) or, for the shard
// Persist is copying, under its read lock, which excludes Apply.
type capture struct {
	aborted  bool
	done     [mapShards]bool
	machines [mapShards]map[string]undo[*Machine]
	history  [mapShards]map[string]undo[[]histEntry]
	// afterShard, when set (tests), runs after each shard's copy, outside
	// the lock: there, Apply may change anything.
	afterShard func(shard int)
}

// mutableMachine is the machine for Apply to change: the caller holds the
// write lock and may change it in place once this returns.
func (f *FSM) mutableMachine(id string) (*Machine, bool) {
	m, ok := f.machines.get(id)
	if ok && len(f.captures) > 0 {
		f.noteMachine(id, m)
	}
	return m, ok
}

// noteMachine saves machine id's value for every capture that has not
// copied its shard yet; m is nil for a machine about to be created.
func (f *FSM) noteMachine(id string, m *Machine) {
	if len(f.captures) == 0 {
		return
	}
	i := f.machines.shardOf(id)
	for _, c := range f.captures {
		saveUndo(c, &c.machines, i, id, func() undo[*Machine] {
			if m == nil {
				return undo[*Machine]{}
			}
			return undo[*Machine]{v: cloneMachine(m), existed: true}
		})
	}
}

// noteHistory saves machine id's history before Apply replaces or drops it.
// History slices are never changed in place, so the saved slice is shared.
func (f *FSM) noteHistory(id string) {
	if len(f.captures) == 0 {
		return
	}
	i := f.history.shardOf(id)
	for _, c := range f.captures {
		saveUndo(c, &c.history, i, id, func() undo[[]histEntry] {
			h, existed := f.history.get(id)
			return undo[[]histEntry]{v: h, existed: existed}
		})
	}
}

// saveUndo records id's value as it was, from was, in one of c's undo
// logs: only while c has not copied shard i yet, and only the first time
// (the value at the snapshot's index).
func saveUndo[V any](c *capture, logs *[mapShards]map[string]undo[V], i int, id string, was func() undo[V]) {
	if c.done[i] {
		return
	}
	log := logs[i]
	if log == nil {
		log = make(map[string]undo[V])
		logs[i] = log
	}
	if _, ok := log[id]; !ok {
		log[id] = was()
	}
}

// cloneMachine copies what Apply changes in place (the alerting state);
// labels and agent facts are replaced whole, never changed, so they are
// shared.
func cloneMachine(m *Machine) *Machine {
	c := *m
	if m.Alerting != nil {
		c.Alerting = copyAlerting(m.Alerting)
	}
	return &c
}

// startCapture opens a capture; the caller holds the write lock.
func (f *FSM) startCapture() *capture {
	c := &capture{}
	f.captures = append(f.captures, c)
	return c
}

// endCapture stops recording for c. Idempotent.
func (f *FSM) endCapture(c *capture) {
	f.mu.Lock()
	f.captures = slices.DeleteFunc(f.captures, func(x *capture) bool { return x == c })
	f.mu.Unlock()
}

// abortCaptures detaches every open capture; reset calls it before it
// replaces the maps, so a Persist in progress fails instead of mixing two
// states.
func (f *FSM) abortCaptures() {
	for _, c := range f.captures {
		c.aborted = true
	}
	f.captures = nil
}

// collect copies the machines and histories as they were when c was
// opened, one shard per hold of the read lock.
func (f *FSM) collect(c *capture) ([]Machine, []historySnapshot, error) {
	f.mu.RLock()
	machines := make([]Machine, 0, f.machines.len()+16)
	history := make([]historySnapshot, 0, f.history.len()+16)
	f.mu.RUnlock()
	for i := range mapShards {
		f.mu.RLock()
		if c.aborted {
			f.mu.RUnlock()
			return nil, nil, errSnapshotAborted
		}
		for _, m := range asOfCapture(f.machines.shards[i], c.machines[i]) {
			v := *m
			if v.Alerting != nil {
				v.Alerting = copyAlerting(v.Alerting) // the live one keeps changing
			}
			machines = append(machines, v)
		}
		for id, h := range asOfCapture(f.history.shards[i], c.history[i]) {
			history = append(history, historySnapshot{ID: id, Entries: h})
		}
		c.done[i] = true
		c.machines[i], c.history[i] = nil, nil
		f.mu.RUnlock()
		if c.afterShard != nil {
			c.afterShard(i)
		}
	}
	f.endCapture(c)
	return machines, history, nil
}

// asOfCapture yields a shard as it was when the capture opened: the live
// entries with the undo log laid over them.
func asOfCapture[V any](live map[string]V, log map[string]undo[V]) iter.Seq2[string, V] {
	return func(yield func(string, V) bool) {
		for k, v := range live {
			if u, ok := log[k]; ok {
				if !u.existed {
					continue // created since
				}
				v = u.v
			}
			if !yield(k, v) {
				return
			}
		}
		for k, u := range log {
			if _, ok := live[k]; !ok && u.existed { // deleted since
				if !yield(k, u.v) {
					return
				}
			}
		}
	}
}
