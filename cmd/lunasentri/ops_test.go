package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeAPI mimics a node's HTTP API: it answers "METHOD /path" with a canned
// status and body and records the last request.
type fakeAPI struct {
	*httptest.Server
	mu      sync.Mutex
	answers map[string]answer
	req     *http.Request
	body    []byte
}

type answer struct {
	status int
	body   string
}

func newFakeAPI(t *testing.T, answers map[string]answer) *fakeAPI {
	f := &fakeAPI{answers: answers}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.req, f.body = r, body
		a, ok := f.answers[r.Method+" "+r.URL.Path]
		f.mu.Unlock()
		if !ok {
			a = answer{http.StatusNotFound, `{"error":"no route ` + r.Method + " " + r.URL.Path + `"}`}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		io.WriteString(w, a.body)
	}))
	t.Cleanup(f.Close)
	return f
}

// opsCLI is a cli pointed at f with an admin token in the environment.
func opsCLI(f *fakeAPI) *cli {
	c := testCLI(map[string]string{"LUNASENTRI_ADDR": f.URL, "LUNASENTRI_ADMIN_TOKEN": "admintok"})
	c.now = func() time.Time { return time.Date(2025, 1, 2, 3, 4, 17, 0, time.UTC) }
	return c
}

// check asserts the last request's method, path+query, bearer token and
// (if wantBody is not nil) JSON body.
func (f *fakeAPI) check(t *testing.T, method, target, token string, wantBody map[string]any) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.req == nil {
		t.Fatal("no request reached the server")
	}
	if f.req.Method != method || f.req.URL.RequestURI() != target {
		t.Errorf("request %s %s, want %s %s", f.req.Method, f.req.URL.RequestURI(), method, target)
	}
	wantAuth := ""
	if token != "" {
		wantAuth = "Bearer " + token
	}
	if got := f.req.Header.Get("Authorization"); got != wantAuth {
		t.Errorf("Authorization %q, want %q", got, wantAuth)
	}
	if wantBody == nil {
		if len(f.body) != 0 {
			t.Errorf("unexpected body %s", f.body)
		}
		return
	}
	if ct := f.req.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var got map[string]any
	if err := json.Unmarshal(f.body, &got); err != nil {
		t.Fatalf("body %q: %v", f.body, err)
	}
	if !reflect.DeepEqual(got, wantBody) {
		t.Errorf("body %v, want %v", got, wantBody)
	}
}

const machineJSON = `{"id":"m1","name":"web-1","hostname":"web-1.lan","description":"front","labels":{"role":"web","env":"prod"},
"status":"online","last_seen":"2025-01-02T03:04:05Z","status_changed_at":"2025-01-02T02:00:00Z","offline_threshold":"30s"}`

func TestMachinesRegister(t *testing.T) {
	f := newFakeAPI(t, map[string]answer{"POST /v1/machines": {201, `{"machine":` + machineJSON + `,"api_key":"ls_secretkey"}`}})
	r := runWith(t, opsCLI(f), "machines", "register", "web-1", "-hostname", "web-1.lan", "-description", "front",
		"-label", "env=prod", "-label", "role=web", "-offline-threshold", "30s")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	f.check(t, "POST", "/v1/machines", "admintok", map[string]any{
		"name": "web-1", "hostname": "web-1.lan", "description": "front",
		"labels": map[string]any{"env": "prod", "role": "web"}, "offline_threshold": "30s",
	})
	if r.stdout != "ls_secretkey\n" {
		t.Errorf("stdout %q, want the key alone", r.stdout)
	}
	if !strings.Contains(r.stderr, "shown only this once") {
		t.Errorf("stderr %q does not say the key is shown once", r.stderr)
	}
}

