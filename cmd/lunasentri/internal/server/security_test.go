package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestReadiness_RestartedNodeNotReadyUntilCaughtUp: a restarted follower
// answers /readyz 503 until it has applied the leader's commit index as
// learned after the restart, so every 200 comes with the full state (it
// used to answer 200 for seconds with an empty machine list).
func TestReadiness_RestartedNodeNotReadyUntilCaughtUp(t *testing.T) {
	for _, withSnapshot := range []bool{false, true} {
		t.Run(fmt.Sprintf("snapshot=%v", withSnapshot), func(t *testing.T) {
			testRestartReadiness(t, withSnapshot)
		})
	}
}

// testRestartReadiness: withSnapshot makes the follower take a Raft
// snapshot before it stops, so the restart restores it and replays the
// rest.
func testRestartReadiness(t *testing.T, withSnapshot bool) {
	tc := newTestCluster(t, 3, nil)
	leader := tc.leader()
	f := tc.follower()
	const before = 30
	for i := range before {
		tc.register(leader, fmt.Sprintf("m%02d", i), nil)
	}
	if withSnapshot {
		waitFor(t, 10*time.Second, "the follower to apply", func() bool {
			return tc.nodes[f].Cluster.Raft().AppliedIndex() >= tc.nodes[leader].Cluster.Raft().CommitIndex()
		})
		if err := tc.nodes[f].Cluster.Raft().Snapshot().Error(); err != nil {
			t.Fatalf("follower snapshot: %v", err)
		}
	}
	tc.stop(f)
	const after = 30
	for i := range after {
		tc.register(leader, fmt.Sprintf("late%02d", i), nil)
	}
	commit := tc.nodes[leader].Cluster.Raft().CommitIndex()
	tc.start(f)
	started := time.Now()
	node := tc.nodes[f]
	sawUnready, sawReady := false, false
	unready := 0
	deadline := time.Now().Add(20 * time.Second)
	for !sawReady {
		if time.Now().After(deadline) {
			t.Fatal("restarted follower never became ready")
		}
		code := call(t, "GET", tc.url(f)+"/readyz", "", nil, nil)
		if code == http.StatusOK {
			// Checked right after the 200: the state only grows, so a
			// short list now means it was short at the 200.
			if applied := node.Cluster.Raft().AppliedIndex(); applied < commit {
				t.Fatalf("readyz 200 at applied index %d, leader's commit index before restart was %d", applied, commit)
			}
			var out struct {
				Machines []machineJSON `json:"machines"`
			}
			call(t, "GET", tc.url(f)+"/v1/machines", testToken, nil, &out)
			if len(out.Machines) < before+after {
				t.Fatalf("readyz 200 while serving %d of %d machines", len(out.Machines), before+after)
			}
			sawReady = true
		} else {
			sawUnready = true
			unready++
		}
	}
	t.Logf("restarted follower: %d answers 503, then 200 after %s (leader's commit index %d)", unready, time.Since(started).Round(time.Millisecond), commit)
	if !sawUnready {
		t.Log("the restarted node was ready at its first probe (caught up before the first request)")
	}
}

// TestLagSafeAuth_FreshKeyAcceptedAtEveryNode: a key registered on one
// node is accepted at once at every other node (never 401), and so is a
// freshly created token.
func TestLagSafeAuth_FreshKeyAcceptedAtEveryNode(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	tc.leader()
	for round := range 10 {
		via := round % 3
		key := tc.register(via, fmt.Sprintf("fresh%d", round), nil)
		for i := range tc.nodes {
			code := tc.beat((via+1+i)%3, key)
			if code == http.StatusUnauthorized {
				t.Fatalf("round %d: node%d answered 401 to a key registered via node%d", round, (via+1+i)%3+1, via+1)
			}
			if code != http.StatusAccepted && code != http.StatusServiceUnavailable {
				t.Fatalf("round %d: node%d answered %d", round, (via+1+i)%3+1, code)
			}
		}
	}
	for round := range 5 {
		via := round % 3
		var out struct {
			Secret string `json:"secret"`
		}
		body := map[string]any{"name": fmt.Sprintf("tok%d", round), "role": "read"}
		if code := call(t, "POST", tc.url(via)+"/v1/tokens", testToken, body, &out); code != http.StatusCreated {
			t.Fatalf("create token via node%d: %d", via+1, code)
		}
		for i := range tc.nodes {
			n := (via + 1 + i) % 3
			if code := call(t, "GET", tc.url(n)+"/v1/machines", out.Secret, nil, nil); code != http.StatusOK {
				t.Fatalf("fresh token at node%d: %d", n+1, code)
			}
			if code := call(t, "POST", tc.url(n)+"/v1/machines", out.Secret, map[string]any{"name": "nope"}, nil); code != http.StatusForbidden {
				t.Fatalf("read token writing at node%d: %d, want 403", n+1, code)
			}
		}
	}
}

