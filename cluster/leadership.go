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
	// Hand over to a voter gossip shows alive: raft's own pick may be a
	// dead peer, and its TimeoutNow then waits out the transport timeout.
	target, ok := c.aliveVoter()
	if !ok {
		c.logger.Warn("no live voter to hand leadership to; peers will elect after the timeout")
		return
	}
	if err := c.raft.LeadershipTransferToServer(target.ID, target.Address).Error(); err != nil {
		c.logger.Warn("leadership transfer failed", "to", target.ID, "error", err)
		return
	}
	c.logger.Info("leadership transferred", "to", target.ID)
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

// aliveVoter picks another voter that gossip shows alive.
func (c *Cluster) aliveVoter() (raft.Server, bool) {
	cf := c.raft.GetConfiguration()
	if cf.Error() != nil {
		return raft.Server{}, false
	}
	members := c.members.all(c.opts.NodeID)
	for _, s := range cf.Configuration().Servers {
		if s.ID == raft.ServerID(c.opts.NodeID) || s.Suffrage != raft.Voter {
			continue
		}
		if m, ok := members[string(s.ID)]; ok && m.status == GossipAlive && !m.meta.Leaving {
			return s, true
		}
	}
	return raft.Server{}, false
}
