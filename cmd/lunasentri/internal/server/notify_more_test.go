package server

import (
	"bytes"
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

	"github.com/emersion/go-smtp"

	"github.com/lunasentri/lunasentri/fsm"
	"github.com/lunasentri/lunasentri/notify"
	"github.com/lunasentri/lunasentri/notify/alertmanager"
	"github.com/lunasentri/lunasentri/notify/email"
	"github.com/lunasentri/lunasentri/transport"
)

// Issue 15 in-process: the further channel types are validated through a
// follower, never show their secrets, pass `channels test`, and receive
// each transition once.

const (
	amPassword = "am-basic-pass-123"
	pdKey      = "PDROUTINGKEY0123456789abcdefABCD"
	ntfyToken  = "tk_ntfy_secret_123"
	slackPath  = "/slack/services/T000/B000/SLACKSECRETPATH"
)

// multiReceiver stands in for Alertmanager, Slack, PagerDuty and ntfy at
// once, keyed by path; it records what each got.
type multiReceiver struct {
	srv  *httptest.Server
	mu   sync.Mutex
	reqs map[string][]string // path → bodies
}

func newMultiReceiver(t *testing.T) *multiReceiver {
	m := &multiReceiver{reqs: map[string][]string{}}
	m.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		m.mu.Lock()
		m.reqs[r.URL.Path] = append(m.reqs[r.URL.Path], string(body))
		m.mu.Unlock()
		if r.URL.Path == "/pd/v2/enqueue" {
			w.WriteHeader(http.StatusAccepted)
			io.WriteString(w, `{"status":"success"}`)
		}
	}))
	t.Cleanup(m.srv.Close)
	return m
}

// count is how many requests path got whose body contains all of subs.
func (m *multiReceiver) count(path string, subs ...string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
outer:
	for _, b := range m.reqs[path] {
		for _, s := range subs {
			if !strings.Contains(b, s) {
				continue outer
			}
		}
		n++
	}
	return n
}

// mailbox is a go-smtp server backend that keeps every message.
type mailbox struct {
	mu    sync.Mutex
	mails []string
}

func (b *mailbox) NewSession(*smtp.Conn) (smtp.Session, error) { return &mailSession{b: b}, nil }

func (b *mailbox) count(subs ...string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
outer:
	for _, m := range b.mails {
		for _, s := range subs {
			if !strings.Contains(m, s) {
				continue outer
			}
		}
		n++
	}
	return n
}

type mailSession struct{ b *mailbox }

func (s *mailSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *mailSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *mailSession) Reset()                               {}
func (s *mailSession) Logout() error                        { return nil }
func (s *mailSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	s.b.mu.Lock()
	s.b.mails = append(s.b.mails, string(data))
	s.b.mu.Unlock()
	return err
}

func startMailbox(t *testing.T) (*mailbox, string) {
	box := &mailbox{}
	s := smtp.NewServer(box)
	s.Domain = "mail.test"
	s.ErrorLog = nopSMTPLog{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(ln) }()
	t.Cleanup(func() { s.Close(); <-done })
	return box, ln.Addr().String()
}

type nopSMTPLog struct{}

func (nopSMTPLog) Printf(string, ...interface{}) {}
func (nopSMTPLog) Println(...interface{})        {}

