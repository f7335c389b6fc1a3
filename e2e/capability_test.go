package e2e

import (
	"os"
	"testing"
)

// missingCapability is the one way a test says the machine lacks what it
// needs (root, iproute2, iptables or nft, Docker, Prometheus, promtool,
// Chromium): outside CI it skips; when CI is set (any value, as GitHub
// Actions, GitLab and most runners set it) it fails, so a CI run that
// silently tested less than it claims cannot pass. `make tools` installs
// what a Debian runner lacks.
func missingCapability(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("CI is set and this test cannot run: "+format, args...)
	}
	t.Skipf(format, args...)
}
