package transport_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/lunasentri/lunasentri/fsm"
	"github.com/lunasentri/lunasentri/transport"
)

// syncBuffer is a log sink the test can read while handlers write.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// createToken makes a token through the API and returns its secret.
func createToken(t *testing.T, n *testNode, name, role string) (id, secret string) {
	t.Helper()
	r := n.admin(t, http.MethodPost, "/v1/tokens", `{"name":"`+name+`","role":"`+role+`","expires_in":"24h"}`)
	if r.status != http.StatusCreated {
		t.Fatalf("create token %s: %d %s", name, r.status, r.raw)
	}
	tok := r.body["token"].(map[string]any)
	if tok["role"] != role || tok["name"] != name || tok["expires_at"] == nil {
		t.Fatalf("token view %v", tok)
	}
	return tok["id"].(string), r.body["secret"].(string)
}

func TestTokens_RolesGate401And403(t *testing.T) {
	logs := &syncBuffer{}
	n := newNode(t, true, func(o *transport.Options) {
		o.Logger = hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Info})
	})
	_, readSecret := createToken(t, n, "wallboard", fsm.RoleRead)
	_, writeSecret := createToken(t, n, "ci", fsm.RoleWrite)
	adminID, adminSecret := createToken(t, n, "ops", fsm.RoleAdmin)

	// An expired token, stamped directly (the API's minimum is a minute).
	past := time.Now().Add(-time.Hour).UTC()
	res, _, _ := n.cons.Apply(context.Background(), fsm.MustEncode(fsm.CmdCreateToken, fsm.CreateToken{Token: fsm.Token{
		ID: "tok-old", Name: "old", Role: fsm.RoleAdmin, Hash: fsm.HashKey("lst_expired"), CreatedAt: past.Add(-time.Hour), ExpiresAt: past,
	}}))
	if err := res.(*fsm.ApplyResult).Err; err != nil {
		t.Fatal(err)
	}

	type probe struct {
		method, path, body string
	}
	readOnly := probe{"GET", "/v1/machines", ""}
	members := probe{"GET", "/v1/cluster/members", ""}
	write := probe{"POST", "/v1/machines", `{"name":"m-%s"}`}
	tokens := probe{"GET", "/v1/tokens", ""}
	snapshot := probe{"GET", "/v1/snapshot", ""}
	removePeer := probe{"POST", "/v1/cluster/raft/remove-peer", `{"id":"x"}`}
	cases := []struct {
		who    string
		secret string
		p      probe
		want   int
	}{
		{"read", readSecret, readOnly, 200},
		{"read", readSecret, members, 200},
		{"read", readSecret, write, 403},
		{"read", readSecret, tokens, 403},
		{"write", writeSecret, readOnly, 200},
		{"write", writeSecret, write, 201},
		{"write", writeSecret, tokens, 403},
		{"write", writeSecret, snapshot, 403},
		{"write", writeSecret, removePeer, 403},
		{"admin", adminSecret, tokens, 200},
		{"admin", adminSecret, write, 201},
		{"bootstrap", adminToken, tokens, 200},
		{"unknown", "lst_nope", readOnly, 401},
		{"expired", "lst_expired", readOnly, 401},
		{"none", "", readOnly, 401},
	}
	for i, c := range cases {
		body := c.p.body
		if strings.Contains(body, "%s") {
			body = strings.Replace(body, "%s", c.who+string(rune('a'+i)), 1)
		}
		auth := ""
		if c.secret != "" {
			auth = "Bearer " + c.secret
		}
		r := call(t, c.p.method, n.srv.URL+c.p.path, auth, body)
		if r.status != c.want {
			t.Errorf("%s %s %s: %d, want %d (%s)", c.who, c.p.method, c.p.path, r.status, c.want, r.raw)
		}
		if c.want >= 400 {
			wantJSONError(t, r, c.want)
		}
	}
	// The list never shows a secret or a hash.
	r := n.admin(t, "GET", "/v1/tokens", "")
	for _, s := range []string{readSecret, writeSecret, adminSecret, "hash"} {
		if strings.Contains(string(r.raw), s) {
			t.Fatalf("token list shows %q: %s", s, r.raw)
		}
	}
	// Revoked: 401 at once.
	if r := n.admin(t, "DELETE", "/v1/tokens/"+adminID, ""); r.status != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", r.status, r.raw)
	}
	if r := call(t, "GET", n.srv.URL+"/v1/tokens", "Bearer "+adminSecret, ""); r.status != 401 {
		t.Fatalf("revoked token: %d", r.status)
	}
	wantJSONError(t, n.admin(t, "DELETE", "/v1/tokens/"+adminID, ""), 404)

	// Every write left one audit line with the token's name and never a secret.
	out := logs.String()
	if !strings.Contains(out, "audit") || !strings.Contains(out, "token=ci") || !strings.Contains(out, "token=bootstrap") {
		t.Fatalf("audit lines missing:\n%s", out)
	}
	for _, s := range []string{readSecret, writeSecret, adminSecret, adminToken} {
		if strings.Contains(out, s) {
			t.Fatalf("a secret reached the log")
		}
	}
	if role, ok := n.api.TokenRole(readSecret); !ok || role != fsm.RoleRead {
		t.Fatalf("TokenRole(read) = %q %v", role, ok)
	}
	if _, ok := n.api.TokenRole("lst_expired"); ok {
		t.Fatal("TokenRole accepts an expired token")
	}
	if role, ok := n.api.TokenRole(adminToken); !ok || role != fsm.RoleAdmin {
		t.Fatal("TokenRole(bootstrap) is not admin")
	}
}

