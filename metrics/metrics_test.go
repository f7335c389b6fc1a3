package metrics

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lunasentri/lunasentri/fsm"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

type fakeState struct {
	stats    fsm.Stats
	pending  []fsm.PendingDelivery
	machines []fsm.Machine
}

func (f *fakeState) Stats() fsm.Stats                         { return f.stats }
func (f *fakeState) PendingDeliveries() []fsm.PendingDelivery { return f.pending }
func (f *fakeState) Machines(status fsm.Status) []fsm.Machine { return f.machines }
func (f *fakeState) withCounts(off, on uint64, m map[fsm.Status]int) {
	f.stats.TransitionsOffline, f.stats.TransitionsOnline, f.stats.Machines = off, on, m
}

type fakeRaft struct {
	leader      bool
	term        uint64
	commit      uint64
	applied     uint64
	lastContact time.Time
}

func (f fakeRaft) IsLeader() bool         { return f.leader }
func (f fakeRaft) Term() uint64           { return f.term }
func (f fakeRaft) CommitIndex() uint64    { return f.commit }
func (f fakeRaft) AppliedIndex() uint64   { return f.applied }
func (f fakeRaft) LastContact() time.Time { return f.lastContact }

// fakeRaftGossip also implements GossipSource and ReadySource, as the
// server's adapter does.
type fakeRaftGossip struct{ fakeRaft }

func (fakeRaftGossip) MemberCounts() map[string]int { return map[string]int{"alive": 2, "failed": 1} }
func (fakeRaftGossip) HealthScore() int             { return 3 }
func (fakeRaftGossip) Ready() (bool, string)        { return false, "applying log" }

// contract is docs/api.md's Metrics table: name → type.
var contract = map[string]dto.MetricType{
	"lunasentri_machine_transitions_total":  dto.MetricType_COUNTER,
	"lunasentri_machines":                   dto.MetricType_GAUGE,
	"lunasentri_heartbeats_received_total":  dto.MetricType_COUNTER,
	"lunasentri_notifications_total":        dto.MetricType_COUNTER,
	"lunasentri_notification_delay_seconds": dto.MetricType_HISTOGRAM,
	"lunasentri_detection_delay_seconds":    dto.MetricType_HISTOGRAM,
	"lunasentri_raft_leader":                dto.MetricType_GAUGE,
	"lunasentri_raft_term":                  dto.MetricType_GAUGE,
	"lunasentri_leader_changes_total":       dto.MetricType_COUNTER,
}

