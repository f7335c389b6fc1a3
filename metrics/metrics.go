package metrics

import (
	"net/http"
	"runtime"
	"time"

	"github.com/lunasentri/lunasentri/fsm"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Options configures the collectors. Only State and Raft are needed for the
// metrics in docs/api.md; every other source is optional and its metrics are
// left out when it is missing.
type Options struct {
	State    StateSource
	Raft     RaftSource
	Version  string
	Revision string
	// PendingBeats reports machines waiting in this node's coalescer.
	PendingBeats func() int
	// Gossip adds lunasentri_gossip_members{status} and
	// lunasentri_gossip_health_score. When nil, Raft is used if it also
	// implements GossipSource.
	Gossip GossipSource
	// Ready adds lunasentri_node_ready. When nil, Raft is used if it also
	// implements ReadySource.
	Ready ReadySource
	// PerMachine adds lunasentri_machine_up{machine} (1 online, 0
	// otherwise) for every machine: one series per machine, so only for
	// small fleets. Off by default; needs a State that lists machines.
	PerMachine bool
}

// Metrics holds the collectors other packages update. Everything else is
// computed at scrape time.
type Metrics struct {
	Registry *prometheus.Registry

	HeartbeatsReceived   prometheus.Counter
	LeaderChanges        prometheus.Counter
	Notifications        *prometheus.CounterVec
	NotificationDelay    prometheus.Histogram
	DetectionDelay       prometheus.Histogram
	HeartbeatBatchSize   prometheus.Histogram
	HeartbeatFlush       prometheus.Histogram
	HeartbeatFlushErrors prometheus.Counter
	// RaftApply is the time the leader takes to commit and apply one Raft
	// entry; RaftApplyErrors counts applies that failed.
	RaftApply       prometheus.Histogram
	RaftApplyErrors prometheus.Counter

	state *stateCollector
}

// Notification outcomes (docs/api.md).
const (
	OutcomeDelivered = "delivered"
	OutcomeRetried   = "retried"
	OutcomeFailed    = "failed"
)

// New creates a registry with every LunaSentri collector plus the Go and
// process collectors. It never touches the global registry.
func New(opts Options) *Metrics {
	if opts.Gossip == nil {
		opts.Gossip, _ = opts.Raft.(GossipSource)
	}
	if opts.Ready == nil {
		opts.Ready, _ = opts.Raft.(ReadySource)
	}
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		HeartbeatsReceived: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lunasentri_heartbeats_received_total",
			Help: "Heartbeats this node accepted.",
		}),
		LeaderChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lunasentri_leader_changes_total",
			Help: "Times this node gained or lost leadership.",
		}),
		Notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lunasentri_notifications_total",
			Help: "Notification attempts by channel type and outcome (delivered, retried, failed).",
		}, []string{"channel_type", "outcome"}),
		NotificationDelay: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "lunasentri_notification_delay_seconds",
			Help:    "Time from a transition to its notification being delivered.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900},
		}),
		DetectionDelay: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "lunasentri_detection_delay_seconds",
			Help:    "Time from a machine's deadline passing to its offline transition being committed.",
			Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 5, 10, 30},
		}),
		HeartbeatBatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "lunasentri_heartbeat_batch_size",
			Help:    "Machines per heartbeat flush from this node to the leader.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 9),
		}),
		HeartbeatFlush: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "lunasentri_heartbeat_flush_seconds",
			Help:    "Time to ship one heartbeat flush to the leader and commit it.",
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5},
		}),
		HeartbeatFlushErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lunasentri_heartbeat_flush_errors_total",
			Help: "Heartbeat flushes that could not reach the leader (beats kept for the next flush).",
		}),
		RaftApply: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "lunasentri_raft_apply_seconds",
			Help:    "Time for the leader to commit and apply one Raft entry.",
			Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5},
		}),
		RaftApplyErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lunasentri_raft_apply_errors_total",
			Help: "Raft applies on this node that failed (lost leadership, timeout, shutdown).",
		}),
	}
	for _, ct := range []string{fsm.ChannelWebhook, fsm.ChannelTelegram} {
		for _, o := range []string{OutcomeDelivered, OutcomeRetried, OutcomeFailed} {
			m.Notifications.WithLabelValues(ct, o)
		}
	}
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "lunasentri_build_info",
		Help:        "Build information; always 1.",
		ConstLabels: prometheus.Labels{"version": opts.Version, "revision": opts.Revision, "goversion": runtime.Version()},
	})
	buildInfo.Set(1)
	m.state = newStateCollector(opts)
	reg.MustRegister(
		m.HeartbeatsReceived, m.LeaderChanges, m.Notifications, m.NotificationDelay,
		m.DetectionDelay, m.HeartbeatBatchSize, m.HeartbeatFlush, m.HeartbeatFlushErrors,
		m.RaftApply, m.RaftApplyErrors, buildInfo, m.state,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// SetPendingBeats sets the source of the coalescer-size gauge; the API is
// built after the metrics, so it is wired late. Safe during scrapes.
func (m *Metrics) SetPendingBeats(f func() int) { m.state.pendingBeats.Store(&f) }

// ObserveFlush records one heartbeat flush.
func (m *Metrics) ObserveFlush(beats int, d time.Duration, err error) {
	if err != nil {
		m.HeartbeatFlushErrors.Inc()
		return
	}
	m.HeartbeatBatchSize.Observe(float64(beats))
	m.HeartbeatFlush.Observe(d.Seconds())
}

// ObserveApply records one Raft apply on the leader.
func (m *Metrics) ObserveApply(d time.Duration, err error) {
	if err != nil {
		m.RaftApplyErrors.Inc()
		return
	}
	m.RaftApply.Observe(d.Seconds())
}

// NotificationOutcome counts one delivery attempt's outcome.
func (m *Metrics) NotificationOutcome(channelType, outcome string) {
	m.Notifications.WithLabelValues(channelType, outcome).Inc()
}