func TestTokens_BadInputIsA400AndChangesNothing(t *testing.T) {
	n := newNode(t, true, nil)
	for _, body := range []string{
		``, `{}`, `{"name":"x"}`, `{"name":"x","role":"root"}`, `{"name":"","role":"read"}`,
		`{"name":"a b","role":"read"}`, `{"name":"x\n","role":"read"}`, `{"name":"x","role":"read","expires_in":"500ms"}`, `{"name":"x","role":"read","expires_in":-5}`,
		`{"name":"x","role":"read","expires_in":"soon"}`, `{"name":"x","role":"read","extra":1}`, `[]`,
		`{"name":"x","role":"read"} {}`,
	} {
		wantJSONError(t, n.admin(t, "POST", "/v1/tokens", body), http.StatusBadRequest)
	}
	if len(n.fsm.Tokens()) != 0 {
		t.Fatal("bad input created a token")
	}
	createToken(t, n, "dup", fsm.RoleRead)
	wantJSONError(t, n.admin(t, "POST", "/v1/tokens", `{"name":"dup","role":"read"}`), http.StatusConflict)
}

// TestLagSafeAuth_FollowerAsksTheLeader: a key or token the leader knows
// and this follower has not applied yet is accepted, never 401; unknown
// everywhere is 401; a leader that cannot be asked gives 503.
func TestLagSafeAuth_FollowerAsksTheLeader(t *testing.T) {
	leader := newNode(t, true, nil)
	follower := newNode(t, false, nil)
	follower.cons.setLeader("leader", leader.addr)
	follower.runFlusher(t)

	_, key := leader.register(t, "fresh")
	if r := follower.beat(t, key, "{}"); r.status != http.StatusAccepted {
		t.Fatalf("fresh key at a lagging follower: %d %s", r.status, r.raw)
	}
	wantJSONError(t, follower.beat(t, "lsk_unknown", "{}"), http.StatusUnauthorized)

	_, secret := createToken(t, leader, "fresh-token", fsm.RoleRead)
	if r := call(t, "GET", follower.srv.URL+"/v1/machines", "Bearer "+secret, ""); r.status != 200 {
		t.Fatalf("fresh token at a lagging follower: %d %s", r.status, r.raw)
	}

	// The beat accepted by the follower reached the leader's state.
	eventually(t, 5*time.Second, "the beat to reach the leader", func() bool {
		return machine(t, leader.fsm, "fresh").Status == fsm.StatusOnline
	})

	// No leader to ask: 503, never 401.
	follower.cons.setLeader("", "")
	_, key2 := leader.register(t, "fresher")
	r := follower.beat(t, key2, "{}")
	wantJSONError(t, r, http.StatusServiceUnavailable)

	// A leader that is not caught up does not deny keys either.
	leader.cons.ready.Store(false)
	wantJSONError(t, leader.beat(t, "lsk_unknown", "{}"), http.StatusServiceUnavailable)
}

