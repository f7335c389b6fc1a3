package server

import "time"

// Timing bounds of the in-process tests come from the configuration (the
// threshold, check interval, flush interval and failover grace in
// tc.opts) plus one stated slack, never from a bare constant.

// detectionSlack covers what the configuration does not: a Raft commit
// and its replication in process, the test's 20ms polling and an HTTP
// round trip, on a loaded two-core machine under -race (measured: well
// under 100ms unloaded).
const detectionSlack = 750 * time.Millisecond

// failoverGrace is the grace node i's monitor applies as a new leader:
// Options.FailoverGrace, or the default max(threshold/2, 5s) (DESIGN.md).
func (tc *testCluster) failoverGrace(i int) time.Duration {
	o := tc.opts[i]
	if o.FailoverGrace > 0 {
		return o.FailoverGrace
	}
	return max(o.OfflineThreshold/2, 5*time.Second)
}

// detectionBound is how long after a machine's deadline node i's leader
// may mark it offline and node i show it: one check interval, one
// heartbeat flush (the beat's age is measured on the node that took it),
// and the slack.
func (tc *testCluster) detectionBound(i int) time.Duration {
	o := tc.opts[i]
	return o.CheckInterval + o.HeartbeatFlushInterval + detectionSlack
}
