package transport_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/lunasentri/lunasentri/transport"
)

// fakeOperator records what the cluster-operations endpoints asked of it.
type fakeOperator struct {
	mu       sync.Mutex
	removed  []string
	restored []byte
	archive  []byte
	left     bool
}

func (o *fakeOperator) RaftInfo() (transport.RaftInfo, error) {
	return transport.RaftInfo{State: "Leader", LeaderID: "leader", Term: 3,
		Servers: []transport.RaftServer{{ID: "leader", Address: "127.0.0.1:8300", Suffrage: "Voter", Leader: true}}}, nil
}

func (o *fakeOperator) RemoveServer(id string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch id {
	case "unknown":
		return fmt.Errorf("%w: %s", transport.ErrUnknownPeer, id)
	case "last-voter":
		return fmt.Errorf("%w: removing %s", transport.ErrPeerQuorum, id)
	}
	o.removed = append(o.removed, id)
	return nil
}

func (o *fakeOperator) SaveSnapshot(w io.Writer) error {
	_, err := w.Write(o.archive)
	return err
}

func (o *fakeOperator) RestoreSnapshot(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(b, []byte("SNAP")) {
		return transport.ErrBadSnapshot
	}
	o.mu.Lock()
	o.restored = b
	o.mu.Unlock()
	return nil
}

func (o *fakeOperator) Leave(context.Context) error {
	o.mu.Lock()
	o.left = true
	o.mu.Unlock()
	return nil
}

var operatorEndpoints = []struct{ method, path, body string }{
	{"GET", "/v1/cluster/raft", ""},
	{"POST", "/v1/cluster/raft/remove-peer", `{"id":"n3"}`},
	{"POST", "/v1/cluster/leave", ""},
	{"GET", "/v1/snapshot", ""},
	{"POST", "/v1/snapshot", "SNAP"},
}

func TestOperator_RequiresAdminTokenAndAnswers501WhenDisabled(t *testing.T) {
	op := &fakeOperator{archive: []byte("SNAP-archive")}
	n := newNode(t, true, func(o *transport.Options) { o.Operator = op })
	_, agentKey := n.register(t, "m1")
	for _, ep := range operatorEndpoints {
		for _, auth := range []string{"", "Bearer wrong", "Bearer " + agentKey, "Bearer " + clusterSecret} {
			wantJSONError(t, call(t, ep.method, n.srv.URL+ep.path, auth, ep.body), http.StatusUnauthorized)
		}
	}
	if len(op.removed) != 0 || op.restored != nil || op.left {
		t.Errorf("unauthenticated requests reached the operator: %+v", op)
	}

	disabled := newNode(t, true, nil)
	for _, ep := range operatorEndpoints {
		wantJSONError(t, disabled.admin(t, ep.method, ep.path, ep.body), http.StatusNotImplemented)
	}
	wantJSONError(t, call(t, "POST", n.srv.URL+"/internal/v1/raft/remove-peer", bearerAdmin, `{"id":"n3"}`), http.StatusUnauthorized)
}

func TestOperator_EndpointsOnTheLeader(t *testing.T) {
	op := &fakeOperator{archive: bytes.Repeat([]byte("SNAP"), 40000)} // > the 64 KiB spool
	n := newNode(t, true, func(o *transport.Options) { o.Operator = op })

	r := n.admin(t, "GET", "/v1/cluster/raft", "")
	if r.status != 200 || r.body["raft_state"] != "Leader" || len(r.body["servers"].([]any)) != 1 {
		t.Errorf("raft info: %d %s", r.status, r.raw)
	}
	wantJSONError(t, n.admin(t, "POST", "/v1/cluster/raft/remove-peer", `{}`), http.StatusBadRequest)
	wantJSONError(t, n.admin(t, "POST", "/v1/cluster/raft/remove-peer", `{"id":"n3","x":1}`), http.StatusBadRequest)
	if r := n.admin(t, "POST", "/v1/cluster/raft/remove-peer", `{"id":"n3"}`); r.status != 200 {
		t.Errorf("remove-peer: %d %s", r.status, r.raw)
	}
	// Refusals say what they are: an unknown id is 404, a removal that
	// would lose quorum 409 (issue 16's guard), never "unavailable".
	wantJSONError(t, n.admin(t, "POST", "/v1/cluster/raft/remove-peer", `{"id":"unknown"}`), http.StatusNotFound)
	wantJSONError(t, n.admin(t, "POST", "/v1/cluster/raft/remove-peer", `{"id":"last-voter"}`), http.StatusConflict)

	resp, err := http.DefaultClient.Do(mustReq(t, "GET", n.srv.URL+"/v1/snapshot", nil))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(got, op.archive) {
		t.Errorf("snapshot save: %d, %d bytes, want %d", resp.StatusCode, len(got), len(op.archive))
	}
	wantJSONError(t, n.admin(t, "POST", "/v1/snapshot", "not an archive"), http.StatusBadRequest)
	if op.restored != nil {
		t.Errorf("a bad archive was restored")
	}
	if r := n.admin(t, "POST", "/v1/snapshot", "SNAP-good"); r.status != 200 || string(op.restored) != "SNAP-good" {
		t.Errorf("snapshot restore: %d %s", r.status, r.raw)
	}
	if r := n.admin(t, "POST", "/v1/cluster/leave", ""); r.status != 200 || !op.left {
		t.Errorf("leave: %d %s", r.status, r.raw)
	}
}

func TestOperator_FollowerForwardsToLeader(t *testing.T) {
	lop := &fakeOperator{archive: []byte("SNAP-from-leader")}
	fop := &fakeOperator{archive: []byte("SNAP-from-follower")}
	p := newPair(t, func(o *transport.Options) { o.Operator = lop }, func(o *transport.Options) { o.Operator = fop })

	if r := p.follower.admin(t, "POST", "/v1/cluster/raft/remove-peer", `{"id":"n3"}`); r.status != 200 {
		t.Errorf("remove-peer via follower: %d %s", r.status, r.raw)
	}
	if len(lop.removed) != 1 || len(fop.removed) != 0 {
		t.Errorf("removed on leader %v, on follower %v", lop.removed, fop.removed)
	}
	resp, err := http.DefaultClient.Do(mustReq(t, "GET", p.follower.srv.URL+"/v1/snapshot", nil))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(got) != "SNAP-from-leader" {
		t.Errorf("snapshot via follower: %d %q", resp.StatusCode, got)
	}
	if r := p.follower.admin(t, "POST", "/v1/snapshot", "SNAP-up"); r.status != 200 || string(lop.restored) != "SNAP-up" || fop.restored != nil {
		t.Errorf("restore via follower: %d %s", r.status, r.raw)
	}
	// A proxied request that lands on another non-leader is not bounced on.
	r := call(t, "GET", p.follower.srv.URL+"/v1/snapshot", bearerAdmin, "", "X-LunaSentri-Forwarded", "1")
	wantJSONError(t, r, http.StatusServiceUnavailable)
}

func mustReq(t testing.TB, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", bearerAdmin)
	return req
}
