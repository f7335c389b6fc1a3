package transport_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lunasentri/lunasentri/fsm"
	"github.com/lunasentri/lunasentri/transport"
)

// pair is a follower whose consensus points at a leader API. The fake
// replicates nothing: each FSM only holds what a test puts in it.
type pair struct{ leader, follower *testNode }

func newPair(t *testing.T, leaderOpts, followerOpts func(*transport.Options)) pair {
	t.Helper()
	l := newNode(t, true, leaderOpts)
	f := newNode(t, false, followerOpts)
	f.cons.setLeader("leader", l.addr)
	return pair{leader: l, follower: f}
}

// both registers the same machine in both replicas, as replication would.
func (p pair) both(t *testing.T, name string) (id, key string) {
	t.Helper()
	id, key = p.leader.register(t, name)
	p.onFollower(t, func() { registerInto(t, p.follower.cons, name, id, key) })
	return id, key
}

// onFollower applies directly to the follower's replica.
func (p pair) onFollower(t *testing.T, fn func()) {
	t.Helper()
	p.follower.cons.leader.Store(true)
	defer p.follower.cons.leader.Store(false)
	fn()
}

func TestForward_MachineWritesThroughFollowerLandOnLeader(t *testing.T) {
	p := newPair(t, nil, nil)
	fcalls := p.follower.cons.calls.Load()

	r := p.follower.admin(t, "POST", "/v1/machines", `{"name":"m1","labels":{"env":"prod"},"offline_threshold":"45s"}`)
	if r.status != http.StatusCreated {
		t.Fatalf("register via follower: %d %s", r.status, r.raw)
	}
	m := checkMachineShape(t, r.body["machine"])
	lm := machine(t, p.leader.fsm, "m1")
	if m["id"] != lm.ID || lm.Labels["env"] != "prod" || lm.OfflineThreshold != 45*time.Second {
		t.Errorf("leader has %+v, follower answered %v", lm, m)
	}
	if id, ok := p.leader.fsm.Authenticate(r.body["api_key"].(string)); !ok || id != lm.ID {
		t.Errorf("key from the follower's answer does not authenticate on the leader")
	}
	if strings.Contains(string(r.raw), "key_hash") {
		t.Errorf("forwarded answer leaks the key hash")
	}

	// The follower has not replicated m1 yet, so only the leader can say 409.
	wantJSONError(t, p.follower.admin(t, "POST", "/v1/machines", `{"name":"m1"}`), http.StatusConflict)

	// A machine only the follower still knows: the leader answers 404.
	p.onFollower(t, func() { registerInto(t, p.follower.cons, "ghost", "id-ghost", "k-ghost") })
	wantJSONError(t, p.follower.admin(t, "DELETE", "/v1/machines/ghost", ""), http.StatusNotFound)
	wantJSONError(t, p.follower.admin(t, "POST", "/v1/machines/ghost/rotate-key", ""), http.StatusNotFound)

	_, oldKey := p.both(t, "m2")
	r = p.follower.admin(t, "POST", "/v1/machines/m2/rotate-key", "")
	if r.status != 200 {
		t.Fatalf("rotate via follower: %d %s", r.status, r.raw)
	}
	if _, ok := p.leader.fsm.Authenticate(oldKey); ok {
		t.Errorf("old key still works on the leader")
	}
	if _, ok := p.leader.fsm.Authenticate(r.body["api_key"].(string)); !ok {
		t.Errorf("new key does not work on the leader")
	}
	if r := p.follower.admin(t, "DELETE", "/v1/machines/m2", ""); r.status != http.StatusNoContent {
		t.Errorf("delete via follower: %d %s", r.status, r.raw)
	}
	if _, err := p.leader.fsm.MachineByName("m2"); !errors.Is(err, fsm.ErrMachineNotFound) {
		t.Errorf("m2 still on the leader after delete via follower")
	}
	// The follower proposed nothing itself (the calls above were test setup).
	if got := p.follower.cons.calls.Load() - fcalls; got != 2 {
		t.Errorf("follower called its own Apply %d times, want only the two setup calls", got)
	}
}

