package e2e

import (
	"bytes"
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

	"github.com/emersion/go-smtp"

	"github.com/lunasentri/lunasentri/internal/testenv"
)

// Issue 15 over real processes: the further channel types — the REAL
// Alertmanager (Debian's prometheus-alertmanager) with a webhook receiver
// behind it, stand-ins for Slack, PagerDuty and ntfy, and go-smtp's server —
// each get every transition once while the leader is killed.

// recorder stands in for Slack, PagerDuty and ntfy (by path) and for
// Alertmanager's own webhook receiver (/am-hook).
type recorder struct {
	srv  *httptest.Server
	mu   sync.Mutex
	reqs map[string][]string
}

func newRecorder(t *testing.T) *recorder {
	r := &recorder{reqs: map[string][]string{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.reqs[req.URL.Path] = append(r.reqs[req.URL.Path], string(body))
		r.mu.Unlock()
		if req.URL.Path == "/pd/v2/enqueue" {
			w.WriteHeader(http.StatusAccepted)
		}
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *recorder) count(path string, subs ...string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
next:
	for _, b := range r.reqs[path] {
		for _, s := range subs {
			if !strings.Contains(b, s) {
				continue next
			}
		}
		n++
	}
	return n
}

// amNotified counts Alertmanager webhook notifications for machine with
// status (firing or resolved).
func (r *recorder) amNotified(status, machine string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, b := range r.reqs["/am-hook"] {
		var p struct {
			Alerts []struct {
				Status string            `json:"status"`
				Labels map[string]string `json:"labels"`
			} `json:"alerts"`
		}
		_ = json.Unmarshal([]byte(b), &p)
		for _, a := range p.Alerts {
			if a.Status == status && a.Labels["machine"] == machine {
				n++
				break
			}
		}
	}
	return n
}

type e2eMailbox struct {
	mu    sync.Mutex
	mails []string
}

func (b *e2eMailbox) NewSession(*smtp.Conn) (smtp.Session, error) { return &e2eMailSession{b}, nil }

func (b *e2eMailbox) count(sub string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, m := range b.mails {
		if strings.Contains(m, sub) {
			n++
		}
	}
	return n
}

type e2eMailSession struct{ b *e2eMailbox }

func (s *e2eMailSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *e2eMailSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *e2eMailSession) Reset()                               {}
func (s *e2eMailSession) Logout() error                        { return nil }
func (s *e2eMailSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	s.b.mu.Lock()
	s.b.mails = append(s.b.mails, string(data))
	s.b.mu.Unlock()
	return err
}

type quietLog struct{}

func (quietLog) Printf(string, ...interface{}) {}
func (quietLog) Println(...interface{})        {}

func startE2EMailbox(t *testing.T) (*e2eMailbox, string) {
	box := &e2eMailbox{}
	s := smtp.NewServer(box)
	s.Domain = "mail.e2e"
	s.ErrorLog = quietLog{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(ln) }()
	t.Cleanup(func() { s.Close(); <-done })
	return box, ln.Addr().String()
}

// startRealAlertmanager runs Debian's Alertmanager sending to hookURL.
func startRealAlertmanager(t *testing.T, hookURL string) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus-alertmanager")
	if err != nil {
		testenv.MissingCapability(t, "prometheus-alertmanager is not installed (make tools)")
	}
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
	addr := fmt.Sprintf("127.0.0.1:%d", freePorts(t, 1)[0])
	var log bytes.Buffer
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "am.yml"), "--storage.path="+dir,
		"--web.listen-address="+addr, "--cluster.listen-address=", "--log.level=warn")
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("alertmanager log:\n%s", log.String())
		}
	})
	waitFor(t, 20*time.Second, "alertmanager ready", func() bool {
		resp, err := http.Get("http://" + addr + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return "http://" + addr
}

func TestE2E_MoreChannelsOnceAcrossLeaderKill(t *testing.T) {
	rec := newRecorder(t)
	amURL := startRealAlertmanager(t, rec.srv.URL+"/am-hook")
	box, smtpAddr := startE2EMailbox(t)
	pc := newProcCluster(t, 3, []string{"-offline-threshold", notifyThreshold.String(),
		"-smtp-addr", smtpAddr, "-smtp-tls", "none", "-smtp-from", "lunasentri@e2e.example"})
	leader := pc.leader(30 * time.Second)
	f := pc.follower(leader)

	pc.notifyChannel(f, map[string]any{"type": "alertmanager", "name": "am", "url": amURL, "labels": map[string]string{"team": "sre"}})
	pc.notifyChannel(f, map[string]any{"type": "slack", "name": "chat", "url": rec.srv.URL + "/slack/services/T/B/SECRET"})
	pc.notifyChannel(f, map[string]any{"type": "pagerduty", "name": "pd", "routing_key": "E2EROUTINGKEY0123456789abcdefAB", "url": rec.srv.URL + "/pd/v2/enqueue"})
	// ntfy and email through the CLI.
	if out, err := runCLI(t, "channels", "add", "ntfy", "push", "-url", rec.srv.URL+"/ntfy", "-topic", "ops", "-ntfy-token", "tk_e2e_secret",
		"-address", pc.url(f), "-token", adminToken); err != nil {
		t.Fatalf("channels add ntfy: %v\n%s", err, out)
	}
	if out, err := runCLI(t, "channels", "add", "email", "mail", "-to", "ops@e2e.example", "-address", pc.url(f), "-token", adminToken); err != nil {
		t.Fatalf("channels add email: %v\n%s", err, out)
	}
	out, err := runCLI(t, "channels", "list", "-address", pc.url(f), "-token", adminToken)
	if err != nil || strings.Contains(out, "SECRET") || strings.Contains(out, "tk_e2e_secret") {
		t.Fatalf("channels list: %v\n%s", err, out)
	}
	t.Logf("channels list:\n%s", out)
	for _, name := range []string{"am", "chat", "pd", "push", "mail"} {
		if out, err := runCLI(t, "channels", "test", name, "-address", pc.url(f), "-token", adminToken); err != nil {
			t.Errorf("channels test %s: %v\n%s", name, err, out)
		}
	}

	key := pc.register(f, map[string]any{"name": "db-7", "hostname": "db-7.e2e", "labels": map[string]string{"env": "prod"}})
	stop := pc.beater(key, 300*time.Millisecond)
	pc.waitMachineOn(f, "db-7", "online", 20*time.Second)
	// Silence, then kill the leader: a new leader detects the outage and
	// notifies every channel once.
	stop()
	pc.kill(leader)
	rest := []int{}
	for i := range pc.procs {
		if i != leader {
			rest = append(rest, i)
		}
	}
	newLeader := pc.leaderAmong(rest, 20*time.Second)
	pc.waitMachineOn(newLeader, "db-7", "offline", notifyThreshold+30*time.Second)
	pc.eventsWhere(newLeader, 30*time.Second, "the offline delivered", settled(1))
	// Our offline makes the real Alertmanager fire to its receiver.
	waitFor(t, 30*time.Second, "alertmanager firing db-7", func() bool { return rec.amNotified("firing", "db-7") >= 1 })
	pc.restart(leader)

	stop = pc.beater(key, 300*time.Millisecond)
	defer stop()
	pc.waitMachineOn(newLeader, "db-7", "online", 20*time.Second)
	evs := pc.eventsWhere(newLeader, 30*time.Second, "offline and online delivered", settled(2))
	for _, ev := range evs {
		for _, d := range ev.Deliveries {
			if d.State != "delivered" {
				t.Errorf("%s to %s: %+v", ev.Type, d.Channel, d)
			}
		}
	}
	defer func() {
		if t.Failed() {
			rec.mu.Lock()
			t.Logf("alertmanager webhook got: %v", rec.reqs["/am-hook"])
			resp, err := http.Get(amURL + "/api/v2/alerts")
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				t.Logf("alertmanager holds: %s", b)
			}
			t.Logf("slack got: %v", rec.reqs["/slack/services/T/B/SECRET"])
			rec.mu.Unlock()
		}
	}()
	// Our online makes it send the resolved notification.
	waitFor(t, 30*time.Second, "alertmanager resolved db-7", func() bool { return rec.amNotified("resolved", "db-7") >= 1 })
	time.Sleep(2 * time.Second) // observation window for late duplicates
	checks := []struct {
		what string
		got  int
	}{
		{"alertmanager fired", rec.amNotified("firing", "db-7")},
		{"alertmanager resolved", rec.amNotified("resolved", "db-7")},
		{"slack offline", rec.count("/slack/services/T/B/SECRET", "db-7 is offline")},
		{"slack online", rec.count("/slack/services/T/B/SECRET", "db-7 is back online")},
		{"pagerduty trigger", rec.count("/pd/v2/enqueue", `"trigger"`, "db-7 is offline")},
		{"pagerduty resolve", rec.count("/pd/v2/enqueue", `"resolve"`, `lunasentri/machine/`)},
		{"ntfy offline", rec.count("/ntfy/ops", "Reason: no heartbeat")},
		{"email offline", box.count("Subject: [LunaSentri] db-7 is offline")},
		{"email online", box.count("Subject: [LunaSentri] db-7 is back online")},
	}
	for _, c := range checks {
		t.Logf("%-22s %d", c.what, c.got)
		if c.got != 1 {
			t.Errorf("%s: %d, want exactly 1", c.what, c.got)
		}
	}
}

// TestE2E_AlertmanagerRepostsKeepItFiring: with the channel's
// repeat_interval at 2s and group_window 1s the alert is valid for 9s; the
// leader's reminders
// re-post it, so the real Alertmanager keeps it firing well past 8s and
// sends no resolved notification until the machine really comes back.
func TestE2E_AlertmanagerRepostsKeepItFiring(t *testing.T) {
	rec := newRecorder(t)
	amURL := startRealAlertmanager(t, rec.srv.URL+"/am-hook")
	pc := newProcCluster(t, 3, []string{"-offline-threshold", notifyThreshold.String()})
	leader := pc.leader(30 * time.Second)
	f := pc.follower(leader)
	pc.notifyChannel(f, map[string]any{"type": "alertmanager", "name": "am", "url": amURL,
		"repeat_interval": "2s", "group_window": "1s", "group_after": 100})
	key := pc.register(f, map[string]any{"name": "cron-3"})
	stop := pc.beater(key, 300*time.Millisecond)
	pc.waitMachineOn(f, "cron-3", "online", 20*time.Second)
	stop()
	pc.waitMachineOn(f, "cron-3", "offline", notifyThreshold+20*time.Second)
	waitFor(t, 30*time.Second, "alertmanager firing cron-3", func() bool { return rec.amNotified("firing", "cron-3") >= 1 })
	firedAt := time.Now()
	// Three validity periods without a recovery: the alert must stay up.
	waitFor(t, 40*time.Second, "24s of re-posts", func() bool {
		if rec.amNotified("resolved", "cron-3") > 0 {
			evs, _ := pc.events(f)
			for _, ev := range evs {
				t.Logf("event %s %s at %s deliveries %+v", ev.ID, ev.Type, ev.OccurredAt.Format("15:04:05.000"), ev.Deliveries)
			}
			rec.mu.Lock()
			t.Logf("am hook: %v", rec.reqs["/am-hook"])
			rec.mu.Unlock()
			t.Fatalf("alertmanager resolved cron-3 after %s while it was still offline", time.Since(firedAt).Round(time.Second))
		}
		return time.Since(firedAt) > 24*time.Second
	})
	// Without re-posts Alertmanager would have resolved it after 9s.
	t.Logf("alertmanager kept cron-3 firing for %s (validity 9s); notifications: %d", time.Since(firedAt).Round(time.Second), rec.count("/am-hook"))
	stop = pc.beater(key, 300*time.Millisecond)
	defer stop()
	pc.waitMachineOn(f, "cron-3", "online", 20*time.Second)
	waitFor(t, 30*time.Second, "alertmanager resolved cron-3", func() bool { return rec.amNotified("resolved", "cron-3") >= 1 })
}
