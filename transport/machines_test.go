package transport_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lunasentri/lunasentri/fsm"
	"github.com/lunasentri/lunasentri/transport"
)

// machineFields is a machine's JSON shape in docs/api.md; created_at may be added.
// "agent" is the second wave's (issue 13).
var machineFields = []string{"id", "name", "hostname", "description", "labels", "status",
	"last_seen", "status_changed_at", "offline_threshold", "flapping", "agent"}

// optionalMachineFields appear only when set (docs/api.md second wave).
var optionalMachineFields = []string{"created_at", "reason", "message"}

func checkMachineShape(t testing.TB, v any) map[string]any {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("machine is %T, want an object", v)
	}
	for _, k := range machineFields {
		if _, ok := m[k]; !ok {
			t.Errorf("machine lacks %q: %v", k, m)
		}
	}
	for k := range m {
		if !slices.Contains(machineFields, k) && !slices.Contains(optionalMachineFields, k) {
			t.Errorf("machine has unexpected field %q", k)
		}
	}
	if _, ok := m["labels"].(map[string]any); !ok {
		t.Errorf("labels = %v, want an object", m["labels"])
	}
	for _, k := range []string{"last_seen", "status_changed_at", "created_at"} {
		if s, ok := m[k].(string); ok {
			if ts, err := time.Parse(time.RFC3339Nano, s); err != nil || ts.Location() != time.UTC {
				t.Errorf("%s = %q is not RFC 3339 UTC", k, s)
			}
		}
	}
	return m
}

func TestMachines_RegisterGetListDeleteRoundTrip(t *testing.T) {
	n := newNode(t, true, nil)
	r := n.admin(t, "POST", "/v1/machines",
		`{"name":"web-1","hostname":"web-1.example","description":"front","labels":{"env":"prod","role":"web"},"offline_threshold":"90s"}`)
	if r.status != http.StatusCreated {
		t.Fatalf("register: %d %s", r.status, r.raw)
	}
	if len(r.body) != 2 {
		t.Errorf("register answer has fields %v, want machine and api_key", r.body)
	}
	key, _ := r.body["api_key"].(string)
	if !strings.HasPrefix(key, "lsk_") || len(key) < 40 {
		t.Errorf("api_key = %q", key)
	}
	m := checkMachineShape(t, r.body["machine"])
	if m["name"] != "web-1" || m["hostname"] != "web-1.example" || m["description"] != "front" {
		t.Errorf("machine = %v", m)
	}
	if m["status"] != "unknown" || m["last_seen"] != nil {
		t.Errorf("new machine: status %v last_seen %v, want unknown and null", m["status"], m["last_seen"])
	}
	if m["offline_threshold"] != "1m30s" {
		t.Errorf("offline_threshold = %v, want 1m30s", m["offline_threshold"])
	}
	if labels := m["labels"].(map[string]any); labels["env"] != "prod" || labels["role"] != "web" {
		t.Errorf("labels = %v", labels)
	}
	if strings.Contains(string(r.raw), "key_hash") {
		t.Errorf("answer leaks the key hash: %s", r.raw)
	}
	if id, ok := n.fsm.Authenticate(key); !ok || id != m["id"] {
		t.Errorf("returned key does not authenticate as the machine (%q, %v)", id, ok)
	}

	// A number of seconds works as well as a duration string.
	r = n.admin(t, "POST", "/v1/machines", `{"name":"db-1","offline_threshold":90}`)
	if r.status != 201 || r.body["machine"].(map[string]any)["offline_threshold"] != "1m30s" {
		t.Fatalf("register with 90: %d %s", r.status, r.raw)
	}
	if got := machine(t, n.fsm, "db-1").OfflineThreshold; got != 90*time.Second {
		t.Errorf("db-1 threshold in FSM = %s", got)
	}
	r = n.admin(t, "POST", "/v1/machines", `{"name":"app-1"}`)
	if r.status != 201 || r.body["machine"].(map[string]any)["offline_threshold"] != "2m0s" {
		t.Fatalf("register without threshold: %d %s", r.status, r.raw)
	}
	wantJSONError(t, n.admin(t, "POST", "/v1/machines", `{"name":"app-1"}`), http.StatusConflict)

	// Bring db-1 online so the status filter has something to tell apart.
	_, _, err := n.cons.Apply(context.Background(), fsm.MustEncode(fsm.CmdHeartbeatBatch, fsm.HeartbeatBatch{
		At: time.Now().UTC(), DefaultThreshold: time.Minute,
		Beats: []fsm.Beat{{ID: machine(t, n.fsm, "db-1").ID, SeenAt: time.Now().UnixNano()}},
	}))
	if err != nil {
		t.Fatal(err)
	}

	r = n.admin(t, "GET", "/v1/machines", "")
	if got := names(t, r); !slices.Equal(got, []string{"app-1", "db-1", "web-1"}) {
		t.Errorf("list = %v, want sorted by name", got)
	}
	for status, want := range map[string][]string{
		"online": {"db-1"}, "unknown": {"app-1", "web-1"}, "offline": {},
	} {
		r := n.admin(t, "GET", "/v1/machines?status="+status, "")
		if got := names(t, r); !slices.Equal(got, want) {
			t.Errorf("status=%s: %v, want %v", status, got, want)
		}
	}

	r = n.admin(t, "GET", "/v1/machines/db-1", "")
	if r.status != 200 {
		t.Fatalf("get: %d", r.status)
	}
	m = checkMachineShape(t, r.body["machine"])
	if m["status"] != "online" || m["last_seen"] == nil {
		t.Errorf("db-1 = %v, want online with a last_seen", m)
	}
	wantJSONError(t, n.admin(t, "GET", "/v1/machines/nope", ""), http.StatusNotFound)

	if r := n.admin(t, "DELETE", "/v1/machines/web-1", ""); r.status != http.StatusNoContent || len(r.raw) != 0 {
		t.Errorf("delete: %d %q", r.status, r.raw)
	}
	wantJSONError(t, n.admin(t, "GET", "/v1/machines/web-1", ""), http.StatusNotFound)
	wantJSONError(t, n.admin(t, "DELETE", "/v1/machines/web-1", ""), http.StatusNotFound)
	if _, ok := n.fsm.Authenticate(key); ok {
		t.Errorf("a deleted machine's key still authenticates")
	}
}