// TestWebhookDenyPrivate_RefusedAtCreationAndAtDialTime: with
// -webhook-deny-private a literal private target is a 400, and a name that
// resolves to loopback (DNS rebinding's end state) is refused when dialled:
// the receiver sees nothing.
func TestWebhookDenyPrivate_RefusedAtCreationAndAtDialTime(t *testing.T) {
	var hits atomic.Int64
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hits.Add(1) }))
	defer recv.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(recv.URL, "http://"))
	tc := newTestCluster(t, 3, func(_ int, o *Options) { o.WebhookDenyPrivate = true })
	f := tc.follower()
	tc.leader()
	const secret = "0123456789abcdef0123"
	for _, u := range []string{recv.URL, "http://169.254.169.254/latest/meta-data", "http://[::1]:" + port + "/", "http://localhost:" + port} {
		code := call(t, "POST", tc.url(f)+"/v1/channels", testToken, map[string]any{"type": "webhook", "name": "h", "url": u, "secret": secret}, nil)
		if code != http.StatusBadRequest {
			t.Fatalf("channel to %s: %d, want 400", u, code)
		}
	}
	// A name that resolves to loopback passes creation and is refused at dial.
	code := call(t, "POST", tc.url(f)+"/v1/channels", testToken, map[string]any{"type": "webhook", "name": "sneaky", "url": "http://localhost.:" + port + "/", "secret": secret}, nil)
	if code != http.StatusCreated {
		t.Fatalf("create sneaky: %d", code)
	}
	var out map[string]any
	if code := call(t, "POST", tc.url(f)+"/v1/channels/sneaky/test", testToken, nil, &out); code != http.StatusBadGateway {
		t.Fatalf("test of a loopback target: %d %v, want 502", code, out)
	}
	if hits.Load() != 0 {
		t.Fatal("the private receiver was reached")
	}
}

// TestSnapshot_PoisonedArchiveRefusedWithValidChecksum: an archive whose
// checksum is right but whose state is inconsistent (a machine twice) is
// refused with 400 and nothing changes, on any node.
func TestSnapshot_PoisonedArchiveRefusedWithValidChecksum(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	leader := tc.leader()
	for i := range 3 {
		tc.register(leader, fmt.Sprintf("p%d", i), nil)
	}
	req, _ := http.NewRequest("GET", tc.url(leader)+"/v1/snapshot", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	archive, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	nl := bytes.IndexByte(archive, '\n')
	var hdr map[string]any
	if err := json.Unmarshal(archive[:nl], &hdr); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(archive[nl+1:]), "\n"), "\n")
	var fsmHdr map[string]any
	_ = json.Unmarshal([]byte(lines[0]), &fsmHdr)
	fsmHdr["machines"] = fsmHdr["machines"].(float64) + 1
	b, _ := json.Marshal(fsmHdr)
	poisoned := append([]string{string(b), lines[1]}, lines[1:]...)
	body := []byte(strings.Join(poisoned, "\n") + "\n")
	sum := sha256.Sum256(body)
	hdr["size"], hdr["sha256"] = len(body), hex.EncodeToString(sum[:])
	h, _ := json.Marshal(hdr)
	upload := append(append(h, '\n'), body...)
	for _, via := range []int{tc.follower(), leader} {
		var out map[string]any
		if code := call(t, "POST", tc.url(via)+"/v1/snapshot", testToken, upload, &out); code != http.StatusBadRequest {
			t.Fatalf("poisoned archive via node%d: %d %v, want 400", via+1, code, out)
		}
		if msg, _ := out["error"].(string); !strings.Contains(msg, "appears twice") {
			t.Fatalf("refused for another reason (checksum?): %q", msg)
		}
	}
	var list struct {
		Machines []machineJSON `json:"machines"`
	}
	call(t, "GET", tc.url(leader)+"/v1/machines", testToken, nil, &list)
	if len(list.Machines) != 3 {
		t.Fatalf("state changed: %d machines", len(list.Machines))
	}
	if code := call(t, "GET", tc.url(leader)+"/readyz", "", nil, nil); code != http.StatusOK {
		t.Fatalf("leader not ready after the refused restore: %d", code)
	}
}
