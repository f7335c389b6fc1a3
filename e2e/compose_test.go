package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lunasentri/lunasentri/internal/testenv"
)

// TestCompose_LeaderContainerStopped runs the shipped deployment as an
// operator does: the Dockerfile's image, configs/docker-compose.yml's three
// nodes and its demo agent. It stops the leader's container and checks the
// cluster carries on: a new leader, writes accepted, and the machine the
// agent reports stays online through the failover grace.
//
// It skips only when Docker is not installed or its daemon does not answer,
// and with CI set it fails then instead (testenv.MissingCapability).
func TestCompose_LeaderContainerStopped(t *testing.T) {
	const threshold = 6 * time.Second // failover grace: max(threshold/2, 5s) = 5s
	const grace = 5 * time.Second

	requireDocker(t)
	stack := newComposeStack(t)
	stack.env = append(stack.env,
		"MACHINE_OFFLINE_THRESHOLD="+threshold.String(),
		"LUNASENTRI_AGENT_INTERVAL=1s",
	)
	stack.buildImage()
	stack.up()

	urls := map[string]string{} // service (= node id) → published base URL
	for _, svc := range composeNodes {
		urls[svc] = "http://" + stack.port(svc, 8080)
	}
	leader := composeLeader(t, urls, nil, 90*time.Second)
	t.Logf("cluster formed in containers; leader %s", leader)

	// Register the demo machine through a follower (forwarded to the
	// leader), then start the agent with its key, as the docs say.
	follower := otherNode(leader, "")
	var reg struct {
		APIKey string `json:"api_key"`
	}
	waitFor(t, 20*time.Second, "register demo-agent", func() bool {
		code := api("POST", urls[follower]+"/v1/machines", adminToken,
			map[string]any{"name": "demo-agent", "labels": map[string]string{"env": "compose"}}, &reg)
		if code == http.StatusConflict {
			t.Fatal("demo-agent already exists in a fresh cluster")
		}
		return code == http.StatusCreated && reg.APIKey != ""
	})
	stack.startAgent(reg.APIKey)
	for _, svc := range composeNodes {
		waitFor(t, 30*time.Second, "demo-agent online on "+svc, func() bool {
			m, ok := composeMachine(urls[svc], "demo-agent")
			return ok && m.Status == "online"
		})
	}

	// Stop the leader's container (SIGTERM, a graceful stop).
	stoppedAt := time.Now()
	stopped := stack.stop(leader)
	if code := stack.exitCode(stopped); code != 0 {
		t.Errorf("%s exited with status %d after docker stop, want 0 (a graceful stop as PID 1)", leader, code)
	}
	survivors := map[string]string{}
	for svc, u := range urls {
		if svc != leader {
			survivors[svc] = u
		}
	}
	newLeader := composeLeader(t, survivors, []string{leader}, 30*time.Second)
	t.Logf("stopped %s; %s leads after %s", leader, newLeader, time.Since(stoppedAt).Round(time.Millisecond))

	// Writes still work, through the surviving follower. (409: an earlier
	// attempt was committed although its answer was lost.)
	other := otherNode(leader, newLeader)
	waitFor(t, 20*time.Second, "a write accepted after the failover", func() bool {
		code := api("POST", urls[other]+"/v1/machines", adminToken, map[string]any{"name": "after-failover"}, nil)
		return code == http.StatusCreated || code == http.StatusConflict
	})
	for svc, u := range survivors {
		waitFor(t, 10*time.Second, "after-failover replicated to "+svc, func() bool {
			_, ok := composeMachine(u, "after-failover")
			return ok
		})
	}

	// The agent moves on to the surviving nodes: demo-agent stays online
	// past the failover grace and a whole threshold, and keeps being seen.
	until := stoppedAt.Add(grace + threshold + 3*time.Second)
	for time.Now().Before(until) {
		for svc, u := range survivors {
			if m, ok := composeMachine(u, "demo-agent"); ok && m.Status != "online" {
				t.Fatalf("%s: demo-agent is %s %s after the leader's container stopped", svc, m.Status, time.Since(stoppedAt).Round(time.Millisecond))
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	for svc, u := range survivors {
		waitFor(t, 10*time.Second, "demo-agent seen after the stop on "+svc, func() bool {
			m, ok := composeMachine(u, "demo-agent")
			return ok && m.Status == "online" && m.LastSeen != nil && m.LastSeen.After(stoppedAt.Add(grace))
		})
		var evs struct {
			Events []event `json:"events"`
		}
		if code := api("GET", u+"/v1/events", adminToken, nil, &evs); code != http.StatusOK {
			t.Fatalf("%s: GET /v1/events = %d", svc, code)
		}
		if len(evs.Events) != 0 {
			t.Fatalf("%s: %d events (first %s for %s), want none: a new machine that kept beating sends nothing",
				svc, len(evs.Events), evs.Events[0].Type, evs.Events[0].Machine.Name)
		}
	}
}

var composeNodes = []string{"node1", "node2", "node3"}

// otherNode returns a node that is neither a nor b.
func otherNode(a, b string) string {
	for _, n := range composeNodes {
		if n != a && n != b {
			return n
		}
	}
	return ""
}

// requireDocker skips the test (fails it when CI is set) when there is no
// docker CLI or no daemon.
func requireDocker(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		testenv.MissingCapability(t, "docker is not on PATH: the Compose deployment test needs Docker")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		testenv.MissingCapability(t, "the Docker daemon is unreachable (%v): %s", err, strings.TrimSpace(string(out)))
	}
}

// composeStack is one Compose project of configs/docker-compose.yml with a
// unique project name, image tag and network, so it never clashes with a
// developer's stack or another test run.
type composeStack struct {
	t       *testing.T
	compose []string // "docker compose" or "docker-compose"
	root    string   // repository root
	file    string
	project string
	image   string
	env     []string
}

func newComposeStack(t *testing.T) *composeStack {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	s := &composeStack{t: t, root: root, file: filepath.Join(root, "configs", "docker-compose.yml")}
	s.compose = composeCommand(t)
	id := randomHex(t, 5)
	s.project = "lse2e" + id
	s.image = "lunasentri-e2e:" + id
	s.env = []string{
		"LUNASENTRI_IMAGE=" + s.image,
		"LUNASENTRI_ADMIN_TOKEN=" + adminToken,
		// Free host ports, chosen by Docker ("127.0.0.1::8080").
		"LUNASENTRI_NODE1_HTTP=127.0.0.1:",
		"LUNASENTRI_NODE2_HTTP=127.0.0.1:",
		"LUNASENTRI_NODE3_HTTP=127.0.0.1:",
	}
	t.Logf("compose: %s, project %s, image %s", strings.Join(s.compose, " "), s.project, s.image)
	return s
}

// composeCommand prefers the `docker compose` plugin and falls back to the
// standalone docker-compose.
func composeCommand(t *testing.T) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if exec.CommandContext(ctx, "docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}
	}
	if _, err := exec.LookPath("docker-compose"); err == nil {
		return []string{"docker-compose"}
	}
	t.Fatal("Docker is available but Compose is not: install the docker compose plugin or docker-compose")
	return nil
}

func randomHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// docker runs the docker CLI and returns its combined output.
func (s *composeStack) docker(timeout time.Duration, args ...string) (string, error) {
	return s.exec(timeout, nil, append([]string{"docker"}, args...)...)
}

// composeRun runs compose on this project with the stack's environment.
func (s *composeStack) composeRun(timeout time.Duration, extraEnv []string, args ...string) (string, error) {
	argv := append(append([]string(nil), s.compose...), "-f", s.file, "-p", s.project)
	return s.exec(timeout, extraEnv, append(argv, args...)...)
}

func (s *composeStack) exec(timeout time.Duration, extraEnv []string, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = s.root
	cmd.Env = append(append(composeBaseEnv(), s.env...), extraEnv...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s: timed out after %s", strings.Join(argv, " "), timeout)
	}
	return out.String(), err
}

// composeBaseEnv is this process's environment without the settings the
// compose file or Compose itself read, so a developer's shell cannot change
// what the test runs.
func composeBaseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "LUNASENTRI_") || strings.HasPrefix(name, "MACHINE_") ||
			strings.HasPrefix(name, "COMPOSE_") || name == "TELEGRAM_BOT_TOKEN" {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// buildImage stages the Dockerfile's context (bin/docker/: the static
// binary, the CA bundle, an empty data dir) in a temporary directory and
// builds the image; the image is removed when the test ends.
func (s *composeStack) buildImage() {
	t := s.t
	t.Helper()
	start := time.Now()
	ctxDir := t.TempDir()
	stage := filepath.Join(ctxDir, "bin", "docker")
	if err := os.MkdirAll(filepath.Join(stage, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	staticBinary(t, filepath.Join(stage, "lunasentri"))
	caBundle(t, filepath.Join(stage, "ca-certificates.crt"))
	for _, f := range []string{"Dockerfile", ".dockerignore"} {
		copyFile(t, filepath.Join(s.root, f), filepath.Join(ctxDir, f), 0o644)
	}
	t.Cleanup(func() {
		if out, err := s.docker(time.Minute, "rmi", "-f", s.image); err != nil {
			t.Logf("docker rmi %s: %v: %s", s.image, err, out)
		}
	})
	if out, err := s.docker(5*time.Minute, "build", "-t", s.image, ctxDir); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
	t.Logf("image %s built in %s", s.image, time.Since(start).Round(time.Millisecond))
}

// staticBinary puts a statically linked lunasentri at dst: the e2e binary
// when it is static (make test builds it so), else a CGO_ENABLED=0 build.
func staticBinary(t *testing.T, dst string) {
	t.Helper()
	if binary != "" && isStatic(binary) {
		copyFile(t, binary, dst, 0o755)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", dst, "../cmd/lunasentri")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("static build: %v\n%s", err, out)
	}
}

// isStatic reports whether the ELF file at path asks for no dynamic loader.
func isStatic(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}

// caBundle copies the host's CA bundle to dst (the image needs it for
// Telegram over https; this test does not, so none is only a log line).
func caBundle(t *testing.T, dst string) {
	t.Helper()
	for _, p := range []string{"/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"} {
		if _, err := os.Stat(p); err == nil {
			copyFile(t, p, dst, 0o644)
			return
		}
	}
	t.Log("no CA bundle found on this host; the test image has an empty one")
	if err := os.WriteFile(dst, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// up starts node1..3 on a network Docker has just found free (the compose
// file gives the nodes fixed addresses in LUNASENTRI_NET.0/24). Cleanup
// (logs on failure, then `down -v`) is registered first, so it always runs.
func (s *composeStack) up() {
	t := s.t
	t.Helper()
	t.Cleanup(s.down)
	start := time.Now()
	var lastErr error
	for attempt := 1; attempt <= 3; attempt++ {
		prefix := s.freeNet()
		netEnv := []string{"LUNASENTRI_NET=" + prefix}
		out, err := s.composeRun(3*time.Minute, netEnv, "up", "-d")
		if err == nil {
			s.env = append(s.env, netEnv...)
			t.Logf("compose up (network %s.0/24) in %s", prefix, time.Since(start).Round(time.Millisecond))
			return
		}
		lastErr = fmt.Errorf("compose up: %v\n%s", err, out)
		if !strings.Contains(strings.ToLower(out), "overlap") {
			break
		}
		// Another network took the subnet in between: clean up, try another.
		_, _ = s.composeRun(2*time.Minute, netEnv, "down", "-v", "--remove-orphans")
	}
	t.Fatal(lastErr)
}

// freeNet asks Docker for a subnet no network uses (by creating and removing
// a probe network) and returns the first three octets of its first /24.
func (s *composeStack) freeNet() string {
	t := s.t
	t.Helper()
	probe := s.project + "-probe"
	if out, err := s.docker(time.Minute, "network", "create", probe); err != nil {
		t.Fatalf("docker network create: %v: %s", err, out)
	}
	out, err := s.docker(time.Minute, "network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}} {{end}}", probe)
	if rmOut, rmErr := s.docker(time.Minute, "network", "rm", probe); rmErr != nil {
		t.Logf("docker network rm %s: %v: %s", probe, rmErr, rmOut)
	}
	if err != nil {
		t.Fatalf("docker network inspect: %v: %s", err, out)
	}
	for _, cidr := range strings.Fields(out) {
		ip, ipnet, err := net.ParseCIDR(cidr)
		if err != nil || ip.To4() == nil {
			continue
		}
		if ones, _ := ipnet.Mask.Size(); ones > 24 {
			continue
		}
		b := ipnet.IP.To4()
		return fmt.Sprintf("%d.%d.%d", b[0], b[1], b[2])
	}
	t.Fatalf("no IPv4 subnet of /24 or larger in the probe network: %q", out)
	return ""
}

// down removes the project's containers, network and volumes, after
// printing the containers' logs when the test failed.
func (s *composeStack) down() {
	t := s.t
	if t.Failed() {
		if out, err := s.composeRun(time.Minute, nil, "--profile", "agent", "logs", "--no-color", "--tail=60"); err == nil || out != "" {
			t.Logf("---- compose logs ----\n%s", out)
		}
	}
	start := time.Now()
	if out, err := s.composeRun(3*time.Minute, nil, "--profile", "agent", "down", "-v", "--remove-orphans", "-t", "5"); err != nil {
		t.Errorf("compose down: %v\n%s", err, out)
		return
	}
	t.Logf("compose down -v in %s", time.Since(start).Round(time.Millisecond))
}

// port returns the host address ("127.0.0.1:49153") Docker published for a
// service's container port.
func (s *composeStack) port(svc string, containerPort int) string {
	t := s.t
	t.Helper()
	var addr string
	waitFor(t, 30*time.Second, "published port of "+svc, func() bool {
		out, err := s.composeRun(time.Minute, nil, "port", svc, fmt.Sprint(containerPort))
		if err != nil {
			return false
		}
		lines := strings.Fields(out)
		if len(lines) == 0 {
			return false
		}
		host, p, err := net.SplitHostPort(lines[len(lines)-1])
		if err != nil || p == "0" {
			return false
		}
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		addr = net.JoinHostPort(host, p)
		return true
	})
	return addr
}

// startAgent starts the compose file's demo agent with the machine's key.
func (s *composeStack) startAgent(key string) {
	t := s.t
	t.Helper()
	out, err := s.composeRun(2*time.Minute, []string{"LUNASENTRI_API_KEY=" + key},
		"--profile", "agent", "up", "-d", "--no-deps", "agent")
	if err != nil {
		t.Fatalf("start the agent: %v\n%s", err, out)
	}
}

// containerID is the ID of a service's (only) container.
func (s *composeStack) containerID(svc string) string {
	t := s.t
	t.Helper()
	out, err := s.composeRun(time.Minute, nil, "ps", "-q", svc)
	id := strings.TrimSpace(out)
	if err != nil || id == "" || strings.ContainsAny(id, " \n") {
		t.Fatalf("container of %s: %v: %q", svc, err, out)
	}
	return id
}

// stop is `docker stop` of a service's container (SIGTERM, then SIGKILL
// after 20s); it returns the container's ID (`compose ps` of Compose v2
// no longer lists a stopped container).
func (s *composeStack) stop(svc string) string {
	t := s.t
	t.Helper()
	id := s.containerID(svc)
	start := time.Now()
	if out, err := s.docker(time.Minute, "stop", "-t", "20", id); err != nil {
		t.Fatalf("docker stop %s: %v: %s", svc, err, out)
	}
	t.Logf("docker stop %s took %s", svc, time.Since(start).Round(time.Millisecond))
	return id
}

// exitCode is the exit status of a stopped container.
func (s *composeStack) exitCode(id string) int {
	t := s.t
	t.Helper()
	out, err := s.docker(time.Minute, "inspect", "-f", "{{.State.ExitCode}}", id)
	if err != nil {
		t.Fatalf("docker inspect %s: %v: %s", id, err, out)
	}
	var code int
	if _, err := fmt.Sscan(strings.TrimSpace(out), &code); err != nil {
		t.Fatalf("exit code of %s: %q", id, out)
	}
	return code
}

// composeLeader waits until the nodes at urls agree on a leader, which is
// one of them and none of excluded, and returns its node id.
func composeLeader(t *testing.T, urls map[string]string, excluded []string, timeout time.Duration) string {
	t.Helper()
	var leader string
	var last []string
	deadline := time.Now().Add(timeout)
	for {
		leader, last = "", last[:0]
		agreed, ok := "", true
		for svc, u := range urls {
			var st status
			if api("GET", u+"/v1/status", "", nil, &st) != http.StatusOK {
				last, ok = append(last, svc+": no answer"), false
				continue
			}
			last = append(last, fmt.Sprintf("%s: %s, leader %q", svc, st.RaftState, st.LeaderID))
			if st.LeaderID == "" || (agreed != "" && st.LeaderID != agreed) {
				ok = false
				continue
			}
			agreed = st.LeaderID
			if st.RaftState == "Leader" {
				leader = st.NodeID
			}
		}
		for _, x := range excluded {
			if agreed == x {
				ok = false
			}
		}
		if ok && leader != "" && leader == agreed {
			return leader
		}
		if time.Now().After(deadline) {
			t.Fatalf("no agreed leader after %s: %s", timeout, strings.Join(last, "; "))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// composeMachine reads one machine from a node.
func composeMachine(baseURL, name string) (machine, bool) {
	var out struct {
		Machine machine `json:"machine"`
	}
	code := api("GET", baseURL+"/v1/machines/"+name, adminToken, nil, &out)
	return out.Machine, code == http.StatusOK
}
