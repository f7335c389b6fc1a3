package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const adminToken = "e2e-admin-token"

// binary is the lunasentri executable under test: $LUNASENTRI_BIN (make
// test sets it) or one built once for this run.
var binary string

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	binary = os.Getenv("LUNASENTRI_BIN")
	if binary == "" {
		dir, err := os.MkdirTemp("", "lunasentri-e2e-bin")
		if err != nil {
			return 0, err
		}
		defer os.RemoveAll(dir)
		binary = filepath.Join(dir, "lunasentri")
		cmd := exec.Command("go", "build", "-o", binary, "../cmd/lunasentri")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return 0, fmt.Errorf("build binary: %w", err)
		}
	}
	return m.Run(), nil
}

// proc is one server process of a procCluster.
type proc struct {
	name                string
	httpAddr, raftAddr  string
	gossipAddr, dataDir string
	logPath             string
	cmd                 *exec.Cmd
	exited              chan struct{}
	exitCode            int // of the last exit (-1: killed by a signal)
}

// procCluster is N lunasentri server processes on loopback.
type procCluster struct {
	t     testing.TB
	dir   string
	procs []*proc
	extra []string // flags every server gets
	env   []string
	mu    sync.Mutex
	// expect is -bootstrap-expect for the original servers; servers added
	// later join by gossip only.
	expect   int
	joinOnly map[int][]string
}

func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	var ls []net.Listener
	for len(ports) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// newProcCluster starts n servers exactly as docs/api.md describes them, plus
// the extra flags.
func newProcCluster(t testing.TB, n int, extra []string, env ...string) *procCluster {
	t.Helper()
	pc := &procCluster{t: t, dir: t.TempDir(), extra: extra, env: env, expect: n, joinOnly: map[int][]string{}}
	ports := freePorts(t, 3*n)
	var join []string
	for i := range n {
		p := &proc{
			name:       fmt.Sprintf("node%d", i+1),
			httpAddr:   fmt.Sprintf("127.0.0.1:%d", ports[3*i]),
			raftAddr:   fmt.Sprintf("127.0.0.1:%d", ports[3*i+1]),
			gossipAddr: fmt.Sprintf("127.0.0.1:%d", ports[3*i+2]),
		}
		p.dataDir = filepath.Join(pc.dir, p.name)
		p.logPath = filepath.Join(pc.dir, p.name+".log")
		join = append(join, p.gossipAddr)
		pc.procs = append(pc.procs, p)
	}
	for i := range pc.procs {
		pc.start(i, join)
	}
	t.Cleanup(func() {
		pc.stopAll()
		if t.Failed() {
			pc.dumpLogs()
		}
	})
	return pc
}

func (pc *procCluster) joinAddrs() []string {
	var out []string
	for _, p := range pc.procs {
		out = append(out, p.gossipAddr)
	}
	return out
}

func (pc *procCluster) start(i int, join []string) {
	pc.t.Helper()
	p := pc.procs[i]
	if join == nil {
		join = pc.joinAddrs()
	}
	args := []string{"server",
		"-node-id", p.name, "-data-dir", p.dataDir,
		"-http-addr", p.httpAddr, "-raft-addr", p.raftAddr, "-gossip-addr", p.gossipAddr,
		"-join", strings.Join(join, ","),
		"-admin-token", adminToken,
	}
	if only, ok := pc.joinOnly[i]; ok {
		args[len(args)-3] = strings.Join(only, ",")
	} else {
		args = append(args, "-bootstrap-expect", fmt.Sprint(pc.expect))
	}
	args = append(args, pc.extra...)
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		pc.t.Fatal(err)
	}
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), pc.env...)
	if err := cmd.Start(); err != nil {
		logf.Close()
		pc.t.Fatalf("start %s: %v", p.name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		pc.mu.Lock()
		p.exitCode = cmd.ProcessState.ExitCode()
		pc.mu.Unlock()
		close(exited)
	}()
	pc.mu.Lock()
	p.cmd, p.exited = cmd, exited
	pc.mu.Unlock()
}

// addJoiner starts one more server given only -join with one peer's gossip
// address (no -bootstrap-expect), as an operator adds a server.
func (pc *procCluster) addJoiner(peer int) int {
	pc.t.Helper()
	ports := freePorts(pc.t, 3)
	i := len(pc.procs)
	p := &proc{
		name:       fmt.Sprintf("node%d", i+1),
		httpAddr:   fmt.Sprintf("127.0.0.1:%d", ports[0]),
		raftAddr:   fmt.Sprintf("127.0.0.1:%d", ports[1]),
		gossipAddr: fmt.Sprintf("127.0.0.1:%d", ports[2]),
	}
	p.dataDir = filepath.Join(pc.dir, p.name)
	p.logPath = filepath.Join(pc.dir, p.name+".log")
	pc.mu.Lock()
	pc.procs = append(pc.procs, p)
	pc.joinOnly[i] = []string{pc.procs[peer].gossipAddr}
	pc.mu.Unlock()
	pc.start(i, nil)
	return i
}

// restart starts a stopped node again from its data dir.
func (pc *procCluster) restart(i int) { pc.start(i, nil) }