func TestMachinesRegister_MinimalAndErrors(t *testing.T) {
	f := newFakeAPI(t, map[string]answer{"POST /v1/machines": {409, `{"error":"machine \"web-1\" already exists"}`}})
	r := runWith(t, opsCLI(f), "machines", "register", "web-1")
	f.check(t, "POST", "/v1/machines", "admintok", map[string]any{"name": "web-1"})
	if r.code != exitFailure || r.stdout != "" {
		t.Errorf("exit %d stdout %q", r.code, r.stdout)
	}
	oneErrorLine(t, r, `409: machine "web-1" already exists`)

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"machines", "register"}, "machines register: missing NAME"},
		{[]string{"machines", "register", "a", "b"}, `machines register: unexpected argument "b"`},
		{[]string{"machines", "register", "a", "-offline-threshold", "soon"}, `invalid duration "soon" for -offline-threshold`},
		{[]string{"machines", "register", "a", "-label", "x"}, `machines register: invalid value "x" for flag -label: want key=value, got "x"`},
	} {
		r := runWith(t, opsCLI(f), tc.args...)
		if r.code != exitUsage {
			t.Errorf("%q: exit %d", tc.args, r.code)
		}
		oneErrorLine(t, r, tc.want)
	}
}

func TestMachinesList(t *testing.T) {
	never := `{"id":"m2","name":"db-1","hostname":"","labels":{},"status":"unknown","last_seen":null,"status_changed_at":null,"offline_threshold":120000000000}`
	f := newFakeAPI(t, map[string]answer{"GET /v1/machines": {200, `{"machines":[` + never + `,` + machineJSON + `]}`}})
	r := runWith(t, opsCLI(f), "machines", "list", "-status", "online")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	f.check(t, "GET", "/v1/machines?status=online", "admintok", nil)
	want := "NAME   STATUS   LAST SEEN  HOSTNAME   AGENT  LABELS\n" +
		"db-1   unknown  never      -          -      -\n" +
		"web-1  online   12s ago    web-1.lan  -      env=prod,role=web\n"
	if r.stdout != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", r.stdout, want)
	}

	r = runWith(t, opsCLI(f), "machines", "list", "-json")
	var raw struct{ Machines []map[string]any }
	if err := json.Unmarshal([]byte(r.stdout), &raw); err != nil || len(raw.Machines) != 2 {
		t.Errorf("-json output %q: %v", r.stdout, err)
	}

	r = runWith(t, opsCLI(f), "machines", "list", "-status", "sleeping")
	if r.code != exitUsage {
		t.Errorf("bad status: exit %d", r.code)
	}
	oneErrorLine(t, r, `machines list: invalid -status "sleeping" (want online, offline, unknown or paused)`)
}

func TestMachinesShow(t *testing.T) {
	f := newFakeAPI(t, map[string]answer{"GET /v1/machines/web 1": {200, `{"machine":` + machineJSON + `}`}})
	r := runWith(t, opsCLI(f), "machines", "show", "web 1", "-address", f.URL+"/")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	f.check(t, "GET", "/v1/machines/web%201", "admintok", nil)
	for _, s := range []string{"Name:              web-1", "Status:            online since 2025-01-02T02:00:00Z",
		"Last seen:         2025-01-02T03:04:05Z (12s ago)", "Labels:            env=prod,role=web", "Offline threshold: 30s"} {
		if !strings.Contains(r.stdout, s+"\n") {
			t.Errorf("output lacks %q:\n%s", s, r.stdout)
		}
	}

	r = runWith(t, opsCLI(f), "machines", "show", "nope")
	if r.code != exitFailure {
		t.Errorf("exit %d", r.code)
	}
	oneErrorLine(t, r, "404: no route GET /v1/machines/nope")
}

func TestMachinesDeleteAndRotate(t *testing.T) {
	f := newFakeAPI(t, map[string]answer{
		"DELETE /v1/machines/web-1":          {204, ""},
		"POST /v1/machines/web-1/rotate-key": {200, `{"api_key":"ls_new"}`},
	})
	r := runWith(t, opsCLI(f), "machines", "delete", "web-1")
	f.check(t, "DELETE", "/v1/machines/web-1", "admintok", nil)
	if r.code != 0 || r.stdout != "Deleted machine web-1.\n" {
		t.Errorf("delete: %+v", r)
	}
	r = runWith(t, opsCLI(f), "machines", "rotate-key", "web-1")
	f.check(t, "POST", "/v1/machines/web-1/rotate-key", "admintok", nil)
	if r.code != 0 || r.stdout != "ls_new\n" || !strings.Contains(r.stderr, "old key no longer works") {
		t.Errorf("rotate-key: %+v", r)
	}
}