func names(t testing.TB, r reply) []string {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("list: %d %s", r.status, r.raw)
	}
	list, ok := r.body["machines"].([]any)
	if !ok {
		t.Fatalf("machines = %v, want an array (never null)", r.body["machines"])
	}
	out := []string{}
	for _, v := range list {
		out = append(out, checkMachineShape(t, v)["name"].(string))
	}
	return out
}

func TestMachines_RotateKeyReturnsAWorkingNewKey(t *testing.T) {
	n := newNode(t, true, nil)
	r := n.admin(t, "POST", "/v1/machines", `{"name":"m1"}`)
	oldKey := r.body["api_key"].(string)
	r = n.admin(t, "POST", "/v1/machines/m1/rotate-key", "")
	if r.status != 200 || len(r.body) != 1 {
		t.Fatalf("rotate: %d %s", r.status, r.raw)
	}
	newKey := r.body["api_key"].(string)
	if newKey == oldKey || !strings.HasPrefix(newKey, "lsk_") {
		t.Fatalf("new key %q", newKey)
	}
	if _, ok := n.fsm.Authenticate(oldKey); ok {
		t.Errorf("old key still authenticates")
	}
	if id, ok := n.fsm.Authenticate(newKey); !ok || id != machine(t, n.fsm, "m1").ID {
		t.Errorf("new key does not authenticate m1")
	}
}

func TestMachines_LimitAndClusterTroubleAreJSONErrors(t *testing.T) {
	n := newNodeFSM(t, true, fsm.Options{MaxMachines: 1}, nil)
	if r := n.admin(t, "POST", "/v1/machines", `{"name":"m1"}`); r.status != 201 {
		t.Fatalf("first: %d", r.status)
	}
	wantJSONError(t, n.admin(t, "POST", "/v1/machines", `{"name":"m2"}`), http.StatusConflict)

	n.cons.setApplyErr(errors.New("fake: no quorum"))
	before := snap(n.fsm)
	wantJSONError(t, n.admin(t, "DELETE", "/v1/machines/m1", ""), http.StatusServiceUnavailable)
	if after := snap(n.fsm); after.stats.Machines[fsm.StatusUnknown] != before.stats.Machines[fsm.StatusUnknown] {
		t.Errorf("failed delete changed the FSM")
	}
}

