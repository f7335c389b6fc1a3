package cluster

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	autopilot "github.com/hashicorp/raft-autopilot"
)

// Voter management is github.com/hashicorp/raft-autopilot, as in Consul and
// Nomad: it tracks each server's health, promotes a non-voter once it has
// stayed healthy for the stabilization time (the library's default
// promoter), and prunes failed servers never below MinQuorum
// (bootstrap-expect). What stays ours, and why:
//
//   - Adding servers. The library only promotes and prunes; servers seen
//     alive in gossip join Raft as non-voters here (Consul, too, adds them
//     from Serf events outside autopilot), with the issue-11 checks on what
//     a gossip member may claim.
//   - The delegate (apDelegate) lists every server of the Raft configuration
//     besides the gossip members, so the library's "stale" pruning (in
//     Raft, unknown to the application) never removes a server without
//     gossip evidence: one a new leader has not heard of yet is "unknown".
//   - The removal policy (cleanupRules, the promoter's
//     FilterFailedServerRemovals): a server is removed only once it has been
//     failed or gone from gossip for -dead-server-cleanup, so a restart is
//     not a failure; and a voter only while the voters left stay at or above
//     bootstrap-expect and keep a live majority. The library alone would
//     remove a failed server at its next pass and count quorum without
//     asking who is alive.
//
// NodeStatus tells the library the truth (a failed server is "failed" at
// once, so its health and the failure tolerance are right); the cleanup
// delay lives in the filter, not in a status that pretends a dead server is
// alive.

const (
	// maxTrailingLogs: a non-voter within this many entries of the leader's
	// last index counts as caught up.
	maxTrailingLogs = 256
	// lastContactThreshold is the library's limit on a server's silence. Our
	// probe answers or it does not (LastContact 0 or unknown), so any
	// positive value serves; this is Consul's default.
	lastContactThreshold = 200 * time.Millisecond
)

// newAutopilot builds this server's autopilot; it runs only while this
// server leads (reconcileLoop).
func newAutopilot(c *Cluster, p autopilot.Promoter) *autopilot.Autopilot {
	if p == nil {
		p = &promoter{Promoter: autopilot.DefaultPromoter(), c: c}
	}
	return autopilot.New(c.raft, &apDelegate{c: c},
		autopilot.WithLogger(c.logger),
		autopilot.WithPromoter(p),
		autopilot.WithUpdateInterval(c.opts.ReconcileInterval),
		autopilot.WithReconcileInterval(c.opts.ReconcileInterval),
	)
}

