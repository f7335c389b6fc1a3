package cluster

import (
	"fmt"
	"sync"
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

// check reports whether applied has reached the leader's commit index as
// first learned since the node was last behind.
func (w *commitWatch) check(applied uint64) (bool, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.caughtUp {
		return true, ""
	}
	if w.target == 0 {
		return false, "waiting to learn the leader's commit index"
	}
	if applied < w.target {
		return false, fmt.Sprintf("catching up: applied %d of the leader's commit index %d", applied, w.target)
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
		if ok, why := c.commits.check(applied); !ok {
			return false, why
		}
	}
	if applied < commit {
		return false, "applying log"
	}
	return true, ""
}

// CaughtUp reports whether this follower has applied the leader's commit
// index as learned since it started (always true on the leader). The API
// uses it to decide whether "unknown key" may be trusted.
func (c *Cluster) CaughtUp() bool {
	ok, _ := c.Ready(readyCheckSilence)
	return ok
}

// readyCheckSilence is CaughtUp's tolerance for leader silence: a few
// heartbeat timeouts.
const readyCheckSilence = 3 * time.Second
