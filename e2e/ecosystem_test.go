package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Issue 13 with real processes and the tools users have: pings with plain
// curl and wget, agent -once, and the CLI surviving the death of the node
// it tries first.
func TestEcosystem_PingsWithCurlAndWgetAndCLIFailover(t *testing.T) {
	pc := newProcCluster(t, 3, nil)
	l := pc.leader(30 * time.Second)
	key := pc.register(l, map[string]any{"name": "cron-1"})
	// Every node knows the new key before it is used (replication).
	waitFor(t, 10*time.Second, "cron-1 on every node", func() bool {
		for i := range pc.procs {
			if _, ok := pc.machine(i, "cron-1"); !ok {
				return false
			}
		}
		return true
	})

	tools := 0
	for _, tool := range [][]string{
		{"curl", "-fsS", "-m", "10", "--retry", "3", pc.url(0) + "/ping/" + key},
		{"curl", "-fsS", "-m", "10", "-X", "POST", "--data-raw", "job output", pc.url(1) + "/ping/" + key},
		{"wget", "-q", "-O", "-", "-T", "10", pc.url(2) + "/ping/" + key},
	} {
		if _, err := exec.LookPath(tool[0]); err != nil {
			t.Logf("%s not installed; skipped", tool[0])
			continue
		}
		tools++
		out, err := exec.Command(tool[0], tool[1:]...).CombinedOutput()
		if err != nil || string(out) != "OK" {
			t.Errorf("%s: %q, %v", strings.Join(tool[:len(tool)-1], " "), out, err)
		}
	}
	if tools == 0 {
		// Still ping once, the way those tools would.
		if code := api("GET", pc.url(0)+"/ping/"+key, "", nil, nil); code != 200 {
			t.Fatalf("GET /ping/KEY = %d", code)
		}
	}
	// Reads come from each node's own replica: wait until the nodes the
	// CLI falls back to have applied the beat too.
	for i := range 3 {
		waitFor(t, 10*time.Second, fmt.Sprintf("cron-1 online on node%d", i+1), func() bool {
			m, ok := pc.machine(i, "cron-1")
			return ok && m.Status == "online"
		})
	}

	// The node the CLI tries first dies; the CLI, from the flag or the
	// environment, and the agent move on.
	addrs := pc.url(0) + "," + pc.url(1) + "," + pc.url(2)
	pc.kill(0)
	out, err := runCLI(t, "-address", addrs, "-token", adminToken, "machines", "show", "cron-1")
	if err != nil || !strings.Contains(out, "Status:            online") {
		t.Fatalf("CLI with its first node dead: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "machines", "list")
	cmd.Env = append(os.Environ(), "LUNASENTRI_ADDR="+addrs, "LUNASENTRI_ADMIN_TOKEN="+adminToken)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "cron-1") {
		t.Fatalf("CLI from LUNASENTRI_ADDR with its first node dead: %v\n%s", err, out)
	}
	out, err = runCLI(t, "agent", "-once", "-server", addrs, "-key", key)
	if err != nil {
		t.Fatalf("agent -once with the first server dead: %v\n%s", err, out)
	}
	out, err = runCLI(t, "agent", "-once", "-server", pc.url(0), "-key", key)
	if err == nil {
		t.Fatalf("agent -once with no live server succeeded:\n%s", out)
	}
}
