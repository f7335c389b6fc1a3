package e2e

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lunasentri/lunasentri/tlsutil"
)

// tlsKit is the material of one TLS cluster, made with the binary's own
// `tls` helpers as the README shows.
type tlsKit struct {
	dir       string
	gossipKey string
	client    *http.Client // trusts the CA, presents a client certificate
}

func newTLSKit(t *testing.T) *tlsKit {
	t.Helper()
	dir := t.TempDir()
	for _, args := range [][]string{
		{"tls", "ca", "create", "-dir", dir},
		{"tls", "cert", "create", "-ca-dir", dir, "-name", "server", "-ip", "127.0.0.1"},
		{"tls", "cert", "create", "-ca-dir", dir, "-name", "cli", "-client"},
	} {
		if out, err := runCLI(t, args...); err != nil {
			t.Fatalf("lunasentri %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	key, err := runCLI(t, "keygen")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := tlsutil.Client(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cli.pem"), filepath.Join(dir, "cli-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: cfg}
	t.Cleanup(tr.CloseIdleConnections)
	return &tlsKit{dir: dir, gossipKey: strings.TrimSpace(key), client: &http.Client{Timeout: 5 * time.Second, Transport: tr}}
}

func (k *tlsKit) file(name string) string { return filepath.Join(k.dir, name) }

func (k *tlsKit) serverFlags() []string {
	return []string{"-tls-cert", k.file("server.pem"), "-tls-key", k.file("server-key.pem"), "-tls-ca", k.file("ca.pem"),
		"-tls-verify-incoming", "-gossip-key", k.gossipKey, "-offline-threshold", "4s"}
}

func (k *tlsKit) clientFlags() []string {
	return []string{"-ca-cert", k.file("ca.pem"), "-client-cert", k.file("cli.pem"), "-client-key", k.file("cli-key.pem")}
}

// call does one HTTPS request; it returns 0 when the request failed.
func (k *tlsKit) call(method, url, token string, body string, out any) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := k.client.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil {
		_ = json.Unmarshal(data, out)
	}
	return resp.StatusCode
}

// TestTLS_ClusterOverMutualTLS runs three real servers with TLS and mTLS
// from the binary's own CA helpers: they form a cluster, writes through a
// follower work, an agent and the CLI work with -ca-cert and client
// certificates, a follower and the leader agree, and plaintext, unknown-CA
// and certificate-less clients are refused.
func TestTLS_ClusterOverMutualTLS(t *testing.T) {
	kit := newTLSKit(t)
	pc := newProcCluster(t, 3, kit.serverFlags())
	url := func(i int) string { return "https://" + pc.procs[i].httpAddr }

	leader := -1
	waitFor(t, 60*time.Second, "a leader over TLS", func() bool {
		for i := range pc.procs {
			var st status
			if kit.call("GET", url(i)+"/v1/status", "", "", &st) == 200 && st.RaftState == "Leader" {
				leader = i
				return true
			}
		}
		return false
	})
	follower := (leader + 1) % 3
	waitFor(t, 30*time.Second, "every node ready", func() bool {
		for i := range pc.procs {
			if kit.call("GET", url(i)+"/readyz", "", "", nil) != 200 {
				return false
			}
		}
		return true
	})

	// A write through a follower goes to the leader over mutual TLS.
	var reg struct {
		APIKey string `json:"api_key"`
	}
	if code := kit.call("POST", url(follower)+"/v1/machines", adminToken, `{"name":"tls-web"}`, &reg); code != 201 {
		t.Fatalf("register via follower over TLS: %d", code)
	}

	// The agent with -ca-cert and a client certificate beats over https.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	agentArgs := append([]string{"agent", "-server", url(follower) + "," + url(leader), "-key", reg.APIKey, "-interval", "500ms"}, kit.clientFlags()...)
	agent := exec.CommandContext(ctx, binary, agentArgs...)
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = agent.Wait() }()
	for _, i := range []int{leader, follower} {
		waitFor(t, 20*time.Second, fmt.Sprintf("tls-web online on node%d", i+1), func() bool {
			var out struct {
				Machine struct {
					Status string `json:"status"`
				} `json:"machine"`
			}
			return kit.call("GET", url(i)+"/v1/machines/tls-web", adminToken, "", &out) == 200 && out.Machine.Status == "online"
		})
	}

	// The CLI with the same flags.
	out, err := runCLI(t, append([]string{"machines", "list", "-address", url(follower), "-token", adminToken}, kit.clientFlags()...)...)
	if err != nil || !strings.Contains(out, "tls-web") {
		t.Fatalf("CLI over TLS: %v\n%s", err, out)
	}

	// Refused: plaintext HTTP, no client certificate, an unknown CA.
	plain := &http.Client{Timeout: 3 * time.Second}
	if resp, err := plain.Get("http://" + pc.procs[follower].httpAddr + "/v1/status"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plaintext HTTP answered 200")
		}
	}
	caOnly, _ := tlsutil.Client(kit.file("ca.pem"), "", "")
	noCert := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{TLSClientConfig: caOnly}}
	if resp, err := noCert.Get(url(follower) + "/v1/status"); err == nil {
		resp.Body.Close()
		t.Fatalf("a client without a certificate got %d under -tls-verify-incoming", resp.StatusCode)
	}
	other := newTLSKit(t) // a second, unrelated CA
	if code := other.call("GET", url(follower)+"/v1/status", "", "", nil); code != 0 {
		t.Fatalf("a client of another CA got %d", code)
	}
	// The Raft port speaks only mutual TLS: a plaintext peer gets nothing.
	conn, err := net.DialTimeout("tcp", pc.procs[leader].raftAddr, 2*time.Second)
	if err == nil {
		_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
		_, _ = conn.Write([]byte{0, 1, 2, 3, 4, 5, 6, 7})
		buf := make([]byte, 64)
		n, _ := conn.Read(buf)
		conn.Close()
		if n > 0 && !looksLikeTLSAlert(buf[:n]) {
			t.Fatalf("the raft port answered plaintext with %q", buf[:n])
		}
	}

	// A snapshot through the follower is proxied to the leader over mutual TLS.
	{
		req, _ := http.NewRequest("GET", url(follower)+"/v1/snapshot", nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := kit.client.Do(req)
		if err != nil {
			t.Fatalf("snapshot via follower: %v", err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || len(data) == 0 {
			t.Fatalf("snapshot via follower over TLS: %d (%d bytes)", resp.StatusCode, len(data))
		}
	}

	// Internal endpoints need a server certificate even with the cluster
	// secret: an agent's or the CLI's client certificate is not enough.
	{
		mac := hmac.New(sha256.New, []byte("gossip:"+kit.gossipKey))
		mac.Write([]byte("lunasentri cluster secret v1"))
		req, _ := http.NewRequest("POST", url(leader)+"/internal/v1/lookup", strings.NewReader(`{"kind":"machine","hash":""}`))
		req.Header.Set("X-LunaSentri-Cluster-Secret", hex.EncodeToString(mac.Sum(nil)))
		resp, err := kit.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(msg), "server certificate") {
			t.Fatalf("internal call with a client certificate and the cluster secret: %d %s, want 401 for the certificate", resp.StatusCode, msg)
		}
	}

	// A follower and the leader still agree.
	var lm, fm struct {
		Machines []map[string]any `json:"machines"`
	}
	waitFor(t, 10*time.Second, "leader and follower agree", func() bool {
		kit.call("GET", url(leader)+"/v1/machines", adminToken, "", &lm)
		kit.call("GET", url(follower)+"/v1/machines", adminToken, "", &fm)
		return len(lm.Machines) == 1 && len(fm.Machines) == 1 && lm.Machines[0]["status"] == fm.Machines[0]["status"]
	})
}

func looksLikeTLSAlert(b []byte) bool { return len(b) > 0 && b[0] == 0x15 }

// TestTLS_ServerRefusesToStartWithoutGossipKey: TLS without encrypted
// gossip would leave membership spoofable; the server exits with one line.
func TestTLS_ServerRefusesToStartWithoutGossipKey(t *testing.T) {
	kit := newTLSKit(t)
	out, err := runCLI(t, "server", "-node-id", "n1", "-data-dir", t.TempDir(), "-admin-token", "x",
		"-http-addr", "127.0.0.1:0", "-raft-addr", "127.0.0.1:0", "-gossip-addr", "127.0.0.1:0",
		"-tls-cert", kit.file("server.pem"), "-tls-key", kit.file("server-key.pem"), "-tls-ca", kit.file("ca.pem"))
	if err == nil || !strings.Contains(out, "gossip key is required") {
		t.Fatalf("err %v, output %q", err, out)
	}
	var ee *exec.ExitError
	if ok := asExit(err, &ee); !ok || ee.ExitCode() != 2 {
		t.Fatalf("exit %v, want 2", err)
	}
}

func asExit(err error, target **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	if ok {
		*target = e
	}
	return ok
}
