package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
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

	"github.com/lunasentri/lunasentri/internal/testenv"
)

// A real network partition: three servers, each in its own Linux network
// namespace, plugged by veth pairs into a bridge that lives in a fourth
// ("switch") namespace; the test process (fleet, observer, receiver) sits
// in the root namespace with its own veth into the same bridge. Every
// address is in 10.250.X.0/24 and exists only inside this machine, in
// namespaces the test creates and deletes. Cutting the leader off is two
// DROP rules in its own namespace (nothing changes in the root namespace):
// it can no longer talk to the other two servers, but agents and receivers
// still reach it — the case where agents must be told 503 to move on.

// netTestbed is the namespaces, bridge and addresses of one run.
type netTestbed struct {
	t      testing.TB
	id     string
	sw     string   // switch namespace
	ns     []string // one per node
	ips    []string // node addresses
	hostIP string   // the root namespace's address
	rootIf string
	fw     string // "iptables" or "nft"
}

// sh runs a command and returns its combined output.
func sh(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// newNetTestbed builds the network, or skips the test when it cannot
// (not root, no `ip netns`, no firewall tool); with CI set it fails
// instead (testenv.MissingCapability).
func newNetTestbed(t testing.TB, nodes int) *netTestbed {
	if os.Geteuid() != 0 {
		testenv.MissingCapability(t, "network partition test needs root (network namespaces, veth, iptables)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		testenv.MissingCapability(t, "network partition test needs iproute2's ip: %v", err)
	}
	tb := &netTestbed{t: t, id: fmt.Sprintf("%05x", rand.Uint32()&0xfffff)}
	switch {
	case lookPath("iptables"):
		tb.fw = "iptables"
	case lookPath("nft"):
		tb.fw = "nft"
	default:
		testenv.MissingCapability(t, "network partition test needs iptables or nft")
	}
	// A /24 no route of this machine uses yet.
	routes, _ := sh("ip", "-4", "route", "show", "table", "all")
	x := -1
	for _, n := range rand.Perm(250) {
		if !strings.Contains(routes, fmt.Sprintf("10.250.%d.", n+2)) {
			x = n + 2
			break
		}
	}
	if x < 0 {
		testenv.MissingCapability(t, "no free 10.250.X.0/24 for the test network")
	}
	tb.sw = "lsc" + tb.id + "sw"
	if out, err := sh("ip", "netns", "add", tb.sw); err != nil {
		testenv.MissingCapability(t, "ip netns add failed (%v: %s): no network namespaces here", err, out)
	}
	t.Cleanup(tb.teardown)
	tb.hostIP = fmt.Sprintf("10.250.%d.1", x)
	tb.rootIf = "lsc" + tb.id + "h"
	must := func(args ...string) {
		t.Helper()
		if out, err := sh(args...); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	must("ip", "-n", tb.sw, "link", "set", "lo", "up")
	must("ip", "-n", tb.sw, "link", "add", "br0", "type", "bridge")
	must("ip", "-n", tb.sw, "link", "set", "br0", "up")
	// The root namespace's port.
	must("ip", "link", "add", tb.rootIf, "type", "veth", "peer", "name", "ph", "netns", tb.sw)
	must("ip", "-n", tb.sw, "link", "set", "ph", "master", "br0", "up")
	must("ip", "addr", "add", tb.hostIP+"/24", "dev", tb.rootIf)
	must("ip", "link", "set", tb.rootIf, "up")
	for i := range nodes {
		ns := fmt.Sprintf("lsc%sn%d", tb.id, i+1)
		must("ip", "netns", "add", ns)
		tb.ns = append(tb.ns, ns)
		ip := fmt.Sprintf("10.250.%d.%d", x, 11+i)
		tb.ips = append(tb.ips, ip)
		port := fmt.Sprintf("p%d", i+1)
		must("ip", "-n", tb.sw, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
		must("ip", "-n", tb.sw, "link", "set", port, "master", "br0", "up")
		must("ip", "-n", ns, "link", "set", "lo", "up")
		must("ip", "-n", ns, "addr", "add", ip+"/24", "dev", "eth0")
		must("ip", "-n", ns, "link", "set", "eth0", "up")
	}
	t.Logf("test network 10.250.%d.0/24: host %s, nodes %v, firewall %s", x, tb.hostIP, tb.ips, tb.fw)
	return tb
}

func lookPath(name string) bool { _, err := exec.LookPath(name); return err == nil }

// teardown deletes everything newNetTestbed made; it runs even when the
// test failed half way.
func (tb *netTestbed) teardown() {
	for _, ns := range append(append([]string(nil), tb.ns...), tb.sw) {
		if out, err := sh("ip", "netns", "del", ns); err != nil {
			tb.t.Logf("cleanup: ip netns del %s: %v: %s", ns, err, out)
		}
	}
	// Deleting the switch namespace destroys the root port's peer and so
	// the port; make sure.
	if _, err := sh("ip", "link", "show", tb.rootIf); err == nil {
		_, _ = sh("ip", "link", "del", tb.rootIf)
	}
}

// isolate cuts node i off from the other nodes (both directions), in its
// own namespace only; the host address stays reachable.
func (tb *netTestbed) isolate(i int) {
	tb.t.Helper()
	ns := tb.ns[i]
	var cmds [][]string
	switch tb.fw {
	case "iptables":
		for j, ip := range tb.ips {
			if j == i {
				continue
			}
			cmds = append(cmds,
				[]string{"ip", "netns", "exec", ns, "iptables", "-w", "-I", "INPUT", "-s", ip, "-j", "DROP"},
				[]string{"ip", "netns", "exec", ns, "iptables", "-w", "-I", "OUTPUT", "-d", ip, "-j", "DROP"})
		}
	case "nft":
		var peers []string
		for j, ip := range tb.ips {
			if j != i {
				peers = append(peers, ip)
			}
		}
		set := "{ " + strings.Join(peers, ", ") + " }"
		cmds = [][]string{
			{"ip", "netns", "exec", ns, "nft", "add", "table", "inet", "lschaos"},
			{"ip", "netns", "exec", ns, "nft", "add", "chain", "inet", "lschaos", "in", "{ type filter hook input priority 0; }"},
			{"ip", "netns", "exec", ns, "nft", "add", "chain", "inet", "lschaos", "out", "{ type filter hook output priority 0; }"},
			{"ip", "netns", "exec", ns, "nft", "add", "rule", "inet", "lschaos", "in", "ip", "saddr", set, "drop"},
			{"ip", "netns", "exec", ns, "nft", "add", "rule", "inet", "lschaos", "out", "ip", "daddr", set, "drop"},
		}
	}
	for _, c := range cmds {
		if out, err := sh(c...); err != nil {
			tb.t.Fatalf("%s: %v: %s", strings.Join(c, " "), err, out)
		}
	}
}

// heal removes node i's DROP rules.
func (tb *netTestbed) heal(i int) {
	tb.t.Helper()
	var c []string
	switch tb.fw {
	case "iptables":
		c = []string{"ip", "netns", "exec", tb.ns[i], "iptables", "-w", "-F"}
	case "nft":
		c = []string{"ip", "netns", "exec", tb.ns[i], "nft", "delete", "table", "inet", "lschaos"}
	}
	if out, err := sh(c...); err != nil {
		tb.t.Fatalf("%s: %v: %s", strings.Join(c, " "), err, out)
	}
}

// nsCluster runs one server per namespace of a netTestbed, started with
// `ip netns exec NS lunasentri server …` (ip execs the server, so the
// process we hold is the server itself).
type nsCluster struct {
	t     testing.TB
	tb    *netTestbed
	dir   string
	extra []string
	mu    sync.Mutex
	cmds  []*exec.Cmd
	done  []chan struct{}
}

func newNSCluster(t testing.TB, tb *netTestbed, extra []string) *nsCluster {
	c := &nsCluster{t: t, tb: tb, dir: t.TempDir(), extra: extra,
		cmds: make([]*exec.Cmd, len(tb.ns)), done: make([]chan struct{}, len(tb.ns))}
	for i := range tb.ns {
		c.restartNode(i)
	}
	// Registered after the testbed's teardown, so it runs first: the
	// servers stop before their namespaces go.
	t.Cleanup(func() {
		for i := range tb.ns {
			if c.isRunning(i) {
				c.stopNode(i)
			}
		}
		if t.Failed() {
			for i := range tb.ns {
				data, _ := os.ReadFile(c.logPath(i))
				lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
				if len(lines) > 60 {
					lines = lines[len(lines)-60:]
				}
				t.Logf("---- last log lines of %s ----\n%s", c.nodeName(i), strings.Join(lines, "\n"))
			}
		}
	})
	return c
}

func (c *nsCluster) size() int             { return len(c.tb.ns) }
func (c *nsCluster) nodeName(i int) string { return fmt.Sprintf("node%d", i+1) }
func (c *nsCluster) nodeURL(i int) string  { return "http://" + net.JoinHostPort(c.tb.ips[i], "8080") }
func (c *nsCluster) logPath(i int) string  { return filepath.Join(c.dir, c.nodeName(i)+".log") }
func (c *nsCluster) nodeIndexOfIP(ip string) int {
	for i, x := range c.tb.ips {
		if x == ip {
			return i
		}
	}
	return -1
}

func (c *nsCluster) restartNode(i int) {
	c.t.Helper()
	var join []string
	for _, ip := range c.tb.ips {
		join = append(join, net.JoinHostPort(ip, "8301"))
	}
	ip := c.tb.ips[i]
	args := []string{"netns", "exec", c.tb.ns[i], binary, "server",
		"-node-id", c.nodeName(i), "-data-dir", filepath.Join(c.dir, c.nodeName(i)),
		"-http-addr", net.JoinHostPort(ip, "8080"), "-raft-addr", net.JoinHostPort(ip, "8300"),
		"-gossip-addr", net.JoinHostPort(ip, "8301"),
		"-bootstrap-expect", fmt.Sprint(len(c.tb.ns)), "-join", strings.Join(join, ","),
		"-admin-token", adminToken,
	}
	args = append(args, c.extra...)
	logf, err := os.OpenFile(c.logPath(i), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command("ip", args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		c.t.Fatalf("start %s: %v", c.nodeName(i), err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	c.mu.Lock()
	c.cmds[i], c.done[i] = cmd, done
	c.mu.Unlock()
}

func (c *nsCluster) isRunning(i int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cmds[i] != nil
}

func (c *nsCluster) pid(i int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmds[i] != nil && c.cmds[i].Process != nil {
		return c.cmds[i].Process.Pid
	}
	return 0
}

func (c *nsCluster) signalNode(i int, sig syscall.Signal) {
	c.mu.Lock()
	cmd := c.cmds[i]
	c.mu.Unlock()
	if cmd != nil && cmd.Process != nil {
		_ = cmd.Process.Signal(sig)
	}
}

func (c *nsCluster) wait(i int, d time.Duration) bool {
	c.mu.Lock()
	ch := c.done[i]
	c.mu.Unlock()
	if ch == nil {
		return true
	}
	select {
	case <-ch:
		c.mu.Lock()
		c.cmds[i], c.done[i] = nil, nil
		c.mu.Unlock()
		return true
	case <-time.After(d):
		return false
	}
}

func (c *nsCluster) killNode(i int) {
	c.signalNode(i, syscall.SIGCONT)
	c.signalNode(i, syscall.SIGKILL)
	c.wait(i, 10*time.Second)
}

func (c *nsCluster) stopNode(i int) {
	c.signalNode(i, syscall.SIGCONT)
	c.signalNode(i, syscall.SIGTERM)
	if !c.wait(i, 30*time.Second) {
		c.killNode(i)
	}
}

// testChaosPartition cuts the leader off from the other two while the
// fleet beats: the majority elects, detects and alerts; the cut-off node
// refuses heartbeats (503) so agents move on, and sends nothing, during the
// partition or after it heals; no alert is repeated after the heal.
func testChaosPartition(t *testing.T, p chaosParams) {
	tb := newNetTestbed(t, 3)
	c := newNSCluster(t, tb, p.serverFlags())
	hook := newChaosHook(t, "chaos-partition-secret-012345", net.JoinHostPort(tb.hostIP, "0"), func(remote string) string {
		host, _, _ := net.SplitHostPort(remote)
		if i := c.nodeIndexOfIP(host); i >= 0 {
			return c.nodeName(i)
		}
		return ""
	})
	cut := p.threshold + 5*time.Second
	period := cut + 8*time.Second
	rounds := max(1, p.rounds/2)
	runChaos(t, "partition", c, hook, p, time.Duration(rounds)*period, func(r *chaosRun) {
		r.dupsAllowed = true
		for k := range rounds {
			r.at(r.chaosFrom + time.Duration(k)*period)
			l := r.leader()
			_, lt := r.obs.leaderNow()
			r.obs.act(l, "isolate", func() { tb.isolate(l) })
			cutAt := time.Now()
			r.staleWindow(l, cutAt, lt)
			nl := r.obs.waitLeader(t, 30*time.Second, lt, l)
			t.Logf("cut %s off; %s leads after %s", c.nodeName(l), c.nodeName(nl), time.Since(cutAt).Round(time.Millisecond))

			// Agents can still reach the cut-off node: it must send them on.
			var key string
			for _, m := range r.fleet.machines {
				if m.plan.kind == "steady" {
					key = m.key
					break
				}
			}
			waitFor(t, 10*time.Second, c.nodeName(l)+" refusing heartbeats with 503", func() bool {
				return api("POST", c.nodeURL(l)+"/v1/heartbeat", key, "{}", nil) == http.StatusServiceUnavailable
			})
			t.Logf("%s refuses heartbeats %s after the cut", c.nodeName(l), time.Since(cutAt).Round(time.Millisecond))

			sleepUntil(context.Background(), cutAt.Add(cut))
			r.obs.act(l, "heal", func() { tb.heal(l) })
			leaderName := c.nodeName(nl)
			waitFor(t, 30*time.Second, c.nodeName(l)+" follows again after the heal", func() bool {
				var s status
				return api("GET", c.nodeURL(l)+"/v1/status", "", nil, &s) == http.StatusOK && s.LeaderID != "" && s.RaftState == "Follower" && (s.LeaderID == leaderName || s.Term > lt)
			})
		}
	})
}
