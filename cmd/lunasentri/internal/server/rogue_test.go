package server

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// rogueDelegate serves fixed gossip metadata.
type rogueDelegate struct{ meta []byte }

func (d rogueDelegate) NodeMeta(int) []byte           { return d.meta }
func (rogueDelegate) NotifyMsg([]byte)                {}
func (rogueDelegate) GetBroadcasts(int, int) [][]byte { return nil }
func (rogueDelegate) LocalState(bool) []byte          { return nil }
func (rogueDelegate) MergeRemoteState([]byte, bool)   {}

// TestGossip_RogueMemberClaimingLeadershipReceivesNothing: an unkeyed
// gossip member that claims to be the leader (its id in metadata, its own
// API address) gets no heartbeat batch, no forwarded write, no proxied
// snapshot and no cluster secret.
func TestGossip_RogueMemberClaimingLeadershipReceivesNothing(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	leader := tc.leader()
	leaderID := tc.opts[leader].NodeID
	f := tc.follower()

	var hits atomic.Int64
	var secretSeen atomic.Bool
	rogue := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.Header.Get("X-LunaSentri-Cluster-Secret") != "" {
			secretSeen.Store(true)
		}
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
	}))
	defer rogue.Close()
	rogueHTTP := strings.TrimPrefix(rogue.URL, "http://")

	ports := freePorts(t, 2)
	for i, name := range []string{"evil", leaderID + "-twin"} {
		meta, _ := json.Marshal(map[string]any{"id": leaderID, "http": rogueHTTP, "raft": tc.opts[leader].RaftAddr, "state": true})
		cfg := memberlist.DefaultLANConfig()
		cfg.Name = name
		cfg.BindAddr, cfg.BindPort = "127.0.0.1", ports[i]
		cfg.AdvertiseAddr, cfg.AdvertisePort = "127.0.0.1", ports[i]
		cfg.Delegate = rogueDelegate{meta: meta}
		cfg.LogOutput = io.Discard
		ml, err := memberlist.Create(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = ml.Shutdown() }()
		if _, err := ml.Join([]string{tc.opts[f].GossipAddr}); err != nil {
			t.Fatalf("rogue join: %v", err)
		}
	}

	// Traffic that goes to the leader from a follower: heartbeats, a
	// forwarded write, a proxied snapshot, a fresh key's lookup.
	key := tc.register(f, "victim", nil)
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		tc.beat(f, key)
		time.Sleep(50 * time.Millisecond)
	}
	tc.register(f, fmt.Sprintf("after-rogue-%d", time.Now().UnixNano()%1000), nil)
	if code := call(t, "GET", tc.url(f)+"/v1/snapshot", testToken, nil, nil); code != http.StatusOK {
		t.Logf("snapshot via follower: %d", code)
	}
	call(t, "POST", tc.url(f)+"/v1/heartbeat", "lsk_unknown_key", "{}", nil)

	if hits.Load() != 0 || secretSeen.Load() {
		t.Fatalf("the rogue member received %d requests (cluster secret seen: %v)", hits.Load(), secretSeen.Load())
	}
	var st struct {
		LeaderHTTPAddr string `json:"leader_http_addr"`
	}
	call(t, "GET", tc.url(f)+"/v1/status", "", nil, &st)
	if st.LeaderHTTPAddr != tc.nodes[leader].HTTPAddr() {
		t.Fatalf("follower names %q as the leader's API, want %q", st.LeaderHTTPAddr, tc.nodes[leader].HTTPAddr())
	}
	if m := tc.machine(leader, "victim"); m.Status != "online" {
		t.Fatalf("beats through the follower did not reach the leader: %+v", m)
	}
}