// reconcileLoop runs on the leader for the whole term: autopilot in the
// background, and adding gossip members to Raft here.
func (c *Cluster) reconcileLoop(ctx context.Context) {
	c.pilot.Start(ctx)
	defer func() { <-c.pilot.Stop() }()
	t := time.NewTicker(c.opts.ReconcileInterval)
	defer t.Stop()
	for {
		c.addFromGossip()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.reconcileCh:
			c.pilot.RemoveDeadServers()
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

// addFromGossip adds servers alive in gossip but not in Raft as non-voters
// and moves a server whose Raft address changed. Gossip events only hint;
// the Raft configuration is the truth this reconciles to.
func (c *Cluster) addFromGossip() {
	if c.raft.State() != raft.Leader {
		return
	}
	cf := c.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		c.logger.Warn("reconcile: read raft configuration", "error", err)
		return
	}
	inRaft := make(map[raft.ServerID]raft.Server)
	for _, s := range cf.Configuration().Servers {
		inRaft[s.ID] = s
	}
	for id, m := range c.members.all(c.opts.NodeID) {
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
			c.logger.Info("adding server as non-voter", "server", id, "addr", m.meta.RaftAddr)
			c.applyChange(c.raft.AddNonvoter(sid, raft.ServerAddress(m.meta.RaftAddr), 0, c.opts.ApplyTimeout), "add non-voter", id)
		case string(s.Address) != m.meta.RaftAddr && len(c.opts.GossipKey) == 0:
			// Unauthenticated gossip may not move a server of the Raft
			// configuration elsewhere (issue 11); with a gossip key only
			// key holders can claim anything.
			c.warnUntrusted(id, m, string(s.Address))
		case string(s.Address) != m.meta.RaftAddr:
			// Same server, new address (restarted elsewhere): update it.
			c.logger.Info("server address changed", "server", id, "from", s.Address, "to", m.meta.RaftAddr)
			addr := raft.ServerAddress(m.meta.RaftAddr)
			if s.Suffrage == raft.Voter {
				c.applyChange(c.raft.AddVoter(sid, addr, 0, c.opts.ApplyTimeout), "update voter address", id)
			} else {
				c.applyChange(c.raft.AddNonvoter(sid, addr, 0, c.opts.ApplyTimeout), "update non-voter address", id)
			}
		}
	}
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

func (c *Cluster) applyChange(f raft.IndexFuture, what, id string) bool {
	if err := f.Error(); err != nil {
		c.logger.Warn("reconcile: "+what+" failed", "server", id, "error", err)
		return false
	}
	return true
}

// apDelegate is autopilot's view of the application.
type apDelegate struct{ c *Cluster }

func (d *apDelegate) AutopilotConfig() *autopilot.Config {
	o := d.c.opts
	return &autopilot.Config{
		CleanupDeadServers:      true,
		LastContactThreshold:    lastContactThreshold,
		MaxTrailingLogs:         maxTrailingLogs,
		MinQuorum:               uint(o.BootstrapExpect),
		ServerStabilizationTime: o.ServerStabilization,
	}
}

func (d *apDelegate) NotifyState(*autopilot.State) {}

// KnownServers is every server of the Raft configuration plus every gossip
// member, with its gossip status. Listing all of Raft keeps the library
// from pruning a server as "stale" for want of gossip news.
func (d *apDelegate) KnownServers() map[raft.ServerID]*autopilot.Server {
	c := d.c
	members := c.members.all(c.opts.NodeID)
	out := make(map[raft.ServerID]*autopilot.Server, len(members)+1)
	for id, m := range members {
		out[raft.ServerID(id)] = &autopilot.Server{
			ID: raft.ServerID(id), Name: id, Address: raft.ServerAddress(m.meta.RaftAddr),
			NodeStatus: nodeStatus(m, true), NodeType: autopilot.NodeVoter,
		}
	}
	if cf := c.raft.GetConfiguration(); cf.Error() == nil {
		for _, s := range cf.Configuration().Servers {
			if _, ok := out[s.ID]; !ok {
				out[s.ID] = &autopilot.Server{
					ID: s.ID, Name: string(s.ID), Address: s.Address,
					NodeStatus: nodeStatus(memberEntry{}, false), NodeType: autopilot.NodeVoter,
				}
			}
		}
	}
	self := raft.ServerID(c.opts.NodeID)
	out[self] = &autopilot.Server{
		ID: self, Name: c.opts.NodeID, Address: raft.ServerAddress(c.opts.RaftAdvertise),
		NodeStatus: autopilot.NodeAlive, NodeType: autopilot.NodeVoter, IsLeader: c.raft.State() == raft.Leader,
	}
	return out
}

// nodeStatus maps a gossip status to autopilot's. A suspect server or one
// not heard of is "unknown": not healthy, and no evidence to remove it. A
// server announcing its leave is "left" so it is not promoted meanwhile.
func nodeStatus(m memberEntry, known bool) autopilot.NodeStatus {
	switch {
	case !known:
		return autopilot.NodeUnknown
	case m.status == GossipLeft || m.meta.Leaving:
		return autopilot.NodeLeft
	case m.status == GossipAlive:
		return autopilot.NodeAlive
	case m.status == GossipFailed:
		return autopilot.NodeFailed
	default:
		return autopilot.NodeUnknown
	}
}

// FetchServerStats asks each server for its Raft progress through
// ProbeServer, concurrently, within ctx (half the update interval). A
// server that does not answer, or whose gossip claims Raft does not
// confirm, gets LastContact -1: the library would otherwise keep its last
// good stats and call it healthy.
func (d *apDelegate) FetchServerStats(ctx context.Context, servers map[raft.ServerID]*autopilot.Server) map[raft.ServerID]*autopilot.ServerStats {
	c := d.c
	lastTerm, _ := strconv.ParseUint(c.raft.Stats()["last_log_term"], 10, 64)
	local := autopilot.ServerStats{LastTerm: lastTerm, LastIndex: c.raft.LastIndex()}
	out := make(map[raft.ServerID]*autopilot.ServerStats, len(servers))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for id, s := range servers {
		if id == raft.ServerID(c.opts.NodeID) || c.opts.ProbeServer == nil {
			// Ourselves, or no probe (tests): promote on gossip health alone.
			st := local
			mu.Lock()
			out[id] = &st
			mu.Unlock()
			continue
		}
		wg.Go(func() {
			st := d.probe(ctx, id, s.Address)
			mu.Lock()
			out[id] = &st
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

func (d *apDelegate) probe(ctx context.Context, id raft.ServerID, raftAddr raft.ServerAddress) autopilot.ServerStats {
	c := d.c
	httpAddr, trusted := c.trustedHTTPAddr(string(id), raftAddr)
	if !trusted {
		c.logger.Debug("not probing server: gossip metadata does not match raft", "server", id)
		return autopilot.ServerStats{LastContact: -1}
	}
	p, err := c.opts.ProbeServer(ctx, httpAddr)
	if err != nil {
		c.logger.Debug("probe server", "server", id, "error", err)
		return autopilot.ServerStats{LastContact: -1}
	}
	// A follower on our term within maxTrailingLogs is hearing from us:
	// one that lost contact would have started an election, a new term.
	return autopilot.ServerStats{LastTerm: p.Term, LastIndex: p.AppliedIndex}
}

// RemoveFailedServer removes a server the promoter's filter let through.
// It runs on autopilot's goroutine, bounded by ApplyTimeout, so nothing is
// left running once leader work stops.
func (d *apDelegate) RemoveFailedServer(s *autopilot.Server) {
	c := d.c
	c.logger.Info("removing failed server from raft", "server", s.ID, "status", s.NodeStatus)
	c.applyChange(c.raft.RemoveServer(s.ID, 0, c.opts.ApplyTimeout), "remove server", string(s.ID))
}

// promoter is the library's default promoter with our removal policy.
type promoter struct {
	autopilot.Promoter
	c *Cluster
}

func (p *promoter) FilterFailedServerRemovals(_ *autopilot.Config, _ *autopilot.State, failed *autopilot.FailedServers) *autopilot.FailedServers {
	c := p.c
	cf := c.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return &autopilot.FailedServers{}
	}
	rules := cleanupRules{self: c.opts.NodeID, expect: c.opts.BootstrapExpect, after: c.opts.DeadServerCleanup, logger: c.logger}
	return rules.filter(failed, cf.Configuration().Servers, c.members.all(c.opts.NodeID), time.Now())
}
