package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// devConfig configures "lunasentri dev".
type devConfig struct {
	AdminToken       string
	OfflineThreshold time.Duration
	LogLevel         string
	Executable       string        // the binary to run as "server"
	TempDir          string        // parent of the throwaway data dir; "" is os.TempDir()
	ReadyTimeout     time.Duration // how long to wait for /readyz; 0 skips the wait
	StopTimeout      time.Duration // SIGTERM → SIGKILL
	// TLS (issue 11): generate a CA and certificates in the data dir and
	// run the nodes with TLS, mutual TLS between them and a gossip key.
	TLS bool
	// tlsDir is set by runDev when TLS is on: ca.pem, node.pem, node-key.pem.
	tlsDir    string
	gossipKey string
}

// devNode is one node of the dev cluster.
type devNode struct {
	Name, HTTPAddr, RaftAddr, GossipAddr, DataDir string
	TLS                                           bool // issue 11: https
}

func (n devNode) URL() string {
	if n.TLS {
		return "https://" + n.HTTPAddr
	}
	return "http://" + n.HTTPAddr
}

// devNodes lays out the three loopback nodes: node{i} on 808{i}, 831{i}, 832{i}.
func devNodes(dataDir string) []devNode {
	nodes := make([]devNode, 3)
	for i := range nodes {
		n := i + 1
		nodes[i] = devNode{
			Name:       fmt.Sprintf("node%d", n),
			HTTPAddr:   fmt.Sprintf("127.0.0.1:%d", 8080+n),
			RaftAddr:   fmt.Sprintf("127.0.0.1:%d", 8310+n),
			GossipAddr: fmt.Sprintf("127.0.0.1:%d", 8320+n),
			DataDir:    filepath.Join(dataDir, fmt.Sprintf("node%d", n)),
		}
	}
	return nodes
}

// devServerArgs is the command line of node i's "server" child. The admin
// token goes through the environment, not the command line.
func devServerArgs(nodes []devNode, i int, cfg devConfig) []string {
	var join []string
	for j, n := range nodes {
		if j != i {
			join = append(join, n.GossipAddr)
		}
	}
	n := nodes[i]
	var tlsArgs []string
	if cfg.tlsDir != "" {
		tlsArgs = []string{
			"-tls-cert", filepath.Join(cfg.tlsDir, "node.pem"),
			"-tls-key", filepath.Join(cfg.tlsDir, "node-key.pem"),
			"-tls-ca", filepath.Join(cfg.tlsDir, "ca.pem"),
		}
	}
	return append([]string{"server",
		"-node-id", n.Name,
		"-data-dir", n.DataDir,
		"-http-addr", n.HTTPAddr,
		"-raft-addr", n.RaftAddr,
		"-gossip-addr", n.GossipAddr,
		"-bootstrap-expect", fmt.Sprint(len(nodes)),
		"-join", strings.Join(join, ","),
		"-offline-threshold", cfg.OfflineThreshold.String(),
		"-log-level", cfg.LogLevel,
		"-status-page-match", devStatusPageMatch,
	}, tlsArgs...)
}

// devStatusPageMatch: in the dev cluster, machines labelled public=true are
// on /status and have badges (issue 12).
const devStatusPageMatch = "public=true"

func (c *cli) cmdDev(ctx context.Context, args []string) error {
	cfg, err := c.devConfig(args)
	if err != nil {
		return err
	}
	return c.runDev(ctx, cfg)
}

