package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// chaosCluster is what the chaos scenarios need of a cluster of real server
// processes: procCluster on loopback, or nsCluster in network namespaces.
type chaosCluster interface {
	size() int
	nodeURL(i int) string
	nodeName(i int) string
	isRunning(i int) bool
	pid(i int) int
	killNode(i int)    // SIGKILL and wait
	stopNode(i int)    // SIGTERM (graceful) and wait
	restartNode(i int) // start again from the data dir
	signalNode(i int, sig syscall.Signal)
}

// procChaos adapts the loopback procCluster of harness_test.go.
type procChaos struct{ pc *procCluster }

func (c procChaos) size() int                          { return len(c.pc.procs) }
func (c procChaos) nodeURL(i int) string               { return c.pc.url(i) }
func (c procChaos) nodeName(i int) string              { return c.pc.procs[i].name }
func (c procChaos) isRunning(i int) bool               { return c.pc.running(i) }
func (c procChaos) killNode(i int)                     { c.pc.kill(i) }
func (c procChaos) stopNode(i int)                     { c.pc.stop(i) }
func (c procChaos) restartNode(i int)                  { c.pc.restart(i) }
func (c procChaos) signalNode(i int, s syscall.Signal) { c.pc.signal(i, s) }
func (c procChaos) pid(i int) int {
	c.pc.mu.Lock()
	defer c.pc.mu.Unlock()
	if cmd := c.pc.procs[i].cmd; cmd != nil && cmd.Process != nil {
		return cmd.Process.Pid
	}
	return 0
}

func clusterURLs(c chaosCluster) []string {
	var out []string
	for i := range c.size() {
		out = append(out, c.nodeURL(i))
	}
	return out
}

// statusSample is one GET /v1/status answer, stamped with when it came back.
type statusSample struct {
	at       time.Time
	node     int
	state    string
	leaderID string
	term     uint64
}

// chaosAction is something the scenario did to a node.
type chaosAction struct {
	at       time.Time
	node     int // -1: every node
	nodeName string
	what     string
	// leaderLost: this action took the leader of term `term` away (kill,
	// freeze, isolate, graceful stop); failover is measured from it.
	leaderLost bool
	term       uint64
	leaderName string
	// leaderFrom: the cluster came back from having no node at all; the
	// failover time is measured from here to the first leader.
	leaderFrom bool
}

// term is one leadership term as seen from outside: from the first time a
// node said it led it, to the first sign it was over.
type term struct {
	n          uint64
	leader     string
	start, end time.Time
	// mustEnd is the earliest the term may have ended: end when an action
	// ended it; when the next term just began (an election nobody caused),
	// the leader may have lost its lease up to lostLead before.
	mustEnd time.Time
}

// lostLead bounds how long before the next leader is seen an old leader
// may already have stopped leading: an election timeout and a vote.
const lostLead = 2500 * time.Millisecond

// observer polls every node's /v1/status (each node on its own, with a
// short timeout, so a frozen node slows nobody) and keeps every answer.
type observer struct {
	c       chaosCluster
	client  *http.Client
	every   time.Duration
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	samples []statusSample
	actions []chaosAction
}

func newObserver(t testing.TB, c chaosCluster) *observer {
	o := &observer{c: c, every: 100 * time.Millisecond,
		client: &http.Client{Timeout: 400 * time.Millisecond, Transport: &http.Transport{MaxIdleConnsPerHost: 2}}}
	ctx, cancel := context.WithCancel(context.Background())
	o.cancel = cancel
	for i := range c.size() {
		o.wg.Add(1)
		go o.poll(ctx, i)
	}
	t.Cleanup(o.stop)
	return o
}

func (o *observer) stop() { o.cancel(); o.wg.Wait() }

