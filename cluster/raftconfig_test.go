package cluster

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func TestRaftTimingFor_ScalesTheTimeoutsNotTheCommit(t *testing.T) {
	one, err := RaftTimingFor(0)
	if err != nil {
		t.Fatal(err)
	}
	if one.HeartbeatTimeout != RaftHeartbeatTimeout || one.ElectionTimeout != RaftElectionTimeout ||
		one.LeaderLeaseTimeout != RaftLeaderLeaseTimeout || one.CommitTimeout != RaftCommitTimeout {
		t.Fatalf("multiplier 0 (default) gave %v", one)
	}
	five, err := RaftTimingFor(5)
	if err != nil {
		t.Fatal(err)
	}
	if five.HeartbeatTimeout != 5*RaftHeartbeatTimeout || five.ElectionTimeout != 5*RaftElectionTimeout ||
		five.LeaderLeaseTimeout != 5*RaftLeaderLeaseTimeout || five.CommitTimeout != RaftCommitTimeout {
		t.Fatalf("multiplier 5 gave %v", five)
	}
	for _, m := range []int{-1, MaxRaftMultiplier + 1} {
		if _, err := RaftTimingFor(m); err == nil || !strings.Contains(err.Error(), "between 1 and 10") {
			t.Errorf("multiplier %d: %v", m, err)
		}
	}
	// Every multiplier gives a configuration hashicorp/raft accepts, and
	// the lease stays within the heartbeat timeout, as it must.
	for m := 1; m <= MaxRaftMultiplier; m++ {
		tm, _ := RaftTimingFor(m)
		cfg := raft.DefaultConfig()
		cfg.LocalID = "n1"
		tm.apply(cfg)
		if err := raft.ValidateConfig(cfg); err != nil {
			t.Errorf("multiplier %d: %v", m, err)
		}
	}
}

// The defaults meet the failover arithmetic the README promises: an
// election after a leader dies waits at most for the later survivor's
// timer (≤ 2 heartbeat timeouts after its last contact, re-armed once)
// plus one election timeout, under the 2 s target.
func TestRaftTiming_WorstCaseElectionUnderTwoSeconds(t *testing.T) {
	tm, _ := RaftTimingFor(1)
	worst := 3*tm.HeartbeatTimeout + 2*tm.ElectionTimeout
	if worst > 2*time.Second {
		t.Fatalf("worst-case election %s exceeds 2s", worst)
	}
}