func (c *cli) devConfig(args []string) (devConfig, error) {
	fs := newFlagSet("dev", "lunasentri dev [-admin-token T] [-offline-threshold 30s]",
		"Starts a three-node cluster on loopback (HTTP on 127.0.0.1:8081-8083) with a throwaway\n"+
			"data directory, as three child processes you can kill one by one. Ctrl-C stops them\n"+
			"and deletes the data.")
	token := fs.String("admin-token", "", "admin token (default: a random one)")
	threshold := fs.String("offline-threshold", "30s", "offline threshold of the cluster")
	logLevel := fs.String("log-level", "info", "log level of the nodes")
	withTLS := fs.Bool("tls", false, "run with TLS: a throwaway CA, https APIs, mutual TLS between the nodes, encrypted gossip")
	pos, err := c.parse(fs, args)
	if err != nil {
		return devConfig{}, err
	}
	if err := wantArgs("dev", pos); err != nil {
		return devConfig{}, err
	}
	d, err := time.ParseDuration(*threshold)
	if err != nil {
		return devConfig{}, usageErrorf("invalid duration %q for -offline-threshold", *threshold)
	}
	if d <= 0 {
		return devConfig{}, usageErrorf("invalid duration %q for -offline-threshold: must be positive", *threshold)
	}
	if *token == "" {
		*token = rand.Text()
	}
	exe, err := c.executable()
	if err != nil {
		return devConfig{}, fmt.Errorf("finding this executable: %w", err)
	}
	return devConfig{
		AdminToken:       *token,
		OfflineThreshold: d,
		LogLevel:         *logLevel,
		Executable:       exe,
		ReadyTimeout:     time.Minute,
		StopTimeout:      15 * time.Second,
		TLS:              *withTLS,
	}, nil
}

// devChild is one running node process.
type devChild struct {
	node devNode
	cmd  *exec.Cmd
	done chan struct{} // closed once the process was reaped
	err  error         // Wait's result, valid after done
}

// runDev runs the dev cluster until ctx is cancelled, then stops the
// children (SIGTERM, SIGKILL after StopTimeout) and deletes the data.
func (c *cli) runDev(ctx context.Context, cfg devConfig) (err error) {
	dataDir, err := os.MkdirTemp(cfg.TempDir, "lunasentri-dev-")
	if err != nil {
		return fmt.Errorf("creating the data directory: %w", err)
	}
	defer func() {
		if rerr := os.RemoveAll(dataDir); rerr != nil && err == nil {
			err = fmt.Errorf("removing %s: %w", dataDir, rerr)
		}
	}()

	logs := &lockedWriter{w: c.stderr}
	nodes := devNodes(dataDir)
	readyClient := &http.Client{Timeout: time.Second}
	if cfg.TLS {
		if readyClient, err = setUpDevTLS(&cfg, dataDir); err != nil {
			return err
		}
		for i := range nodes {
			nodes[i].TLS = true
		}
	}
	// A cluster secret of its own, so the dev nodes do not warn that it is
	// derived from the admin token (a production concern).
	secret := make([]byte, 24)
	if _, err := rand.Read(secret); err != nil {
		return err
	}
	clusterSecret := hex.EncodeToString(secret)
	children := make([]*devChild, len(nodes))
	defer func() { c.stopDevChildren(children, cfg.StopTimeout) }()
	stopped := make(chan struct{})
	defer close(stopped)
	exited := make(chan *devChild)
	// start runs node i's process; a restarted node keeps its data and
	// rejoins with its Raft state.
	start := func(i int) error {
		n := nodes[i]
		cmd := exec.Command(cfg.Executable, devServerArgs(nodes, i, cfg)...)
		cmd.Env = append(os.Environ(), "LUNASENTRI_ADMIN_TOKEN="+cfg.AdminToken, "LUNASENTRI_CLUSTER_SECRET="+clusterSecret)
		if cfg.gossipKey != "" {
			cmd.Env = append(cmd.Env, "LUNASENTRI_GOSSIP_KEY="+cfg.gossipKey)
		}
		lw := &lineWriter{prefix: n.Name + " | ", out: logs}
		cmd.Stdout, cmd.Stderr = lw, lw
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("starting %s: %w", n.Name, err)
		}
		ch := &devChild{node: n, cmd: cmd, done: make(chan struct{})}
		children[i] = ch
		go func() {
			ch.err = cmd.Wait()
			lw.Flush()
			close(ch.done)
			select {
			case exited <- ch:
			case <-stopped:
			}
		}()
		return nil
	}
	for i := range nodes {
		if err := start(i); err != nil {
			children = children[:i]
			return err
		}
	}
	c.printDevBanner(dataDir, children, cfg)

	readyCtx, cancelReady := context.WithCancel(ctx)
	defer cancelReady()
	ready := make(chan string, 1)
	if cfg.ReadyTimeout > 0 {
		go func() { ready <- waitDevReadyWith(readyCtx, readyClient, nodes, cfg.ReadyTimeout) }()
	}
	restart := c.devRestartRequests(stopped)

	for running := len(children); running > 0; {
		select {
		case <-ctx.Done():
			fmt.Fprintln(c.stdout, "Stopping the dev cluster…")
			return nil
		case ch := <-exited:
			running--
			hint := ""
			if restart != nil {
				hint = "; press Enter here to restart it (its data is kept)"
			}
			fmt.Fprintf(c.stderr, "lunasentri: %s (pid %d) exited: %s%s\n", ch.node.Name, ch.cmd.Process.Pid, exitText(ch.err), hint)
		case <-restart:
			for i, ch := range children {
				select {
				case <-ch.done:
				default:
					continue // still running
				}
				if err := start(i); err != nil {
					fmt.Fprintf(c.stderr, "lunasentri: %v\n", err)
					continue
				}
				running++
				fmt.Fprintf(c.stdout, "Restarted %s (pid %d) with its data; it rejoins the cluster.\n",
					nodes[i].Name, children[i].cmd.Process.Pid)
			}
		case leader := <-ready:
			c.printDevReady(leader, children)
		}
	}
	return errors.New("every dev node exited")
}