func TestOps_TokenAndAddress(t *testing.T) {
	f := newFakeAPI(t, map[string]answer{"GET /v1/machines": {200, `{"machines":[]}`}})
	// -token and -address win over the environment.
	c := testCLI(map[string]string{"LUNASENTRI_ADDR": "http://127.0.0.1:1", "LUNASENTRI_ADMIN_TOKEN": "envtok"})
	r := runWith(t, c, "machines", "list", "-address", strings.TrimPrefix(f.URL, "http://"), "-token", "flagtok")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	f.check(t, "GET", "/v1/machines", "flagtok", nil)

	r = runWith(t, testCLI(map[string]string{"LUNASENTRI_ADDR": f.URL}), "machines", "list")
	if r.code != exitUsage {
		t.Errorf("no token: exit %d", r.code)
	}
	oneErrorLine(t, r, "-token (or LUNASENTRI_ADMIN_TOKEN) is required")

	f.mu.Lock()
	f.answers["GET /v1/machines"] = answer{401, `{"error":"invalid admin token"}`}
	f.mu.Unlock()
	r = runWith(t, opsCLI(f), "machines", "list")
	if r.code != exitFailure {
		t.Errorf("401: exit %d", r.code)
	}
	oneErrorLine(t, r, "401: invalid admin token")

	// A node that is down is a failure, not a usage error.
	f.Close()
	r = runWith(t, opsCLI(f), "machines", "list")
	if r.code != exitFailure || !strings.HasPrefix(r.stderr, "lunasentri: ") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("server down: %+v", r)
	}
}

func TestEventsAndStatus(t *testing.T) {
	f := newFakeAPI(t, map[string]answer{
		"GET /v1/events": {200, `{"events":[{"id":"ev1","type":"machine.offline","occurred_at":"2025-01-02T03:00:00Z",
			"machine":` + machineJSON + `,"deliveries":[{"channel":"tg","state":"failed","attempts":5,"last_error":"x"},{"channel":"ops","state":"delivered","attempts":1}]}]}`},
		"GET /v1/status": {200, `{"node_id":"node1","raft_state":"Leader","leader_id":"node1","leader_http_addr":"127.0.0.1:8081","term":3,"commit_index":12345678901,"applied_index":12345678901}`},
	})
	r := runWith(t, opsCLI(f), "events", "-limit", "5")
	f.check(t, "GET", "/v1/events?limit=5", "admintok", nil)
	want := "TIME                  TYPE             MACHINE  DELIVERIES                  REASON  ID\n" +
		"2025-01-02T03:00:00Z  machine.offline  web-1    ops:delivered,tg:failed(5)  -       ev1\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("events: exit %d\n%s\nwant\n%s", r.code, r.stdout, want)
	}

	// status is open: it works without a token and sends none.
	c := testCLI(map[string]string{"LUNASENTRI_ADDR": f.URL})
	r = runWith(t, c, "status")
	f.check(t, "GET", "/v1/status", "", nil)
	for _, s := range []string{"Node:          node1", "Raft state:    Leader", "Leader:        node1 (127.0.0.1:8081)", "Commit index:  12345678901"} {
		if !strings.Contains(r.stdout, s+"\n") {
			t.Errorf("status output lacks %q:\n%s", s, r.stdout)
		}
	}
}

