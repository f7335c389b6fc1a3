package main

import (
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// deadAddress is a loopback address nothing listens on.
func deadAddress(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func TestCLI_AddressListFailsOver(t *testing.T) {
	f := newFakeAPI(t, map[string]answer{
		"GET /v1/machines":  {200, `{"machines":[]}`},
		"POST /v1/machines": {201, `{"machine":{"name":"web-1"},"api_key":"lsk_1"}`},
	})
	dead := deadAddress(t)
	env := map[string]string{"LUNASENTRI_ADDR": dead + "," + f.URL, "LUNASENTRI_ADMIN_TOKEN": "admintok"}
	for _, args := range [][]string{
		{"machines", "list"},
		{"machines", "register", "web-1"}, // a write moves on too: the dead node never got it
	} {
		r := runWith(t, testCLI(env), args...)
		if r.code != 0 {
			t.Fatalf("%v: exit %d: %s", args, r.code, r.stderr)
		}
	}
	f.check(t, "POST", "/v1/machines", "admintok", map[string]any{"name": "web-1"})

	// Every node down: one line naming each.
	dead2 := deadAddress(t)
	r := runWith(t, testCLI(map[string]string{"LUNASENTRI_ADMIN_TOKEN": "t"}), "-address", dead+","+dead2, "machines", "list")
	if r.code != exitFailure || !strings.Contains(r.stderr, "no node answered: "+dead+": ") ||
		!strings.Contains(r.stderr, "; "+dead2+": ") || strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("all down: %+v", r)
	}
}

func TestCLI_ReadMovesOnFrom503ButWriteDoesNot(t *testing.T) {
	sick := newFakeAPI(t, map[string]answer{
		"GET /v1/machines":  {503, `{"error":"cluster unavailable"}`},
		"POST /v1/machines": {503, `{"error":"cluster unavailable"}`},
	})
	good := newFakeAPI(t, map[string]answer{"GET /v1/machines": {200, `{"machines":[]}`}})
	env := map[string]string{"LUNASENTRI_ADDR": sick.URL + "," + good.URL, "LUNASENTRI_ADMIN_TOKEN": "t"}
	if r := runWith(t, testCLI(env), "machines", "list"); r.code != 0 {
		t.Fatalf("read: %+v", r)
	}
	r := runWith(t, testCLI(env), "machines", "register", "x")
	if r.code != exitFailure {
		t.Fatalf("write: %+v", r)
	}
	oneErrorLine(t, r, "503: cluster unavailable")
}

func TestCLI_GlobalFlagsBeforeCommand(t *testing.T) {
	f := newFakeAPI(t, map[string]answer{"GET /v1/machines": {200, `{"machines":[]}`}})
	for _, args := range [][]string{
		{"-address", f.URL, "-token", "tok", "machines", "list"},
		{"--address=" + f.URL, "--token=tok", "-json", "machines", "list"},
		{"-address", f.URL, "machines", "list", "-token", "tok"},
	} {
		r := runWith(t, testCLI(nil), args...)
		if r.code != 0 {
			t.Fatalf("%v: exit %d: %s", args, r.code, r.stderr)
		}
		f.check(t, "GET", "/v1/machines", "tok", nil)
	}
	// -json before the command works too.
	r := runWith(t, testCLI(nil), "-json", "-address", f.URL, "-token", "tok", "machines", "list")
	if !strings.Contains(r.stdout, `"machines": []`) {
		t.Fatalf("-json before the command: %+v", r)
	}
	// A flag after the command still wins over one before it.
	r = runWith(t, testCLI(nil), "-address", "http://127.0.0.1:1", "machines", "list", "-address", f.URL, "-token", "tok")
	if r.code != 0 {
		t.Fatalf("later -address did not win: %+v", r)
	}
	r = runWith(t, testCLI(nil), "-address")
	if r.code != exitUsage {
		t.Fatalf("-address without value: %+v", r)
	}
}

func TestCLI_GroupsAndHelp(t *testing.T) {
	r := runWith(t, testCLI(nil), "machines")
	if r.code != exitUsage || !strings.Contains(r.stderr, "rotate-key NAME") || !strings.Contains(r.stderr, "machines: missing subcommand") {
		t.Fatalf("machines alone: %+v", r)
	}
	r = runWith(t, testCLI(nil), "help", "channels")
	if r.code != 0 || !strings.Contains(r.stdout, "add webhook NAME -url URL") {
		t.Fatalf("help channels: %+v", r)
	}
	r = runWith(t, testCLI(nil), "channels", "add")
	oneErrorLine(t, r, "channels add: want a type: webhook, telegram, alertmanager, slack, pagerduty, ntfy or email")
	r = runWith(t, testCLI(nil), "machine", "ls", "-h")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "Usage: lunasentri machines list [-status online|offline|unknown|paused] [flags]") {
		t.Fatalf("machine ls -h: %+v", r)
	}
	r = runWith(t, testCLI(nil), "help")
	for _, s := range []string{"machines    list | show NAME | register NAME | delete NAME | rotate-key NAME", "completion", "comma-separated"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("help lacks %q:\n%s", s, r.stdout)
		}
	}
}

