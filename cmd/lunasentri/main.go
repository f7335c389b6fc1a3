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
	stdin  io.Reader // nil: no input (dev cannot restart nodes on Enter)
	stdout io.Writer
	stderr io.Writer

	runServer  func(context.Context, server.Options) error
	hostname   func() (string, error)
	executable func() (string, error)
	httpClient *http.Client
	now        func() time.Time

	// global holds -address, -token and -json given before the command.
	global apiFlags
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
	c := newCLI(os.Getenv, os.Stdout, os.Stderr)
	c.stdin = os.Stdin
	code := c.run(ctx, os.Args[1:])
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
