package e2e

import "time"

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
