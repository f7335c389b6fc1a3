package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

const testToken = "test-admin-token"

// testCluster is N real nodes over loopback TCP in this process.
type testCluster struct {
	t     testing.TB
	dir   string
	nodes []*Node
	opts  []Options
}

// freePorts reserves n distinct loopback ports. A port could in theory be
// taken between Close and use; the kernel does not reuse them that fast.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ls []net.Listener
	ports := make([]int, n)
	for i := range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

func fastRaft(c *raft.Config) {
	c.HeartbeatTimeout = 500 * time.Millisecond
	c.ElectionTimeout = 500 * time.Millisecond
	c.LeaderLeaseTimeout = 250 * time.Millisecond
}

func newTestCluster(t testing.TB, n int, tweak func(i int, o *Options)) *testCluster {
	t.Helper()
	gateFor(t)
	tc := &testCluster{t: t, dir: t.TempDir()}
	ports := freePorts(t, 3*n)
	var gossip []string
	for i := range n {
		gossip = append(gossip, fmt.Sprintf("127.0.0.1:%d", ports[3*i+2]))
	}
	for i := range n {
		o := Options{
			NodeID:                 fmt.Sprintf("node%d", i+1),
			DataDir:                filepath.Join(tc.dir, fmt.Sprintf("node%d", i+1)),
			HTTPAddr:               fmt.Sprintf("127.0.0.1:%d", ports[3*i]),
			RaftAddr:               fmt.Sprintf("127.0.0.1:%d", ports[3*i+1]),
			GossipAddr:             gossip[i],
			BootstrapExpect:        n,
			Join:                   gossip,
			OfflineThreshold:       3 * time.Second,
			CheckInterval:          100 * time.Millisecond,
			HeartbeatFlushInterval: 50 * time.Millisecond,
			AdminToken:             testToken,
			Logger: hclog.New(&hclog.LoggerOptions{
				Name: fmt.Sprintf("node%d", i+1), Level: hclog.Warn, Output: testWriter{t},
			}),
			RaftConfig:          fastRaft,
			GossipProbeInterval: 200 * time.Millisecond,
		}
		if tweak != nil {
			tweak(i, &o)
		}
		tc.opts = append(tc.opts, o)
	}
	tc.nodes = make([]*Node, n)
	for i := range n {
		tc.start(i)
	}
	t.Cleanup(tc.shutdownAll)
	return tc
}

func (tc *testCluster) start(i int) {
	tc.t.Helper()
	node, err := Start(tc.opts[i])
	if err != nil {
		tc.t.Fatalf("start node%d: %v", i+1, err)
	}
	tc.nodes[i] = node
}

func (tc *testCluster) stop(i int) {
	if tc.nodes[i] == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := tc.nodes[i].Shutdown(ctx); err != nil {
		tc.t.Logf("shutdown node%d: %v", i+1, err)
	}
	tc.nodes[i] = nil
}

func (tc *testCluster) shutdownAll() {
	for i := range tc.nodes {
		tc.stop(i)
	}
}

// leader waits for exactly one running node to lead and returns its index.
func (tc *testCluster) leader() int {
	tc.t.Helper()
	idx := -1
	waitFor(tc.t, 15*time.Second, "a single leader", func() bool {
		idx = -1
		for i, n := range tc.nodes {
			if n != nil && n.Cluster.IsLeader() {
				if idx != -1 {
					return false
				}
				idx = i
			}
		}
		return idx != -1
	})
	return idx
}

func (tc *testCluster) follower(except ...int) int {
	for i, n := range tc.nodes {
		if n == nil || n.Cluster.IsLeader() {
			continue
		}
		skip := false
		for _, e := range except {
			skip = skip || e == i
		}
		if !skip {
			return i
		}
	}
	tc.t.Fatal("no follower available")
	return -1
}

func (tc *testCluster) url(i int) string { return "http://" + tc.nodes[i].HTTPAddr() }

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testWriter sends a node's log to its test. memberlist's Shutdown does not
// wait for all of its goroutines, so a line can come after the test ended:
// once the test's cleanups are done, lines are dropped (testing panics on
// a Log after completion).
type testWriter struct{ t testing.TB }

