package server

import (
	"sync/atomic"
	"time"

	"github.com/lunasentri/lunasentri/metrics"
)

// raftMetrics (adapters.go) also serves the gossip and readiness metrics:
// metrics.New picks these up through the optional GossipSource and
// ReadySource interfaces when Options.Gossip / Options.Ready are unset.
var (
	_ metrics.RaftSource   = raftMetrics{}
	_ metrics.GossipSource = raftMetrics{}
	_ metrics.ReadySource  = raftMetrics{}
)

// MemberCounts is the number of servers per gossip status.
func (r raftMetrics) MemberCounts() map[string]int { return r.c.GossipMemberCounts() }

// HealthScore is memberlist's awareness score.
func (r raftMetrics) HealthScore() int { return r.c.GossipHealthScore() }

// Ready is exactly what GET /readyz answers.
func (r raftMetrics) Ready() (bool, string) { return r.c.Ready(readySilence) }

// lateMetrics lets what is built before the metrics (the cluster) report to
// them once they exist, without racing on Node.Metrics.
type lateMetrics struct {
	p atomic.Pointer[metrics.Metrics]
}

func (l *lateMetrics) set(m *metrics.Metrics) { l.p.Store(m) }

// observeApply is cluster.Options.ObserveApply.
func (l *lateMetrics) observeApply(d time.Duration, err error) {
	if m := l.p.Load(); m != nil {
		m.ObserveApply(d, err)
	}
}

// leadershipChanged is cluster.Options.LeadershipChanged.
func (l *lateMetrics) leadershipChanged(bool) {
	if m := l.p.Load(); m != nil {
		m.LeaderChanges.Inc()
	}
}
