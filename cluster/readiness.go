package cluster

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// commitWatch learns the leader's commit index from the AppendEntries
// requests that reach this node. Raft itself only exposes the follower's
// own commit index, which after a restart (or a join) is min(leader commit,
// local last index): a node whose log is short answers "applied == commit"
// while it is far behind the leader. Readiness compares the applied index
// with what the leader said instead (issue 11: a restarted node answered
// /readyz 200 with commit index 0 for 1–8 s).
type commitWatch struct {
	mu sync.Mutex
	// target is the first leader commit index heard since this node last
	// was not caught up; 0 until one is heard.
	target uint64
	// caughtUp latches once the applied index reached target; it drops
	// again when the node loses contact with the leader.
	caughtUp bool
	latest   uint64 // newest leader commit index heard, for messages
}

// saw records a leader commit index from an AppendEntries request.
func (w *commitWatch) saw(idx uint64) {
	if idx == 0 {
		return
	}
	w.mu.Lock()
	if w.target == 0 && !w.caughtUp {
		w.target = idx
	}
	w.latest = idx
	w.mu.Unlock()
}

// check reports whether the node has applied the leader's commit index as
// first learned since the node was last behind. raftApplied is Raft's
// applied index, which runs ahead of the FSM while entries wait in Raft's
// FSM queue; fsmCaughtUp confirms the FSM itself holds what Raft dispatched.
func (w *commitWatch) check(raftApplied uint64, fsmCaughtUp func(target uint64) bool) (bool, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.caughtUp {
		return true, ""
	}
	if w.target == 0 {
		return false, "waiting to learn the leader's commit index"
	}
	if raftApplied < w.target || !fsmCaughtUp(w.target) {
		return false, fmt.Sprintf("catching up: applied %d of the leader's commit index %d", raftApplied, w.target)
	}
	w.caughtUp = true
	return true, ""
}

// reset forgets the target: the node lost the leader and must catch up
// with whatever the next leader reports.
func (w *commitWatch) reset() {
	w.mu.Lock()
	w.target, w.caughtUp = 0, false
	w.mu.Unlock()
}

// watchingTransport is the Raft transport with a tap on incoming RPCs: it
// passes every RPC on unchanged and notes the leader's commit index.
// Heartbeats carry no commit index and bypass the consumer channel, so only
// real AppendEntries requests are seen.
type watchingTransport struct {
	unpipelinedTransport
	out  chan raft.RPC
	stop chan struct{}
}

func newWatchingTransport(t unpipelinedTransport, w *commitWatch) *watchingTransport {
	wt := &watchingTransport{unpipelinedTransport: t, out: make(chan raft.RPC), stop: make(chan struct{})}
	in := t.Consumer()
	go func() {
		for {
			var rpc raft.RPC
			select {
			case <-wt.stop:
				return
			case rpc = <-in:
			}
			if req, ok := rpc.Command.(*raft.AppendEntriesRequest); ok {
				w.saw(req.LeaderCommitIndex)
			}
			select {
			case <-wt.stop:
				return
			case wt.out <- rpc:
			}
		}
	}()
	return wt
}

// Consumer implements raft.Transport.
func (wt *watchingTransport) Consumer() <-chan raft.RPC { return wt.out }

func (wt *watchingTransport) close() {
	select {
	case <-wt.stop:
	default:
		close(wt.stop)
	}
}

// Ready reports whether this node knows a leader, has heard from it
// recently, and has applied the log up to the commit index the leader
// reported since this node (re)started or last lost it. A follower that has
// not heard from the leader within maxSilence is not ready, even if it still
// names one.
func (c *Cluster) Ready(maxSilence time.Duration) (bool, string) {
	_, lid := c.raft.LeaderWithID()
	if lid == "" {
		c.commits.reset()
		return false, "no leader known"
	}
	applied, commit := c.raft.AppliedIndex(), c.raft.CommitIndex()
	if c.raft.State() != raft.Leader {
		if lc := c.raft.LastContact(); lc.IsZero() || time.Since(lc) > maxSilence {
			c.commits.reset()
			return false, "no recent contact with the leader"
		}
		if ok, why := c.commits.check(applied, c.fsmHolds); !ok {
			return false, why
		}
	}
	if applied < commit {
		return false, "applying log"
	}
	return true, ""
}

// trackingFSM notes the index of the last command the FSM applied, and
// whether a snapshot was restored since: Raft's AppliedIndex counts entries
// as applied once they are queued for the FSM, not once applied.
type trackingFSM struct {
	raft.FSM
	applied  atomic.Uint64
	restored atomic.Bool
}

func (t *trackingFSM) Apply(l *raft.Log) any {
	res := t.FSM.Apply(l)
	t.applied.Store(l.Index)
	t.restored.Store(false)
	return res
}

func (t *trackingFSM) Restore(rc io.ReadCloser) error {
	err := t.FSM.Restore(rc)
	if err == nil {
		t.restored.Store(true)
	}
	return err
}

// fsmHolds reports whether the FSM has applied every command up to target:
// the last command entry at or below target (found by walking back through
// the log; noops and barriers never reach the FSM) is at most the FSM's
// applied index. After a snapshot restore the FSM holds what Raft says.
func (c *Cluster) fsmHolds(target uint64) bool {
	if c.tracker == nil {
		return true
	}
	applied := c.tracker.applied.Load()
	if c.tracker.restored.Load() {
		// Restored and nothing applied since: the FSM holds the newest
		// snapshot (restored at start or installed from the leader).
		list, err := c.snaps.List()
		if err != nil || len(list) == 0 {
			return true
		}
		applied = list[0].Index
	}
	if applied >= target {
		return true
	}
	var l raft.Log
	for idx, n := target, 0; idx > applied && n < 256; idx, n = idx-1, n+1 {
		if err := c.store.GetLog(idx, &l); err != nil {
			return true // compacted into a snapshot the FSM restored
		}
		if l.Type == raft.LogCommand {
			return false
		}
	}
	return true
}