func TestChannels(t *testing.T) {
	f := newFakeAPI(t, map[string]answer{
		"POST /v1/channels":           {201, `{"channel":{"type":"webhook","name":"ops"}}`},
		"GET /v1/channels":            {200, `{"channels":[{"type":"webhook","name":"ops","url":"https://hooks.example/x","match":{"env":"prod"}},{"type":"telegram","name":"tg","chat_id":-100123}]}`},
		"DELETE /v1/channels/ops":     {204, ""},
		"POST /v1/channels/ops/test":  {200, `{}`},
		"POST /v1/channels/down/test": {502, `{"error":"receiver answered 500"}`},
	})
	r := runWith(t, opsCLI(f), "channels", "add", "webhook", "ops", "-url", "https://hooks.example/x", "-secret", "s3", "-match", "env=prod")
	f.check(t, "POST", "/v1/channels", "admintok", map[string]any{
		"type": "webhook", "name": "ops", "url": "https://hooks.example/x", "secret": "s3", "match": map[string]any{"env": "prod"},
	})
	if r.code != 0 || r.stdout != "Added webhook channel ops.\n" {
		t.Errorf("add webhook: %+v", r)
	}

	r = runWith(t, opsCLI(f), "channels", "add", "telegram", "tg", "-chat-id", "-100123")
	f.check(t, "POST", "/v1/channels", "admintok", map[string]any{"type": "telegram", "name": "tg", "chat_id": "-100123"})
	if r.code != 0 {
		t.Errorf("add telegram: %+v", r)
	}

	r = runWith(t, opsCLI(f), "channels", "list")
	want := "NAME  TYPE      TARGET                   MATCH\n" +
		"ops   webhook   https://hooks.example/x  env=prod\n" +
		"tg    telegram  chat -100123             -\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("list:\n%s\nwant\n%s", r.stdout, want)
	}

	r = runWith(t, opsCLI(f), "channels", "delete", "ops")
	f.check(t, "DELETE", "/v1/channels/ops", "admintok", nil)
	if r.code != 0 || r.stdout != "Deleted channel ops.\n" {
		t.Errorf("delete: %+v", r)
	}

	r = runWith(t, opsCLI(f), "channels", "test", "ops")
	f.check(t, "POST", "/v1/channels/ops/test", "admintok", nil)
	if r.code != 0 || r.stdout != "Test message delivered to channel ops.\n" {
		t.Errorf("test: %+v", r)
	}
	r = runWith(t, opsCLI(f), "channels", "test", "down")
	if r.code != exitFailure {
		t.Errorf("test 502: exit %d", r.code)
	}
	oneErrorLine(t, r, "502: receiver answered 500")

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"channels", "add", "webhook", "ops", "-secret", "s"}, "channels add webhook: -url is required"},
		{[]string{"channels", "add", "webhook", "ops", "-url", "https://x"}, "channels add webhook: -secret is required"},
		{[]string{"channels", "add", "webhook", "ops", "-url", "x", "-secret", "s"}, `channels add webhook: invalid -url "x" (want http:// or https://)`},
		{[]string{"channels", "add", "telegram", "tg"}, "channels add telegram: -chat-id is required"},
		{[]string{"channels", "add", "telegram", "-chat-id", "1"}, "channels add telegram: missing NAME"},
		{[]string{"channels", "add", "sms", "x"}, "channels add: want a type: webhook, telegram, alertmanager, slack, pagerduty, ntfy or email"},
		{[]string{"channels", "frob"}, `channels: unknown subcommand "frob" (list, add, delete, test)`},
	} {
		r := runWith(t, opsCLI(f), tc.args...)
		if r.code != exitUsage {
			t.Errorf("%q: exit %d", tc.args, r.code)
		}
		oneErrorLine(t, r, tc.want)
	}
}

func TestMembers(t *testing.T) {
	f := newFakeAPI(t, map[string]answer{"GET /v1/cluster/members": {200,
		`{"members":[{"id":"node1","http_addr":"127.0.0.1:8081","raft_addr":"127.0.0.1:8311","gossip_status":"alive","voter":true,"leader":true}]}`}})
	r := runWith(t, opsCLI(f), "members")
	f.check(t, "GET", "/v1/cluster/members", "admintok", nil)
	want := "ID     HTTP            RAFT            GOSSIP  VOTER  LEADER\n" +
		"node1  127.0.0.1:8081  127.0.0.1:8311  alive   yes    yes\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("members:\n%s\nwant\n%s", r.stdout, want)
	}
}