func TestForward_ChannelWritesAndTestThroughFollower(t *testing.T) {
	var tested atomic.Value
	p := newPair(t, func(o *transport.Options) {
		o.TestChannel = func(_ context.Context, name string) error {
			if tested.Load() != nil {
				return errors.New("receiver answered 500")
			}
			tested.Store(name)
			return nil
		}
	}, nil)
	r := p.follower.admin(t, "POST", "/v1/channels", `{"type":"webhook","name":"hook","url":"https://h.example/x","secret":"`+hookSecret+`"}`)
	if r.status != http.StatusCreated {
		t.Fatalf("create via follower: %d %s", r.status, r.raw)
	}
	wantNoSecrets(t, "forwarded create", r.raw, hookSecret)
	if c, err := p.leader.fsm.Channel("hook"); err != nil || c.Secret != hookSecret {
		t.Errorf("leader channel = %+v, %v", c, err)
	}
	wantJSONError(t, p.follower.admin(t, "POST", "/v1/channels", `{"type":"telegram","name":"hook","chat_id":"1"}`), http.StatusConflict)

	// The test message goes out from the leader only.
	cmd := fsm.MustEncode(fsm.CmdCreateChannel, fsm.CreateChannel{Channel: fsm.Channel{Name: "tg", Type: "telegram", ChatID: "1"}})
	for _, c := range []*fakeConsensus{p.leader.cons, p.follower.cons} {
		c.leader.Store(true)
		_, _, err := c.Apply(context.Background(), cmd)
		c.leader.Store(c == p.leader.cons)
		if err != nil {
			t.Fatal(err)
		}
	}
	if r := p.follower.admin(t, "POST", "/v1/channels/tg/test", ""); r.status != 200 || tested.Load() != "tg" {
		t.Errorf("test via follower: %d %s (leader tested %v)", r.status, r.raw, tested.Load())
	}
	r = p.follower.admin(t, "POST", "/v1/channels/tg/test", "")
	wantJSONError(t, r, http.StatusBadGateway)
	if !strings.Contains(r.body["error"].(string), "receiver answered 500") {
		t.Errorf("502 does not carry the receiver's error: %s", r.raw)
	}
	if r := p.follower.admin(t, "DELETE", "/v1/channels/tg", ""); r.status != http.StatusNoContent {
		t.Errorf("delete via follower: %d", r.status)
	}
	if _, err := p.leader.fsm.Channel("tg"); err == nil {
		t.Errorf("tg still on the leader")
	}
}

// A write that starts during an election waits for the new leader.
func TestForward_WriteWaitsOutAnElection(t *testing.T) {
	p := newPair(t, nil, nil)
	p.follower.cons.setLeader("", "")
	timer := time.AfterFunc(200*time.Millisecond, func() { p.follower.cons.setLeader("leader", p.leader.addr) })
	defer timer.Stop()
	if r := p.follower.admin(t, "POST", "/v1/machines", `{"name":"m1"}`); r.status != http.StatusCreated {
		t.Fatalf("register during election: %d %s", r.status, r.raw)
	}
	if _, err := p.leader.fsm.MachineByName("m1"); err != nil {
		t.Errorf("m1 not on the leader: %v", err)
	}
}

func TestForward_HeartbeatsReachLeaderAsBatches(t *testing.T) {
	const machines, beats = 20, 200
	var failed atomic.Int64
	p := newPair(t, nil, func(o *transport.Options) {
		o.FlushInterval = 50 * time.Millisecond
		o.ObserveFlush = func(_ int, _ time.Duration, err error) {
			if err != nil {
				failed.Add(1)
			}
		}
	})
	keys := make([]string, machines)
	for i := range keys {
		_, keys[i] = p.both(t, fmt.Sprintf("m%02d", i))
	}
	fcalls := p.follower.cons.calls.Load()
	p.follower.runFlusher(t)
	before := time.Now()
	for i := range beats {
		if r := p.follower.beat(t, keys[i%machines], `{}`); r.status != http.StatusAccepted {
			t.Fatalf("beat via follower: %d %s", r.status, r.raw)
		}
	}
	after := time.Now()
	eventually(t, 5*time.Second, "machines online on the leader", func() bool {
		return len(p.leader.fsm.Machines(fsm.StatusOnline)) == machines
	})
	if got := p.follower.cons.calls.Load(); got != fcalls {
		t.Errorf("follower called Apply %d times for heartbeats", got-fcalls)
	}
	if n := p.leader.cons.applied(fsm.CmdHeartbeatBatch); n*5 > beats {
		t.Errorf("%d Raft entries for %d beats: not batched", n, beats)
	}
	for i := range machines {
		wantSeenBetween(t, machine(t, p.leader.fsm, fmt.Sprintf("m%02d", i)).LastSeen, before, after)
	}

	// With no leader known the follower keeps beats and delivers them later.
	if failed.Load() != 0 {
		t.Fatalf("%d flushes failed with the leader reachable", failed.Load())
	}
	p.follower.cons.setLeader("", "")
	before = time.Now()
	if r := p.follower.beat(t, keys[0], `{}`); r.status != http.StatusAccepted {
		t.Fatalf("beat: %d", r.status)
	}
	after = time.Now()
	// Flushes run one at a time: once one failed, none is still in flight.
	eventually(t, 5*time.Second, "a flush to fail for want of a leader", func() bool { return failed.Load() > 0 })
	seen := machine(t, p.leader.fsm, "m00").LastSeen
	if !seen.Before(before) {
		t.Fatalf("beat reached the leader while no leader was known")
	}
	p.follower.cons.setLeader("leader", p.leader.addr)
	eventually(t, 5*time.Second, "kept beat to reach the leader", func() bool {
		return machine(t, p.leader.fsm, "m00").LastSeen.After(seen)
	})
	wantSeenBetween(t, machine(t, p.leader.fsm, "m00").LastSeen, before, after)
}

