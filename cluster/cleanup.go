package cluster

import (
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	autopilot "github.com/hashicorp/raft-autopilot"
)

// cleanupRules decide which failed servers autopilot may remove: ours, as
// the filter of its promoter (see autopilot.go for why).
type cleanupRules struct {
	self   string        // the leader deciding; always alive
	expect int           // bootstrap-expect: never fewer voters than this
	after  time.Duration // -dead-server-cleanup
	logger hclog.Logger
}

// filter keeps the failed servers that may go now. Stale servers (in Raft,
// unknown to the delegate) never go: the delegate lists every Raft server,
// so one can only appear in a race, and then there is no evidence. A
// server goes once it has been failed or gone from gossip for the cleanup
// time; a voter only while the voters left keep a live majority and stay
// at or above bootstrap-expect, counting the removals this pass already
// allowed.
func (r cleanupRules) filter(failed *autopilot.FailedServers, servers []raft.Server, members map[string]memberEntry, now time.Time) *autopilot.FailedServers {
	out := &autopilot.FailedServers{}
	for _, s := range failed.FailedNonVoters {
		if r.goneLongEnough(members, s.ID, now) {
			out.FailedNonVoters = append(out.FailedNonVoters, s)
		}
	}
	left := servers
	for _, s := range failed.FailedVoters {
		if !r.goneLongEnough(members, s.ID, now) {
			continue
		}
		if why := r.removalUnsafe(left, members, s.ID); why != "" {
			r.logger.Debug("not removing failed server", "server", s.ID, "reason", why)
			continue
		}
		out.FailedVoters = append(out.FailedVoters, s)
		left = slices.DeleteFunc(slices.Clone(left), func(v raft.Server) bool { return v.ID == s.ID })
	}
	return out
}

// goneLongEnough: the server failed in gossip, or left it without leaving
// Raft, at least the cleanup time ago. Leaving gossip without leaving Raft
// is a restart (SIGTERM without -leave-on-terminate): it gets the same time
// as a failure, so a rolling restart does not churn the configuration. An
// explicit leave removes itself from Raft. Never heard of in gossip since
// we started: no evidence.
func (r cleanupRules) goneLongEnough(members map[string]memberEntry, id raft.ServerID, now time.Time) bool {
	if string(id) == r.self {
		return false
	}
	m, ok := members[string(id)]
	if !ok || (m.status != GossipFailed && m.status != GossipLeft) {
		return false
	}
	return now.Sub(m.since) >= r.after
}

// removalUnsafe says why removing voter id would be unsafe, or "".
func (r cleanupRules) removalUnsafe(servers []raft.Server, members map[string]memberEntry, id raft.ServerID) string {
	voters, _ := votersAfter(servers, members, r.self, id)
	if voters < r.expect {
		return fmt.Sprintf("would leave %d voters, fewer than bootstrap-expect %d", voters, r.expect)
	}
	return quorumAfterRemoval(servers, members, r.self, id)
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