func gather(t *testing.T, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

func newTestMetrics(opts Options) *Metrics {
	if opts.State == nil {
		opts.State = &fakeState{}
	}
	if opts.Raft == nil {
		opts.Raft = fakeRaft{}
	}
	return New(opts)
}

func TestNew_ExposesEveryContractMetricWithHelp(t *testing.T) {
	got := gather(t, newTestMetrics(Options{Version: "v1.2.3", Revision: "abc"}))
	for name, typ := range contract {
		mf, ok := got[name]
		if !ok {
			t.Errorf("%s missing", name)
			continue
		}
		if mf.GetType() != typ {
			t.Errorf("%s is %s, want %s", name, mf.GetType(), typ)
		}
		if mf.GetHelp() == "" {
			t.Errorf("%s has no help text", name)
		}
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "lunasentri_build_info",
		"lunasentri_raft_commit_index", "lunasentri_raft_applied_index", "lunasentri_raft_last_contact_seconds",
		"lunasentri_raft_apply_seconds", "lunasentri_heartbeat_batch_size", "lunasentri_heartbeat_flush_seconds",
		"lunasentri_notifications_pending", "lunasentri_notifications_oldest_pending_seconds"} {
		if _, ok := got[name]; !ok {
			t.Errorf("%s missing", name)
		}
	}
	bi := got["lunasentri_build_info"].GetMetric()[0]
	labels := map[string]string{}
	for _, lp := range bi.GetLabel() {
		labels[lp.GetName()] = lp.GetValue()
	}
	if labels["version"] != "v1.2.3" || labels["revision"] != "abc" || !strings.HasPrefix(labels["goversion"], "go") {
		t.Errorf("build_info labels = %v", labels)
	}
}

// A histogram nobody observed must still expose _bucket, _sum and _count,
// so rules and dashboards see zeros rather than no data.
func TestNew_UnobservedHistogramStillExposed(t *testing.T) {
	m := newTestMetrics(Options{})
	want := `
# HELP lunasentri_notification_delay_seconds Time from a transition to its notification being delivered.
# TYPE lunasentri_notification_delay_seconds histogram
lunasentri_notification_delay_seconds_bucket{le="0.05"} 0
lunasentri_notification_delay_seconds_bucket{le="0.1"} 0
lunasentri_notification_delay_seconds_bucket{le="0.25"} 0
lunasentri_notification_delay_seconds_bucket{le="0.5"} 0
lunasentri_notification_delay_seconds_bucket{le="1"} 0
lunasentri_notification_delay_seconds_bucket{le="2"} 0
lunasentri_notification_delay_seconds_bucket{le="5"} 0
lunasentri_notification_delay_seconds_bucket{le="10"} 0
lunasentri_notification_delay_seconds_bucket{le="30"} 0
lunasentri_notification_delay_seconds_bucket{le="60"} 0
lunasentri_notification_delay_seconds_bucket{le="300"} 0
lunasentri_notification_delay_seconds_bucket{le="900"} 0
lunasentri_notification_delay_seconds_bucket{le="+Inf"} 0
lunasentri_notification_delay_seconds_sum 0
lunasentri_notification_delay_seconds_count 0
`
	if err := compareText(m, want, "lunasentri_notification_delay_seconds"); err != nil {
		t.Fatal(err)
	}
}

func TestStateCollector_ReadsReplicatedCounters(t *testing.T) {
	st := &fakeState{}
	st.withCounts(3, 2, map[fsm.Status]int{fsm.StatusOnline: 5, fsm.StatusOffline: 1})
	st.stats.PendingDeliveries = 2
	m := newTestMetrics(Options{State: st})
	want := `
# HELP lunasentri_machine_transitions_total Machine status transitions, counted where the FSM applies them (same on every node).
# TYPE lunasentri_machine_transitions_total counter
lunasentri_machine_transitions_total{to="offline"} 3
lunasentri_machine_transitions_total{to="online"} 2
# HELP lunasentri_machines Machines by status.
# TYPE lunasentri_machines gauge
lunasentri_machines{status="offline"} 1
lunasentri_machines{status="online"} 5
lunasentri_machines{status="paused"} 0
lunasentri_machines{status="unknown"} 0
# HELP lunasentri_notifications_pending Deliveries in the outbox not yet delivered or failed.
# TYPE lunasentri_notifications_pending gauge
lunasentri_notifications_pending 2
`
	if err := compareText(m, want, "lunasentri_machine_transitions_total", "lunasentri_machines", "lunasentri_notifications_pending"); err != nil {
		t.Fatal(err)
	}
	st.stats.SuppressedSilenced, st.stats.SuppressedFlapping = 7, 1
	st.stats.DigestsClosed, st.stats.DigestsDelivered = 3, 2
	st.stats.RemindersQueued, st.stats.RemindersDelivered = 5, 4
	want = `
# HELP lunasentri_digests_total Digests by stage: closed (ready to send) and sent (delivered).
# TYPE lunasentri_digests_total counter
lunasentri_digests_total{stage="closed"} 3
lunasentri_digests_total{stage="sent"} 2
# HELP lunasentri_notifications_suppressed_total Transition notifications held back, by cause: silenced (an active silence or maintenance window) or flapping. The transitions are still recorded.
# TYPE lunasentri_notifications_suppressed_total counter
lunasentri_notifications_suppressed_total{cause="flapping"} 1
lunasentri_notifications_suppressed_total{cause="silenced"} 7
# HELP lunasentri_reminders_total Reminders for machines still offline, by stage: queued and sent (delivered).
# TYPE lunasentri_reminders_total counter
lunasentri_reminders_total{stage="queued"} 5
lunasentri_reminders_total{stage="sent"} 4
`
	if err := compareText(m, want, "lunasentri_digests_total", "lunasentri_notifications_suppressed_total", "lunasentri_reminders_total"); err != nil {
		t.Fatal(err)
	}
	// A restore replaces the state; the next scrape shows the restored count.
	st.withCounts(7, 6, nil)
	if got := value(t, m, "lunasentri_machine_transitions_total", "offline"); got != 7 {
		t.Fatalf("offline transitions after restore = %v, want 7", got)
	}
}

// compareText gathers the named families from m and compares them, in the
// text exposition format, with want.
func compareText(m *Metrics, want string, names ...string) error {
	mfs, err := m.Registry.Gather()
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, mf := range mfs {
		if slices.Contains(names, mf.GetName()) {
			if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
				return err
			}
		}
	}
	if got := strings.TrimSpace(b.String()); got != strings.TrimSpace(want) {
		return fmt.Errorf("exposition differs\n--- got\n%s\n--- want\n%s", got, strings.TrimSpace(want))
	}
	return nil
}

// seriesValue returns the counter of name whose label values are labels.
func seriesValue(t *testing.T, m *Metrics, name string, labels ...string) float64 {
	t.Helper()
	for _, mt := range gather(t, m)[name].GetMetric() {
		var got []string
		for _, lp := range mt.GetLabel() {
			got = append(got, lp.GetValue())
		}
		if slices.Equal(got, labels) {
			return mt.GetCounter().GetValue()
		}
	}
	t.Fatalf("%s%v missing", name, labels)
	return 0
}

