package e2e

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// contractMetrics is docs/api.md's Metrics table: every node must expose each
// family with this type.
var contractMetrics = map[string]string{
	"lunasentri_machine_transitions_total":  "counter",
	"lunasentri_machines":                   "gauge",
	"lunasentri_heartbeats_received_total":  "counter",
	"lunasentri_notifications_total":        "counter",
	"lunasentri_notification_delay_seconds": "histogram",
	"lunasentri_detection_delay_seconds":    "histogram",
	"lunasentri_raft_leader":                "gauge",
	"lunasentri_raft_term":                  "gauge",
	"lunasentri_leader_changes_total":       "counter",
}

// operatorMetrics are the rest of what an operator of a Raft system
// expects (configs/README.md lists them).
var operatorMetrics = []string{
	"lunasentri_build_info", "lunasentri_raft_commit_index", "lunasentri_raft_applied_index",
	"lunasentri_raft_last_contact_seconds", "lunasentri_raft_apply_seconds_count",
	"lunasentri_heartbeat_batch_size_count", "lunasentri_heartbeat_flush_seconds_count",
	"lunasentri_heartbeat_coalescer_machines", "lunasentri_notifications_pending",
	"lunasentri_notifications_oldest_pending_seconds", "lunasentri_gossip_members",
	"lunasentri_gossip_health_score", "lunasentri_node_ready",
	"go_goroutines", "process_resident_memory_bytes",
}

// perMachineLabels must appear on no metric by default.
var perMachineLabels = []string{"machine", "machine_id", "name", "hostname"}

