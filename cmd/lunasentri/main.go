// Command lunasentri is the single LunaSentri binary: a cluster node
// (server), a loopback three-node cluster for trying it out (dev), the
// heartbeat agent (agent) and the operator commands that talk to any node's
// HTTP API (machines, events, channels, status, members).
//
// This package is flag parsing and signals only: it builds a server.Options
// and calls server.Run, or runs the agent loop, or makes one API call.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/lunasentri/lunasentri/cmd/lunasentri/internal/server"
)

// Set at link time: -ldflags "-X main.version=1.2.3 -X main.revision=abc123".
var (
	version  = "dev"
	revision = "unknown"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // the command ran and failed (API error, network, server error)
	exitUsage   = 2 // bad flag, bad value, missing required setting
)

const usageText = `LunaSentri — a highly available heartbeat monitor.

Usage:
  lunasentri <command> [flags]

Cluster:
  server      run one cluster node (lunasentri server -h for its flags)
  dev         run a three-node cluster on loopback with a throwaway data dir
  agent       send heartbeats for this machine

Operate (talk to any node; -address / LUNASENTRI_ADDR, -token / LUNASENTRI_ADMIN_TOKEN, -json,
-ca-cert / LUNASENTRI_CACERT, -client-cert, -client-key for https):
  machines    list | show NAME | register NAME | delete NAME | rotate-key NAME
  channels    list | add webhook NAME | add telegram NAME | delete NAME | test NAME
  events      recent transitions, newest first
  status      this node's Raft status
  members     cluster members

Cluster operations (same flags):
  raft        list-peers | remove-peer ID
  leave       take the node at -address out of the cluster; it shuts down
  snapshot    save FILE | restore FILE (backup and restore of the whole state)
  token       create NAME -role read|write|admin | list | revoke ID (API tokens)

Other:
  keygen      print a new gossip encryption key for -gossip-key
  tls         ca create | cert create (a private CA and certificates for TLS)
  version     print the version
  help        print this help (help COMMAND for a command's flags)

Exit status: 0 success, 1 the command failed, 2 bad usage or configuration.
`

// usageError marks errors caused by how the command was called (exit 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usageErrorf(format string, a ...any) error {
	return usageError{fmt.Errorf(format, a...)}
}

// errHelpShown means a help text was printed on request (exit 0). It is a
// comparable struct so that errors.Is works without a package-level var.
type errHelpShown struct{}

func (errHelpShown) Error() string { return "help shown" }

// cli holds what the commands need from the outside world, so tests can
// replace any of it.
type cli struct {
	env    func(string) string
	stdout io.Writer
	stderr io.Writer

	runServer  func(context.Context, server.Options) error
	hostname   func() (string, error)
	executable func() (string, error)
	httpClient *http.Client
	now        func() time.Time
}

func newCLI(env func(string) string, stdout, stderr io.Writer) *cli {
	return &cli{
		env:        env,
		stdout:     stdout,
		stderr:     stderr,
		runServer:  server.Run,
		hostname:   os.Hostname,
		executable: os.Executable,
		httpClient: &http.Client{Timeout: 30 * time.Second},
		now:        time.Now,
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, restore the default handling: a second
		// Ctrl-C ends a shutdown that hangs.
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command line and returns the exit code.
func run(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) int {
	return newCLI(env, stdout, stderr).run(ctx, args)
}

func (c *cli) run(ctx context.Context, args []string) int {
	err := c.dispatch(ctx, args)
	switch {
	case err == nil, errors.Is(err, errHelpShown{}):
		return exitOK
	case errors.As(err, new(usageError)):
		fmt.Fprintf(c.stderr, "lunasentri: %s\n", err)
		return exitUsage
	default:
		fmt.Fprintf(c.stderr, "lunasentri: %s\n", err)
		return exitFailure
	}
}

func (c *cli) dispatch(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(c.stderr, usageText)
		return usageError{errors.New("no command given")}
	}
	name, rest := args[0], args[1:]
	switch name {
	case "server":
		return c.cmdServer(ctx, rest)
	case "dev":
		return c.cmdDev(ctx, rest)
	case "agent":
		return c.cmdAgent(ctx, rest)
	case "machines", "machine":
		return c.cmdMachines(ctx, rest)
	case "channels", "channel":
		return c.cmdChannels(ctx, rest)
	case "events":
		return c.cmdEvents(ctx, rest)
	case "status":
		return c.cmdStatus(ctx, rest)
	case "members":
		return c.cmdMembers(ctx, rest)
	case "raft":
		return c.cmdRaft(ctx, rest)
	case "leave":
		return c.cmdLeave(ctx, rest)
	case "snapshot":
		return c.cmdSnapshot(ctx, rest)
	case "keygen":
		return c.cmdKeygen(ctx, rest)
	case "tls": // issue 11
		return c.cmdTLS(ctx, rest)
	case "token", "tokens": // issue 11
		return c.cmdToken(ctx, rest)
	case "version", "-version", "--version":
		fmt.Fprintln(c.stdout, versionString())
		return nil
	case "help", "-h", "-help", "--help":
		if len(rest) > 0 && rest[0] != "help" {
			// "help machines" is "machines -h".
			return c.dispatch(ctx, append(rest, "-h"))
		}
		fmt.Fprint(c.stdout, usageText)
		return nil
	default:
		return usageErrorf("unknown command %q (run \"lunasentri help\")", name)
	}
}

func versionString() string {
	return fmt.Sprintf("lunasentri %s (%s, %s)", version, revision, runtime.Version())
}

// joinNonEmpty is strings.Join that skips blanks.
func joinNonEmpty(sep string, parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, sep)
}