// value gathers m and returns the one series of name whose first label
// (if any) has the value label.
func value(t *testing.T, m *Metrics, name, label string) float64 {
	t.Helper()
	mf, ok := gather(t, m)[name]
	if !ok {
		t.Fatalf("%s missing", name)
	}
	for _, mt := range mf.GetMetric() {
		if label != "" && (len(mt.GetLabel()) == 0 || mt.GetLabel()[0].GetValue() != label) {
			continue
		}
		switch {
		case mt.Counter != nil:
			return mt.GetCounter().GetValue()
		case mt.Gauge != nil:
			return mt.GetGauge().GetValue()
		}
	}
	t.Fatalf("%s{%s} missing", name, label)
	return 0
}

func TestStateCollector_RaftView(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	m := newTestMetrics(Options{Raft: fakeRaft{term: 4, commit: 10, applied: 9, lastContact: now.Add(-1500 * time.Millisecond)}})
	m.state.now = func() time.Time { return now }
	for name, want := range map[string]float64{
		"lunasentri_raft_leader": 0, "lunasentri_raft_term": 4, "lunasentri_raft_commit_index": 10,
		"lunasentri_raft_applied_index": 9, "lunasentri_raft_last_contact_seconds": 1.5,
	} {
		if got := value(t, m, name, ""); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	leader := newTestMetrics(Options{Raft: fakeRaft{leader: true, lastContact: now.Add(-time.Hour)}})
	if got := value(t, leader, "lunasentri_raft_leader", ""); got != 1 {
		t.Errorf("leader gauge = %v, want 1", got)
	}
	if got := value(t, leader, "lunasentri_raft_last_contact_seconds", ""); got != 0 {
		t.Errorf("leader last contact = %v, want 0", got)
	}
}

func TestNew_GossipAndReadyFromRaftSource(t *testing.T) {
	m := newTestMetrics(Options{Raft: fakeRaftGossip{}})
	want := `
# HELP lunasentri_gossip_health_score Memberlist awareness score: 0 is healthy, higher means this node misses probes.
# TYPE lunasentri_gossip_health_score gauge
lunasentri_gossip_health_score 3
# HELP lunasentri_gossip_members Servers in this node's gossip view by status (alive, suspect, failed, left), itself included.
# TYPE lunasentri_gossip_members gauge
lunasentri_gossip_members{status="alive"} 2
lunasentri_gossip_members{status="failed"} 1
lunasentri_gossip_members{status="left"} 0
lunasentri_gossip_members{status="suspect"} 0
# HELP lunasentri_node_ready 1 when this node knows a leader and has applied the log up to the commit index (what /readyz answers).
# TYPE lunasentri_node_ready gauge
lunasentri_node_ready 0
`
	if err := compareText(m, want, "lunasentri_gossip_members", "lunasentri_gossip_health_score", "lunasentri_node_ready"); err != nil {
		t.Fatal(err)
	}
	// Without those sources the metrics are left out rather than faked.
	got := gather(t, newTestMetrics(Options{}))
	for _, name := range []string{"lunasentri_gossip_members", "lunasentri_node_ready", "lunasentri_heartbeat_coalescer_machines"} {
		if _, ok := got[name]; ok {
			t.Errorf("%s exported without a source", name)
		}
	}
}

func TestStateCollector_OldestPendingDelivery(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	st := &fakeState{}
	st.stats.PendingDeliveries = 2
	st.pending = []fsm.PendingDelivery{
		{Event: fsm.Event{ID: "a", OccurredAt: now.Add(-90 * time.Second)}},
		{Event: fsm.Event{ID: "b", OccurredAt: now.Add(-10 * time.Second)}},
	}
	m := newTestMetrics(Options{State: st})
	m.state.now = func() time.Time { return now }
	if got := value(t, m, "lunasentri_notifications_oldest_pending_seconds", ""); got != 90 {
		t.Fatalf("oldest pending = %v, want 90", got)
	}
	st.stats.PendingDeliveries, st.pending = 0, nil
	if got := value(t, m, "lunasentri_notifications_oldest_pending_seconds", ""); got != 0 {
		t.Fatalf("oldest pending with none = %v, want 0", got)
	}
}

var machineLabels = []string{"machine", "machine_id", "name", "hostname"}

func TestNew_NoPerMachineLabelsUnlessOptedIn(t *testing.T) {
	st := &fakeState{machines: []fsm.Machine{{Name: "web-1", Status: fsm.StatusOnline}, {Name: "db-1", Status: fsm.StatusOffline}}}
	for _, mf := range gather(t, newTestMetrics(Options{State: st, Raft: fakeRaftGossip{}})) {
		for _, mt := range mf.GetMetric() {
			for _, lp := range mt.GetLabel() {
				for _, bad := range machineLabels {
					if lp.GetName() == bad {
						t.Errorf("%s has a per-machine label %q", mf.GetName(), bad)
					}
				}
			}
		}
	}
	m := newTestMetrics(Options{State: st, PerMachine: true})
	want := `
# HELP lunasentri_machine_up 1 if the machine is online, 0 if offline or never seen (only with -per-machine-metrics).
# TYPE lunasentri_machine_up gauge
lunasentri_machine_up{machine="db-1"} 0
lunasentri_machine_up{machine="web-1"} 1
`
	if err := compareText(m, want, "lunasentri_machine_up"); err != nil {
		t.Fatal(err)
	}
}

func TestNew_ExpositionPassesLint(t *testing.T) {
	st := &fakeState{machines: []fsm.Machine{{Name: "web-1"}}}
	m := newTestMetrics(Options{State: st, Raft: fakeRaftGossip{}, PendingBeats: func() int { return 1 }, PerMachine: true})
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func TestNew_NeverUsesGlobalRegistry(t *testing.T) {
	newTestMetrics(Options{})
	newTestMetrics(Options{}) // a second node in the same process must not clash
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "lunasentri_") {
			t.Errorf("%s registered on the global registry", mf.GetName())
		}
	}
}