func (o *observer) poll(ctx context.Context, i int) {
	defer o.wg.Done()
	tick := time.NewTicker(o.every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if !o.c.isRunning(i) {
			continue
		}
		req, _ := http.NewRequestWithContext(ctx, "GET", o.c.nodeURL(i)+"/v1/status", nil)
		resp, err := o.client.Do(req)
		if err != nil {
			continue
		}
		var s struct {
			NodeID    string `json:"node_id"`
			RaftState string `json:"raft_state"`
			LeaderID  string `json:"leader_id"`
			Term      uint64 `json:"term"`
		}
		err = json.NewDecoder(resp.Body).Decode(&s)
		resp.Body.Close()
		if err != nil {
			continue
		}
		o.mu.Lock()
		o.samples = append(o.samples, statusSample{at: time.Now(), node: i, state: s.RaftState, leaderID: s.LeaderID, term: s.Term})
		o.mu.Unlock()
	}
}

// leaderNow is the node that most recently said it leads, with its term,
// among nodes heard from within the last second; -1 if none.
func (o *observer) leaderNow() (int, uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	latest := map[int]statusSample{}
	for _, s := range o.samples {
		latest[s.node] = s
	}
	best, bestTerm := -1, uint64(0)
	for i, s := range latest {
		if time.Since(s.at) < time.Second && s.state == "Leader" && s.term >= bestTerm {
			best, bestTerm = i, s.term
		}
	}
	return best, bestTerm
}

// waitLeader waits until some node leads in a term after `after` (0: any)
// and a node other than `not` (-1: any); it returns the node.
func (o *observer) waitLeader(t testing.TB, timeout time.Duration, after uint64, not int) int {
	t.Helper()
	var idx int
	waitFor(t, timeout, "a leader", func() bool {
		var tm uint64
		idx, tm = o.leaderNow()
		return idx >= 0 && tm > after && idx != not
	})
	return idx
}

func (o *observer) record(a chaosAction) {
	if a.node >= 0 {
		a.nodeName = o.c.nodeName(a.node)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.actions = append(o.actions, a)
}

// act does something to node i and records it. If i leads, a kill, stop,
// freeze or cut is recorded as taking the leader away.
func (o *observer) act(i int, what string, do func()) {
	li, lt := o.leaderNow()
	a := chaosAction{at: time.Now(), node: i, what: what}
	if i == li && what != "restart" && what != "thaw" && what != "heal" {
		a.leaderLost, a.term, a.leaderName = true, lt, o.c.nodeName(i)
	}
	do()
	o.record(a)
}

func (o *observer) actionList() []chaosAction {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]chaosAction(nil), o.actions...)
}

// terms reconstructs the leadership terms up to end: each starts when a
// node first said it led it (or a follower first named its leader) and
// ends at the earliest of an action that took its leader away, the start
// of the next term, and end.
func (o *observer) terms(end time.Time) []term {
	o.mu.Lock()
	defer o.mu.Unlock()
	byN := map[uint64]*term{}
	for _, s := range o.samples {
		if s.leaderID == "" || s.at.After(end) {
			continue
		}
		tm, ok := byN[s.term]
		if !ok {
			tm = &term{n: s.term, leader: s.leaderID, start: s.at}
			byN[s.term] = tm
		}
		if s.at.Before(tm.start) {
			tm.start = s.at
		}
	}
	var out []term
	for _, tm := range byN {
		out = append(out, *tm)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].n < out[j].n })
	for k := range out {
		out[k].end, out[k].mustEnd = end, end
		if k+1 < len(out) && out[k+1].start.Before(out[k].end) {
			out[k].end = out[k+1].start
			out[k].mustEnd = later(out[k].start, out[k+1].start.Add(-lostLead))
		}
		for _, a := range o.actions {
			gone := a.what == "kill" || a.what == "stop" || a.what == "freeze" || a.what == "isolate"
			hit := a.node == -1 || o.c.nodeName(a.node) == out[k].leader
			if gone && hit && !a.at.Before(out[k].start) && a.at.Before(out[k].end) {
				out[k].end, out[k].mustEnd = a.at, a.at
			}
		}
	}
	return out
}

