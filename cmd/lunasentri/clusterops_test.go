package main

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKeygen_PrintsAValidGossipKey(t *testing.T) {
	a := runWith(t, testCLI(nil), "keygen")
	b := runWith(t, testCLI(nil), "keygen")
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(a.stdout))
	if a.code != 0 || err != nil || len(key) != 32 || a.stdout == b.stdout {
		t.Errorf("keygen: %+v / %+v (%v)", a, b, err)
	}
	// The server accepts what keygen prints.
	_, err = loadTest(t, append([]string{"-gossip-key", strings.TrimSpace(a.stdout)}, requiredArgs()...), nil, "")
	if err != nil {
		t.Errorf("server rejects the generated key: %v", err)
	}
}

func TestSnapshotSaveAndRestore(t *testing.T) {
	archive := "LSNAP\x00\x01binary-archive-bytes"
	f := newFakeAPI(t, map[string]answer{
		"GET /v1/snapshot":  {200, archive},
		"POST /v1/snapshot": {200, `{"restored":true}`},
	})
	path := filepath.Join(t.TempDir(), "backup.snap")
	r := runWith(t, opsCLI(f), "snapshot", "save", "-address", f.URL, "-token", "t2", path)
	if r.code != 0 {
		t.Fatalf("save: exit %d: %s", r.code, r.stderr)
	}
	f.check(t, "GET", "/v1/snapshot", "t2", nil)
	got, err := os.ReadFile(path)
	if err != nil || string(got) != archive {
		t.Errorf("saved %q, %v", got, err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}

	r = runWith(t, opsCLI(f), "snapshot", "restore", path)
	if r.code != 0 {
		t.Fatalf("restore: exit %d: %s", r.code, r.stderr)
	}
	f.mu.Lock()
	body, ct, method := string(f.body), f.req.Header.Get("Content-Type"), f.req.Method
	f.mu.Unlock()
	if method != "POST" || body != archive || ct != "application/octet-stream" {
		t.Errorf("restore sent %s %q with %q", method, body, ct)
	}

	r = runWith(t, opsCLI(f), "snapshot", "save", "-")
	if r.code != 0 || r.stdout != archive {
		t.Errorf("save to stdout: %+v", r)
	}
}

func TestSnapshot_Errors(t *testing.T) {
	f := newFakeAPI(t, map[string]answer{
		"GET /v1/snapshot":  {503, `{"error":"no leader"}`},
		"POST /v1/snapshot": {400, `{"error":"invalid snapshot archive: bad checksum"}`},
	})
	dir := t.TempDir()
	path := filepath.Join(dir, "backup.snap")
	r := runWith(t, opsCLI(f), "snapshot", "save", path)
	if r.code != exitFailure {
		t.Errorf("exit %d", r.code)
	}
	oneErrorLine(t, r, "503: no leader")
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("a failed save left files: %v", entries)
	}

	os.WriteFile(path, []byte("junk"), 0o600)
	r = runWith(t, opsCLI(f), "snapshot", "restore", path)
	if r.code != exitFailure {
		t.Errorf("exit %d", r.code)
	}
	oneErrorLine(t, r, "400: invalid snapshot archive: bad checksum")

	r = runWith(t, opsCLI(f), "snapshot", "restore", filepath.Join(dir, "missing.snap"))
	if r.code != exitUsage || !strings.Contains(r.stderr, "no such file or directory") {
		t.Errorf("missing file: %+v", r)
	}
	r = runWith(t, opsCLI(f), "snapshot", "save")
	oneErrorLine(t, r, "snapshot save: missing FILE")
}

func TestRaftAndLeave(t *testing.T) {
	f := newFakeAPI(t, map[string]answer{
		"GET /v1/cluster/raft": {200, `{"servers":[{"id":"node1","address":"127.0.0.1:8311","suffrage":"Voter","leader":true},
			{"id":"node4","address":"127.0.0.1:8314","suffrage":"Nonvoter","leader":false}],
			"raft_state":"Follower","leader_id":"node1","term":4,"commit_index":77,"applied_index":76}`},
		"POST /v1/cluster/raft/remove-peer": {200, `{"removed":"node4"}`},
		"POST /v1/cluster/leave":            {200, `{"left":true,"node_id":"node2"}`},
	})
	r := runWith(t, opsCLI(f), "raft", "list-peers")
	f.check(t, "GET", "/v1/cluster/raft", "admintok", nil)
	want := "ID     ADDRESS         SUFFRAGE  LEADER\n" +
		"node1  127.0.0.1:8311  Voter     yes\n" +
		"node4  127.0.0.1:8314  Nonvoter  no\n" +
		"\nLeader node1, term 4, commit index 77, applied index 76 (as seen by a Follower).\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("list-peers:\n%s\nwant\n%s", r.stdout, want)
	}

	r = runWith(t, opsCLI(f), "raft", "remove-peer", "node4")
	f.check(t, "POST", "/v1/cluster/raft/remove-peer", "admintok", map[string]any{"id": "node4"})
	if r.code != 0 || r.stdout != "Removed node4 from the Raft configuration.\n" {
		t.Errorf("remove-peer: %+v", r)
	}

	r = runWith(t, opsCLI(f), "leave")
	f.check(t, "POST", "/v1/cluster/leave", "admintok", nil)
	if r.code != 0 || r.stdout != "Node node2 left the cluster and is shutting down.\n" {
		t.Errorf("leave: %+v", r)
	}
}