func (pc *procCluster) signal(i int, sig syscall.Signal) {
	pc.mu.Lock()
	p := pc.procs[i]
	cmd := p.cmd
	pc.mu.Unlock()
	if cmd != nil && cmd.Process != nil {
		_ = cmd.Process.Signal(sig)
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (pc *procCluster) kill(i int) {
	pc.signal(i, syscall.SIGCONT) // a frozen process must be able to die
	pc.signal(i, syscall.SIGKILL)
	pc.waitExit(i, 10*time.Second)
}

// stop sends SIGTERM (graceful shutdown) and waits.
func (pc *procCluster) stop(i int) {
	pc.signal(i, syscall.SIGCONT)
	pc.signal(i, syscall.SIGTERM)
	if !pc.waitExit(i, 30*time.Second) {
		pc.kill(i)
	}
}

func (pc *procCluster) waitExit(i int, d time.Duration) bool {
	pc.mu.Lock()
	p := pc.procs[i]
	ch := p.exited
	pc.mu.Unlock()
	if ch == nil {
		return true
	}
	select {
	case <-ch:
		pc.mu.Lock()
		p.cmd, p.exited = nil, nil
		pc.mu.Unlock()
		return true
	case <-time.After(d):
		return false
	}
}

func (pc *procCluster) running(i int) bool {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return pc.procs[i].cmd != nil
}

func (pc *procCluster) stopAll() {
	for i := range pc.procs {
		if pc.running(i) {
			pc.stop(i)
		}
	}
}

func (pc *procCluster) dumpLogs() {
	for _, p := range pc.procs {
		data, err := os.ReadFile(p.logPath)
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > 60 {
			lines = lines[len(lines)-60:]
		}
		pc.t.Logf("---- last log lines of %s ----\n%s", p.name, strings.Join(lines, "\n"))
	}
}

func (pc *procCluster) url(i int) string { return "http://" + pc.procs[i].httpAddr }

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

// api does one request; it returns the status (0 when the node is
// unreachable) and decodes JSON into out.
func api(method, url, token string, body any, out any) int {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, _ := json.Marshal(b)
		rd = bytes.NewReader(data)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil {
		_ = json.Unmarshal(data, out)
	}
	return resp.StatusCode
}

type status struct {
	NodeID    string `json:"node_id"`
	RaftState string `json:"raft_state"`
	LeaderID  string `json:"leader_id"`
	Term      uint64 `json:"term"`
}

func (pc *procCluster) status(i int) (status, bool) {
	var s status
	return s, api("GET", pc.url(i)+"/v1/status", "", nil, &s) == http.StatusOK
}

// leader waits until the running nodes agree on one leader and returns it.
func (pc *procCluster) leader(timeout time.Duration) int {
	pc.t.Helper()
	idx := -1
	waitFor(pc.t, timeout, "an agreed leader", func() bool {
		idx = -1
		agreed := ""
		for i := range pc.procs {
			if !pc.running(i) {
				continue
			}
			s, ok := pc.status(i)
			if !ok || s.LeaderID == "" || (agreed != "" && s.LeaderID != agreed) {
				return false
			}
			agreed = s.LeaderID
			if s.RaftState == "Leader" {
				idx = i
			}
		}
		return idx >= 0
	})
	return idx
}

func (pc *procCluster) follower(except int) int {
	for i := range pc.procs {
		if i != except && pc.running(i) {
			if s, ok := pc.status(i); ok && s.RaftState == "Follower" {
				return i
			}
		}
	}
	pc.t.Fatal("no running follower")
	return -1
}

type machine struct {
	ID       string     `json:"id"`
	Name     string     `json:"name"`
	Status   string     `json:"status"`
	LastSeen *time.Time `json:"last_seen"`
}

type delivery struct {
	Channel   string `json:"channel"`
	State     string `json:"state"`
	Attempts  int    `json:"attempts"`
	LastError string `json:"last_error"`
	Digest    string `json:"digest"` // the digest a grouped transition went out in
}

type event struct {
	ID         string     `json:"id"`
	Type       string     `json:"type"`
	OccurredAt time.Time  `json:"occurred_at"`
	Machine    machine    `json:"machine"`
	Deliveries []delivery `json:"deliveries"`
}

func (pc *procCluster) register(i int, body map[string]any) string {
	pc.t.Helper()
	var out struct {
		APIKey string `json:"api_key"`
	}
	var code int
	waitFor(pc.t, 10*time.Second, "register "+fmt.Sprint(body["name"]), func() bool {
		code = api("POST", pc.url(i)+"/v1/machines", adminToken, body, &out)
		return code == http.StatusCreated || code == http.StatusConflict
	})
	if code != http.StatusCreated {
		pc.t.Fatalf("register %v: %d", body["name"], code)
	}
	return out.APIKey
}

func (pc *procCluster) machine(i int, name string) (machine, bool) {
	var out struct {
		Machine machine `json:"machine"`
	}
	ok := api("GET", pc.url(i)+"/v1/machines/"+name, adminToken, nil, &out) == http.StatusOK
	return out.Machine, ok
}

func (pc *procCluster) events(i int) ([]event, bool) {
	var out struct {
		Events []event `json:"events"`
	}
	ok := api("GET", pc.url(i)+"/v1/events?limit=10000", adminToken, nil, &out) == http.StatusOK
	return out.Events, ok
}

// beat sends one heartbeat to the first node (from start, round-robin) that
// accepts it, as an agent does; it reports whether any did.
func (pc *procCluster) beat(key string, start int) bool {
	for k := range pc.procs {
		i := (start + k) % len(pc.procs)
		if api("POST", pc.url(i)+"/v1/heartbeat", key, "{}", nil) == http.StatusAccepted {
			return true
		}
	}
	return false
}

// beater keeps a machine beating through all nodes until stopped.
func (pc *procCluster) beater(key string, every time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for n := 0; ; n++ {
			pc.beat(key, n)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() { cancel(); <-done }
}

// runCLI runs the lunasentri binary with args and returns its output.
func runCLI(t testing.TB, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary, args...).CombinedOutput()
	return string(out), err
}
