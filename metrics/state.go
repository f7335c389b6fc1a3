package metrics

import (
	"sync/atomic"
	"time"

	"github.com/lunasentri/lunasentri/fsm"
	"github.com/prometheus/client_golang/prometheus"
)

// stateCollector reads replicated state, Raft and gossip at scrape time, so
// the heartbeat path pays nothing for these metrics.
type stateCollector struct {
	opts         Options
	pendingBeats atomic.Pointer[func() int]
	now          func() time.Time

	transitions   *prometheus.Desc
	machines      *prometheus.Desc
	pending       *prometheus.Desc
	oldestPending *prometheus.Desc
	events        *prometheus.Desc
	dropped       *prometheus.Desc
	leader        *prometheus.Desc
	term          *prometheus.Desc
	commitIndex   *prometheus.Desc
	appliedIndex  *prometheus.Desc
	lastContact   *prometheus.Desc
	ready         *prometheus.Desc
	coalescer     *prometheus.Desc
	gossipMembers *prometheus.Desc
	gossipHealth  *prometheus.Desc
	machineUp     *prometheus.Desc

	// Alerting (issue 10).
	suppressed     *prometheus.Desc
	digests        *prometheus.Desc
	reminders      *prometheus.Desc
	reconciled     *prometheus.Desc
	flapping       *prometheus.Desc
	silences       *prometheus.Desc
	pendingNotices *prometheus.Desc
}

func newStateCollector(opts Options) *stateCollector {
	c := &stateCollector{
		opts:          opts,
		now:           time.Now,
		transitions:   prometheus.NewDesc("lunasentri_machine_transitions_total", "Machine status transitions, counted where the FSM applies them (same on every node).", []string{"to"}, nil),
		machines:      prometheus.NewDesc("lunasentri_machines", "Machines by status.", []string{"status"}, nil),
		pending:       prometheus.NewDesc("lunasentri_notifications_pending", "Deliveries in the outbox not yet delivered or failed.", nil, nil),
		oldestPending: prometheus.NewDesc("lunasentri_notifications_oldest_pending_seconds", "Age of the oldest delivery still pending (0 when none is).", nil, nil),
		events:        prometheus.NewDesc("lunasentri_events", "Events kept in the history.", nil, nil),
		dropped:       prometheus.NewDesc("lunasentri_notifications_dropped_total", "Deliveries recorded failed because the outbox was full.", nil, nil),
		leader:        prometheus.NewDesc("lunasentri_raft_leader", "1 if this node is the Raft leader.", nil, nil),
		term:          prometheus.NewDesc("lunasentri_raft_term", "Current Raft term.", nil, nil),
		commitIndex:   prometheus.NewDesc("lunasentri_raft_commit_index", "Raft commit index this node knows.", nil, nil),
		appliedIndex:  prometheus.NewDesc("lunasentri_raft_applied_index", "Raft index applied to this node's FSM.", nil, nil),
		lastContact:   prometheus.NewDesc("lunasentri_raft_last_contact_seconds", "Seconds since a follower last heard from the leader (0 on the leader).", nil, nil),
		ready:         prometheus.NewDesc("lunasentri_node_ready", "1 when this node knows a leader and has applied the log up to the commit index (what /readyz answers).", nil, nil),
		coalescer:     prometheus.NewDesc("lunasentri_heartbeat_coalescer_machines", "Machines whose heartbeats wait in this node's coalescer.", nil, nil),
		gossipMembers: prometheus.NewDesc("lunasentri_gossip_members", "Servers in this node's gossip view by status (alive, suspect, failed, left), itself included.", []string{"status"}, nil),
		gossipHealth:  prometheus.NewDesc("lunasentri_gossip_health_score", "Memberlist awareness score: 0 is healthy, higher means this node misses probes.", nil, nil),
		machineUp:     prometheus.NewDesc("lunasentri_machine_up", "1 if the machine is online, 0 if offline or never seen (only with -per-machine-metrics).", []string{"machine"}, nil),
	}
	c.suppressed = prometheus.NewDesc("lunasentri_notifications_suppressed_total", "Transition notifications held back, by cause: silenced (an active silence or maintenance window) or flapping. The transitions are still recorded.", []string{"cause"}, nil)
	c.digests = prometheus.NewDesc("lunasentri_digests_total", "Digests by stage: closed (ready to send) and sent (delivered).", []string{"stage"}, nil)
	c.reminders = prometheus.NewDesc("lunasentri_reminders_total", "Reminders for machines still offline, by stage: queued and sent (delivered).", []string{"stage"}, nil)
	c.reconciled = prometheus.NewDesc("lunasentri_notifications_reconciled_total", "Notifications sent when a suppression ended because a channel had been told something other than the truth.", nil, nil)
	c.flapping = prometheus.NewDesc("lunasentri_flapping_started_total", "Times a machine started flapping (one machine.flapping notice per channel each).", nil, nil)
	c.silences = prometheus.NewDesc("lunasentri_silences_active", "Silences and maintenance windows muting right now.", nil, nil)
	c.pendingNotices = prometheus.NewDesc("lunasentri_notices_pending", "Digests, reminders and notices waiting to be sent.", nil, nil)
	if opts.PendingBeats != nil {
		f := opts.PendingBeats
		c.pendingBeats.Store(&f)
	}
	return c
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.transitions, c.machines, c.pending, c.oldestPending, c.events,
		c.dropped, c.leader, c.term, c.commitIndex, c.appliedIndex, c.lastContact, c.ready, c.coalescer,
		c.gossipMembers, c.gossipHealth, c.machineUp, c.suppressed, c.digests, c.reminders, c.reconciled,
		c.flapping, c.silences, c.pendingNotices} {
		ch <- d
	}
}