// devRestartRequests turns each line typed on stdin into a restart request
// for the dev nodes that exited; nil when there is no stdin.
func (c *cli) devRestartRequests(stopped <-chan struct{}) <-chan struct{} {
	if c.stdin == nil {
		return nil
	}
	out := make(chan struct{}, 1)
	go func() {
		sc := bufio.NewScanner(c.stdin)
		for sc.Scan() {
			select {
			case out <- struct{}{}:
			case <-stopped:
				return
			default: // a request is pending already
			}
		}
	}()
	return out
}

// stopDevChildren sends SIGTERM to the children still running, waits up to
// timeout, then kills the rest and waits for them.
func (c *cli) stopDevChildren(children []*devChild, timeout time.Duration) {
	for _, ch := range children {
		select {
		case <-ch.done:
		default:
			if err := ch.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				ch.cmd.Process.Kill() // no SIGTERM on this platform
			}
		}
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	expired := false
	for _, ch := range children {
		if !expired {
			select {
			case <-ch.done:
				continue
			case <-deadline.C:
				expired = true
			}
		}
		select {
		case <-ch.done:
			continue
		default:
		}
		fmt.Fprintf(c.stderr, "lunasentri: %s did not stop within %s; killing it\n", ch.node.Name, timeout)
		ch.cmd.Process.Kill()
		<-ch.done
	}
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

func (c *cli) printDevBanner(dataDir string, children []*devChild, cfg devConfig) {
	bin := displayName(cfg.Executable)
	var urls []string
	w := c.stdout
	fmt.Fprintf(w, "LunaSentri dev cluster: three nodes on loopback, data in %s (deleted on exit)\n\n", dataDir)
	for _, ch := range children {
		urls = append(urls, ch.node.URL())
		fmt.Fprintf(w, "  %s  %s  pid %d\n", ch.node.Name, ch.node.URL(), ch.cmd.Process.Pid)
	}
	fmt.Fprintf(w, "\n  admin token        %s\n  offline threshold  %s\n", cfg.AdminToken, cfg.OfflineThreshold)
	fmt.Fprintf(w, "  dashboard          %s/ui/  (sign in with the token above)\n", urls[0])
	fmt.Fprintf(w, "  status page        %s/status  (machines labelled %s)\n", urls[0], devStatusPageMatch)
	fmt.Fprintf(w, "\nTry it from another terminal:\n\n")
	fmt.Fprintf(w, "  export LUNASENTRI_ADDR=%s LUNASENTRI_ADMIN_TOKEN=%s\n", strings.Join(urls, ","), cfg.AdminToken)
	if cfg.tlsDir != "" {
		fmt.Fprintf(w, "  export LUNASENTRI_CACERT=%s    # TLS: trust the dev CA\n", filepath.Join(cfg.tlsDir, "ca.pem"))
	}
	fmt.Fprintf(w, "  %s status\n", bin)
	fmt.Fprintf(w, "  KEY=$(%s machines register web-1)    # prints the machine's API key, once\n", bin)
	fmt.Fprintf(w, "  %s agent -server %s -key \"$KEY\" -interval 5s\n", bin, strings.Join(urls, ","))
	fmt.Fprintf(w, "  %s machines list\n", bin)
	fmt.Fprintf(w, "  kill %d    # stop a node: the other two carry on (Enter here restarts it)\n", children[0].cmd.Process.Pid)
	fmt.Fprintf(w, "\nCtrl-C stops the cluster and deletes its data.\n\n")
}

func (c *cli) printDevReady(leader string, children []*devChild) {
	if leader == "" {
		fmt.Fprintln(c.stdout, "The cluster is not ready yet; see the node logs.")
		return
	}
	for _, ch := range children {
		if ch.node.Name == leader {
			fmt.Fprintf(c.stdout, "Cluster ready. Leader: %s (pid %d); kill it to watch a failover.\n", leader, ch.cmd.Process.Pid)
			return
		}
	}
	fmt.Fprintf(c.stdout, "Cluster ready. Leader: %s.\n", leader)
}

// waitDevReady polls every node's /readyz until all answer 200, then returns
// the leader's ID from /v1/status; "" if that did not happen within timeout.
func waitDevReady(ctx context.Context, nodes []devNode, timeout time.Duration) string {
	return waitDevReadyWith(ctx, &http.Client{Timeout: time.Second}, nodes, timeout)
}

// waitDevReadyWith is waitDevReady with a chosen client (TLS).
func waitDevReadyWith(ctx context.Context, hc *http.Client, nodes []devNode, timeout time.Duration) string {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	get := func(url string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		return hc.Do(req)
	}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		ready := 0
		for _, n := range nodes {
			if resp, err := get(n.URL() + "/readyz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					ready++
				}
			}
		}
		if ready == len(nodes) {
			if leader := devLeader(get, nodes[0]); leader != "" {
				return leader
			}
		}
		select {
		case <-ctx.Done():
			return ""
		case <-tick.C:
		}
	}
}