func TestInternal_RequiresClusterSecret(t *testing.T) {
	p := newPair(t, nil, nil)
	_, agentKey := p.leader.register(t, "m1")
	if r := p.leader.admin(t, "POST", "/v1/channels", `{"type":"telegram","name":"tg","chat_id":"1"}`); r.status != 201 {
		t.Fatal(r.status)
	}
	reg := string(fsm.MustEncode(fsm.CmdRegisterMachine, fsm.RegisterMachine{Machine: fsm.Machine{ID: "x", Name: "sneaky"}}))
	endpoints := []struct{ path, body string }{
		{"/internal/v1/apply", reg},
		{"/internal/v1/heartbeats", `{"node":"n","beats":[{"i":"id-m1","a":0}]}`},
		{"/internal/v1/channels/tg/test", ""},
	}
	creds := map[string][]string{
		"none":                  nil,
		"wrong secret":          {"X-LunaSentri-Cluster-Secret", "not-the-secret"},
		"empty secret":          {"X-LunaSentri-Cluster-Secret", ""},
		"agent key as bearer":   {"Authorization", "Bearer " + agentKey},
		"admin token as bearer": {"Authorization", bearerAdmin},
		"admin token as secret": {"X-LunaSentri-Cluster-Secret", adminToken},
		"agent key as secret":   {"X-LunaSentri-Cluster-Secret", agentKey},
		"secret as bearer":      {"Authorization", "Bearer " + clusterSecret},
		"secret as x-api-key":   {"X-API-Key", clusterSecret},
	}
	for _, ep := range endpoints {
		for name, hdr := range creds {
			t.Run(ep.path+"/"+name, func(t *testing.T) {
				before := snap(p.leader.fsm)
				r := call(t, "POST", p.leader.srv.URL+ep.path, "", ep.body, hdr...)
				wantJSONError(t, r, http.StatusUnauthorized)
				if !reflect.DeepEqual(before, snap(p.leader.fsm)) {
					t.Errorf("FSM changed")
				}
			})
		}
	}

	secret := []string{"X-LunaSentri-Cluster-Secret", clusterSecret}
	// With the secret: admin writes go through, anything else is refused.
	if r := call(t, "POST", p.leader.srv.URL+"/internal/v1/apply", "", reg, secret...); r.status != 200 {
		t.Errorf("apply with secret: %d %s", r.status, r.raw)
	}
	beat := string(fsm.MustEncode(fsm.CmdHeartbeatBatch, fsm.HeartbeatBatch{At: time.Now(), Beats: []fsm.Beat{{ID: "id-m1", SeenAt: 1}}}))
	wantJSONError(t, call(t, "POST", p.leader.srv.URL+"/internal/v1/apply", "", beat, secret...), http.StatusBadRequest)
	mark := string(fsm.MustEncode(fsm.CmdMarkOffline, fsm.MarkOffline{At: time.Now()}))
	wantJSONError(t, call(t, "POST", p.leader.srv.URL+"/internal/v1/apply", "", mark, secret...), http.StatusBadRequest)
	if m := machine(t, p.leader.fsm, "m1"); m.Status != fsm.StatusUnknown {
		t.Errorf("a forwarded heartbeat command changed m1 to %s", m.Status)
	}
	// The cluster secret is no admin token.
	wantJSONError(t, call(t, "GET", p.leader.srv.URL+"/v1/machines", "Bearer "+clusterSecret, ""), http.StatusUnauthorized)
	// A follower's internal endpoints say they are not the leader.
	wantJSONError(t, call(t, "POST", p.follower.srv.URL+"/internal/v1/heartbeats", "", `{"node":"n","beats":[]}`, secret...),
		http.StatusServiceUnavailable)
}

// A follower configured with another cluster's secret cannot write.
func TestForward_WrongClusterSecretWritesNothing(t *testing.T) {
	p := newPair(t, nil, func(o *transport.Options) { o.ClusterSecret = "some-other-cluster" })
	before := snap(p.leader.fsm)
	r := p.follower.admin(t, "POST", "/v1/machines", `{"name":"m1"}`)
	if r.status < 400 {
		t.Fatalf("register with a wrong cluster secret: %d %s", r.status, r.raw)
	}
	wantJSONError(t, r, http.StatusServiceUnavailable)
	if !reflect.DeepEqual(before, snap(p.leader.fsm)) {
		t.Errorf("leader FSM changed")
	}

	// The leader's 401 is about the cluster secret, not the admin's token:
	// the admin must not be told their credentials are wrong.
	cmd := fsm.MustEncode(fsm.CmdCreateChannel, fsm.CreateChannel{Channel: fsm.Channel{Name: "tg", Type: "telegram", ChatID: "1"}})
	p.onFollower(t, func() { _, _, _ = p.follower.cons.Apply(context.Background(), cmd) })
	_, _, _ = p.leader.cons.Apply(context.Background(), cmd)
	wantJSONError(t, p.follower.admin(t, "POST", "/v1/channels/tg/test", ""), http.StatusServiceUnavailable)
}
