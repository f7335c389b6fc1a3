package server

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/lunasentri/lunasentri/cluster"
	"github.com/lunasentri/lunasentri/fsm"
	"github.com/lunasentri/lunasentri/monitor"
	"github.com/lunasentri/lunasentri/notify"
	"github.com/lunasentri/lunasentri/transport"
)

// readySilence: a follower that has not heard from the leader for this long
// reports not ready (the leader's heartbeat timeout is 1s).
const readySilence = 3 * time.Second

// consensus adapts the cluster to what the HTTP API consumes.
type consensus struct{ c *cluster.Cluster }

func (a consensus) IsLeader() bool                                   { return a.c.IsLeader() }
func (a consensus) Leader() (string, string, bool)                   { return a.c.Leader() }
func (a consensus) WaitForIndex(ctx context.Context, i uint64) error { return a.c.WaitForIndex(ctx, i) }
func (a consensus) Ready() (bool, string)                            { return a.c.Ready(readySilence) }

func (a consensus) Apply(ctx context.Context, cmd []byte) (any, uint64, error) {
	return a.c.Apply(ctx, cmd)
}

func (a consensus) Status() transport.NodeStatus         { return a.c.Status() }
func (a consensus) Members() ([]transport.Member, error) { return a.c.Members() }

// raftMetrics adapts the cluster to the metrics package.
type raftMetrics struct{ c *cluster.Cluster }

func (r raftMetrics) IsLeader() bool         { return r.c.IsLeader() }
func (r raftMetrics) Term() uint64           { return r.c.Raft().CurrentTerm() }
func (r raftMetrics) CommitIndex() uint64    { return r.c.Raft().CommitIndex() }
func (r raftMetrics) AppliedIndex() uint64   { return r.c.Raft().AppliedIndex() }
func (r raftMetrics) LastContact() time.Time { return r.c.Raft().LastContact() }

// observer fans FSM changes out to the leader-side loops. Both are cheap
// no-ops on followers. Raft replays the log into the FSM inside
// cluster.New, before the monitor and dispatcher exist, so the fields are
// atomic and nil-safe (issue 11: wired before Raft starts, set once ready).
type observer struct {
	monitor    atomic.Pointer[monitor.Monitor]
	dispatcher atomic.Pointer[notify.Dispatcher]
	restored   atomic.Pointer[func()]
}

func (o *observer) MachinesSeen(batch []fsm.SeenMachine) {
	m := o.monitor.Load()
	if m == nil || !m.Running() {
		return // followers: no conversion, no allocation
	}
	seen := make([]monitor.Seen, len(batch))
	for i, s := range batch {
		seen[i] = monitor.Seen{ID: s.ID, LastSeen: s.LastSeen, Threshold: s.Threshold}
	}
	m.MachinesSeen(seen)
}

func (o *observer) MachineGone(id string) {
	if m := o.monitor.Load(); m != nil {
		m.MachineGone(id)
	}
}

func (o *observer) OutboxChanged() {
	if d := o.dispatcher.Load(); d != nil {
		d.Kick()
	}
}

func (o *observer) Restored() {
	if f := o.restored.Load(); f != nil {
		(*f)()
	}
}

// livenessSource gives the monitor every online machine with its effective
// threshold.
type livenessSource struct {
	fsm              *fsm.FSM
	defaultThreshold time.Duration
}

func (s livenessSource) OnlineMachines() []monitor.Machine {
	ls := s.fsm.OnlineMachines()
	out := make([]monitor.Machine, len(ls))
	for i, l := range ls {
		th := l.OfflineThreshold
		if th <= 0 {
			th = s.defaultThreshold
		}
		out[i] = monitor.Machine{ID: l.ID, LastSeen: l.LastSeen, Threshold: th}
	}
	return out
}

// offlineProposer writes the monitor's decisions through Raft, one entry per
// batch, stamped with the leader's clock.
type offlineProposer struct {
	c        *cluster.Cluster
	alerting fsm.AlertingConfig
}

func (p offlineProposer) ProposeOffline(ctx context.Context, batch []monitor.Expired) error {
	cmd := fsm.MarkOffline{At: time.Now().UTC(), Machines: make([]fsm.OfflineMark, len(batch)), Alerting: p.alerting}
	for i, e := range batch {
		cmd.Machines[i] = fsm.OfflineMark{ID: e.ID, LastSeen: e.LastSeen}
	}
	data, err := fsm.Encode(fsm.CmdMarkOffline, cmd)
	if err != nil {
		return err
	}
	_, _, err = p.c.Apply(ctx, data)
	return err
}

// alertingTicks lets the leader's alerting ticker read the replica and
// commit ticks stamped with its clock.
type alertingTicks struct {
	fsm      *fsm.FSM
	c        *cluster.Cluster
	alerting fsm.AlertingConfig
}

func (a alertingTicks) TickDue(now time.Time) bool { return a.fsm.TickDue(now.UTC(), a.alerting) }

func (a alertingTicks) ProposeTick(ctx context.Context, at time.Time) error {
	data, err := fsm.Encode(fsm.CmdAlertingTick, fsm.AlertingTick{At: at.UTC(), Alerting: a.alerting})
	if err != nil {
		return err
	}
	_, _, err = a.c.Apply(ctx, data)
	return err
}