func TestMetrics_Recorders(t *testing.T) {
	m := newTestMetrics(Options{})
	m.ObserveFlush(12, 3*time.Millisecond, nil)
	m.ObserveFlush(5, time.Second, errors.New("no leader"))
	m.ObserveApply(2*time.Millisecond, nil)
	m.ObserveApply(0, errors.New("leadership lost"))
	m.NotificationOutcome(fsm.ChannelWebhook, OutcomeRetried)
	m.NotificationOutcome(fsm.ChannelWebhook, OutcomeDelivered)
	checks := map[string]float64{
		"flush errors": value(t, m, "lunasentri_heartbeat_flush_errors_total", ""),
		"apply errors": value(t, m, "lunasentri_raft_apply_errors_total", ""),
		"retried":      seriesValue(t, m, "lunasentri_notifications_total", fsm.ChannelWebhook, OutcomeRetried),
		"delivered":    seriesValue(t, m, "lunasentri_notifications_total", fsm.ChannelWebhook, OutcomeDelivered),
		"tg failed":    seriesValue(t, m, "lunasentri_notifications_total", fsm.ChannelTelegram, OutcomeFailed),
		"flush count":  float64(histCount(t, m, "lunasentri_heartbeat_flush_seconds")),
		"batch count":  float64(histCount(t, m, "lunasentri_heartbeat_batch_size")),
		"apply count":  float64(histCount(t, m, "lunasentri_raft_apply_seconds")),
	}
	want := map[string]float64{"flush errors": 1, "apply errors": 1, "retried": 1, "delivered": 1, "tg failed": 0,
		"flush count": 1, "batch count": 1, "apply count": 1}
	for k, w := range want {
		if checks[k] != w {
			t.Errorf("%s = %v, want %v", k, checks[k], w)
		}
	}
}

func histCount(t *testing.T, m *Metrics, name string) uint64 {
	mf, ok := gather(t, m)[name]
	if !ok {
		t.Fatalf("%s missing", name)
	}
	return mf.GetMetric()[0].GetHistogram().GetSampleCount()
}

// The heartbeat path pays one unlabelled atomic add: no allocation, no lock.
func TestMetrics_HeartbeatCounterIsAllocationFree(t *testing.T) {
	m := newTestMetrics(Options{})
	if n := testing.AllocsPerRun(1000, m.HeartbeatsReceived.Inc); n != 0 {
		t.Fatalf("HeartbeatsReceived.Inc allocates %v times", n)
	}
	if got := value(t, m, "lunasentri_heartbeats_received_total", ""); got < 1000 {
		t.Fatalf("HeartbeatsReceived = %v", got)
	}
}

// SetPendingBeats is wired after the HTTP API exists and may race a scrape.
func TestMetrics_SetPendingBeatsDuringScrapes(t *testing.T) {
	m := newTestMetrics(Options{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 50 {
			if _, err := m.Registry.Gather(); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	m.SetPendingBeats(func() int { return 4 })
	wg.Wait()
	if got := value(t, m, "lunasentri_heartbeat_coalescer_machines", ""); got != 4 {
		t.Fatalf("coalescer gauge = %v, want 4", got)
	}
}

func BenchmarkHeartbeatsReceived(b *testing.B) {
	m := newTestMetrics(Options{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.HeartbeatsReceived.Inc()
		}
	})
}