func TestEvents_NewestFirstWithAPIFields(t *testing.T) {
	n := newNode(t, true, nil)
	id, _ := n.register(t, "m1")
	if r := n.admin(t, "POST", "/v1/channels", `{"type":"telegram","name":"ops","chat_id":"12345"}`); r.status != 201 {
		t.Fatalf("channel: %d %s", r.status, r.raw)
	}
	t1 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	apply := func(typ fsm.CommandType, body any) {
		t.Helper()
		res, _, err := n.cons.Apply(context.Background(), fsm.MustEncode(typ, body))
		if err != nil || res.(*fsm.ApplyResult).Err != nil {
			t.Fatalf("apply %d: %v %v", typ, err, res)
		}
	}
	apply(fsm.CmdHeartbeatBatch, fsm.HeartbeatBatch{At: t1, DefaultThreshold: time.Minute,
		Beats: []fsm.Beat{{ID: id, SeenAt: t1.UnixNano()}}})
	apply(fsm.CmdMarkOffline, fsm.MarkOffline{At: t1.Add(2 * time.Minute),
		Machines: []fsm.OfflineMark{{ID: id, LastSeen: t1}}})
	apply(fsm.CmdHeartbeatBatch, fsm.HeartbeatBatch{At: t1.Add(3 * time.Minute), DefaultThreshold: time.Minute,
		Beats: []fsm.Beat{{ID: id, SeenAt: t1.Add(3 * time.Minute).UnixNano()}}})

	r := n.admin(t, "GET", "/v1/events", "")
	if r.status != 200 {
		t.Fatalf("events: %d", r.status)
	}
	evs := r.body["events"].([]any)
	if len(evs) != 2 {
		t.Fatalf("%d events, want 2: %s", len(evs), r.raw)
	}
	wantTypes := []string{"machine.online", "machine.offline"} // newest first
	for i, v := range evs {
		ev := v.(map[string]any)
		for _, k := range []string{"id", "type", "occurred_at", "machine", "deliveries"} {
			if _, ok := ev[k]; !ok {
				t.Errorf("event lacks %q: %v", k, ev)
			}
		}
		if ev["type"] != wantTypes[i] {
			t.Errorf("event %d type %v, want %s", i, ev["type"], wantTypes[i])
		}
		if _, err := time.Parse(time.RFC3339, ev["occurred_at"].(string)); err != nil {
			t.Errorf("occurred_at: %v", err)
		}
		checkMachineShape(t, ev["machine"])
		ds := ev["deliveries"].([]any)
		if len(ds) != 1 {
			t.Fatalf("deliveries = %v", ds)
		}
		d := ds[0].(map[string]any)
		for _, k := range []string{"channel", "state", "attempts", "last_error"} {
			if _, ok := d[k]; !ok {
				t.Errorf("delivery lacks %q: %v", k, d)
			}
		}
		if d["channel"] != "ops" || d["state"] != "pending" {
			t.Errorf("delivery = %v", d)
		}
	}
	r = n.admin(t, "GET", "/v1/events?limit=1", "")
	if evs := r.body["events"].([]any); len(evs) != 1 || evs[0].(map[string]any)["type"] != "machine.online" {
		t.Errorf("limit=1 gave %s", r.raw)
	}
	empty := newNode(t, true, nil)
	if r := empty.admin(t, "GET", "/v1/events", ""); string(r.raw) != "{\"events\":[]}\n" {
		t.Errorf("no events: %q, want an empty array", r.raw)
	}
}

func TestStatus_OpenEndpoints(t *testing.T) {
	n := newNode(t, true, func(o *transport.Options) {
		o.Metrics = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; version=0.0.4")
			_, _ = w.Write([]byte("lunasentri_raft_leader 1\n"))
		})
	})
	r := call(t, "GET", n.srv.URL+"/v1/status", "", "")
	if r.status != 200 {
		t.Fatalf("status: %d", r.status)
	}
	for _, k := range []string{"node_id", "raft_state", "leader_id", "leader_http_addr", "term", "commit_index", "applied_index"} {
		if _, ok := r.body[k]; !ok {
			t.Errorf("/v1/status lacks %q: %s", k, r.raw)
		}
	}
	if r.body["raft_state"] != "Leader" || r.body["leader_http_addr"] != n.addr {
		t.Errorf("/v1/status = %s", r.raw)
	}
	if r := call(t, "GET", n.srv.URL+"/healthz", "", ""); r.status != 200 {
		t.Errorf("/healthz = %d", r.status)
	}
	if r := call(t, "GET", n.srv.URL+"/readyz", "", ""); r.status != 200 {
		t.Errorf("/readyz = %d while ready", r.status)
	}
	n.cons.ready.Store(false)
	if r := call(t, "GET", n.srv.URL+"/readyz", "", ""); r.status != 503 || r.body["error"] == "" {
		t.Errorf("/readyz = %d %s while not ready, want 503 with a reason", r.status, r.raw)
	}
	resp, err := http.Get(n.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Errorf("/metrics = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}

	wantJSONError(t, call(t, "GET", n.srv.URL+"/v1/cluster/members", "", ""), http.StatusUnauthorized)
	r = n.admin(t, "GET", "/v1/cluster/members", "")
	members, _ := r.body["members"].([]any)
	if r.status != 200 || len(members) != 1 {
		t.Fatalf("members: %d %s", r.status, r.raw)
	}
	for _, k := range []string{"id", "http_addr", "raft_addr", "gossip_status", "voter", "leader"} {
		if _, ok := members[0].(map[string]any)[k]; !ok {
			t.Errorf("member lacks %q", k)
		}
	}
}
