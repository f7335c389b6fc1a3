package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

type memberJSON struct {
	ID           string `json:"id"`
	GossipStatus string `json:"gossip_status"`
	Voter        bool   `json:"voter"`
	Leader       bool   `json:"leader"`
}

func (tc *testCluster) members(i int) map[string]memberJSON {
	var out struct {
		Members []memberJSON `json:"members"`
	}
	getJSON(tc.t, tc.url(i)+"/v1/cluster/members", &out)
	m := map[string]memberJSON{}
	for _, mb := range out.Members {
		m[mb.ID] = mb
	}
	return m
}

type raftJSON struct {
	Servers []struct {
		ID       string `json:"id"`
		Suffrage string `json:"suffrage"`
	} `json:"servers"`
}

func (tc *testCluster) raftServers(i int) map[string]string {
	var out raftJSON
	getJSON(tc.t, tc.url(i)+"/v1/cluster/raft", &out)
	m := map[string]string{}
	for _, s := range out.Servers {
		m[s.ID] = s.Suffrage
	}
	return m
}

// addNode starts one more server that knows only a single peer's gossip
// address and has no bootstrap-expect: it joins by gossip alone.
func (tc *testCluster) addNode(tweak func(o *Options)) int {
	tc.t.Helper()
	ports := freePorts(tc.t, 3)
	i := len(tc.nodes)
	o := tc.opts[0]
	o.NodeID = fmt.Sprintf("node%d", i+1)
	o.DataDir = filepath.Join(tc.dir, o.NodeID)
	o.HTTPAddr = fmt.Sprintf("127.0.0.1:%d", ports[0])
	o.RaftAddr = fmt.Sprintf("127.0.0.1:%d", ports[1])
	o.GossipAddr = fmt.Sprintf("127.0.0.1:%d", ports[2])
	o.BootstrapExpect = 0
	o.Join = []string{tc.opts[0].GossipAddr}
	o.Logger = hclog.New(&hclog.LoggerOptions{Name: o.NodeID, Level: hclog.Warn, Output: testWriter{tc.t}})
	if tweak != nil {
		tweak(&o)
	}
	tc.opts = append(tc.opts, o)
	tc.nodes = append(tc.nodes, nil)
	tc.start(i)
	return i
}

func (tc *testCluster) halt(i int) {
	if err := tc.nodes[i].Halt(); err != nil {
		tc.t.Logf("halt node%d: %v", i+1, err)
	}
	tc.nodes[i] = nil
}

func fastMembership(_ int, o *Options) {
	o.ServerStabilization = time.Second
	o.DeadServerCleanup = 2 * time.Second
}

func TestMembership_FourthServerJoinsByGossipAndBecomesVoter(t *testing.T) {
	tc := newTestCluster(t, 3, fastMembership)
	tc.leader()
	start := time.Now()
	n4 := tc.addNode(nil)
	waitFor(t, 30*time.Second, "node4 a voter", func() bool {
		return tc.members(0)["node4"].Voter && tc.raftServers(1)["node4"] == "voter"
	})
	t.Logf("join to voter: %s (stabilization %s)", time.Since(start).Round(time.Millisecond), tc.opts[0].ServerStabilization)
	// The new voter serves the replicated state.
	tc.register(0, "seen-by-4", nil)
	waitFor(t, 5*time.Second, "node4 replicates", func() bool { return tc.machine(n4, "seen-by-4").ID != "" })
}

func TestMembership_DeadServerRemovedWhileQuorumHolds(t *testing.T) {
	tc := newTestCluster(t, 3, fastMembership)
	tc.leader()
	n4 := tc.addNode(nil)
	waitFor(t, 30*time.Second, "node4 a voter", func() bool { return tc.raftServers(0)["node4"] == "voter" })

	// Kill a follower (not the leader) abruptly: 4 voters → 3 ≥ bootstrap-expect.
	victim := n4
	if tc.nodes[victim].Cluster.IsLeader() {
		victim = tc.follower()
	}
	name := tc.opts[victim].NodeID
	tc.halt(victim)
	alive := tc.leader()
	waitFor(t, 20*time.Second, name+" reported not alive", func() bool {
		return tc.members(alive)[name].GossipStatus != "alive"
	})
	waitFor(t, 60*time.Second, name+" removed from raft", func() bool {
		_, in := tc.raftServers(alive)[name]
		return !in
	})
	tc.register(alive, "after-removal", nil)
}

