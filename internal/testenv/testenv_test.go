package testenv

import (
	"strings"
	"testing"
)

// recorder is a testing.TB that notes how the test ended.
type recorder struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (r *recorder) Helper() {}
func (r *recorder) Skipf(format string, args ...any) {
	r.skipped, r.msg = true, format
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed, r.msg = true, format
}

func TestMissingCapability_SkipsOutsideCIFailsInCI(t *testing.T) {
	t.Setenv("CI", "")
	r := &recorder{TB: t}
	MissingCapability(r, "no docker")
	if !r.skipped || r.failed {
		t.Errorf("outside CI: skipped %v failed %v, want a skip", r.skipped, r.failed)
	}
	t.Setenv("CI", "true")
	r = &recorder{TB: t}
	MissingCapability(r, "no docker")
	if r.skipped || !r.failed || !strings.Contains(r.msg, "CI is set") {
		t.Errorf("in CI: skipped %v failed %v (%q), want a failure", r.skipped, r.failed, r.msg)
	}
}

func TestNeedBinary(t *testing.T) {
	t.Setenv("CI", "1")
	r := &recorder{TB: t}
	if p := NeedBinary(r, "sh"); len(p) != 1 || r.failed {
		t.Errorf("NeedBinary(sh) = %v, failed %v", p, r.failed)
	}
	r = &recorder{TB: t}
	if p := NeedBinary(r, "sh", "no-such-program-lunasentri"); p != nil || !r.failed {
		t.Errorf("NeedBinary(missing) = %v, failed %v; want the test failed in CI", p, r.failed)
	}
}
