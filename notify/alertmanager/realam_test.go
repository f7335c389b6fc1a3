package alertmanager_test

// Tests against the real Alertmanager binary (Debian's
// prometheus-alertmanager, installed by `make tools`). They are skipped when
// the binary is missing, and say so.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lunasentri/lunasentri/internal/testenv"
	"github.com/lunasentri/lunasentri/notify"
	"github.com/lunasentri/lunasentri/notify/alertmanager"
)

func amBinary(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"prometheus-alertmanager", "alertmanager"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testenv.MissingCapability(t, "prometheus-alertmanager is not installed (make tools)")
	return ""
}

// amWebhook is Alertmanager's webhook receiver payload (the parts we check).
type amWebhook struct {
	Status string `json:"status"`
	Alerts []struct {
		Status      string            `json:"status"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"alerts"`
}

// hookReceiver collects what Alertmanager sends to its webhook receiver.
type hookReceiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []amWebhook
}

func newHookReceiver(t *testing.T) *hookReceiver {
	h := &hookReceiver{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p amWebhook
		raw, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(raw, &p); err != nil {
			t.Errorf("alertmanager sent %s", raw)
		}
		h.mu.Lock()
		h.got = append(h.got, p)
		h.mu.Unlock()
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookReceiver) all() []amWebhook {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]amWebhook(nil), h.got...)
}

