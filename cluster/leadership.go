package cluster

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// leadershipLoop follows Raft's leadership notifications (NotifyCh, which
// unlike LeaderCh never drops a transition) and starts or stops leader work.
func (c *Cluster) leadershipLoop() {
	defer c.wg.Done()
	for {
		select {
		case <-c.shutdownCh:
			return
		case isLeader := <-c.notifyCh:
			if isLeader {
				c.establishLeadership()
			} else {
				c.revokeLeadership()
			}
			if c.opts.LeadershipChanged != nil {
				c.opts.LeadershipChanged(isLeader)
			}
		}
	}
}

// establishLeadership starts leader work once a Barrier proves this node's
// FSM holds every entry committed by earlier leaders, so the monitor and the
// dispatcher decide from complete state.
func (c *Cluster) establishLeadership() {
	c.leaderMu.Lock()
	defer c.leaderMu.Unlock()
	if c.leaderCancel != nil || c.stopping {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	c.leaderCancel, c.leaderDone = cancel, done
	c.logger.Info("leadership gained")
	go func() {
		defer close(done)
		if !c.barrier(ctx) {
			return
		}
		c.logger.Info("leader work started", "term", c.raft.CurrentTerm())
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.reconcileLoop(ctx)
		}()
		c.opts.LeaderWork(ctx)
		wg.Wait()
	}()
}

// barrier retries raft.Barrier until it succeeds or leadership ends.
func (c *Cluster) barrier(ctx context.Context) bool {
	for {
		err := c.raft.Barrier(c.opts.ApplyTimeout).Error()
		if err == nil {
			return true
		}
		c.logger.Warn("barrier failed", "error", err)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// revokeLeadership cancels leader work and waits until it has stopped, so
// nothing a deposed leader started can still act.
func (c *Cluster) revokeLeadership() {
	c.leaderMu.Lock()
	defer c.leaderMu.Unlock()
	if c.leaderCancel == nil {
		return
	}
	c.leaderCancel()
	<-c.leaderDone
	c.leaderCancel, c.leaderDone = nil, nil
	c.logger.Info("leadership lost; leader work stopped")
}

// StopLeaderWork ends leader work for good: the first step of a graceful
// shutdown. Leadership gained afterwards starts nothing.
func (c *Cluster) StopLeaderWork() {
	c.leaderMu.Lock()
	c.stopping = true
	c.leaderMu.Unlock()
	c.revokeLeadership()
}

// TransferLeadership hands leadership to another voter before this node
// stops, so the cluster does not wait an election timeout to notice.
func (c *Cluster) TransferLeadership() {
	if c.raft.State() != raft.Leader {
		return
	}
	if err := c.raft.LeadershipTransfer().Error(); err != nil {
		c.logger.Warn("leadership transfer failed", "error", err)
		return
	}
	c.logger.Info("leadership transferred")
}

// RestartLeaderWork stops and restarts leader work if this node leads, so
// it starts again from state that was replaced (a snapshot restore).
func (c *Cluster) RestartLeaderWork() {
	if c.raft.State() != raft.Leader {
		return
	}
	c.revokeLeadership()
	if c.raft.State() == raft.Leader {
		c.establishLeadership()
	}
}
