package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lunasentri/lunasentri/cmd/lunasentri/internal/server"
)

// devChildEnv makes the test binary act as a "lunasentri server" child of
// runDev: it parses the real server command line, but instead of running a
// node it prints what it would run and waits for a signal.
const devChildEnv = "LUNASENTRI_TEST_DEV_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(devChildEnv); mode != "" {
		os.Exit(devChildMain(mode))
	}
	os.Exit(m.Run())
}

func devChildMain(mode string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c := newCLI(os.Getenv, os.Stdout, os.Stderr)
	c.runServer = func(ctx context.Context, o server.Options) error {
		fmt.Printf("serving %s http=%s raft=%s gossip=%s data=%s token=%s join=%s threshold=%s expect=%d\n",
			o.NodeID, o.HTTPAddr, o.RaftAddr, o.GossipAddr, filepath.Base(o.DataDir), o.AdminToken,
			strings.Join(o.Join, ","), o.OfflineThreshold, o.BootstrapExpect)
		<-ctx.Done()
		if mode == "stubborn" {
			time.Sleep(time.Hour) // ignores SIGTERM: runDev must SIGKILL it
		}
		fmt.Println("bye")
		return nil
	}
	return c.run(ctx, os.Args[1:])
}

// devStdin maps a dev test's cli to the writer of its stdin.
var devStdin sync.Map

// startDev runs runDev with the test binary as the node executable.
func startDev(t *testing.T, mode string, stopTimeout time.Duration) (c *cli, stdout, stderr *syncBuffer, tmp string, stop func() error) {
	t.Helper()
	t.Setenv(devChildEnv, mode)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tmp = t.TempDir()
	stdout, stderr = &syncBuffer{}, &syncBuffer{}
	c = testCLI(nil)
	c.stdout, c.stderr = stdout, stderr
	// Lines written to devStdin[c] reach runDev as if typed.
	pr, pw := io.Pipe()
	c.stdin = pr
	devStdin.Store(c, pw)
	t.Cleanup(func() { pw.Close() })
	cfg := devConfig{AdminToken: "devtok", OfflineThreshold: 30 * time.Second, LogLevel: "info",
		Executable: exe, TempDir: tmp, StopTimeout: stopTimeout}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.runDev(ctx, cfg) }()
	stop = func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(20 * time.Second):
			t.Fatal("runDev did not return within 20s of cancel")
			return nil
		}
	}
	return c, stdout, stderr, tmp, stop
}