// count is how many notifications had status for machine.
func (h *hookReceiver) count(status, machine string) int {
	n := 0
	for _, p := range h.all() {
		for _, a := range p.Alerts {
			if a.Status == status && a.Labels["machine"] == machine {
				n++
				break
			}
		}
	}
	return n
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type amProc struct {
	url string
	cmd *exec.Cmd
	log *bytes.Buffer
}

// startAM runs one Alertmanager sending to hook; peers (cluster addresses)
// make it part of an HA set.
func startAM(t *testing.T, bin, hookURL, clusterAddr string, peers ...string) *amProc {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`route:
  receiver: hook
  group_by: ['alertname', 'machine']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: %s
        send_resolved: true
`, hookURL)
	if err := os.WriteFile(filepath.Join(dir, "am.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freePort(t)
	args := []string{"--config.file=" + filepath.Join(dir, "am.yml"), "--storage.path=" + dir,
		"--web.listen-address=" + addr, "--log.level=warn"}
	if clusterAddr == "" {
		args = append(args, "--cluster.listen-address=")
	} else {
		args = append(args, "--cluster.listen-address="+clusterAddr, "--cluster.peer-timeout=1s",
			"--cluster.gossip-interval=50ms", "--cluster.pushpull-interval=1s", "--cluster.settle-timeout=2s")
		for _, p := range peers {
			args = append(args, "--cluster.peer="+p)
		}
	}
	p := &amProc{url: "http://" + addr, log: &bytes.Buffer{}}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("alertmanager %s log:\n%s", addr, p.log)
		}
	})
	waitFor(t, 20*time.Second, "alertmanager ready", func() bool {
		resp, err := http.Get(p.url + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return p
}

func (p *amProc) stop() {
	if p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
	}
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// amAlerts is GET /api/v2/alerts for machine: the states Alertmanager holds.
func amAlerts(t *testing.T, base, machine string) []string {
	resp, err := http.Get(base + "/api/v2/alerts?filter=" + "machine%3D%22" + machine + "%22")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var alerts []struct {
		Status struct {
			State      string   `json:"state"`
			SilencedBy []string `json:"silencedBy"`
		} `json:"status"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&alerts)
	var out []string
	for _, a := range alerts {
		out = append(out, a.Status.State)
	}
	return out
}

func machineEvent(typ, name string, at time.Time) notify.Event {
	seen := at.Add(-2 * time.Minute)
	ev := notify.Event{ID: typ + "-" + name, Type: typ, OccurredAt: at,
		Machine: notify.Machine{ID: "id-" + name, Name: name, Hostname: name + ".example", LastSeen: &seen, Labels: map[string]string{"env": "test"}}}
	if typ == notify.EventOnline {
		ev.DownFor = time.Minute
	}
	return ev
}

func TestRealAlertmanager_FireResolveSilence(t *testing.T) {
	bin := amBinary(t)
	hook := newHookReceiver(t)
	am := startAM(t, bin, hook.srv.URL, "")
	n, err := alertmanager.New(alertmanager.Options{URLs: []string{am.url}, Labels: map[string]string{"severity": "page"}, GeneratorURL: "http://lunasentri.test/ui/"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// Offline fires.
	start := time.Now().UTC()
	if _, err := n.Notify(ctx, machineEvent(notify.EventOffline, "db-1", start)); err != nil {
		t.Fatalf("offline: %v", err)
	}
	waitFor(t, 20*time.Second, "firing notification for db-1", func() bool { return hook.count("firing", "db-1") > 0 })
	for _, p := range hook.all() {
		for _, a := range p.Alerts {
			if a.Labels["alertname"] != "MachineOffline" || a.Labels["severity"] != "page" || a.Labels["env"] != "test" ||
				a.Annotations["hostname"] != "db-1.example" || a.Annotations["reason"] != "silence" {
				t.Errorf("alert as Alertmanager sent it: %+v", a)
			}
		}
	}

	// Online resolves.
	if _, err := n.Notify(ctx, machineEvent(notify.EventOnline, "db-1", time.Now().UTC())); err != nil {
		t.Fatalf("online: %v", err)
	}
	waitFor(t, 20*time.Second, "resolved notification for db-1", func() bool { return hook.count("resolved", "db-1") > 0 })

	// A silence made in Alertmanager mutes db-2.
	sil := map[string]any{
		"matchers": []map[string]any{{"name": "machine", "value": "db-2", "isRegex": false, "isEqual": true}},
		"startsAt": time.Now().UTC().Format(time.RFC3339), "endsAt": time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
		"createdBy": "test", "comment": "maintenance",
	}
	body, _ := json.Marshal(sil)
	resp, err := http.Post(am.url+"/api/v2/silences", "application/json", bytes.NewReader(body))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("create silence: %v %v", resp, err)
	}
	resp.Body.Close()
	if _, err := n.Notify(ctx, machineEvent(notify.EventOffline, "db-2", time.Now().UTC())); err != nil {
		t.Fatal(err)
	}
	// A third, unsilenced machine fires after db-2 was posted: once it has
	// been notified, db-2 (same group_wait) would have been too.
	if _, err := n.Notify(ctx, machineEvent(notify.EventOffline, "db-3", time.Now().UTC())); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "db-2 suppressed in alertmanager", func() bool {
		s := amAlerts(t, am.url, "db-2")
		return len(s) == 1 && s[0] == "suppressed"
	})
	waitFor(t, 20*time.Second, "firing notification for db-3", func() bool { return hook.count("firing", "db-3") > 0 })
	// Two more group intervals for good measure.
	time.Sleep(2 * time.Second)
	if c := hook.count("firing", "db-2"); c != 0 {
		t.Errorf("silenced db-2 was notified %d times", c)
	}
}

func TestRealAlertmanager_HAPair(t *testing.T) {
	bin := amBinary(t)
	hook := newHookReceiver(t)
	c1, c2 := freePort(t), freePort(t)
	am1 := startAM(t, bin, hook.srv.URL, c1, c2)
	am2 := startAM(t, bin, hook.srv.URL, c2, c1)
	n, err := alertmanager.New(alertmanager.Options{URLs: []string{am1.url, am2.url}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := n.Notify(ctx, machineEvent(notify.EventOffline, "web-1", time.Now().UTC())); err != nil {
		t.Fatal(err)
	}
	// Both members hold the alert (Alertmanagers do not gossip alerts: only
	// our fan-out puts it in both).
	for _, am := range []*amProc{am1, am2} {
		waitFor(t, 10*time.Second, "alert in "+am.url, func() bool {
			s := amAlerts(t, am.url, "web-1")
			return len(s) == 1 && s[0] == "active"
		})
	}
	waitFor(t, 30*time.Second, "firing notification for web-1", func() bool { return hook.count("firing", "web-1") > 0 })

	// One member dies: the other still takes alerts, and the delivery
	// counts as made.
	am1.stop()
	if retryable, err := n.Notify(ctx, machineEvent(notify.EventOnline, "web-1", time.Now().UTC())); err != nil || retryable {
		t.Fatalf("online with one member down: %v, %v", retryable, err)
	}
	waitFor(t, 30*time.Second, "resolved notification for web-1", func() bool { return hook.count("resolved", "web-1") > 0 })
	t.Logf("notifications received from the pair: %d firing, %d resolved", hook.count("firing", "web-1"), hook.count("resolved", "web-1"))
}

// TestRealAlertmanager_RepostsKeepItFiring: with a short validity, re-posts
// (reminders, as the lead's reminder machinery sends them) keep the alert
// firing past its first endsAt; when they stop, Alertmanager resolves it on
// its own.
func TestRealAlertmanager_RepostsKeepItFiring(t *testing.T) {
	bin := amBinary(t)
	hook := newHookReceiver(t)
	am := startAM(t, bin, hook.srv.URL, "")
	n, err := alertmanager.New(alertmanager.Options{URLs: []string{am.url}, Validity: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().UTC()
	ev := machineEvent(notify.EventOffline, "cron-1", start)
	if _, err := n.Notify(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		time.Sleep(time.Second) // the re-post interval under test
		rem := ev
		rem.ID, rem.Reminder, rem.OccurredAt, rem.DownFor = fmt.Sprintf("rem-%d", i), i, time.Now().UTC(), time.Since(start)
		if _, err := n.Notify(context.Background(), rem); err != nil {
			t.Fatal(err)
		}
		if s := amAlerts(t, am.url, "cron-1"); len(s) != 1 || s[0] != "active" {
			t.Fatalf("after re-post %d (%.1fs, validity 2s) alertmanager holds %v", i, time.Since(start).Seconds(), s)
		}
	}
	if c := hook.count("resolved", "cron-1"); c != 0 {
		t.Errorf("resolved while re-posted: %d", c)
	}
	waitFor(t, 20*time.Second, "alertmanager resolving cron-1 once re-posts stop", func() bool { return hook.count("resolved", "cron-1") > 0 })
}

// TestShippedConfig_ChecksAndRoutes: configs/alertmanager.yml is valid for
// the real Alertmanager and routes our alerts as its comments say.
func TestShippedConfig_ChecksAndRoutes(t *testing.T) {
	amtool, err := exec.LookPath("amtool")
	if err != nil {
		testenv.MissingCapability(t, "amtool is not installed (make tools)")
	}
	cfg := filepath.Join("..", "..", "configs", "alertmanager.yml")
	if out, err := exec.Command(amtool, "check-config", cfg).CombinedOutput(); err != nil {
		t.Fatalf("amtool check-config: %v\n%s", err, out)
	}
	for labels, want := range map[string]string{
		"alertname=MachineOffline env=prod machine=db-1": "oncall,chat",
		"alertname=MachineOffline env=dev machine=db-1":  "chat",
		"alertname=MachineFlapping machine=db-1":         "chat",
	} {
		args := append([]string{"config", "routes", "test", "--config.file=" + cfg}, strings.Fields(labels)...)
		out, err := exec.Command(amtool, args...).Output() // stderr may warn about amtool's own config
		if err != nil || strings.TrimSpace(string(out)) != want {
			t.Errorf("%s routes to %q (%v), want %s", labels, strings.TrimSpace(string(out)), err, want)
		}
	}
}
