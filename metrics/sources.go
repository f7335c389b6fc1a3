package metrics

import (
	"time"

	"github.com/lunasentri/lunasentri/fsm"
)

// StateSource is the replicated state the cluster-wide metrics come from.
type StateSource interface {
	Stats() fsm.Stats
}

// RaftSource is this node's consensus view.
type RaftSource interface {
	IsLeader() bool
	Term() uint64
	CommitIndex() uint64
	AppliedIndex() uint64
	LastContact() time.Time
}

// GossipSource is this node's memberlist view.
type GossipSource interface {
	// MemberCounts maps a gossip status (alive, suspect, failed, left) to
	// the number of servers in it, this node included.
	MemberCounts() map[string]int
	// HealthScore is memberlist's awareness score; 0 is healthy.
	HealthScore() int
}

// ReadySource answers what GET /readyz answers: whether this node knows a
// leader and has applied the log up to the commit index (and why not).
type ReadySource interface {
	Ready() (bool, string)
}

// pendingLister is implemented by *fsm.FSM; when the StateSource has it, the
// age of the oldest pending delivery is exported.
type pendingLister interface {
	PendingDeliveries() []fsm.PendingDelivery
}

// oldestPender is implemented by *fsm.FSM: the oldest pending delivery's
// time without copying the outbox (issue 11). Preferred over pendingLister.
type oldestPender interface {
	OldestPending() (time.Time, bool)
}

// machineLister is implemented by *fsm.FSM; Options.PerMachine needs it.
type machineLister interface {
	Machines(status fsm.Status) []fsm.Machine
}

// Gossip statuses, always exported so the series never vanish.
var gossipStatuses = []string{"alive", "suspect", "failed", "left"}

// silenceCounter is implemented by *fsm.FSM: silences muting at a time.
type silenceCounter interface {
	ActiveSilences(at time.Time) int
}
