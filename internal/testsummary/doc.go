// Command testsummary runs `go test -json …` and prints what a plain
// `go test` prints (each package's closing "ok" or "FAIL" line, and the
// whole output of every test that failed), then a summary of the tests
// that were skipped, with the reason each gave. `make test` uses it so a
// skipped test is never silent (issue 16); with CI set a skip of a real
// capability is a failure anyway (internal/testenv).
//
// It owns nothing but that filter: it must never change the exit status
// of go test except to make it fail when a test failed.
//
//	go run ./internal/testsummary -- go test -json -race ./...
package main
