package cluster

// GossipMemberCounts returns how many servers this node's gossip view holds
// in each status (alive, suspect, failed, left), this node included. Every
// status is present, zero or not, so the metric's series never vanish.
func (c *Cluster) GossipMemberCounts() map[string]int {
	out := map[string]int{GossipAlive: 0, GossipSuspect: 0, GossipFailed: 0, GossipLeft: 0}
	if c.members == nil {
		return out
	}
	for _, e := range c.members.all(c.opts.NodeID) {
		out[e.status]++
	}
	return out
}

// GossipHealthScore is memberlist's awareness score: 0 when this node keeps
// up with its probes, higher when it is slow or its network is lossy.
func (c *Cluster) GossipHealthScore() int {
	if c.gossip == nil {
		return 0
	}
	return c.gossip.GetHealthScore()
}