func TestMoreChannels_ValidateTestAndDeliverEachTransitionOnce(t *testing.T) {
	recv := newMultiReceiver(t)
	box, smtpAddr := startMailbox(t)
	tc := newTestCluster(t, 3, func(_ int, o *Options) {
		o.SMTPAddr, o.SMTPTLS, o.SMTPFrom = smtpAddr, "none", "lunasentri@test.example"
	})
	tc.leader()
	f := tc.follower()

	good := []map[string]any{
		{"type": "alertmanager", "name": "am", "url": recv.srv.URL + "/am", "labels": map[string]string{"severity": "page"},
			"basic_auth": map[string]string{"username": "luna", "password": amPassword}},
		{"type": "slack", "name": "chat", "url": recv.srv.URL + slackPath},
		{"type": "pagerduty", "name": "pd", "routing_key": pdKey, "url": recv.srv.URL + "/pd/v2/enqueue"},
		{"type": "ntfy", "name": "push", "url": recv.srv.URL + "/ntfy", "topic": "ops", "token": ntfyToken},
		{"type": "email", "name": "mail", "to": []string{"ops@test.example"}},
	}
	for _, ch := range good {
		var raw json.RawMessage
		if code := call(t, "POST", tc.url(f)+"/v1/channels", testToken, ch, &raw); code != http.StatusCreated {
			t.Fatalf("create %v: %d %s", ch["name"], code, raw)
		}
		for _, secret := range []string{amPassword, pdKey, ntfyToken, "SLACKSECRETPATH"} {
			if bytes.Contains(raw, []byte(secret)) {
				t.Errorf("create answer echoes a secret: %s", raw)
			}
		}
		t.Logf("created: %s", raw)
	}
	var list json.RawMessage
	call(t, "GET", tc.url(f)+"/v1/channels", testToken, nil, &list)
	for _, secret := range []string{amPassword, pdKey, ntfyToken, "SLACKSECRETPATH"} {
		if bytes.Contains(list, []byte(secret)) {
			t.Errorf("GET /v1/channels shows a secret: %s", list)
		}
	}
	// An alertmanager channel re-posts by default.
	waitFor(t, 5*time.Second, "am channel replicated", func() bool {
		ch, err := tc.nodes[f].FSM.Channel("am")
		return err == nil && ch.Policy.RepeatInterval == transport.DefaultAlertmanagerRepeat
	})

	// PATCH changes the further types' settings; secrets are replaced,
	// never read; an alertmanager channel keeps re-posting.
	const newKey = "PDNEWROUTINGKEY0123456789abcdefX"
	for _, p := range []struct {
		name string
		body map[string]any
		want int
	}{
		{"pd", map[string]any{"routing_key": newKey}, 200},
		{"am", map[string]any{"labels": map[string]string{"severity": "page", "team": "sre"}, "repeat_interval": "0s"}, 200},
		{"mail", map[string]any{"url": "http://x"}, 400},
		{"chat", map[string]any{"topic": "x"}, 400},
		{"push", map[string]any{"secret": "0123456789abcdef"}, 400},
	} {
		var raw json.RawMessage
		if code := call(t, "PATCH", tc.url(f)+"/v1/channels/"+p.name, testToken, p.body, &raw); code != p.want || bytes.Contains(raw, []byte(newKey)) {
			t.Errorf("PATCH %s %v = %d %s, want %d", p.name, p.body, code, raw, p.want)
		}
	}
	waitFor(t, 5*time.Second, "am patch replicated", func() bool {
		ch, err := tc.nodes[f].FSM.Channel("am")
		pd, _ := tc.nodes[f].FSM.Channel("pd")
		return err == nil && ch.Labels["team"] == "sre" && ch.Policy.RepeatInterval == transport.DefaultAlertmanagerRepeat && pd.RoutingKey == newKey
	})

	bad := []map[string]any{
		{"type": "alertmanager", "name": "b1"},
		{"type": "alertmanager", "name": "b2", "url": "http://am:9093", "labels": map[string]string{"alertname": "x"}},
		{"type": "alertmanager", "name": "b3", "url": "http://am:9093", "basic_auth": map[string]string{"username": "u"}},
		{"type": "alertmanager", "name": "b4", "url": "http://am:9093", "urls": []string{"http://am2:9093"}},
		{"type": "slack", "name": "b5", "url": "hooks.slack.com"},
		{"type": "slack", "name": "b6", "url": "https://hooks.slack.com/x", "secret": "0123456789abcdef"},
		{"type": "pagerduty", "name": "b7"},
		{"type": "pagerduty", "name": "b8", "routing_key": "short"},
		{"type": "ntfy", "name": "b9", "url": "https://ntfy.sh"},
		{"type": "ntfy", "name": "b10", "url": "https://ntfy.sh", "topic": "a/b"},
		{"type": "email", "name": "b11"},
		{"type": "email", "name": "b12", "to": []string{"not an address"}},
		{"type": "email", "name": "b13", "to": []string{"a@b.c"}, "chat_id": "1"},
		{"type": "telegram", "name": "b14", "chat_id": "1", "token": "x"},
	}
	for _, b := range bad {
		var e struct {
			Error string `json:"error"`
		}
		if code := call(t, "POST", tc.url(f)+"/v1/channels", testToken, b, &e); code != http.StatusBadRequest || e.Error == "" {
			t.Errorf("create %v = %d %q, want 400 with a JSON error", b, code, e.Error)
		} else {
			t.Logf("400 %v: %s", b["name"], e.Error)
		}
	}

	// channels test works for each type, through a follower.
	for _, name := range []string{"am", "chat", "pd", "push", "mail"} {
		var out map[string]any
		if code := call(t, "POST", tc.url(f)+"/v1/channels/"+name+"/test", testToken, nil, &out); code != http.StatusOK {
			t.Errorf("test %s: %d %v", name, code, out)
		}
	}
	if recv.count("/am/api/v2/alerts", "LunaSentriTest") != 1 || recv.count(slackPath, "LunaSentri test message") != 1 ||
		recv.count("/pd/v2/enqueue", `"trigger"`, newKey) != 1 || recv.count("/pd/v2/enqueue", `"resolve"`) != 1 ||
		recv.count("/ntfy/ops", "connected to LunaSentri") != 1 || box.count("Subject: [LunaSentri] LunaSentri test message") != 1 {
		t.Errorf("test messages: %v, mails %d", recv.reqs, box.count())
	}

	// One machine goes offline and comes back: each channel hears each
	// transition once.
	key := tc.register(f, "db-9", map[string]any{"hostname": "db-9.example", "labels": map[string]string{"env": "prod"}})
	stop := tc.beater(key, 200*time.Millisecond)
	waitFor(t, 15*time.Second, "db-9 online", func() bool { return tc.machine(f, "db-9").Status == "online" })
	stop()
	waitFor(t, 15*time.Second, "db-9 offline", func() bool { return tc.machine(f, "db-9").Status == "offline" })
	tc.settledEvents(f, 1, 20*time.Second)
	stop = tc.beater(key, 200*time.Millisecond)
	waitFor(t, 15*time.Second, "db-9 online again", func() bool { return tc.machine(f, "db-9").Status == "online" })
	stop()
	evs := tc.settledEvents(f, 2, 20*time.Second)
	for _, ev := range evs {
		for _, name := range []string{"am", "chat", "pd", "push", "mail"} {
			if d, ok := ev.delivery(name); !ok || d.State != "delivered" {
				t.Errorf("event %s channel %s: %+v", ev.Type, name, d)
			}
		}
	}
	checks := []struct {
		what string
		got  int
	}{
		{"am firing", recv.count("/am/api/v2/alerts", `"alertname":"MachineOffline"`, `"machine":"db-9"`, `"severity":"page"`, `"reason":"silence"`)},
		{"slack offline", recv.count(slackPath, "db-9 is offline")},
		{"slack online", recv.count(slackPath, "db-9 is back online")},
		{"pd trigger", recv.count("/pd/v2/enqueue", `"trigger"`, `db-9 is offline`)},
		{"ntfy offline", recv.count("/ntfy/ops", "Reason: no heartbeat")},
		{"mail offline", box.count("Subject: [LunaSentri] db-9 is offline")},
		{"mail online", box.count("Subject: [LunaSentri] db-9 is back online")},
	}
	for _, c := range checks {
		if c.got != 1 {
			t.Errorf("%s: %d requests, want 1", c.what, c.got)
		}
	}
	// The resolve: the same alert with endsAt; the pd resolve on the same key.
	if n := recv.count("/am/api/v2/alerts", `"machine":"db-9"`, `"summary":"db-9 is back online"`, `"endsAt"`); n != 1 {
		t.Errorf("am resolve: %d", n)
	}
	if n := recv.count("/pd/v2/enqueue", `"resolve"`, `lunasentri/machine/`); n != 1 {
		t.Errorf("pd resolve: %d", n)
	}
}