func TestDev_StartsThreeNodesAndCleansUp(t *testing.T) {
	c, stdout, stderr, tmp, stop := startDev(t, "ok", 10*time.Second)
	waitFor(t, "three nodes serving", 20*time.Second, func() bool { return strings.Count(stderr.String(), "| serving ") == 3 })

	logs := stderr.String()
	for _, want := range []string{
		"node1 | serving node1 http=127.0.0.1:8081 raft=127.0.0.1:8311 gossip=127.0.0.1:8321 data=node1 token=devtok join=127.0.0.1:8322,127.0.0.1:8323 threshold=30s expect=3\n",
		"node2 | serving node2 http=127.0.0.1:8082 raft=127.0.0.1:8312 gossip=127.0.0.1:8322 data=node2 token=devtok join=127.0.0.1:8321,127.0.0.1:8323 threshold=30s expect=3\n",
		"node3 | serving node3 http=127.0.0.1:8083 raft=127.0.0.1:8313 gossip=127.0.0.1:8323 data=node3 token=devtok join=127.0.0.1:8321,127.0.0.1:8322 threshold=30s expect=3\n",
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
	out := stdout.String()
	for _, want := range []string{
		"export LUNASENTRI_ADDR=http://127.0.0.1:8081,http://127.0.0.1:8082,http://127.0.0.1:8083 LUNASENTRI_ADMIN_TOKEN=devtok\n",
		"machines register web-1",
		"agent -server http://127.0.0.1:8081,http://127.0.0.1:8082,http://127.0.0.1:8083 -key \"$KEY\" -interval 5s\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("banner lacks %q:\n%s", want, out)
		}
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 1 {
		t.Errorf("want one data dir in %s, got %d", tmp, len(entries))
	}

	// Killing one node leaves the others running.
	m := regexp.MustCompile(`node2  http://127\.0\.0\.1:8082  pid (\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no pid for node2 in:\n%s", out)
	}
	pid, _ := strconv.Atoi(m[1])
	p, err := os.FindProcess(pid)
	if err != nil {
		t.Fatal(err)
	}
	p.Kill()
	waitFor(t, "node2's exit to be reported", 10*time.Second, func() bool {
		return strings.Contains(stderr.String(), fmt.Sprintf("lunasentri: node2 (pid %d) exited: signal: killed; press Enter here to restart it (its data is kept)\n", pid))
	})

	// Enter restarts it, with the same data directory.
	w, _ := devStdin.Load(c)
	io.WriteString(w.(*io.PipeWriter), "\n")
	waitFor(t, "node2 restarted", 10*time.Second, func() bool {
		return strings.Contains(stdout.String(), "Restarted node2 (pid ") && strings.Count(stderr.String(), "node2 | serving node2 ") == 2
	})

	if err := stop(); err != nil {
		t.Fatalf("runDev: %v", err)
	}
	logs = stderr.String()
	if !strings.Contains(logs, "node1 | bye\n") || !strings.Contains(logs, "node3 | bye\n") {
		t.Errorf("nodes did not stop gracefully:\n%s", logs)
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Errorf("data dir not removed: %v", entries)
	}
}

func TestDev_KillsNodesThatIgnoreSIGTERM(t *testing.T) {
	_, _, stderr, tmp, stop := startDev(t, "stubborn", 300*time.Millisecond)
	waitFor(t, "three nodes serving", 20*time.Second, func() bool { return strings.Count(stderr.String(), "| serving ") == 3 })
	if err := stop(); err != nil {
		t.Fatalf("runDev: %v", err)
	}
	if n := strings.Count(stderr.String(), "did not stop within 300ms; killing it"); n != 3 {
		t.Errorf("%d nodes killed, want 3:\n%s", n, stderr)
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Errorf("data dir not removed: %v", entries)
	}
}

func TestDevServerArgs_ParseIntoOptions(t *testing.T) {
	nodes := devNodes("/tmp/dev")
	cfg := devConfig{OfflineThreshold: 45 * time.Second, LogLevel: "debug"}
	for i, n := range nodes {
		args := devServerArgs(nodes, i, cfg)
		if args[0] != "server" {
			t.Fatalf("args %q", args)
		}
		c := testCLI(map[string]string{"LUNASENTRI_ADMIN_TOKEN": "devtok"})
		c.stderr = &bytes.Buffer{}
		opts, err := c.serverOptions(args[1:])
		if err != nil {
			t.Fatalf("node %d: %v", i+1, err)
		}
		var join []string
		for j, o := range nodes {
			if j != i {
				join = append(join, o.GossipAddr)
			}
		}
		name := fmt.Sprintf("node%d", i+1)
		if opts.NodeID != name || opts.DataDir != filepath.Join("/tmp/dev", name) ||
			opts.HTTPAddr != fmt.Sprintf("127.0.0.1:808%d", i+1) || opts.RaftAddr != fmt.Sprintf("127.0.0.1:831%d", i+1) ||
			opts.GossipAddr != fmt.Sprintf("127.0.0.1:832%d", i+1) || opts.BootstrapExpect != 3 ||
			!reflect.DeepEqual(opts.Join, join) || opts.AdminToken != "devtok" || opts.OfflineThreshold != 45*time.Second ||
			!opts.Logger.IsDebug() {
			t.Errorf("node %d options %+v", i+1, opts)
		}
		if n.URL() != "http://"+opts.HTTPAddr {
			t.Errorf("URL %s", n.URL())
		}
	}
}

func TestDevConfig_Flags(t *testing.T) {
	c := testCLI(nil)
	c.executable = func() (string, error) { return "/bin/lunasentri", nil }
	a, err := c.devConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := c.devConfig(nil)
	if a.OfflineThreshold != 30*time.Second || len(a.AdminToken) < 20 || a.AdminToken == b.AdminToken || a.Executable != "/bin/lunasentri" {
		t.Errorf("defaults %+v / %+v", a, b)
	}
	a, err = c.devConfig([]string{"-admin-token", "fixed", "-offline-threshold", "10s"})
	if err != nil || a.AdminToken != "fixed" || a.OfflineThreshold != 10*time.Second {
		t.Errorf("flags %+v %v", a, err)
	}
	r := runWith(t, testCLI(nil), "dev", "-offline-threshold", "0")
	if r.code != exitUsage {
		t.Errorf("exit %d", r.code)
	}
	oneErrorLine(t, r, `invalid duration "0" for -offline-threshold: must be positive`)
}

func TestLineWriter_PrefixesWholeLines(t *testing.T) {
	var out bytes.Buffer
	w := &lineWriter{prefix: "n1 | ", out: &out}
	w.Write([]byte("hel"))
	w.Write([]byte("lo\nwor"))
	w.Write([]byte("ld\n\nlast"))
	if got := out.String(); got != "n1 | hello\nn1 | world\nn1 | \n" {
		t.Errorf("got %q", got)
	}
	w.Flush()
	if got := out.String(); !strings.HasSuffix(got, "n1 | last\n") {
		t.Errorf("after flush %q", got)
	}
	out.Reset()
	w.Write(bytes.Repeat([]byte("x"), maxLine+10))
	if got := out.String(); !strings.HasPrefix(got, "n1 | xxx") || len(got) != len("n1 | ")+maxLine+10+1 {
		t.Errorf("long line: %d bytes written", len(got))
	}
}