func gauge(d *prometheus.Desc, v float64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func counter(d *prometheus.Desc, v float64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	if s := c.opts.State; s != nil {
		c.collectState(ch, s)
	}
	if r := c.opts.Raft; r != nil {
		leader, contact := r.IsLeader(), 0.0
		if lc := r.LastContact(); !leader && !lc.IsZero() {
			contact = c.now().Sub(lc).Seconds()
		}
		ch <- gauge(c.leader, boolValue(leader))
		ch <- gauge(c.term, float64(r.Term()))
		ch <- gauge(c.commitIndex, float64(r.CommitIndex()))
		ch <- gauge(c.appliedIndex, float64(r.AppliedIndex()))
		ch <- gauge(c.lastContact, contact)
	}
	if r := c.opts.Ready; r != nil {
		ok, _ := r.Ready()
		ch <- gauge(c.ready, boolValue(ok))
	}
	if f := c.pendingBeats.Load(); f != nil && *f != nil {
		ch <- gauge(c.coalescer, float64((*f)()))
	}
	if g := c.opts.Gossip; g != nil {
		counts := g.MemberCounts()
		for _, st := range gossipStatuses {
			ch <- gauge(c.gossipMembers, float64(counts[st]), st)
		}
		ch <- gauge(c.gossipHealth, float64(g.HealthScore()))
	}
}

func (c *stateCollector) collectState(ch chan<- prometheus.Metric, s StateSource) {
	st := s.Stats()
	ch <- counter(c.transitions, float64(st.TransitionsOffline), "offline")
	ch <- counter(c.transitions, float64(st.TransitionsOnline), "online")
	for _, status := range []fsm.Status{fsm.StatusOnline, fsm.StatusOffline, fsm.StatusUnknown, fsm.StatusPaused} {
		ch <- gauge(c.machines, float64(st.Machines[status]), string(status))
	}
	ch <- gauge(c.pending, float64(st.PendingDeliveries))
	ch <- gauge(c.events, float64(st.Events))
	ch <- counter(c.dropped, float64(st.DeliveriesDropped))
	ch <- counter(c.suppressed, float64(st.SuppressedSilenced), "silenced")
	ch <- counter(c.suppressed, float64(st.SuppressedFlapping), "flapping")
	ch <- counter(c.digests, float64(st.DigestsClosed), "closed")
	ch <- counter(c.digests, float64(st.DigestsDelivered), "sent")
	ch <- counter(c.reminders, float64(st.RemindersQueued), "queued")
	ch <- counter(c.reminders, float64(st.RemindersDelivered), "sent")
	ch <- counter(c.reconciled, float64(st.Reconciled))
	ch <- counter(c.flapping, float64(st.FlappingStarted))
	ch <- gauge(c.pendingNotices, float64(st.PendingNotices))
	if sc, ok := s.(silenceCounter); ok {
		ch <- gauge(c.silences, float64(sc.ActiveSilences(c.now())))
	}
	if op, ok := s.(oldestPender); ok {
		// Issue 11: one scan without copies instead of the sorted outbox.
		oldest := 0.0
		if at, found := op.OldestPending(); found && st.PendingDeliveries > 0 {
			oldest = max(0, c.now().Sub(at).Seconds())
		}
		ch <- gauge(c.oldestPending, oldest)
	} else if pl, ok := s.(pendingLister); ok {
		oldest := 0.0
		if st.PendingDeliveries > 0 {
			now := c.now()
			for _, pd := range pl.PendingDeliveries() {
				oldest = max(oldest, now.Sub(pd.Event.OccurredAt).Seconds())
			}
		}
		ch <- gauge(c.oldestPending, oldest)
	}
	if ml, ok := s.(machineLister); ok && c.opts.PerMachine {
		for _, m := range ml.Machines("") {
			ch <- gauge(c.machineUp, boolValue(m.Status == fsm.StatusOnline), m.Name)
		}
	}
}
