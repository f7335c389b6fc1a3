package alertmanager_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lunasentri/lunasentri/notify"
	"github.com/lunasentri/lunasentri/notify/alertmanager"
)

type post struct {
	path, auth, ctype string
	alerts            []map[string]any
}

type fakeAM struct {
	srv    *httptest.Server
	mu     sync.Mutex
	posts  []post
	status int
}

func newFakeAM(t *testing.T, status int) *fakeAM {
	f := &fakeAM{status: status}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var alerts []map[string]any
		if err := json.Unmarshal(raw, &alerts); err != nil {
			t.Errorf("body is not a JSON list: %s", raw)
		}
		f.mu.Lock()
		f.posts = append(f.posts, post{r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("Content-Type"), alerts})
		f.mu.Unlock()
		w.WriteHeader(f.status)
		if f.status != 200 {
			io.WriteString(w, "no thanks")
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAM) got() []post {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]post(nil), f.posts...)
}

var (
	t0   = time.Date(2026, 11, 27, 8, 32, 5, 0, time.UTC)
	seen = time.Date(2026, 11, 27, 8, 30, 0, 0, time.UTC)
	now  = time.Date(2026, 11, 27, 8, 32, 6, 0, time.UTC)
)

func offline() notify.Event {
	return notify.Event{ID: "evt-1", Type: notify.EventOffline, OccurredAt: t0, Reason: notify.ReasonReported, Message: "disk full",
		Machine: notify.Machine{ID: "m-1", Name: "db-1", Hostname: "db-1.example", Status: "offline", LastSeen: &seen,
			Labels: map[string]string{"env": "prod", "app.kubernetes.io/name": "pg", "alertname": "sneaky", "team": "machine-team"}}}
}

func newNotifier(t *testing.T, o alertmanager.Options) *alertmanager.Notifier {
	t.Helper()
	if o.Now == nil {
		o.Now = func() time.Time { return now }
	}
	n, err := alertmanager.New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return n
}

func TestNotify_OfflineAlertShape(t *testing.T) {
	am := newFakeAM(t, 200)
	n := newNotifier(t, alertmanager.Options{URLs: []string{am.srv.URL + "/"}, Labels: map[string]string{"severity": "page", "team": "sre"},
		Username: "luna", Password: "s3cret-pass", GeneratorURL: "http://node-1:8080/ui/machines/db-1", Validity: 4 * time.Minute})
	if retryable, err := n.Notify(context.Background(), offline()); err != nil || retryable {
		t.Fatalf("Notify = %v, %v", retryable, err)
	}
	p := am.got()
	if len(p) != 1 || p[0].path != "/api/v2/alerts" || p[0].ctype != "application/json" || len(p[0].alerts) != 1 {
		t.Fatalf("posts %+v", p)
	}
	if !strings.HasPrefix(p[0].auth, "Basic ") {
		t.Errorf("auth %q", p[0].auth)
	}
	a := p[0].alerts[0]
	wantLabels := map[string]any{"alertname": "MachineOffline", "machine": "db-1", "env": "prod", "app_kubernetes_io_name": "pg",
		"exported_alertname": "sneaky", "team": "sre", "severity": "page"}
	if got := a["labels"].(map[string]any); !equal(got, wantLabels) {
		t.Errorf("labels %v\nwant %v", got, wantLabels)
	}
	wantAnn := map[string]any{"hostname": "db-1.example", "last_seen": "2026-11-27T08:30:00Z", "reason": "reported", "message": "disk full", "summary": "db-1 is offline"}
	if got := a["annotations"].(map[string]any); !equal(got, wantAnn) {
		t.Errorf("annotations %v\nwant %v", got, wantAnn)
	}
	if a["startsAt"] != "2026-11-27T08:32:05Z" || a["endsAt"] != "2026-11-27T08:36:06Z" || a["generatorURL"] != "http://node-1:8080/ui/machines/db-1" {
		t.Errorf("times/generator: %v", a)
	}
}

func equal(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range b {
		if a[k] != v {
			return false
		}
	}
	return true
}

