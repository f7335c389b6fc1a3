package cluster

import (
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

// hasRaftState reports whether this node is, or was, part of a Raft cluster.
func (c *Cluster) hasRaftState() bool {
	return c.hadState || (c.raft != nil && c.raft.LastIndex() > 0)
}

// bootstrapLoop forms a new cluster once BootstrapExpect servers see each
// other through gossip. It never bootstraps a node that has Raft state, nor
// when any peer already has state (that peer's cluster will add us), and
// every node bootstraps with the same configuration (all servers it sees,
// sorted), which hashicorp/raft makes safe.
func (c *Cluster) bootstrapLoop() {
	defer c.wg.Done()
	if c.hadState || c.opts.BootstrapExpect == 0 {
		return
	}
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	var lastWhy string
	for {
		select {
		case <-c.shutdownCh:
			return
		case <-t.C:
		}
		if c.hasRaftState() {
			c.logger.Info("joined an existing cluster; not bootstrapping")
			c.refreshMeta()
			return
		}
		servers, why := c.bootstrapCandidates()
		if why != "" {
			if why != lastWhy {
				c.logger.Info("waiting to bootstrap", "reason", why)
				lastWhy = why
			}
			continue
		}
		err := c.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error()
		if err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			c.logger.Error("bootstrap failed", "error", err)
			continue
		}
		c.logger.Info("bootstrapped cluster", "servers", len(servers))
		c.refreshMeta()
		return
	}
}

// bootstrapCandidates returns the configuration to bootstrap with, or why
// not yet.
func (c *Cluster) bootstrapCandidates() ([]raft.Server, string) {
	var servers []raft.Server
	for _, e := range c.members.all(c.opts.NodeID) {
		if e.status != GossipAlive && e.status != GossipSuspect {
			continue
		}
		meta := e.meta
		if meta.ID != c.opts.NodeID && !sameHost(meta.RaftAddr, e.addr) {
			continue // issue 11: a Raft address off the member's own host is not believed
		}
		if meta.BootstrapExpect != 0 && meta.BootstrapExpect != c.opts.BootstrapExpect {
			return nil, "server " + meta.ID + " expects a different bootstrap-expect"
		}
		if meta.HasState && meta.ID != c.opts.NodeID {
			return nil, "server " + meta.ID + " already belongs to a cluster; waiting to be added"
		}
		servers = append(servers, raft.Server{
			Suffrage: raft.Voter,
			ID:       raft.ServerID(meta.ID),
			Address:  raft.ServerAddress(meta.RaftAddr),
		})
	}
	if len(servers) < c.opts.BootstrapExpect {
		return nil, "seen fewer servers than bootstrap-expect"
	}
	slices.SortFunc(servers, func(a, b raft.Server) int { return strings.Compare(string(a.ID), string(b.ID)) })
	return servers, ""
}
