package main

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lunasentri/lunasentri/cmd/lunasentri/internal/server"
)

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// result is the outcome of one command line.
type result struct {
	code           int
	stdout, stderr string
}

// runWith runs args through c with fresh output buffers.
func runWith(t *testing.T, c *cli, args ...string) result {
	t.Helper()
	var stdout, stderr syncBuffer
	c.stdout, c.stderr = &stdout, &stderr
	code := c.run(context.Background(), args)
	return result{code, stdout.String(), stderr.String()}
}

// oneErrorLine checks that stderr is exactly one "lunasentri: …" line.
func oneErrorLine(t *testing.T, r result, want string) {
	t.Helper()
	if r.stderr != "lunasentri: "+want+"\n" {
		t.Errorf("stderr = %q, want %q", r.stderr, "lunasentri: "+want+"\n")
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestVersion_Format(t *testing.T) {
	r := runWith(t, testCLI(nil), "version")
	want := "lunasentri dev (unknown, " + runtime.Version() + ")\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("got %d %q, want %q", r.code, r.stdout, want)
	}
}

func TestHelp_ListsCommands(t *testing.T) {
	r := runWith(t, testCLI(nil), "help")
	if r.code != 0 {
		t.Fatalf("exit %d", r.code)
	}
	for _, cmd := range []string{"server", "dev", "agent", "machines", "channels", "events", "status", "version", "help"} {
		if !strings.Contains(r.stdout, "  "+cmd+" ") {
			t.Errorf("usage does not list %s:\n%s", cmd, r.stdout)
		}
	}
	if r := runWith(t, testCLI(nil)); r.code != exitUsage || !strings.Contains(r.stderr, "Usage:") {
		t.Errorf("no args: %+v", r)
	}
	if r := runWith(t, testCLI(nil), "help", "server"); r.code != 0 || !strings.Contains(r.stdout, "-data-dir DIR") {
		t.Errorf("help server: %+v", r)
	}
	if r := runWith(t, testCLI(nil), "agent", "-h"); r.code != 0 || !strings.Contains(r.stdout, "-interval") || r.stderr != "" {
		t.Errorf("agent -h: %+v", r)
	}
}

func TestRun_UnknownCommand(t *testing.T) {
	r := runWith(t, testCLI(nil), "frobnicate")
	if r.code != exitUsage {
		t.Errorf("exit %d", r.code)
	}
	oneErrorLine(t, r, `unknown command "frobnicate" (run "lunasentri help")`)
}

func TestServerCommand_BuildsOptionsAndRuns(t *testing.T) {
	c := testCLI(map[string]string{"LUNASENTRI_ADMIN_TOKEN": "tok", "MACHINE_OFFLINE_THRESHOLD": "45s"})
	var got server.Options
	c.runServer = func(ctx context.Context, o server.Options) error { got = o; return nil }
	r := runWith(t, c, "server", "-data-dir", "/data", "-join", "a:1,b:2", "-bootstrap-expect", "3", "-log-level", "error")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if got.NodeID != "myhost" || got.DataDir != "/data" || got.AdminToken != "tok" || got.OfflineThreshold != 45*time.Second ||
		!reflect.DeepEqual(got.Join, []string{"a:1", "b:2"}) || got.BootstrapExpect != 3 || got.Logger == nil || got.Version != version {
		t.Errorf("options %+v", got)
	}
	if got.Logger.Name() != "lunasentri" || !got.Logger.IsError() || got.Logger.IsWarn() {
		t.Errorf("logger name %q, level not error", got.Logger.Name())
	}
}

func TestServerCommand_Errors(t *testing.T) {
	tests := []struct {
		args []string
		env  map[string]string
		code int
		want string
	}{
		{[]string{"server", "-admin-token", "t"}, nil, exitUsage, "-data-dir is required"},
		{[]string{"server", "-data-dir", "/d"}, nil, exitUsage, "-admin-token (or LUNASENTRI_ADMIN_TOKEN) is required"},
		{[]string{"server", "-data-dir", "/d", "-admin-token", "t", "-offline-threshold", "abc"}, nil, exitUsage, `invalid duration "abc" for -offline-threshold`},
		{[]string{"server", "-nope"}, nil, exitUsage, "server: flag provided but not defined: -nope"},
		{[]string{"server", "-data-dir", "/d", "-admin-token", "t", "extra"}, nil, exitUsage, `server: unexpected argument "extra"`},
		{[]string{"server", "-data-dir", "/d", "-admin-token", "t", "-log-level", "off"}, nil, exitUsage, `invalid log level "off" for -log-level: want trace, debug, info, warn or error`},
		{[]string{"server", "-data-dir", "/d"}, map[string]string{"LUNASENTRI_ADMIN_TOKEN": "t"}, exitFailure, "bind: address in use"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			c := testCLI(tt.env)
			ran := false
			c.runServer = func(context.Context, server.Options) error { ran = true; return errors.New("bind: address in use") }
			r := runWith(t, c, tt.args...)
			if r.code != tt.code {
				t.Errorf("exit %d, want %d", r.code, tt.code)
			}
			if tt.code == exitUsage && ran {
				t.Error("server ran despite a usage error")
			}
			// The server's own log lines are not part of the error line.
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			if last := lines[len(lines)-1]; last != "lunasentri: "+tt.want {
				t.Errorf("last stderr line %q, want %q", last, "lunasentri: "+tt.want)
			}
			if tt.code == exitUsage && len(lines) != 1 {
				t.Errorf("stderr has %d lines: %q", len(lines), r.stderr)
			}
		})
	}
}

func TestParse_Interleaved(t *testing.T) {
	c := testCLI(nil)
	fs := newFlagSet("x", "", "")
	a := fs.String("a", "", "")
	b := fs.Bool("b", false, "")
	labels := kvFlag{}
	fs.Var(labels, "l", "")
	pos, err := c.parse(fs, []string{"one", "-a", "x", "two", "-b", "-l", "k=v", "-l", "k2=v2", "--", "-three"})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(pos, []string{"one", "two", "-three"}) || *a != "x" || !*b || labels.String() != "k=v,k2=v2" {
		t.Errorf("pos %q a %q b %v labels %v", pos, *a, *b, labels)
	}
	if _, err := c.parse(fs, []string{"-l", "novalue"}); err == nil || !strings.Contains(err.Error(), `want key=value, got "novalue"`) {
		t.Errorf("got %v", err)
	}
}
