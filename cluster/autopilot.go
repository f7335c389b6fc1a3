package cluster

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/raft"
)

// maxTrailingLogs: a non-voter within this many entries of the leader's
// commit index counts as caught up.
const maxTrailingLogs = 256

// autopilot is the leader's voter management, in the manner of Consul's:
// servers seen in gossip join Raft as non-voters and are promoted once they
// have stayed healthy and caught up for the stabilization time; servers that
// failed in gossip long enough are removed, but never below
// bootstrap-expect voters and never when that would lose quorum. Gossip
// events only hint; the Raft configuration is the truth it reconciles to.
//
// Why hand-written rather than github.com/hashicorp/raft-autopilot (v0.3.0,
// which Consul and Nomad use), evaluated for issue 13: the library promotes
// and prunes but does not add servers, so the gossip → non-voter step above
// stays ours either way; it removes every Raft server its delegate does not
// list as "stale", where this code waits for gossip evidence (a new leader
// that has not heard of a server yet removes nothing); and its removals
// follow the delegate's NodeFailed at once, so the -dead-server-cleanup delay
// and the restart-is-not-a-failure rule below would move into a delegate
// that re-creates most of this file. Its MinQuorum does match our
// bootstrap-expect floor. A switch must keep the e2e membership tests and
// the quorum tests of server cleanup green.
type autopilot struct {
	c *Cluster
	// healthySince: when each non-voter was first seen healthy without a
	// break during this term.
	healthySince map[raft.ServerID]time.Time
}

// reconcileLoop runs on the leader for the whole term.
func (c *Cluster) reconcileLoop(ctx context.Context) {
	ap := &autopilot{c: c, healthySince: map[raft.ServerID]time.Time{}}
	t := time.NewTicker(c.opts.ReconcileInterval)
	defer t.Stop()
	for {
		ap.reconcile(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.reconcileCh:
		}
	}
}

// kickReconcile asks the leader to reconcile soon (a gossip event).
func (c *Cluster) kickReconcile() {
	select {
	case c.reconcileCh <- struct{}{}:
	default:
	}
}

func (ap *autopilot) reconcile(ctx context.Context) {
	c := ap.c
	if c.raft.State() != raft.Leader {
		return
	}
	cf := c.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		c.logger.Warn("reconcile: read raft configuration", "error", err)
		return
	}
	servers := cf.Configuration().Servers
	inRaft := make(map[raft.ServerID]raft.Server, len(servers))
	for _, s := range servers {
		inRaft[s.ID] = s
	}
	members := c.members.all(c.opts.NodeID)

	// Servers alive in gossip but not in Raft join as non-voters.
	for id, m := range members {
		sid := raft.ServerID(id)
		if m.status != GossipAlive || m.meta.RaftAddr == "" || m.meta.Leaving {
			continue // a leaving server must not be added back
		}
		// Issue 11: a member may only name a Raft address on the host it
		// gossips from.
		if !sameHost(m.meta.RaftAddr, m.addr) {
			c.warnUntrusted(id, m, "")
			continue
		}
		s, ok := inRaft[sid]
		switch {
		case !ok:
			ap.addNonvoter(sid, m.meta.RaftAddr)
		case string(s.Address) != m.meta.RaftAddr && len(c.opts.GossipKey) == 0:
			// Unauthenticated gossip may not move a server of the Raft
			// configuration elsewhere (issue 11); with a gossip key only
			// key holders can claim anything.
			c.warnUntrusted(id, m, string(s.Address))
		case string(s.Address) != m.meta.RaftAddr:
			// Same server, new address (restarted elsewhere): update it.
			c.logger.Info("server address changed", "server", id, "from", s.Address, "to", m.meta.RaftAddr)
			if s.Suffrage == raft.Voter {
				ap.apply(c.raft.AddVoter(sid, raft.ServerAddress(m.meta.RaftAddr), 0, c.opts.ApplyTimeout), "update voter address", id)
			} else {
				ap.addNonvoter(sid, m.meta.RaftAddr)
			}
		}
	}

	ap.promote(ctx, servers, members)
	ap.removeDead(servers, members)
	// Issue 11: forget members long gone that Raft no longer knows.
	c.members.reap(memberReapAfter(c.opts.DeadServerCleanup), func(id string) bool {
		_, ok := inRaft[raft.ServerID(id)]
		return ok
	})
}

// memberReapAfter is how long a departed member that is not in Raft stays
// in the table (shown as failed or left): ten cleanup periods, at least a
// minute.
func memberReapAfter(cleanup time.Duration) time.Duration { return max(10*cleanup, time.Minute) }

func (ap *autopilot) addNonvoter(id raft.ServerID, addr string) {
	ap.c.logger.Info("adding server as non-voter", "server", id, "addr", addr)
	ap.apply(ap.c.raft.AddNonvoter(id, raft.ServerAddress(addr), 0, ap.c.opts.ApplyTimeout), "add non-voter", string(id))
	delete(ap.healthySince, id)
}

func (ap *autopilot) apply(f raft.IndexFuture, what, id string) bool {
	if err := f.Error(); err != nil {
		ap.c.logger.Warn("reconcile: "+what+" failed", "server", id, "error", err)
		return false
	}
	return true
}

