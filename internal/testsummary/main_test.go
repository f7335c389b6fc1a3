package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestSummary_PlainOutputAndSkips feeds a recorded test2json stream: the
// output keeps the package lines and a failing test's log, drops passing
// tests' noise, and lists the skipped test with its reason.
func TestSummary_PlainOutputAndSkips(t *testing.T) {
	stream := `{"Action":"start","Package":"p"}
{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestA","Output":"=== RUN   TestA\n"}
{"Action":"output","Package":"p","Test":"TestA","Output":"    a_test.go:3: chatter\n"}
{"Action":"output","Package":"p","Test":"TestA","Output":"--- PASS: TestA (0.00s)\n"}
{"Action":"pass","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestB","Output":"=== RUN   TestB\n"}
{"Action":"output","Package":"p","Test":"TestB","Output":"    b_test.go:9: no docker here\n"}
{"Action":"output","Package":"p","Test":"TestB","Output":"--- SKIP: TestB (0.00s)\n"}
{"Action":"skip","Package":"p","Test":"TestB"}
{"Action":"output","Package":"p","Test":"TestC","Output":"    c_test.go:5: want 1, got 2\n"}
{"Action":"output","Package":"p","Test":"TestC","Output":"--- FAIL: TestC (0.01s)\n"}
{"Action":"fail","Package":"p","Test":"TestC"}
{"Action":"output","Package":"p","Output":"FAIL\n"}
{"Action":"output","Package":"p","Output":"FAIL\tp\t0.02s\n"}
{"Action":"fail","Package":"p"}
{"Action":"output","Package":"q","Output":"PASS\n"}
{"Action":"output","Package":"q","Output":"ok  \tq\t0.01s\n"}
{"Action":"pass","Package":"q"}
`
	var out bytes.Buffer
	s := newSummary(&out)
	for _, l := range strings.Split(strings.TrimSpace(stream), "\n") {
		s.line(l)
	}
	s.report()
	want := "    c_test.go:5: want 1, got 2\n--- FAIL: TestC (0.01s)\nFAIL\nFAIL\tp\t0.02s\nok  \tq\t0.01s\n" +
		"skipped tests: 1\n  SKIP p TestB: b_test.go:9: no docker here\n"
	if out.String() != want {
		t.Errorf("output:\n%s\nwant:\n%s", out.String(), want)
	}
	if !s.failed {
		t.Error("a failed package was not noted")
	}
}

// TestRun_ExitStatus: go test's exit status comes through.
func TestRun_ExitStatus(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"sh", "-c", `echo '{"Action":"output","Package":"q","Output":"ok  \tq\t0.01s\n"}'; exit 3`}, &out, &errOut); code != 3 {
		t.Errorf("exit %d, want 3 (output %q, errors %q)", code, out.String(), errOut.String())
	}
	if code := run([]string{"sh", "-c", `echo '{"Action":"fail","Package":"q"}'`}, &out, &errOut); code != 1 {
		t.Errorf("exit %d after a failed package and status 0, want 1", code)
	}
}