func TestLagSafeAuth_LeaderLookupsAreRateLimited(t *testing.T) {
	var lookups atomic.Int64
	leader := newNode(t, true, nil)
	counting := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/internal/v1/lookup") {
			lookups.Add(1)
		}
		leader.api.Handler().ServeHTTP(w, r)
	})
	front := newProxyServer(t, counting)
	follower := newNode(t, false, func(o *transport.Options) {
		o.LeaderLookupRate, o.LeaderLookupBurst = 1, 5
	})
	follower.cons.setLeader("leader", front)
	codes := map[int]int{}
	for range 50 {
		codes[follower.beat(t, "lsk_flood", "{}").status]++
	}
	if lookups.Load() > 6 {
		t.Fatalf("%d leader lookups for 50 unknown beats; want at most burst+1", lookups.Load())
	}
	if codes[http.StatusUnauthorized] == 0 || codes[http.StatusServiceUnavailable] == 0 {
		t.Fatalf("answers %v: want 401 while lookups are allowed, then 503", codes)
	}
}

// slowOperator writes a large archive slowly and reports how SaveSnapshot
// ended.
type slowOperator struct {
	fakeOperator
	done chan error
}

func (o *slowOperator) SaveSnapshot(w io.Writer) error {
	chunk := bytes.Repeat([]byte("x"), 32<<10)
	for i := 0; i < 1<<14; i++ { // 512 MiB if nobody stops it
		if _, err := w.Write(chunk); err != nil {
			o.done <- err
			return err
		}
	}
	o.done <- nil
	return nil
}

// TestSnapshot_ClientGoneStopsTheWriter: an interrupted download ends the
// archive writer (and so its temp file) instead of leaving it blocked.
func TestSnapshot_ClientGoneStopsTheWriter(t *testing.T) {
	op := &slowOperator{done: make(chan error, 1)}
	n := newNode(t, true, func(o *transport.Options) { o.Operator = op })
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", n.srv.URL+"/v1/snapshot", nil)
	req.Header.Set("Authorization", bearerAdmin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<16)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	cancel()
	resp.Body.Close()
	select {
	case err := <-op.done:
		if err == nil {
			t.Fatal("the writer finished the whole archive for a client that left")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the snapshot writer is still blocked after the client went away")
	}
}

// newProxyServer serves h and returns its host:port.
func newProxyServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// TestMachines_ControlCharactersRefused: names, hostnames and label values
// are rendered in terminals and chat messages; a newline or an escape
// sequence is a 400 and nothing changes (issue 11).
func TestMachines_ControlCharactersRefused(t *testing.T) {
	n := newNode(t, true, nil)
	for _, body := range []string{
		`{"name":"a","labels":{"env":"prod\nFAKE"}}`,
		`{"name":"a","labels":{"env":"\u001b[31m"}}`,
		`{"name":"a","hostname":"h\r\nX-Injected: 1"}`,
		`{"name":"a","description":"bell\u0007"}`,
		`{"name":"a\n"}`,
	} {
		wantJSONError(t, n.admin(t, "POST", "/v1/machines", body), http.StatusBadRequest)
	}
	if len(n.fsm.Machines("")) != 0 {
		t.Fatal("a refused machine was registered")
	}
	if r := n.admin(t, "POST", "/v1/machines", `{"name":"ok","description":"two\nlines\tand a tab"}`); r.status != http.StatusCreated {
		t.Fatalf("description with newline and tab: %d %s", r.status, r.raw)
	}
}

// TestTokens_ExpireOnTime: a token made with a short expires_in works until
// then and gets 401 after, on its own (no revocation).
func TestTokens_ExpireOnTime(t *testing.T) {
	n := newNode(t, true, nil)
	r := n.admin(t, http.MethodPost, "/v1/tokens", `{"name":"brief","role":"read","expires_in":"1s"}`)
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	secret := r.body["secret"].(string)
	if r := call(t, "GET", n.srv.URL+"/v1/machines", "Bearer "+secret, ""); r.status != 200 {
		t.Fatalf("fresh token: %d", r.status)
	}
	eventually(t, 5*time.Second, "the token to expire", func() bool {
		return call(t, "GET", n.srv.URL+"/v1/machines", "Bearer "+secret, "").status == http.StatusUnauthorized
	})
	list := n.admin(t, "GET", "/v1/tokens", "")
	if !strings.Contains(string(list.raw), `"expired":true`) {
		t.Fatalf("list does not show it expired: %s", list.raw)
	}
}
