package tlsutil

import (
	"crypto/tls"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func makeKit(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if _, _, err := CreateCA(dir); err != nil {
		t.Fatal(err)
	}
	for _, req := range []CertRequest{
		{CADir: dir, Name: "server1", IPs: []net.IP{net.ParseIP("127.0.0.1")}},
		{CADir: dir, Name: "server2"},
		{CADir: dir, Name: "agent", Client: true},
	} {
		if _, _, err := CreateCert(req); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestCreate_RefusesToOverwriteAndKeepsKeysPrivate(t *testing.T) {
	dir := makeKit(t)
	if _, _, err := CreateCA(dir); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second CA: %v", err)
	}
	if _, _, err := CreateCert(CertRequest{CADir: dir, Name: "server1"}); err == nil {
		t.Fatal("overwrote a certificate")
	}
	if _, _, err := CreateCert(CertRequest{CADir: dir, Name: "../x"}); err == nil {
		t.Fatal("accepted a path as a name")
	}
	if _, _, err := CreateCert(CertRequest{CADir: t.TempDir(), Name: "x"}); err == nil {
		t.Fatal("signed without a CA")
	}
	for _, f := range []string{CAKeyFile, "server1-key.pem", "agent-key.pem"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", f, st.Mode(), err)
		}
	}
}

func files(dir, name string) Files {
	return Files{CA: filepath.Join(dir, CAFile), Cert: filepath.Join(dir, name+".pem"), Key: filepath.Join(dir, name+"-key.pem")}
}

// handshake runs one TLS connection and reports the errors of each side.
func handshake(t *testing.T, server, client *tls.Config) (serverErr, clientErr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		tc := tls.Server(c, server)
		_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
		err = tc.Handshake()
		if err == nil {
			_, _ = tc.Write([]byte("ok"))
		}
		done <- err
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), client)
	if err == nil {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = io.ReadFull(c, make([]byte, 2))
		c.Close()
	}
	return <-done, err
}

func TestPeers_MutualTLSBetweenServersOnly(t *testing.T) {
	dir := makeKit(t)
	s1, err := Load(files(dir, "server1"))
	if err != nil {
		t.Fatal(err)
	}
	s2, err := Load(files(dir, "server2")) // no IP SAN: peers do not check host names
	if err != nil {
		t.Fatal(err)
	}
	if se, ce := handshake(t, s1.PeerServer, s2.PeerClient); se != nil || ce != nil {
		t.Fatalf("server to server: %v / %v", se, ce)
	}
	// An agent's client certificate cannot pass as a peer.
	agent, err := Client(filepath.Join(dir, CAFile), filepath.Join(dir, "agent.pem"), filepath.Join(dir, "agent-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	agent.ServerName = "127.0.0.1"
	if se, _ := handshake(t, s1.PeerServer, agent); se == nil {
		t.Fatal("the raft side accepted a client-only certificate")
	}
	// A peer of another CA is refused both ways.
	other := makeKit(t)
	o, _ := Load(files(other, "server1"))
	if se, _ := handshake(t, s1.PeerServer, o.PeerClient); se == nil {
		t.Fatal("accepted a peer from another CA")
	}
	if _, ce := handshake(t, o.PeerServer, s1.PeerClient); ce == nil {
		t.Fatal("dialled into a server of another CA")
	}
	// No certificate at all.
	if se, _ := handshake(t, s1.PeerServer, &tls.Config{InsecureSkipVerify: true}); se == nil { //nolint:gosec // the test of a certificate-less client
		t.Fatal("accepted a peer without a certificate")
	}
}

func TestAPI_VerifyIncoming(t *testing.T) {
	dir := makeKit(t)
	f := files(dir, "server1")
	open, _ := Load(f)
	f.VerifyIncoming = true
	strict, _ := Load(f)
	caOnly, _ := Client(filepath.Join(dir, CAFile), "", "")
	caOnly.ServerName = "127.0.0.1"
	if se, ce := handshake(t, open.API, caOnly); se != nil || ce != nil {
		t.Fatalf("API without verify-incoming: %v / %v", se, ce)
	}
	if se, _ := handshake(t, strict.API, caOnly); se == nil {
		t.Fatal("verify-incoming accepted a client without a certificate")
	}
	agent, _ := Client(filepath.Join(dir, CAFile), filepath.Join(dir, "agent.pem"), filepath.Join(dir, "agent-key.pem"))
	agent.ServerName = "localhost"
	if se, ce := handshake(t, strict.API, agent); se != nil || ce != nil {
		t.Fatalf("verify-incoming refused the agent: %v / %v", se, ce)
	}
	if _, err := Load(Files{Cert: f.Cert}); err == nil {
		t.Fatal("Load accepted a partial set of files")
	}
	if _, err := Client("", filepath.Join(dir, "agent.pem"), ""); err == nil {
		t.Fatal("Client accepted a certificate without its key")
	}
}