func TestMembership_CleanupNeverGoesBelowBootstrapExpect(t *testing.T) {
	tc := newTestCluster(t, 3, fastMembership)
	tc.leader()
	victim := tc.follower()
	name := tc.opts[victim].NodeID
	tc.halt(victim)
	alive := tc.leader()
	waitFor(t, 60*time.Second, name+" failed in gossip", func() bool {
		return tc.members(alive)[name].GossipStatus == "failed"
	})
	// Well past the cleanup time: still a voter, because removing it would
	// leave fewer voters than bootstrap-expect.
	deadline := time.Now().Add(3 * tc.opts[0].DeadServerCleanup)
	for time.Now().Before(deadline) {
		if s := tc.raftServers(alive)[name]; s != "voter" {
			t.Fatalf("%s was removed (suffrage %q) below bootstrap-expect", name, s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestMembership_LeaderLeaveHandsOver(t *testing.T) {
	tc := newTestCluster(t, 3, fastMembership)
	old := tc.leader()
	name := tc.opts[old].NodeID
	if code := call(t, "POST", tc.url(old)+"/v1/cluster/leave", testToken, nil, nil); code != 200 {
		t.Fatalf("leave = %d", code)
	}
	select {
	case <-tc.nodes[old].Left():
	case <-time.After(10 * time.Second):
		t.Fatal("node did not signal it left")
	}
	tc.stop(old)
	nl := tc.leader()
	if _, in := tc.raftServers(nl)[name]; in {
		t.Fatalf("%s still in the raft configuration after leaving", name)
	}
	tc.register(nl, "after-leave", nil)
}

func TestMembership_WrongGossipKeyCannotJoin(t *testing.T) {
	keyA := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	keyB := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32))
	tc := newTestCluster(t, 3, func(i int, o *Options) { fastMembership(i, o); o.GossipKey = keyA })
	tc.leader()
	var logs lockedBuffer
	tc.addNode(func(o *Options) {
		o.GossipKey = keyB
		o.Logger = hclog.New(&hclog.LoggerOptions{Name: o.NodeID, Level: hclog.Info, Output: &logs})
	})
	waitFor(t, 20*time.Second, "a key mismatch in node4's log", func() bool {
		return strings.Contains(logs.String(), "gossip encryption key mismatch")
	})
	if _, seen := tc.members(0)["node4"]; seen {
		t.Fatal("node4 with the wrong gossip key appears among the members")
	}
	if _, in := tc.raftServers(0)["node4"]; in {
		t.Fatal("node4 with the wrong gossip key was added to raft")
	}
}

func TestSnapshot_SaveAndRestoreInProcess(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	tc.leader()
	f := tc.follower()
	tc.register(f, "keep-1", map[string]any{"labels": map[string]string{"a": "b"}})
	var snap []byte
	waitFor(t, 10*time.Second, "snapshot through a follower", func() bool {
		code, body := rawCall(t, "GET", tc.url(f)+"/v1/snapshot", nil)
		snap = body
		return code == 200
	})
	tc.register(f, "gone-after-restore", nil)
	if code, body := rawCall(t, "POST", tc.url(f)+"/v1/snapshot", []byte("garbage\n")); code != 400 {
		t.Fatalf("restore of garbage = %d %s, want 400", code, body)
	}
	if code, body := rawCall(t, "POST", tc.url(f)+"/v1/snapshot", snap[:len(snap)-10]); code != 400 {
		t.Fatalf("restore of a truncated archive = %d %s, want 400", code, body)
	}
	if code, body := rawCall(t, "POST", tc.url(f)+"/v1/snapshot", snap); code != 200 {
		t.Fatalf("restore = %d %s", code, body)
	}
	for i := range tc.nodes {
		waitFor(t, 10*time.Second, "restored state everywhere", func() bool {
			return tc.machine(i, "keep-1").ID != "" && tc.machine(i, "gone-after-restore").ID == ""
		})
	}
}

func rawCall(t testing.TB, method, url string, body []byte) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var code int
	var out []byte
	req, _ := newRequest(ctx, method, url, body)
	resp, err := httpDo(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	code = resp.StatusCode
	out, _ = readAll(resp.Body)
	return code, out
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestReadiness_TurnsUnreadySoonAfterLosingTheLeader(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	leader := tc.leader()
	f := tc.follower()
	waitFor(t, 10*time.Second, "follower ready", func() bool {
		return call(t, "GET", tc.url(f)+"/readyz", "", nil, nil) == 200
	})
	// Take away both other servers: no quorum, no leader for f.
	for i := range tc.nodes {
		if i != f {
			tc.halt(i)
		}
	}
	lost := time.Now()
	waitFor(t, 10*time.Second, "follower not ready", func() bool {
		return call(t, "GET", tc.url(f)+"/readyz", "", nil, nil) == 503
	})
	if d := time.Since(lost); d > 5*time.Second {
		t.Fatalf("readyz took %s to turn 503", d)
	}
	t.Logf("readyz 503 %s after the leader (node%d) was lost", time.Since(lost).Round(time.Millisecond), leader+1)
}
