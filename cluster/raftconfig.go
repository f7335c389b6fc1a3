package cluster

import (
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// Raft timing at -raft-multiplier 1 (issue 14), chosen for a LAN and owned
// here rather than inherited from hashicorp/raft's defaults (1 s, 1 s,
// 500 ms), under which failover took 2.2 s at the median.
//
// A follower notices a dead leader when its heartbeat timer (randomised in
// [HeartbeatTimeout, 2×HeartbeatTimeout]) fires with no contact for a
// HeartbeatTimeout. A survivor that has not noticed yet still knows a
// leader and refuses its vote, so an election waits for the later of the
// two survivors' timers, and sometimes one more ElectionTimeout. Expected
// failover is therefore about 2–3 HeartbeatTimeouts; at 300 ms that is the
// sub-second median the targets ask for, with a 2 s worst case.
//
// Shorter is not free: a follower that hears nothing for a HeartbeatTimeout
// starts an election, and a leader that cannot reach a quorum for a
// LeaderLeaseTimeout steps down. The leader sends heartbeats every
// HeartbeatTimeout/10 (30 ms) on their own connection, apart from log
// replication and disk writes, so only a stall of the whole process (or a
// network that loses 300 ms) causes a spurious election, and pre-vote
// (on in hashicorp/raft 1.8) keeps a follower that merely stalled from
// unseating a healthy leader. The lease is as long as Raft allows (the
// heartbeat timeout): it only decides how soon a leader cut off from the
// others stops accepting writes, which the fencing in the outbox makes
// safe either way, and at 150 ms a leader starved of CPU on a loaded
// two-core machine stepped down in the bench. Slow disks, VMs
// with stolen CPU and WANs raise -raft-multiplier, as Consul's
// raft_multiplier: every timeout scales with it, and failover with them.
const (
	RaftHeartbeatTimeout   = 300 * time.Millisecond
	RaftElectionTimeout    = 300 * time.Millisecond
	RaftLeaderLeaseTimeout = 300 * time.Millisecond
	// RaftCommitTimeout is how long the leader waits with no new entry
	// before it tells followers the commit index anyway: how stale a
	// follower's replica may lag a quiet leader. Not scaled.
	RaftCommitTimeout = 25 * time.Millisecond

	// MaxRaftMultiplier bounds -raft-multiplier, as Consul's.
	MaxRaftMultiplier = 10
)

// RaftTiming is the Raft timing a multiplier gives.
type RaftTiming struct {
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
}

// RaftTimingFor returns the timing at multiplier m; 0 means 1.
func RaftTimingFor(m int) (RaftTiming, error) {
	if m == 0 {
		m = 1
	}
	if m < 1 || m > MaxRaftMultiplier {
		return RaftTiming{}, fmt.Errorf("raft multiplier %d: must be between 1 and %d", m, MaxRaftMultiplier)
	}
	k := time.Duration(m)
	return RaftTiming{
		HeartbeatTimeout:   k * RaftHeartbeatTimeout,
		ElectionTimeout:    k * RaftElectionTimeout,
		LeaderLeaseTimeout: k * RaftLeaderLeaseTimeout,
		CommitTimeout:      RaftCommitTimeout,
	}, nil
}

func (t RaftTiming) apply(cfg *raft.Config) {
	cfg.HeartbeatTimeout = t.HeartbeatTimeout
	cfg.ElectionTimeout = t.ElectionTimeout
	cfg.LeaderLeaseTimeout = t.LeaderLeaseTimeout
	cfg.CommitTimeout = t.CommitTimeout
}

// String is the timing as the logs and the bench report show it.
func (t RaftTiming) String() string {
	return fmt.Sprintf("heartbeat %s, election %s, leader lease %s, commit %s",
		t.HeartbeatTimeout, t.ElectionTimeout, t.LeaderLeaseTimeout, t.CommitTimeout)
}
