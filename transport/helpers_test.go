package transport_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lunasentri/lunasentri/fsm"
	"github.com/lunasentri/lunasentri/notify/telegram"
	"github.com/lunasentri/lunasentri/notify/webhook"
	"github.com/lunasentri/lunasentri/transport"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	adminToken    = "admin-token-for-tests"
	clusterSecret = "cluster-secret-for-tests"
)

// fakeConsensus is a one-node "cluster": Apply applies straight to the FSM
// with increasing indexes, one at a time as Raft would.
type fakeConsensus struct {
	f *fsm.FSM

	leader atomic.Bool
	ready  atomic.Bool

	mu         sync.Mutex // guards the fields below and serialises Apply
	index      uint64
	applyErr   error
	applyDelay time.Duration
	leaderID   string
	leaderAddr string
	byType     map[fsm.CommandType]int
	beatsSeen  int // beats carried by heartbeat batches that were applied

	calls atomic.Int64 // every Apply call, failed ones included
}

func newFakeConsensus(f *fsm.FSM, leader bool) *fakeConsensus {
	c := &fakeConsensus{f: f, byType: make(map[fsm.CommandType]int)}
	c.leader.Store(leader)
	c.ready.Store(true)
	return c
}

func (c *fakeConsensus) IsLeader() bool { return c.leader.Load() }

func (c *fakeConsensus) Leader() (string, string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leaderID, c.leaderAddr, c.leaderAddr != ""
}

func (c *fakeConsensus) setLeader(id, addr string) {
	c.mu.Lock()
	c.leaderID, c.leaderAddr = id, addr
	c.mu.Unlock()
}

func (c *fakeConsensus) setApplyErr(err error) {
	c.mu.Lock()
	c.applyErr = err
	c.mu.Unlock()
}

func (c *fakeConsensus) setApplyDelay(d time.Duration) {
	c.mu.Lock()
	c.applyDelay = d
	c.mu.Unlock()
}

func (c *fakeConsensus) Apply(ctx context.Context, cmd []byte) (any, uint64, error) {
	c.calls.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.leader.Load() {
		return nil, 0, errors.New("fake: not the leader")
	}
	if c.applyErr != nil {
		return nil, 0, c.applyErr
	}
	if c.applyDelay > 0 {
		time.Sleep(c.applyDelay) // models a slow commit, not synchronisation
	}
	if len(cmd) > 0 {
		t := fsm.CommandType(cmd[0])
		c.byType[t]++
		if t == fsm.CmdHeartbeatBatch {
			var hb fsm.HeartbeatBatch
			if err := json.Unmarshal(cmd[1:], &hb); err == nil {
				c.beatsSeen += len(hb.Beats)
			}
		}
	}
	c.index++
	return c.f.ApplyBytes(c.index, cmd), c.index, nil
}

// applied is how many commands of type t were applied.
func (c *fakeConsensus) applied(t fsm.CommandType) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byType[t]
}

func (c *fakeConsensus) beats() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.beatsSeen
}

func (c *fakeConsensus) WaitForIndex(context.Context, uint64) error { return nil }

func (c *fakeConsensus) Status() transport.NodeStatus {
	state := "Follower"
	if c.IsLeader() {
		state = "Leader"
	}
	id, addr, _ := c.Leader()
	return transport.NodeStatus{
		NodeID: "node-under-test", RaftState: state, LeaderID: id, LeaderHTTPAddr: addr,
		Term: 3, CommitIndex: 42, AppliedIndex: 41,
	}
}

func (c *fakeConsensus) Ready() (bool, string) {
	if c.ready.Load() {
		return true, ""
	}
	return false, "no leader known"
}

func (c *fakeConsensus) Members() ([]transport.Member, error) {
	return []transport.Member{{ID: "node-under-test", HTTPAddr: "127.0.0.1:8080", RaftAddr: "127.0.0.1:8300",
		GossipStatus: "alive", Voter: true, Leader: c.IsLeader()}}, nil
}

// testNode is one API served over HTTP with its FSM and fake consensus.
type testNode struct {
	api  *transport.API
	fsm  *fsm.FSM
	cons *fakeConsensus
	srv  *httptest.Server
	addr string // host:port
}

