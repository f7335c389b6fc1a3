package metrics

import (
	"time"

	"github.com/lunasentri/lunasentri/fsm"
	"github.com/prometheus/client_golang/prometheus"
)

// stateCollector reads replicated state and Raft at scrape time.
type stateCollector struct {
	opts Options

	transitions  *prometheus.Desc
	machines     *prometheus.Desc
	pending      *prometheus.Desc
	events       *prometheus.Desc
	dropped      *prometheus.Desc
	leader       *prometheus.Desc
	term         *prometheus.Desc
	commitIndex  *prometheus.Desc
	appliedIndex *prometheus.Desc
	lastContact  *prometheus.Desc
	coalescer    *prometheus.Desc
}

func newStateCollector(opts Options) *stateCollector {
	return &stateCollector{
		opts:         opts,
		transitions:  prometheus.NewDesc("lunasentri_machine_transitions_total", "Machine status transitions, counted where the FSM applies them (same on every node).", []string{"to"}, nil),
		machines:     prometheus.NewDesc("lunasentri_machines", "Machines by status.", []string{"status"}, nil),
		pending:      prometheus.NewDesc("lunasentri_notifications_pending", "Deliveries in the outbox not yet delivered or failed.", nil, nil),
		events:       prometheus.NewDesc("lunasentri_events", "Events kept in the history.", nil, nil),
		dropped:      prometheus.NewDesc("lunasentri_notifications_dropped_total", "Deliveries recorded failed because the outbox was full.", nil, nil),
		leader:       prometheus.NewDesc("lunasentri_raft_leader", "1 if this node is the Raft leader.", nil, nil),
		term:         prometheus.NewDesc("lunasentri_raft_term", "Current Raft term.", nil, nil),
		commitIndex:  prometheus.NewDesc("lunasentri_raft_commit_index", "Raft commit index this node knows.", nil, nil),
		appliedIndex: prometheus.NewDesc("lunasentri_raft_applied_index", "Raft index applied to this node's FSM.", nil, nil),
		lastContact:  prometheus.NewDesc("lunasentri_raft_last_contact_seconds", "Seconds since a follower last heard from the leader (0 on the leader).", nil, nil),
		coalescer:    prometheus.NewDesc("lunasentri_heartbeat_coalescer_machines", "Machines whose heartbeats wait in this node's coalescer.", nil, nil),
	}
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.transitions, c.machines, c.pending, c.events, c.dropped,
		c.leader, c.term, c.commitIndex, c.appliedIndex, c.lastContact, c.coalescer} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	if s := c.opts.State; s != nil {
		st := s.Stats()
		ch <- prometheus.MustNewConstMetric(c.transitions, prometheus.CounterValue, float64(st.TransitionsOffline), "offline")
		ch <- prometheus.MustNewConstMetric(c.transitions, prometheus.CounterValue, float64(st.TransitionsOnline), "online")
		for _, status := range []fsm.Status{fsm.StatusOnline, fsm.StatusOffline, fsm.StatusUnknown} {
			ch <- prometheus.MustNewConstMetric(c.machines, prometheus.GaugeValue, float64(st.Machines[status]), string(status))
		}
		ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(st.PendingDeliveries))
		ch <- prometheus.MustNewConstMetric(c.events, prometheus.GaugeValue, float64(st.Events))
		ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(st.DeliveriesDropped))
	}
	if r := c.opts.Raft; r != nil {
		leader, contact := 0.0, 0.0
		if r.IsLeader() {
			leader = 1
		} else if lc := r.LastContact(); !lc.IsZero() {
			contact = time.Since(lc).Seconds()
		}
		ch <- prometheus.MustNewConstMetric(c.leader, prometheus.GaugeValue, leader)
		ch <- prometheus.MustNewConstMetric(c.term, prometheus.GaugeValue, float64(r.Term()))
		ch <- prometheus.MustNewConstMetric(c.commitIndex, prometheus.GaugeValue, float64(r.CommitIndex()))
		ch <- prometheus.MustNewConstMetric(c.appliedIndex, prometheus.GaugeValue, float64(r.AppliedIndex()))
		ch <- prometheus.MustNewConstMetric(c.lastContact, prometheus.GaugeValue, contact)
	}
	if f := c.opts.PendingBeats; f != nil {
		ch <- prometheus.MustNewConstMetric(c.coalescer, prometheus.GaugeValue, float64(f()))
	}
}