// failovers measures, for every action that took the leader away (or
// brought a dead cluster back), the time until a node reported another
// leader.
func (o *observer) failovers() []time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []time.Duration
	for _, a := range o.actions {
		if !a.leaderLost && !a.leaderFrom {
			continue
		}
		for _, s := range o.samples {
			if !s.at.After(a.at) || s.leaderID == "" {
				continue
			}
			if a.leaderLost && (s.leaderID == a.leaderName || s.term <= a.term) {
				continue
			}
			out = append(out, s.at.Sub(a.at))
			break
		}
	}
	return out
}

// chaosHook is a webhook receiver for chaos runs: the shared
// webhookReceiver of receiver_test.go (which checks every signature and
// the body's shape) behind a wrapper that also notes which server process
// sent each request.
type chaosHook struct {
	*webhookReceiver
	sender func(remote string) string // remote address → node name or ""

	mu    sync.Mutex
	conns map[string]string // remote address of an open connection → node
	log   []hookFrom
}

// hookFrom is one request: its delivery id, when it came, who sent it.
type hookFrom struct {
	id   string
	at   time.Time
	from string
}

// newChaosHook starts a receiver listening on addr ("127.0.0.1:0" on
// loopback, or an address in a test network). sender names the node
// behind a new connection's remote address.
func newChaosHook(t testing.TB, secret, addr string, sender func(remote string) string) *chaosHook {
	w := &webhookReceiver{secret: secret, release: make(chan struct{})}
	h := &chaosHook{webhookReceiver: w, sender: sender, conns: map[string]string{}}
	w.srv = httptest.NewUnstartedServer(h)
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("receiver listen %s: %v", addr, err)
	}
	w.srv.Listener.Close()
	w.srv.Listener = l
	w.srv.Config.ConnState = func(c net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			from := h.sender(c.RemoteAddr().String())
			h.mu.Lock()
			h.conns[c.RemoteAddr().String()] = from
			h.mu.Unlock()
		case http.StateClosed, http.StateHijacked:
			h.mu.Lock()
			delete(h.conns, c.RemoteAddr().String())
			h.mu.Unlock()
		}
	}
	w.srv.Start()
	t.Cleanup(w.srv.Close)
	return h
}

func (h *chaosHook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.log = append(h.log, hookFrom{id: r.Header.Get("X-LunaSentri-Delivery"), at: time.Now(), from: h.conns[r.RemoteAddr]})
	h.mu.Unlock()
	h.webhookReceiver.serve(rw, r)
}

func (h *chaosHook) from() []hookFrom {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookFrom(nil), h.log...)
}

// loopbackSender finds which of the cluster's processes owns the client
// side of a loopback TCP connection: the socket's inode from
// /proc/net/tcp, then the process holding it from /proc/PID/fd. It returns
// "" when it cannot tell (not Linux, or the process is gone).
func loopbackSender(c chaosCluster, receiverPort int) func(remote string) string {
	return func(remote string) string {
		host, portText, err := net.SplitHostPort(remote)
		if err != nil || net.ParseIP(host) == nil || !net.ParseIP(host).IsLoopback() {
			return ""
		}
		port, _ := strconv.Atoi(portText)
		inode := socketInode(port, receiverPort)
		if inode == "" {
			return ""
		}
		want := "socket:[" + inode + "]"
		for i := range c.size() {
			pid := c.pid(i)
			if pid == 0 {
				continue
			}
			dir := fmt.Sprintf("/proc/%d/fd", pid)
			ents, err := os.ReadDir(dir)
			if err != nil {
				continue
			}
			for _, e := range ents {
				if l, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && l == want {
					return c.nodeName(i)
				}
			}
		}
		return ""
	}
}

// socketInode returns the inode of the TCP socket local:port → remote:rport
// on loopback, from /proc/net/tcp.
func socketInode(port, rport int) string {
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return ""
	}
	defer f.Close()
	local := fmt.Sprintf(":%04X", port)
	remote := fmt.Sprintf(":%04X", rport)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 {
			continue
		}
		if strings.HasSuffix(fields[1], local) && strings.HasSuffix(fields[2], remote) {
			return fields[9]
		}
	}
	return ""
}