func TestSameChannel_EverySettingCounts(t *testing.T) {
	base := fsm.Channel{Name: "c", Type: fsm.ChannelAlertmanager, URLs: []string{"http://a"}, CreatedAt: time.Unix(1, 0)}
	changes := []func(*fsm.Channel){
		func(c *fsm.Channel) { c.URLs = []string{"http://b"} },
		func(c *fsm.Channel) { c.Labels = map[string]string{"a": "b"} },
		func(c *fsm.Channel) { c.Username, c.Password = "u", "p" },
		func(c *fsm.Channel) { c.RoutingKey = "k" },
		func(c *fsm.Channel) { c.Topic = "t" },
		func(c *fsm.Channel) { c.Token = "t" },
		func(c *fsm.Channel) { c.To = []string{"a@b.c"} },
		func(c *fsm.Channel) { c.From = "a@b.c" },
		func(c *fsm.Channel) { c.Policy.RepeatInterval = time.Hour },
		func(c *fsm.Channel) { c.CreatedAt = time.Unix(2, 0) },
	}
	for i, change := range changes {
		b := base
		change(&b)
		if sameChannel(base, b) {
			t.Errorf("change %d not noticed", i)
		}
	}
	if !sameChannel(base, base) {
		t.Error("equal channels differ")
	}
	if transport.DefaultAlertmanagerRepeat != alertmanager.DefaultRepeatInterval {
		t.Error("the alertmanager default repeat interval is written twice and differs")
	}
}

// TestMoreNotifier_EveryTypeSendsDigests: the dispatcher sends digests
// through notify.DigestNotifier; every channel type (and a broken channel)
// implements it.
func TestMoreNotifier_EveryTypeSendsDigests(t *testing.T) {
	c := newChannels(nil, nil, "test", channelsOptions{SMTP: email.Server{Addr: "127.0.0.1:25", TLS: "none", From: "a@b.c"}})
	for _, cfg := range []fsm.Channel{
		{Type: fsm.ChannelAlertmanager, URLs: []string{"http://am:9093"}},
		{Type: fsm.ChannelSlack, URL: "https://hooks.slack.com/services/T/B/X"},
		{Type: fsm.ChannelPagerDuty, RoutingKey: pdKey},
		{Type: fsm.ChannelNtfy, URL: "https://ntfy.sh", Topic: "t"},
		{Type: fsm.ChannelEmail, To: []string{"x@y.z"}},
		{Type: fsm.ChannelSlack, URL: "ftp://broken"},
	} {
		n := c.moreNotifier(cfg)
		if _, ok := n.(notify.DigestNotifier); !ok {
			t.Errorf("%s notifier %T is not a DigestNotifier", cfg.Type, n)
		}
	}
	none := newChannels(nil, nil, "test", channelsOptions{})
	if _, err := none.moreNotifier(fsm.Channel{Type: fsm.ChannelEmail, To: []string{"x@y.z"}, From: "a@b.c"}).Notify(context.Background(), notify.Event{}); !errors.Is(err, email.ErrNotConfigured) {
		t.Errorf("email without smtp: %v", err)
	}
}