func TestNotify_OnlineResolvesSameLabels(t *testing.T) {
	am := newFakeAM(t, 200)
	n := newNotifier(t, alertmanager.Options{URLs: []string{am.srv.URL}})
	off := offline()
	on := offline()
	on.ID, on.Type, on.OccurredAt, on.DownFor, on.Reason, on.Message = "evt-2", notify.EventOnline, t0.Add(10*time.Minute), 10*time.Minute, "", ""
	for _, ev := range []notify.Event{off, on} {
		if _, err := n.Notify(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	p := am.got()
	fire, res := p[0].alerts[0], p[1].alerts[0]
	if !equal(fire["labels"].(map[string]any), res["labels"].(map[string]any)) {
		t.Errorf("labels differ:\n%v\n%v", fire["labels"], res["labels"])
	}
	if res["startsAt"] != "2026-11-27T08:32:05Z" || res["endsAt"] != "2026-11-27T08:42:05Z" {
		t.Errorf("resolve times %v", res)
	}
	if fire["endsAt"] != "2026-11-27T08:36:06Z" { // default validity 4m
		t.Errorf("default validity: endsAt %v", fire["endsAt"])
	}
}

func TestNotify_ReminderRepostsWithFreshValidity(t *testing.T) {
	am := newFakeAM(t, 200)
	clock := now
	n := newNotifier(t, alertmanager.Options{URLs: []string{am.srv.URL}, Validity: 2 * time.Minute, Now: func() time.Time { return clock }})
	ev := offline()
	if _, err := n.Notify(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	clock = now.Add(time.Minute)
	ev.ID, ev.Reminder, ev.OccurredAt, ev.DownFor = "rem-1", 1, t0.Add(time.Minute), time.Minute
	if _, err := n.Notify(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	p := am.got()
	first, re := p[0].alerts[0], p[1].alerts[0]
	if !equal(first["labels"].(map[string]any), re["labels"].(map[string]any)) || re["startsAt"] != first["startsAt"] {
		t.Errorf("re-post is not the same alert: %v vs %v", first, re)
	}
	if first["endsAt"] != "2026-11-27T08:34:06Z" || re["endsAt"] != "2026-11-27T08:35:06Z" {
		t.Errorf("endsAt %v then %v", first["endsAt"], re["endsAt"])
	}
}

func TestNotifyDigest_OnePostAllAlerts(t *testing.T) {
	am := newFakeAM(t, 200)
	n := newNotifier(t, alertmanager.Options{URLs: []string{am.srv.URL}})
	d := notify.Digest{ID: "dig-1"}
	for _, name := range []string{"a", "b", "c"} {
		ev := offline()
		ev.Machine.Name = name
		d.Events = append(d.Events, ev)
	}
	d.Events[2].Type = notify.EventOnline
	if _, err := n.NotifyDigest(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	p := am.got()
	if len(p) != 1 || len(p[0].alerts) != 3 {
		t.Fatalf("posts %+v", p)
	}
	if _, err := n.NotifyDigest(context.Background(), notify.Digest{ID: "x"}); !errors.Is(err, alertmanager.ErrEmptyDigest) {
		t.Errorf("empty digest: %v", err)
	}
}

func TestNotify_HAEveryURL(t *testing.T) {
	a, b := newFakeAM(t, 200), newFakeAM(t, 200)
	n := newNotifier(t, alertmanager.Options{URLs: []string{a.srv.URL, b.srv.URL}})
	if _, err := n.Notify(context.Background(), offline()); err != nil {
		t.Fatal(err)
	}
	if len(a.got()) != 1 || len(b.got()) != 1 {
		t.Errorf("posts: %d and %d", len(a.got()), len(b.got()))
	}
}

func TestNotify_HAPartialFailureIsDelivered(t *testing.T) {
	a, b := newFakeAM(t, 200), newFakeAM(t, 503)
	n := newNotifier(t, alertmanager.Options{URLs: []string{a.srv.URL, b.srv.URL}})
	if retryable, err := n.Notify(context.Background(), offline()); err != nil || retryable {
		t.Errorf("one of two took it: %v, %v", retryable, err)
	}
}

func TestNotify_Classification(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + ln.Addr().String()
	ln.Close()
	tests := []struct {
		name      string
		statuses  []int
		dead      bool
		retryable bool
	}{
		{"400", []int{400}, false, false},
		{"503", []int{503}, false, true},
		{"429", []int{429}, false, true},
		{"400+503", []int{400, 503}, false, true},
		{"400+400", []int{400, 400}, false, false},
		{"connection refused", nil, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var urls []string
			for _, s := range tc.statuses {
				urls = append(urls, newFakeAM(t, s).srv.URL)
			}
			if tc.dead {
				urls = append(urls, "http://luna:hunter2-secret@"+strings.TrimPrefix(dead, "http://"))
			}
			n := newNotifier(t, alertmanager.Options{URLs: urls, Username: "u", Password: "hunter2-secret"})
			retryable, err := n.Notify(context.Background(), offline())
			if err == nil || retryable != tc.retryable {
				t.Fatalf("Notify = %v, %v; want retryable=%v", retryable, err, tc.retryable)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error leaks the password: %v", err)
			}
			t.Logf("error: %v", err)
		})
	}
}

func TestValidate_Errors(t *testing.T) {
	tests := []struct {
		name   string
		urls   []string
		labels map[string]string
		user   string
		pass   string
		want   string
	}{
		{"no url", nil, nil, "", "", "url (or urls) is required"},
		{"ftp", []string{"ftp://am"}, nil, "", "", "scheme must be http or https"},
		{"no host", []string{"http://"}, nil, "", "", "host is missing"},
		{"api path", []string{"http://am:9093/api/v2/alerts"}, nil, "", "", "without /api/v2/alerts"},
		{"dup", []string{"http://am:9093", "http://am:9093"}, nil, "", "", "urls[1] repeats"},
		{"bad label", []string{"http://am"}, map[string]string{"team-x": "a"}, "", "", "not a Prometheus label name"},
		{"reserved", []string{"http://am"}, map[string]string{"alertname": "a"}, "", "", "set by LunaSentri"},
		{"empty value", []string{"http://am"}, map[string]string{"a": ""}, "", "", "needs a value"},
		{"half auth", []string{"http://am"}, nil, "u", "", "both username and password"},
	}
	for _, tc := range tests {
		err := alertmanager.Validate(tc.urls, tc.labels, tc.user, tc.pass)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, alertmanager.ErrInvalidConfig) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	if err := alertmanager.Validate([]string{"http://am:9093", "https://am2:9093/prefix"}, map[string]string{"severity": "page"}, "u", "p"); err != nil {
		t.Errorf("valid: %v", err)
	}
}

func TestSanitizeLabelName(t *testing.T) {
	for in, want := range map[string]string{"env": "env", "app.kubernetes.io/name": "app_kubernetes_io_name", "9lives": "_9lives", "ünï": "_n_"} {
		if got := alertmanager.SanitizeLabelName(in); got != want {
			t.Errorf("%q → %q, want %q", in, got, want)
		}
	}
}

func TestNotify_TestAndFlapping(t *testing.T) {
	am := newFakeAM(t, 200)
	n := newNotifier(t, alertmanager.Options{URLs: []string{am.srv.URL}})
	fl := offline()
	fl.Type = notify.EventFlapping
	for _, ev := range []notify.Event{{Type: notify.EventTest, Machine: notify.Machine{Name: "lunasentri-test"}}, fl} {
		if _, err := n.Notify(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	p := am.got()
	if p[0].alerts[0]["labels"].(map[string]any)["alertname"] != "LunaSentriTest" || p[1].alerts[0]["labels"].(map[string]any)["alertname"] != "MachineFlapping" {
		t.Errorf("alertnames: %v / %v", p[0].alerts[0]["labels"], p[1].alerts[0]["labels"])
	}
	if _, err := n.Notify(context.Background(), notify.Event{Type: "machine.exploded"}); !errors.Is(err, alertmanager.ErrUnknownEventType) {
		t.Errorf("unknown: %v", err)
	}
}