type testLogGate struct {
	mu   sync.Mutex
	done bool
}

var testLogGates sync.Map // testing.TB → *testLogGate

func gateFor(t testing.TB) *testLogGate {
	g, loaded := testLogGates.LoadOrStore(t, &testLogGate{})
	gate := g.(*testLogGate)
	if !loaded {
		// Registered first, so it runs after every other cleanup.
		t.Cleanup(func() {
			gate.mu.Lock()
			gate.done = true
			gate.mu.Unlock()
			testLogGates.Delete(t)
		})
	}
	return gate
}

func (w testWriter) Write(p []byte) (int, error) {
	g, ok := testLogGates.Load(w.t)
	if !ok {
		return len(p), nil
	}
	gate := g.(*testLogGate)
	gate.mu.Lock()
	defer gate.mu.Unlock()
	if !gate.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// call does one HTTP request and decodes a JSON answer into out (if given).
func call(t testing.TB, method, url, token string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		switch b := body.(type) {
		case string:
			rd = strings.NewReader(b)
		case []byte:
			rd = bytes.NewReader(b)
		default:
			data, _ := json.Marshal(b)
			rd = bytes.NewReader(data)
		}
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, url, data, err)
		}
	}
	return resp.StatusCode
}

type machineJSON struct {
	ID       string     `json:"id"`
	Name     string     `json:"name"`
	Status   string     `json:"status"`
	LastSeen *time.Time `json:"last_seen"`
}

type eventJSON struct {
	ID      string      `json:"id"`
	Type    string      `json:"type"`
	Machine machineJSON `json:"machine"`
}

func (tc *testCluster) register(i int, name string, extra map[string]any) string {
	tc.t.Helper()
	body := map[string]any{"name": name}
	for k, v := range extra {
		body[k] = v
	}
	var out struct {
		Machine machineJSON `json:"machine"`
		APIKey  string      `json:"api_key"`
	}
	if code := call(tc.t, "POST", tc.url(i)+"/v1/machines", testToken, body, &out); code != http.StatusCreated {
		tc.t.Fatalf("register %s via node%d: %d", name, i+1, code)
	}
	return out.APIKey
}

// machine is the machine as node i knows it; the zero value when node i
// answers 404 (not registered there, or not yet), and any other answer
// fails the test.
func (tc *testCluster) machine(i int, name string) machineJSON {
	tc.t.Helper()
	var out struct {
		Machine machineJSON `json:"machine"`
	}
	if code := call(tc.t, "GET", tc.url(i)+"/v1/machines/"+name, testToken, nil, &out); code != http.StatusOK && code != http.StatusNotFound {
		tc.t.Fatalf("GET machine %s on node %d = %d, want 200 or 404", name, i, code)
	}
	return out.Machine
}

func (tc *testCluster) events(i int) []eventJSON {
	tc.t.Helper()
	var out struct {
		Events []eventJSON `json:"events"`
	}
	getJSON(tc.t, tc.url(i)+"/v1/events?limit=1000", &out)
	return out.Events
}

func (tc *testCluster) beat(i int, key string) int {
	tc.t.Helper()
	return call(tc.t, "POST", tc.url(i)+"/v1/heartbeat", key, `{"hostname":"h"}`, nil)
}

// beater sends heartbeats for key round-robin across running nodes until
// stopped.
func (tc *testCluster) beater(key string, every time.Duration) (stop func()) {
	var urls []string
	for i := range tc.nodes {
		urls = append(urls, tc.url(i))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		k := 0
		for {
			for tries := 0; tries < len(urls); tries++ {
				k++
				req, _ := http.NewRequestWithContext(ctx, "POST", urls[k%len(urls)]+"/v1/heartbeat", strings.NewReader("{}"))
				req.Header.Set("Authorization", "Bearer "+key)
				resp, err := http.DefaultClient.Do(req)
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode == http.StatusAccepted {
						break
					}
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() { cancel(); <-done }
}

func newRequest(ctx context.Context, method, url string, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	return req, nil
}

func httpDo(req *http.Request) (*http.Response, error) { return http.DefaultClient.Do(req) }

func readAll(r io.Reader) ([]byte, error) { return io.ReadAll(r) }
