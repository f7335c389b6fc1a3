package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const adminToken = "lunasentri-bench-admin-token"

// node is one `lunasentri server` process of the benchmark cluster.
type node struct {
	name       string
	httpAddr   string
	raftAddr   string
	gossipAddr string
	dataDir    string
	logPath    string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the current process was reaped
}

func (n *node) url() string { return "http://" + n.httpAddr }

// procCluster is three server processes on loopback, started exactly as
// docs/api.md describes (bootstrap-expect, join), with default Raft timeouts.
type procCluster struct {
	bin   string
	dir   string
	extra []string
	env   []string
	nodes []*node
	admin *http.Client
}

// freePorts reserves n distinct loopback ports (TCP; gossip also uses the
// same port over UDP, which is free whenever the TCP one is in practice).
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for len(ports) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// startCluster starts a three-node cluster in dir and waits up to a minute
// until it is healthy: the cluster and its leader. The caller stops it; on
// an error it is stopped already.
func startCluster(ctx context.Context, bin, dir string, extra, env []string) (*procCluster, int, error) {
	pc, err := newProcCluster(bin, dir, 3, extra, env)
	if err != nil {
		return nil, -1, err
	}
	li, err := pc.waitHealthy(ctx, 60*time.Second)
	if err != nil {
		pc.stopAll()
		return nil, -1, err
	}
	return pc, li, nil
}