// devLeader asks a node for the leader's ID; "" if it does not know.
func devLeader(get func(string) (*http.Response, error), n devNode) string {
	resp, err := get(n.URL() + "/v1/status")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var st struct {
		LeaderID string `json:"leader_id"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&st) != nil {
		return ""
	}
	return st.LeaderID
}

// displayName is "lunasentri" when that is what PATH finds, else the path.
func displayName(exe string) string {
	if p, err := exec.LookPath("lunasentri"); err == nil {
		a, errA := filepath.EvalSymlinks(p)
		b, errB := filepath.EvalSymlinks(exe)
		if errA == nil && errB == nil && a == b {
			return "lunasentri"
		}
	}
	return exe
}

// lockedWriter serialises writes from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// lineWriter writes whole lines to out, each with prefix.
type lineWriter struct {
	mu     sync.Mutex
	prefix string
	out    io.Writer
	buf    []byte
}

// maxLine bounds a line kept in memory; longer ones are written in pieces.
const maxLine = 64 << 10

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 && len(w.buf) < maxLine {
			break
		}
		if i < 0 {
			i = len(w.buf) - 1
		}
		w.writeLine(w.buf[:i+1])
		w.buf = append(w.buf[:0], w.buf[i+1:]...)
	}
	return len(p), nil
}

// Flush writes a last line that had no newline.
func (w *lineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.writeLine(append(w.buf, '\n'))
		w.buf = w.buf[:0]
	}
}

func (w *lineWriter) writeLine(line []byte) {
	out := make([]byte, 0, len(w.prefix)+len(line))
	out = append(append(out, w.prefix...), line...)
	if out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	w.out.Write(out)
}