func TestCLI_Completion(t *testing.T) {
	for _, tc := range []struct {
		words []string
		want  []string
	}{
		{nil, []string{"machines", "channels", "agent", "snapshot", "completion"}},
		{[]string{"machines"}, []string{"list", "show", "register", "delete", "rotate-key"}},
		{[]string{"-address", "http://x", "channels"}, []string{"list", "add", "test"}},
		{[]string{"channels", "add"}, []string{"webhook", "telegram"}},
		{[]string{"machines", "register"}, []string{"-address", "-token", "-json", "-label", "-offline-threshold"}},
		{[]string{"agent"}, []string{"-server", "-key", "-once"}},
		{[]string{"completion"}, []string{"bash", "zsh"}},
	} {
		r := runWith(t, testCLI(nil), append([]string{"__complete"}, tc.words...)...)
		got := strings.Split(strings.TrimSpace(r.stdout), "\n")
		for _, w := range tc.want {
			if !contains(got, w) {
				t.Errorf("complete %v: %v lacks %q", tc.words, got, w)
			}
		}
	}
}

// TestCLI_CompletionScripts runs the generated scripts in real shells (when
// installed) against this test binary standing in for lunasentri.
func TestCLI_CompletionScripts(t *testing.T) {
	bin := buildCLI(t)
	dir := t.TempDir()
	if err := os.Symlink(bin, dir+"/lunasentri"); err != nil {
		t.Fatal(err)
	}
	path := dir + ":" + os.Getenv("PATH")
	if bash, err := exec.LookPath("bash"); err == nil {
		script := `source <(lunasentri completion bash)
COMP_WORDS=(lunasentri machines r); COMP_CWORD=2; _lunasentri; echo "${COMPREPLY[*]}"`
		cmd := exec.Command(bash, "-c", script)
		cmd.Env = append(os.Environ(), "PATH="+path)
		out, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "register rotate-key resume" {
			t.Errorf("bash completion: %q, %v", out, err)
		}
	}
	if zsh, err := exec.LookPath("zsh"); err == nil {
		cmd := exec.Command(zsh, "-n", "-c", zshCompletion)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("zsh -n: %s %v", out, err)
		}
	}
}

// buildCLI builds the lunasentri binary once per test run.
func buildCLI(t *testing.T) string {
	t.Helper()
	bin := t.TempDir() + "/lunasentri"
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = os.Environ()
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("built the CLI in %s", time.Since(start).Round(time.Millisecond))
	return bin
}

func TestMachinesShow_AgentFacts(t *testing.T) {
	m := `{"machine":{"id":"m1","name":"web-1","hostname":"web-1.lan","labels":{},"status":"online",
		"last_seen":"2025-01-02T03:04:05Z","offline_threshold":"30s",
		"agent":{"hostname":"web-1.lan","agent_version":"1.4.0","reported_at":"2025-01-02T03:00:00Z",
		"info":{"os":"linux","kernel":"6.1.0-13-amd64","boot_time":"2024-12-30T01:04:17Z","ip":"10.0.0.7","cpus":4}}}}`
	f := newFakeAPI(t, map[string]answer{"GET /v1/machines/web-1": {200, m}})
	r := runWith(t, opsCLI(f), "machines", "show", "web-1")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, s := range []string{
		"Agent:             agent 1.4.0 on web-1.lan",
		"  os:              linux",
		"  kernel:          6.1.0-13-amd64",
		"  boot_time:       2024-12-30T01:04:17Z (up 3d2h)",
		"  ip:              10.0.0.7",
		"  cpus:            4",
		"Agent reported:    2025-01-02T03:00:00Z",
	} {
		if !strings.Contains(r.stdout, s+"\n") {
			t.Errorf("output lacks %q:\n%s", s, r.stdout)
		}
	}
}
