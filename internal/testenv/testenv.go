package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the CI environment variable is set (to anything),
// as GitHub Actions, GitLab CI and most runners do.
func InCI() bool { return os.Getenv("CI") != "" }

// MissingCapability skips the test with the reason, or fails it when CI
// is set.
func MissingCapability(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf("CI is set and this test cannot run: "+format, args...)
		return // Fatalf does not return; a fake testing.TB might
	}
	t.Skipf(format, args...)
}

// NeedBinary returns the path of each named program, or ends the test
// through MissingCapability for the first one missing from PATH.
func NeedBinary(t testing.TB, names ...string) []string {
	t.Helper()
	var paths []string
	for _, n := range names {
		p, err := exec.LookPath(n)
		if err != nil {
			MissingCapability(t, "%s is not on PATH (make tools installs it)", n)
			return nil
		}
		paths = append(paths, p)
	}
	return paths
}