// TestPrometheus_ClusterThroughOutageAndRecovery runs a real Prometheus
// against a three-node cluster with the shipped rules while a machine goes
// offline and comes back, then checks what Prometheus and each node's
// /metrics say.
func TestPrometheus_ClusterThroughOutageAndRecovery(t *testing.T) {
	requireTools(t, "prometheus", "promtool")
	const threshold = 4 * time.Second
	pc := newProcCluster(t, 3, []string{"-offline-threshold", threshold.String()})
	var targets []string
	for _, p := range pc.procs {
		targets = append(targets, p.httpAddr)
	}
	rulesFile := repoFile(t, "configs/prometheus/lunasentri-rules.yml")
	prom := startPrometheus(t, targets, rulesFile)

	leader := pc.leader(30 * time.Second)
	key := pc.register(pc.follower(leader), map[string]any{"name": "prom-1"})
	waitFor(t, 10*time.Second, "prom-1 heartbeat accepted", func() bool { return pc.beat(key, 1) })
	pc.waitStatus(t, "prom-1", "online", 10*time.Second)

	// Outage: prom-1 stops beating.
	pc.waitStatus(t, "prom-1", "offline", threshold+10*time.Second)
	waitPromValues(t, prom, `lunasentri_machine_transitions_total{to="offline"}`, 3, 1)
	waitAlertState(t, prom, "LunaSentriMachinesOffline", "pending", "firing")

	// Recovery.
	waitFor(t, 10*time.Second, "prom-1 beat again", func() bool { return pc.beat(key, 2) })
	pc.waitStatus(t, "prom-1", "online", 10*time.Second)

	// Each node's own exposition.
	var exps []exposition
	eventually(t, 10*time.Second, 100*time.Millisecond, "one offline and one online transition on every node", func() (bool, string) {
		exps = exps[:0]
		for i := range pc.procs {
			exp, _, err := pc.scrapeParsed(i)
			if err != nil {
				return false, fmt.Sprintf("node%d: %v", i+1, err)
			}
			off, _ := exp.value("lunasentri_machine_transitions_total", map[string]string{"to": "offline"})
			on, _ := exp.value("lunasentri_machine_transitions_total", map[string]string{"to": "online"})
			if off != 1 || on != 1 {
				return false, fmt.Sprintf("node%d: offline=%v online=%v", i+1, off, on)
			}
			exps = append(exps, exp)
		}
		return true, ""
	})
	for i, exp := range exps {
		checkExposition(t, fmt.Sprintf("node%d", i+1), exp)
	}
	eventually(t, 10*time.Second, 100*time.Millisecond, "exactly one node reporting itself leader", func() (bool, string) {
		var leaders []string
		for i := range pc.procs {
			exp, _, err := pc.scrapeParsed(i)
			if err != nil {
				return false, err.Error()
			}
			if v, _ := exp.value("lunasentri_raft_leader", map[string]string{}); v == 1 {
				leaders = append(leaders, pc.procs[i].name)
			}
		}
		return len(leaders) == 1, fmt.Sprintf("leaders: %v", leaders)
	})
	for i := range pc.procs {
		_, body, err := pc.scrapeParsed(i)
		if err != nil {
			t.Fatal(err)
		}
		if out, err := promtool(body, "check", "metrics"); err != nil {
			t.Errorf("node%d: promtool check metrics: %v\n%s", i+1, err, out)
		}
	}

	// Prometheus's view after the recovery.
	waitPromValues(t, prom, `lunasentri_machine_transitions_total{to="online"}`, 3, 1)
	waitPromValues(t, prom, `lunasentri_machine_transitions_total{to="offline"}`, 3, 1)
	waitPromValues(t, prom, `sum(lunasentri_raft_leader)`, 1, 1)
	waitPromValues(t, prom, `count(up{job="lunasentri"} == 1)`, 1, 3)
	waitAlertState(t, prom, "LunaSentriMachinesOffline", "inactive")

	// Every shipped rule is loaded and evaluates without error; a healthy
	// cluster has no leader alert.
	shipped := shippedAlertNames(t, rulesFile)
	eventually(t, 15*time.Second, 250*time.Millisecond, "every shipped rule evaluated cleanly", func() (bool, string) {
		rules, err := prom.rules()
		if err != nil {
			return false, err.Error()
		}
		for _, name := range shipped {
			r, ok := rules[name]
			switch {
			case !ok:
				return false, name + " not loaded"
			case r.LastEvaluation.IsZero():
				return false, name + " not evaluated yet"
			case r.Health != "ok" || r.LastError != "":
				return false, fmt.Sprintf("%s: health %q, error %q", name, r.Health, r.LastError)
			}
		}
		if s := rules["LunaSentriNoLeader"].State; s != "inactive" {
			return false, "LunaSentriNoLeader is " + s
		}
		return len(rules) == len(shipped), fmt.Sprintf("%d rules loaded, %d shipped", len(rules), len(shipped))
	})

	// The dashboard's and the rules' queries name only metrics the nodes
	// expose, and every dashboard query runs on a real Prometheus.
	dashboard := repoFile(t, "configs/grafana/lunasentri-dashboard.json")
	for _, file := range []string{rulesFile, dashboard} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range regexp.MustCompile(`lunasentri_[a-z_]+`).FindAllString(string(data), -1) {
			if !exps[0].has(name) && exps[0].Types[name] == "" {
				t.Errorf("%s uses %s, which no node exposes", file, name)
			}
		}
	}
	for _, expr := range dashboardExprs(t, dashboard) {
		expr = strings.NewReplacer("$__rate_interval", "1m", "$cluster", ".*").Replace(expr)
		if _, err := prom.query(expr); err != nil {
			t.Errorf("dashboard query fails on Prometheus: %v", err)
		}
	}

	// The counts are replicated state: a restarted node reports them again.
	f := pc.follower(pc.leader(10 * time.Second))
	pc.stop(f)
	pc.restart(f)
	eventually(t, 30*time.Second, 100*time.Millisecond, "restarted node reports the same transitions", func() (bool, string) {
		exp, _, err := pc.scrapeParsed(f)
		if err != nil {
			return false, err.Error()
		}
		off, _ := exp.value("lunasentri_machine_transitions_total", map[string]string{"to": "offline"})
		on, _ := exp.value("lunasentri_machine_transitions_total", map[string]string{"to": "online"})
		return off == 1 && on == 1, fmt.Sprintf("offline=%v online=%v", off, on)
	})
}

// checkExposition checks one node's /metrics against docs/api.md.
func checkExposition(t *testing.T, node string, exp exposition) {
	t.Helper()
	for name, typ := range contractMetrics {
		if got := exp.Types[name]; got != typ {
			t.Errorf("%s: %s has TYPE %q, want %q", node, name, got, typ)
		}
		if typ != "histogram" {
			if !exp.has(name) {
				t.Errorf("%s: no samples of %s", node, name)
			}
			continue
		}
		// Never observed on followers (and nowhere, without channels), a
		// histogram must still expose its buckets, sum and count.
		if _, ok := exp.value(name+"_bucket", map[string]string{"le": "+Inf"}); !ok {
			t.Errorf("%s: %s_bucket{le=\"+Inf\"} missing", node, name)
		}
		for _, suffix := range []string{"_sum", "_count"} {
			if _, ok := exp.value(name+suffix, map[string]string{}); !ok {
				t.Errorf("%s: %s%s missing", node, name, suffix)
			}
		}
	}
	for _, name := range operatorMetrics {
		if !exp.has(name) {
			t.Errorf("%s: %s missing", node, name)
		}
	}
	for _, to := range []string{"offline", "online"} {
		if _, ok := exp.value("lunasentri_machine_transitions_total", map[string]string{"to": to}); !ok {
			t.Errorf("%s: lunasentri_machine_transitions_total{to=%q} missing", node, to)
		}
	}
	for _, st := range []string{"online", "offline", "unknown"} {
		if _, ok := exp.value("lunasentri_machines", map[string]string{"status": st}); !ok {
			t.Errorf("%s: lunasentri_machines{status=%q} missing", node, st)
		}
	}
	for _, s := range exp.Samples {
		for _, l := range perMachineLabels {
			if _, ok := s.Labels[l]; ok {
				t.Errorf("%s: %s has a per-machine label %q", node, s.Name, l)
			}
		}
	}
}

