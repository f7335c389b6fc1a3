package cluster

import (
	"net"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"
)

// Issue 11: gossip identity. Gossip metadata is what each member claims
// about itself; nothing in memberlist proves it. These checks decide when
// a claim may be believed.

// claimMatchesName: a member's claimed server id must be its memberlist
// name. memberlist keeps names unique (a second member with a live
// member's name is refused as a conflict), so a rogue member cannot take a
// real server's id by claiming it in metadata under another name.
func claimMatchesName(n *memberlist.Node, meta nodeMeta) bool {
	return meta.ID != "" && n.Name == meta.ID
}

// sameHost reports whether every address names the same host. A member
// answers gossip probes at its own address, so it can only claim API and
// Raft addresses on the host it gossips from.
func sameHost(addrs ...string) bool {
	var first string
	for i, a := range addrs {
		h, _, err := net.SplitHostPort(a)
		if err != nil {
			return false
		}
		if ip := net.ParseIP(h); ip != nil {
			h = ip.String()
		}
		if i == 0 {
			first = h
			continue
		}
		if h != first {
			return false
		}
	}
	return true
}

// trustedHTTPAddr returns a server's API address if gossip's claim checks
// out against Raft's own view: the member's claimed Raft address must be
// the one Raft has for that id (raftAddr, from the configuration or the
// leader's RPCs), and its API and gossip addresses must be on that host.
func (c *Cluster) trustedHTTPAddr(id string, raftAddr raft.ServerAddress) (string, bool) {
	e, ok := c.members.get(id)
	if !ok || e.meta.HTTPAddr == "" || e.name != id {
		return "", false
	}
	if raftAddr != "" {
		if e.meta.RaftAddr != string(raftAddr) || !sameHost(string(raftAddr), e.meta.HTTPAddr, e.addr) {
			c.warnUntrusted(id, e, string(raftAddr))
			return "", false
		}
	}
	return e.meta.HTTPAddr, true
}

// warnUntrusted logs a refused claim, at most once a minute per server.
func (c *Cluster) warnUntrusted(id string, e memberEntry, raftAddr string) {
	c.untrustedMu.Lock()
	defer c.untrustedMu.Unlock()
	if c.untrustedLogged == nil {
		c.untrustedLogged = map[string]time.Time{}
	}
	if time.Since(c.untrustedLogged[id]) < time.Minute {
		return
	}
	c.untrustedLogged[id] = time.Now()
	c.logger.Warn("ignoring gossip metadata that does not match raft", "server", id,
		"claimed_raft", e.meta.RaftAddr, "raft", raftAddr, "claimed_http", e.meta.HTTPAddr, "gossip_addr", e.addr)
}

// raftAddrOf returns the Raft address the configuration holds for id.
func (c *Cluster) raftAddrOf(id string) (raft.ServerAddress, bool) {
	cf := c.raft.GetConfiguration()
	if cf.Error() != nil {
		return "", false
	}
	for _, s := range cf.Configuration().Servers {
		if string(s.ID) == id {
			return s.Address, true
		}
	}
	return "", false
}

// reap forgets members that have been gone (failed or left) for longer
// than after and that keep returns false for (not in Raft), so the table
// does not grow with every server that ever passed through.
func (t *memberTable) reap(after time.Duration, keep func(id string) bool) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for id, e := range t.nodes {
		if (e.status == GossipFailed || e.status == GossipLeft) && time.Since(e.since) > after && !keep(id) {
			delete(t.nodes, id)
			delete(t.lastAck, e.name)
			n++
		}
	}
	return n
}
