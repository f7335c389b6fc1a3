package ui_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lunasentri/lunasentri/fsm"
	"github.com/lunasentri/lunasentri/transport/ui"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	adminTok = "admin-token"
	readTok  = "read-token"
	writeTok = "write-token"
)

// fleet is a real FSM driven by commands, as a node's replica is, behind
// the ReadModel the server assembly would give the UI.
type fleet struct {
	t   testing.TB
	f   *fsm.FSM
	idx atomic.Uint64
	mu  sync.Mutex
	now time.Time // the leader's clock for commands
}

func newFleet(t testing.TB) *fleet {
	return &fleet{t: t, f: fsm.New(fsm.Options{}), now: time.Now().UTC().Add(-3 * time.Hour)}
}

func (fl *fleet) apply(typ fsm.CommandType, body any) *fsm.ApplyResult {
	fl.t.Helper()
	res := fl.f.ApplyBytes(fl.idx.Add(1), fsm.MustEncode(typ, body))
	if res == nil || res.Err != nil {
		fl.t.Fatalf("apply %d: %+v", typ, res)
	}
	return res
}

func id(name string) string { return "id-" + fmt.Sprintf("%x", name) }

func (fl *fleet) register(name string, labels map[string]string) {
	fl.t.Helper()
	fl.apply(fsm.CmdRegisterMachine, fsm.RegisterMachine{Machine: fsm.Machine{
		ID: id(name), Name: name, Hostname: "host-" + name + ".internal", Labels: labels,
		Status: fsm.StatusUnknown, KeyHash: fsm.HashKey("key-" + name), CreatedAt: fl.now, StatusChangedAt: fl.now,
	}})
}

// beat brings machines online (or back) at the fleet's clock.
func (fl *fleet) beat(at time.Time, names ...string) {
	fl.t.Helper()
	c := fsm.HeartbeatBatch{At: at, DefaultThreshold: time.Minute}
	for _, n := range names {
		c.Beats = append(c.Beats, fsm.Beat{ID: id(n), SeenAt: at.UnixNano()})
	}
	fl.apply(fsm.CmdHeartbeatBatch, c)
}

func (fl *fleet) offline(at time.Time, name string) []string {
	fl.t.Helper()
	m, err := fl.f.MachineByName(name)
	if err != nil {
		fl.t.Fatal(err)
	}
	return fl.apply(fsm.CmdMarkOffline, fsm.MarkOffline{At: at, Machines: []fsm.OfflineMark{{ID: m.ID, LastSeen: m.LastSeen}}}).Events
}

// model adapts the FSM to ui.ReadModel (the server package has the real one).
type model struct{ f *fsm.FSM }

func (m model) Machines() []fsm.Machine { return m.f.Machines("") }
func (m model) Machine(name string, now time.Time) (ui.MachineDetail, error) {
	mm, segs, err := m.f.MachineHistory(name, now)
	return ui.MachineDetail{Machine: mm, Segments: segs}, err
}
func (m model) Events(limit int) []fsm.Event    { return m.f.Events(limit) }
func (m model) Channels() []fsm.Channel         { return m.f.Channels() }
func (m model) DefaultThreshold() time.Duration { return time.Minute }
func (m model) Cluster() ui.ClusterView {
	return ui.ClusterView{NodeID: "node-a", RaftState: "Leader", LeaderID: "node-a", LeaderHTTPAddr: "127.0.0.1:1",
		Term: 3, CommitIndex: 10, AppliedIndex: 10, Ready: true,
		Members: []ui.Member{{ID: "node-a", HTTPAddr: "127.0.0.1:1", GossipStatus: "alive", Voter: true, Leader: true},
			{ID: "node-b", HTTPAddr: "127.0.0.1:2", GossipStatus: "failed", Voter: true}}}
}
func (m model) Version() string {
	s := m.f.Stats()
	return fmt.Sprintf("%d.%d.%d.%d.%d.%d", s.TransitionsOffline, s.TransitionsOnline, s.Events, s.PendingDeliveries,
		s.Machines[fsm.StatusOnline], len(s.Machines))
}

type roles map[string]string

func (r roles) Role(tok string) (string, bool) { role, ok := r[tok]; return role, ok }

// actions records what the dashboard asked for.
type actions struct {
	mu        sync.Mutex
	calls     []string
	available map[string]bool
	testErr   error
}

func (a *actions) Available(name string) bool { return a.available[name] }
func (a *actions) record(s string) {
	a.mu.Lock()
	a.calls = append(a.calls, s)
	a.mu.Unlock()
}
func (a *actions) Pause(_ context.Context, m string) error  { a.record("pause " + m); return nil }
func (a *actions) Resume(_ context.Context, m string) error { a.record("resume " + m); return nil }
func (a *actions) Silence(_ context.Context, m string, d time.Duration, _ string) error {
	a.record("silence " + m + " " + d.String())
	return nil
}
func (a *actions) TestChannel(_ context.Context, c string) error {
	a.record("test " + c)
	return a.testErr
}
func (a *actions) Calls() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.calls...)
}

type site struct {
	fl  *fleet
	ui  *ui.UI
	srv *httptest.Server
	act *actions
}

func newSite(t testing.TB, fl *fleet, mutate func(*ui.Options)) *site {
	t.Helper()
	act := &actions{available: map[string]bool{ui.ActionTestChannel: true, ui.ActionPause: true, ui.ActionSilence: true}}
	opts := ui.Options{
		Read:          model{fl.f},
		Auth:          roles{adminTok: ui.RoleAdmin, readTok: ui.RoleRead, writeTok: ui.RoleWrite},
		Actions:       act,
		SessionSecret: "cluster-secret",
		LivePoll:      50 * time.Millisecond,
	}
	if mutate != nil {
		mutate(&opts)
	}
	u, err := ui.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(u.Handler())
	t.Cleanup(srv.Close)
	return &site{fl: fl, ui: u, srv: srv, act: act}
}

type page struct {
	status int
	body   string
	header http.Header
	url    string
}

func do(t testing.TB, c *http.Client, method, u, token string, form url.Values) page {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return page{status: resp.StatusCode, body: string(b), header: resp.Header, url: resp.Request.URL.String()}
}

// noFollow is a client with a cookie jar that does not follow redirects.
func noFollow(t testing.TB) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t testing.TB, body string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no csrf field in page:\n%s", body)
	}
	return m[1]
}

// signIn signs a cookie client in through the form.
func (s *site) signIn(t testing.TB, c *http.Client, token string) {
	t.Helper()
	p := do(t, c, "GET", s.srv.URL+"/ui/login", "", nil)
	r := do(t, c, "POST", s.srv.URL+"/ui/login", "", url.Values{"token": {token}, "csrf": {csrfOf(t, p.body)}, "next": {"/ui/"}})
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/ui/" {
		t.Fatalf("sign in: %d %s %s", r.status, r.header.Get("Location"), r.body)
	}
}

func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