// TestPromtool_ShippedConfigsAndRuleTests runs promtool on what configs/
// ships: the scrape config, the rules, and the rules' unit tests.
func TestPromtool_ShippedConfigsAndRuleTests(t *testing.T) {
	requireTools(t, "promtool")
	cfg := repoFile(t, "configs/prometheus/prometheus.yml")
	rules := repoFile(t, "configs/prometheus/lunasentri-rules.yml")
	tests := repoFile(t, "configs/prometheus/lunasentri-rules.test.yml")
	for _, args := range [][]string{
		{"check", "config", cfg},
		{"check", "rules", rules},
		{"test", "rules", tests},
	} {
		out, err := promtool(nil, args...)
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	// Every alert in the rules file has a unit test.
	data, err := os.ReadFile(tests)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range shippedAlertNames(t, rules) {
		if !strings.Contains(string(data), "alertname: "+name+"\n") {
			t.Errorf("%s has no promtool unit test in %s", name, tests)
		}
	}
	if exprs := dashboardExprs(t, repoFile(t, "configs/grafana/lunasentri-dashboard.json")); len(exprs) < 10 {
		t.Errorf("dashboard has %d queries", len(exprs))
	}
}

// shippedAlertNames lists the alerts of a rules file.
func shippedAlertNames(t *testing.T, rulesFile string) []string {
	t.Helper()
	data, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^\s*- alert:\s*(\S+)\s*$`).FindAllStringSubmatch(string(data), -1) {
		names = append(names, m[1])
	}
	if len(names) == 0 {
		t.Fatalf("no alerts in %s", rulesFile)
	}
	slices.Sort(names)
	return names
}

// dashboardExprs returns every PromQL query of the Grafana dashboard.
func dashboardExprs(t *testing.T, path string) []string {
	t.Helper()
	var dash struct {
		UID    string `json:"uid"`
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	readJSON(t, path, &dash)
	if dash.UID == "" || dash.Title == "" {
		t.Errorf("%s: dashboard needs a uid and a title", path)
	}
	var exprs []string
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("%s: panel %q has an empty query", path, p.Title)
			}
			exprs = append(exprs, tg.Expr)
		}
	}
	return exprs
}

// waitStatus waits until every node reports the machine in status.
func (pc *procCluster) waitStatus(t *testing.T, name, status string, timeout time.Duration) {
	t.Helper()
	for i := range pc.procs {
		waitFor(t, timeout, fmt.Sprintf("%s %s on node%d", name, status, i+1), func() bool {
			m, _ := pc.machine(i, name)
			return m.Status == status
		})
	}
}

// waitPromValues waits until expr returns n series, each with value want.
func waitPromValues(t *testing.T, prom *promServer, expr string, n int, want float64) {
	t.Helper()
	eventually(t, 20*time.Second, 250*time.Millisecond, fmt.Sprintf("Prometheus: %s = %v on %d series", expr, want, n), func() (bool, string) {
		res, err := prom.query(expr)
		if err != nil {
			return false, err.Error()
		}
		if len(res) != n {
			return false, fmt.Sprintf("%d series: %v", len(res), res)
		}
		for _, s := range res {
			if s.Value != want {
				return false, fmt.Sprintf("%v", res)
			}
		}
		return true, ""
	})
}

// waitAlertState waits until Prometheus reports the alert in one of states.
func waitAlertState(t *testing.T, prom *promServer, alert string, states ...string) {
	t.Helper()
	eventually(t, 20*time.Second, 250*time.Millisecond, fmt.Sprintf("%s %v", alert, states), func() (bool, string) {
		rules, err := prom.rules()
		if err != nil {
			return false, err.Error()
		}
		r, ok := rules[alert]
		if !ok {
			return false, "not loaded"
		}
		return slices.Contains(states, r.State), "state " + r.State
	})
}
