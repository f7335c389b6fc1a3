package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
)

// testEvent is one line of `go test -json` (cmd/test2json).
type testEvent struct {
	Action     string
	Package    string
	Test       string
	Output     string
	ImportPath string // build-output, build-fail
}

// skipped is one skipped test and what it said.
type skipped struct {
	pkg, test, reason string
}

// summary filters a test2json stream into plain go test output.
type summary struct {
	out     io.Writer
	buf     map[string][]string // package/test → its output lines so far
	skips   []skipped
	failed  bool
	nonJSON int
}

func newSummary(out io.Writer) *summary {
	return &summary{out: out, buf: map[string][]string{}}
}

func (s *summary) line(text string) {
	var ev testEvent
	if err := json.Unmarshal([]byte(text), &ev); err != nil || ev.Action == "" {
		// Not an event (go test printed something itself): pass it on.
		fmt.Fprintln(s.out, text)
		s.nonJSON++
		return
	}
	key := ev.Package + "/" + ev.Test
	switch {
	case ev.Action == "build-output":
		fmt.Fprint(s.out, ev.Output)
	case ev.Action == "build-fail":
		s.failed = true
	case ev.Test == "" && ev.Action == "output":
		// The package's own lines: "ok  pkg 1.2s", "FAIL", "FAIL pkg", a
		// panic outside any test. A plain go test prints no PASS line.
		if ev.Output != "PASS\n" {
			fmt.Fprint(s.out, ev.Output)
		}
	case ev.Test == "" && ev.Action == "fail":
		s.failed = true
	case ev.Test == "":
	case ev.Action == "output":
		if strings.HasPrefix(ev.Output, "=== ") {
			return // RUN, PAUSE, CONT, NAME: -v's bookkeeping
		}
		s.buf[key] = append(s.buf[key], ev.Output)
	case ev.Action == "fail":
		for _, l := range s.buf[key] {
			fmt.Fprint(s.out, l)
		}
		delete(s.buf, key)
	case ev.Action == "skip":
		s.skips = append(s.skips, skipped{pkg: ev.Package, test: ev.Test, reason: skipReason(s.buf[key])})
		delete(s.buf, key)
	case ev.Action == "pass":
		delete(s.buf, key)
	}
}

// skipReason is the last line a skipped test logged before its
// "--- SKIP" line (what it passed to t.Skip), trimmed.
func skipReason(lines []string) string {
	reason := ""
	for _, l := range lines {
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "--- SKIP") {
			reason = t
		}
	}
	return reason
}

// report prints the skipped tests.
func (s *summary) report() {
	if len(s.skips) == 0 {
		fmt.Fprintln(s.out, "skipped tests: 0")
		return
	}
	sort.Slice(s.skips, func(i, j int) bool {
		if s.skips[i].pkg != s.skips[j].pkg {
			return s.skips[i].pkg < s.skips[j].pkg
		}
		return s.skips[i].test < s.skips[j].test
	})
	fmt.Fprintf(s.out, "skipped tests: %d\n", len(s.skips))
	for _, k := range s.skips {
		fmt.Fprintf(s.out, "  SKIP %s %s: %s\n", k.pkg, k.test, k.reason)
	}
}

func main() {
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: testsummary -- go test -json [flags] [packages]")
		os.Exit(2)
	}
	os.Exit(run(args, os.Stdout, os.Stderr))
}

// run runs the command, filters its output to out and returns the exit
// status: the command's, or 1 if it exited 0 and a test failed anyway.
func run(args []string, out, errOut io.Writer) int {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stderr = errOut
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintln(errOut, "testsummary:", err)
		return 2
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(errOut, "testsummary:", err)
		return 2
	}
	s := newSummary(out)
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		s.line(sc.Text())
	}
	scanErr := sc.Err()
	if scanErr != nil {
		io.Copy(io.Discard, stdout) // let go test finish
	}
	waitErr := cmd.Wait()
	s.report()
	var exit *exec.ExitError
	switch {
	case errors.As(waitErr, &exit):
		return exit.ExitCode()
	case waitErr != nil:
		fmt.Fprintln(errOut, "testsummary:", waitErr)
		return 2
	case scanErr != nil:
		fmt.Fprintln(errOut, "testsummary: reading go test's output:", scanErr)
		return 2
	case s.failed:
		return 1
	}
	return 0
}