// promote makes a non-voter a voter once it has been alive, on our term and
// within maxTrailingLogs of the commit index for the stabilization time.
func (ap *autopilot) promote(ctx context.Context, servers []raft.Server, members map[string]memberEntry) {
	c := ap.c
	for _, s := range servers {
		if s.Suffrage == raft.Voter {
			delete(ap.healthySince, s.ID)
			continue
		}
		m, ok := members[string(s.ID)]
		healthy := ok && m.status == GossipAlive && !m.meta.Leaving
		if healthy && c.opts.ProbeServer != nil {
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			httpAddr, trusted := c.trustedHTTPAddr(string(s.ID), s.Address)
			var p ServerProgress
			var err error
			if trusted {
				p, err = c.opts.ProbeServer(pctx, httpAddr)
			} else {
				err = fmt.Errorf("gossip metadata of %s does not match raft", s.ID)
			}
			cancel()
			commit := c.raft.CommitIndex()
			healthy = err == nil && p.Term == c.raft.CurrentTerm() && p.AppliedIndex+maxTrailingLogs >= commit
			if !healthy {
				c.logger.Debug("non-voter not caught up", "server", s.ID, "progress", fmt.Sprintf("%+v", p), "commit", commit, "error", err)
			}
		}
		if !healthy {
			delete(ap.healthySince, s.ID)
			continue
		}
		since, ok := ap.healthySince[s.ID]
		if !ok {
			ap.healthySince[s.ID] = time.Now()
			continue
		}
		if time.Since(since) < c.opts.ServerStabilization {
			continue
		}
		c.logger.Info("promoting server to voter", "server", s.ID, "stable_for", time.Since(since).Round(time.Millisecond))
		if ap.apply(c.raft.AddVoter(s.ID, s.Address, 0, c.opts.ApplyTimeout), "promote", string(s.ID)) {
			delete(ap.healthySince, s.ID)
		}
	}
}

// removeDead removes servers that failed in gossip (or left it without
// leaving Raft) longer than DeadServerCleanup ago, as long as the voters left stay at or above
// bootstrap-expect and keep a live quorum.
func (ap *autopilot) removeDead(servers []raft.Server, members map[string]memberEntry) {
	c := ap.c
	for _, s := range servers {
		if s.ID == raft.ServerID(c.opts.NodeID) {
			continue
		}
		m, ok := members[string(s.ID)]
		if !ok {
			continue // never heard of in gossip since we started: no evidence
		}
		// A server that left gossip without leaving Raft is restarting
		// (SIGTERM without -leave-on-terminate): it gets the same cleanup
		// time as a failed one, so a rolling restart does not churn the
		// configuration. An explicit leave removes itself from Raft.
		gone := m.status == GossipFailed || m.status == GossipLeft
		if !gone || time.Since(m.since) < c.opts.DeadServerCleanup {
			continue
		}
		if s.Suffrage == raft.Voter {
			if why := ap.removalUnsafe(servers, members, s.ID); why != "" {
				c.logger.Debug("not removing failed server", "server", s.ID, "reason", why)
				continue
			}
		}
		c.logger.Info("removing server from raft", "server", s.ID, "gossip_status", m.status, "for", time.Since(m.since).Round(time.Second))
		ap.apply(c.raft.RemoveServer(s.ID, 0, c.opts.ApplyTimeout), "remove server", string(s.ID))
		return // one change per pass; the next pass sees the new configuration
	}
}

// removalUnsafe says why removing voter id would be unsafe, or "".
func (ap *autopilot) removalUnsafe(servers []raft.Server, members map[string]memberEntry, id raft.ServerID) string {
	voters, _ := votersAfter(servers, members, ap.c.opts.NodeID, id)
	if voters < ap.c.opts.BootstrapExpect {
		return fmt.Sprintf("would leave %d voters, fewer than bootstrap-expect %d", voters, ap.c.opts.BootstrapExpect)
	}
	return quorumAfterRemoval(servers, members, ap.c.opts.NodeID, id)
}

// votersAfter counts the voters left once id is removed, and how many of
// them are alive (self, or alive in gossip).
func votersAfter(servers []raft.Server, members map[string]memberEntry, self string, id raft.ServerID) (voters, alive int) {
	for _, s := range servers {
		if s.Suffrage != raft.Voter || s.ID == id {
			continue
		}
		voters++
		if s.ID == raft.ServerID(self) || members[string(s.ID)].status == GossipAlive {
			alive++
		}
	}
	return voters, alive
}

// quorumAfterRemoval says why removing voter id would leave the voters
// without a live majority, or "".
func quorumAfterRemoval(servers []raft.Server, members map[string]memberEntry, self string, id raft.ServerID) string {
	voters, alive := votersAfter(servers, members, self, id)
	if alive <= voters/2 {
		return fmt.Sprintf("would leave %d alive of %d voters: no quorum", alive, voters)
	}
	return ""
}

// RemoveServer removes a server from the Raft configuration; leader only.
// It refuses (ErrWouldLoseQuorum) to remove a voter when the voters left
// would not have a live majority: removing a healthy voter while another
// is down would stop the cluster from committing anything.
func (c *Cluster) RemoveServer(id string) error {
	if c.raft.State() != raft.Leader {
		return ErrNotLeader
	}
	cf := c.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return err
	}
	servers := cf.Configuration().Servers
	i := slices.IndexFunc(servers, func(s raft.Server) bool { return s.ID == raft.ServerID(id) })
	if i < 0 {
		return fmt.Errorf("%w: %s", ErrUnknownServer, id)
	}
	if servers[i].Suffrage == raft.Voter {
		if why := quorumAfterRemoval(servers, c.members.all(c.opts.NodeID), c.opts.NodeID, servers[i].ID); why != "" {
			return fmt.Errorf("%w: removing %s %s", ErrWouldLoseQuorum, id, why)
		}
	}
	return c.raft.RemoveServer(raft.ServerID(id), 0, c.opts.ApplyTimeout).Error()
}