// validateChannel mirrors what the server assembly injects.
func validateChannel(ch fsm.Channel) error {
	switch ch.Type {
	case fsm.ChannelWebhook:
		if err := webhook.ValidateURL(ch.URL); err != nil {
			return err
		}
		return webhook.ValidateSecret(ch.Secret)
	case fsm.ChannelTelegram:
		return telegram.ValidateChatID(ch.ChatID)
	}
	return nil
}

// newNode starts an API; leaders name themselves as the leader.
func newNode(t testing.TB, leader bool, mutate func(*transport.Options)) *testNode {
	t.Helper()
	return newNodeFSM(t, leader, fsm.Options{}, mutate)
}

func newNodeFSM(t testing.TB, leader bool, fo fsm.Options, mutate func(*transport.Options)) *testNode {
	t.Helper()
	f := fsm.New(fo)
	cons := newFakeConsensus(f, leader)
	opts := transport.Options{
		FSM: f, Consensus: cons, AdminToken: adminToken, ClusterSecret: clusterSecret,
		ValidateChannel: validateChannel,
	}
	if mutate != nil {
		mutate(&opts)
	}
	api, err := transport.New(opts)
	if err != nil {
		t.Fatalf("transport.New: %v", err)
	}
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	n := &testNode{api: api, fsm: f, cons: cons, srv: srv, addr: strings.TrimPrefix(srv.URL, "http://")}
	if leader {
		cons.setLeader("leader", n.addr)
	}
	return n
}

// runFlusher runs the node's flusher until the test ends or stop is
// called; stop returns once the flusher (and its last flush) finished.
func (n *testNode) runFlusher(t testing.TB) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.api.RunFlusher(ctx)
	}()
	stop = func() {
		cancel()
		<-done
	}
	t.Cleanup(stop)
	return stop
}

// register adds a machine straight through consensus (no HTTP) and returns
// its id and key.
func (n *testNode) register(t testing.TB, name string) (id, key string) {
	t.Helper()
	id, key = "id-"+name, "lsk_key-"+name
	registerInto(t, n.cons, name, id, key)
	return id, key
}

func registerInto(t testing.TB, c *fakeConsensus, name, id, key string) {
	t.Helper()
	cmd := fsm.MustEncode(fsm.CmdRegisterMachine, fsm.RegisterMachine{Machine: fsm.Machine{
		ID: id, Name: name, KeyHash: fsm.HashKey(key), CreatedAt: time.Now().UTC(),
	}})
	res, _, err := c.Apply(context.Background(), cmd)
	if err != nil || res.(*fsm.ApplyResult).Err != nil {
		t.Fatalf("register %s: %v %v", name, err, res)
	}
}

// reply is a decoded HTTP answer.
type reply struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

// call sends one request. auth is a full Authorization header value, or ""
// for none; hdr adds headers.
func call(t testing.TB, method, url, auth, body string, hdr ...string) reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := reply{status: resp.StatusCode, header: resp.Header, raw: raw}
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			t.Fatalf("%s %s: answer %d is not a JSON object: %q", method, url, resp.StatusCode, raw)
		}
	}
	return r
}

const bearerAdmin = "Bearer " + adminToken

func (n *testNode) admin(t testing.TB, method, path, body string) reply {
	t.Helper()
	return call(t, method, n.srv.URL+path, bearerAdmin, body)
}

func (n *testNode) beat(t testing.TB, key, body string) reply {
	t.Helper()
	return call(t, http.MethodPost, n.srv.URL+"/v1/heartbeat", "Bearer "+key, body)
}

// wantJSONError checks a {"error": "..."} answer with the given status.
func wantJSONError(t testing.TB, r reply, status int) {
	t.Helper()
	if r.status != status {
		t.Errorf("status = %d, want %d (body %q)", r.status, status, r.raw)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	msg, ok := r.body["error"].(string)
	if !ok || msg == "" {
		t.Errorf("body %q has no non-empty \"error\" string", r.raw)
	}
	if len(r.body) != 1 {
		t.Errorf("error body %q has fields besides \"error\"", r.raw)
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func machine(t testing.TB, f *fsm.FSM, name string) fsm.Machine {
	t.Helper()
	m, err := f.MachineByName(name)
	if err != nil {
		t.Fatalf("machine %s: %v", name, err)
	}
	return m
}