func newProcCluster(bin, dir string, n int, extra, env []string) (*procCluster, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	ports, err := freePorts(3 * n)
	if err != nil {
		return nil, err
	}
	pc := &procCluster{bin: bin, dir: dir, extra: extra, env: env,
		admin: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	for i := range n {
		nd := &node{
			name:       fmt.Sprintf("node%d", i+1),
			httpAddr:   fmt.Sprintf("127.0.0.1:%d", ports[3*i]),
			raftAddr:   fmt.Sprintf("127.0.0.1:%d", ports[3*i+1]),
			gossipAddr: fmt.Sprintf("127.0.0.1:%d", ports[3*i+2]),
		}
		nd.dataDir = filepath.Join(dir, nd.name)
		nd.logPath = filepath.Join(dir, nd.name+".log")
		pc.nodes = append(pc.nodes, nd)
	}
	for i := range pc.nodes {
		if err := pc.start(i); err != nil {
			pc.stopAll()
			return nil, err
		}
	}
	return pc, nil
}

func (pc *procCluster) args(i int) []string {
	n := pc.nodes[i]
	var join []string
	for j, o := range pc.nodes {
		if j != i {
			join = append(join, o.gossipAddr)
		}
	}
	args := []string{"server",
		"-node-id", n.name,
		"-data-dir", n.dataDir,
		"-http-addr", n.httpAddr,
		"-raft-addr", n.raftAddr,
		"-gossip-addr", n.gossipAddr,
		"-bootstrap-expect", strconv.Itoa(len(pc.nodes)),
		"-join", strings.Join(join, ","),
	}
	return append(args, pc.extra...)
}

// start launches node i (again, after a kill: same flags, same data dir).
func (pc *procCluster) start(i int) error {
	n := pc.nodes[i]
	logf, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "\n===== lunasentri-bench: starting %s at %s =====\n", n.name, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(pc.bin, pc.args(i)...)
	cmd.Env = append(append(os.Environ(), "LUNASENTRI_ADMIN_TOKEN="+adminToken), pc.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	setChildAttrs(cmd)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", n.name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
	n.mu.Lock()
	n.cmd, n.done = cmd, done
	n.mu.Unlock()
	return nil
}

func (pc *procCluster) running(i int) bool {
	n := pc.nodes[i]
	n.mu.Lock()
	done := n.done
	n.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL to node i and waits until the process is gone.
func (pc *procCluster) kill(i int) {
	n := pc.nodes[i]
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

func (pc *procCluster) pid(i int) int {
	n := pc.nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || n.cmd.Process == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// stopAll stops every node gracefully (SIGTERM), killing what is still
// running after 20s.
func (pc *procCluster) stopAll() {
	var wg sync.WaitGroup
	for i, n := range pc.nodes {
		if !pc.running(i) {
			continue
		}
		n.mu.Lock()
		cmd, done := n.cmd, n.done
		n.mu.Unlock()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		}()
	}
	wg.Wait()
}

// nodeStatus is GET /v1/status.
type nodeStatus struct {
	NodeID         string `json:"node_id"`
	RaftState      string `json:"raft_state"`
	LeaderID       string `json:"leader_id"`
	LeaderHTTPAddr string `json:"leader_http_addr"`
	Term           uint64 `json:"term"`
	CommitIndex    uint64 `json:"commit_index"`
	AppliedIndex   uint64 `json:"applied_index"`
}

// call does one JSON request against node i. body may be nil; out may be
// nil. It returns the status code.
func (pc *procCluster) call(ctx context.Context, client *http.Client, i int, method, path string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, pc.nodes[i].url()+path, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if client == nil {
		client = pc.admin
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode >= 300 {
		return resp.StatusCode, fmt.Errorf("%s %s on %s: %d %s", method, path, pc.nodes[i].name, resp.StatusCode, strings.TrimSpace(string(data)))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: decode: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

func (pc *procCluster) status(ctx context.Context, i int) (nodeStatus, error) {
	var st nodeStatus
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := pc.call(ctx, nil, i, http.MethodGet, "/v1/status", nil, &st)
	return st, err
}

func (pc *procCluster) ready(ctx context.Context, i int) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	code, err := pc.call(ctx, nil, i, http.MethodGet, "/readyz", nil, nil)
	return err == nil && code == http.StatusOK
}

// leader returns the index of the node every running node agrees leads.
func (pc *procCluster) leader(ctx context.Context) (int, nodeStatus, error) {
	leaderID := ""
	var lst nodeStatus
	for i := range pc.nodes {
		if !pc.running(i) {
			continue
		}
		st, err := pc.status(ctx, i)
		if err != nil {
			return -1, st, err
		}
		if st.LeaderID == "" || (leaderID != "" && st.LeaderID != leaderID) {
			return -1, st, errors.New("no agreed leader")
		}
		leaderID = st.LeaderID
		if st.RaftState == "Leader" {
			lst = st
		}
	}
	for i, n := range pc.nodes {
		if n.name == leaderID && lst.NodeID == leaderID {
			return i, lst, nil
		}
	}
	return -1, lst, fmt.Errorf("leader %q is not a running node", leaderID)
}

type member struct {
	ID           string `json:"id"`
	GossipStatus string `json:"gossip_status"`
	Voter        bool   `json:"voter"`
	Leader       bool   `json:"leader"`
}

// waitHealthy waits until every node is running and ready, they agree on a
// leader, and the leader lists all of them as alive voters.
func (pc *procCluster) waitHealthy(ctx context.Context, timeout time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		li, err := pc.healthyOnce(ctx)
		if err == nil {
			return li, nil
		}
		last = err
		select {
		case <-ctx.Done():
			return -1, fmt.Errorf("cluster not healthy within %s: %v", timeout, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (pc *procCluster) healthyOnce(ctx context.Context) (int, error) {
	for i, n := range pc.nodes {
		if !pc.running(i) {
			return -1, fmt.Errorf("%s is not running", n.name)
		}
		if !pc.ready(ctx, i) {
			return -1, fmt.Errorf("%s is not ready", n.name)
		}
	}
	li, lst, err := pc.leader(ctx)
	if err != nil {
		return -1, err
	}
	var ms struct {
		Members []member `json:"members"`
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := pc.call(cctx, nil, li, http.MethodGet, "/v1/cluster/members", nil, &ms); err != nil {
		return -1, err
	}
	voters := 0
	for _, m := range ms.Members {
		if m.Voter && m.GossipStatus == "alive" {
			voters++
		}
	}
	if voters != len(pc.nodes) {
		return -1, fmt.Errorf("%d of %d servers are alive voters", voters, len(pc.nodes))
	}
	for i := range pc.nodes {
		st, err := pc.status(ctx, i)
		if err != nil {
			return -1, err
		}
		if st.AppliedIndex+64 < lst.CommitIndex {
			return -1, fmt.Errorf("%s applied %d of %d", pc.nodes[i].name, st.AppliedIndex, lst.CommitIndex)
		}
	}
	return li, nil
}

// scrape reads node i's /metrics and returns the samples of the named
// metrics (exact series text before the value → value).
func (pc *procCluster) scrape(ctx context.Context, client *http.Client, i int, prefixes ...string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, pc.nodes[i].url()+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	if client == nil {
		client = pc.admin
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/metrics on %s: %d", pc.nodes[i].name, resp.StatusCode)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		match := false
		for _, p := range prefixes {
			if strings.HasPrefix(line, p) {
				match = true
				break
			}
		}
		if !match {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			continue
		}
		out[line[:sp]] = v
	}
	return out, sc.Err()
}

// buildBinary builds ./cmd/lunasentri of the module the harness runs in.
func buildBinary(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w (pass -bin)", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the lunasentri module; pass -bin")
	}
	bin := filepath.Join(dir, "lunasentri")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, "./cmd/lunasentri")
	cmd.Dir = filepath.Dir(gomod)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/lunasentri: %w", err)
	}
	return bin, nil
}
