package e2e

import (
	"time"

	"github.com/lunasentri/lunasentri/cluster"
	"github.com/lunasentri/lunasentri/notify"
)

// detectTiming is what a detection timing test sets on its servers; its
// bounds come from these values plus processSlack, never from a bare
// constant.
type detectTiming struct {
	threshold time.Duration // -offline-threshold
	grace     time.Duration // -failover-grace
	check     time.Duration // -check-interval
	flush     time.Duration // -heartbeat-flush-interval
}

// processSlack covers what the flags do not, across real processes: a
// Raft commit and its replication, the test polling three nodes over HTTP
// in turn, process scheduling on two shared cores under -race.
const processSlack = time.Second

func (d detectTiming) flags() []string {
	return []string{"-offline-threshold", d.threshold.String(), "-failover-grace", d.grace.String(),
		"-check-interval", d.check.String(), "-heartbeat-flush-interval", d.flush.String()}
}

// bound is how long after its deadline a machine may be shown offline:
// one check interval, one flush (the beat's age is measured on the node
// that took it), and the slack.
func (d detectTiming) bound() time.Duration { return d.check + d.flush + processSlack }

// serverFlushInterval is the servers' default -heartbeat-flush-interval
// (DESIGN.md defaults; the e2e servers keep it unless a test sets it).
const serverFlushInterval = 250 * time.Millisecond

// lateDupWindow is how long a test keeps watching for a late duplicate
// delivery once everything settled: a retry comes at most one initial
// backoff after a failed attempt (the dispatcher's default, which the
// servers keep), after a heartbeat flush brought the transition, plus the
// slack.
const lateDupWindow = notify.DefaultInitialBackoff + serverFlushInterval + processSlack

// raftHeartbeatTimeout is the servers' Raft heartbeat timeout (the default
// multiplier's): no follower starts an election sooner after its leader
// died.
const raftHeartbeatTimeout = cluster.RaftHeartbeatTimeout
