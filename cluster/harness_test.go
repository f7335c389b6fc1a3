package cluster

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"

	"github.com/lunasentri/lunasentri/fsm"
)

// The unit tests of this package run Raft in memory (raft.NewInmemTransport
// and in-memory log and stable stores; file snapshots in a temp dir, as
// SaveSnapshot reads them) behind real *Cluster values, without gossip: a
// test writes the gossip view it wants into the member table.

// testNode is one in-memory server.
type testNode struct {
	c     *Cluster
	fsm   *fsm.FSM
	trans *raft.InmemTransport
}

// fastRaft shortens Raft's timeouts for an in-memory cluster.
func fastRaft(cfg *raft.Config) {
	cfg.HeartbeatTimeout = 50 * time.Millisecond
	cfg.ElectionTimeout = 50 * time.Millisecond
	cfg.LeaderLeaseTimeout = 50 * time.Millisecond
	cfg.CommitTimeout = 5 * time.Millisecond
}

// newNode starts one server with empty stores on an in-memory transport at
// address id. It does not bootstrap.
func newNode(t *testing.T, id string, o Options) *testNode {
	t.Helper()
	o.NodeID = id
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	if o.ApplyTimeout == 0 {
		o.ApplyTimeout = 5 * time.Second
	}
	f := fsm.New(fsm.Options{})
	o.FSM = f
	logger := hclog.New(&hclog.LoggerOptions{Name: id, Level: hclog.Off})
	cfg := raft.DefaultConfig()
	cfg.LocalID = raft.ServerID(id)
	cfg.Logger = logger.Named("raft")
	fastRaft(cfg)
	snaps, err := raft.NewFileSnapshotStoreWithLogger(o.DataDir, 2, logger.Named("snapshot"))
	if err != nil {
		t.Fatal(err)
	}
	_, trans := raft.NewInmemTransport(raftAddrOf(id))
	store := raft.NewInmemStore()
	r, err := raft.NewRaft(cfg, f, store, store, snaps, trans)
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{
		opts: o, logger: logger, raft: r, snaps: snaps,
		members:    newMemberTable(time.Second, 500*time.Millisecond),
		shutdownCh: make(chan struct{}), reconcileCh: make(chan struct{}, 1),
	}
	n := &testNode{c: c, fsm: f, trans: trans}
	t.Cleanup(func() { n.stop() })
	return n
}

func (n *testNode) stop() {
	if n.c.raft != nil {
		n.c.raft.Shutdown().Error()
	}
	n.trans.Close()
}

// connect links every node's transport with every other's.
func connect(nodes ...*testNode) {
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				a.trans.Connect(b.trans.LocalAddr(), b.trans)
			}
		}
	}
}

// newRaftCluster bootstraps n voters node1…nodeN in memory and waits for a
// leader; every node sees every other alive in gossip.
func newRaftCluster(t *testing.T, n int, o Options) []*testNode {
	t.Helper()
	var nodes []*testNode
	var cfg raft.Configuration
	for i := range n {
		id := fmt.Sprintf("node%d", i+1)
		nodes = append(nodes, newNode(t, id, o))
		cfg.Servers = append(cfg.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(id), Address: raftAddrOf(id)})
	}
	connect(nodes...)
	if err := nodes[0].c.raft.BootstrapCluster(cfg).Error(); err != nil {
		t.Fatal(err)
	}
	for _, a := range nodes {
		for _, b := range nodes {
			a.gossip(t, b.c.opts.NodeID, GossipAlive, nodeMeta{})
		}
	}
	leader(t, nodes)
	return nodes
}

// leader waits for one node to lead and returns it.
func leader(t *testing.T, nodes []*testNode) *testNode {
	t.Helper()
	var l *testNode
	waitFor(t, 10*time.Second, "a leader", func() bool {
		for _, n := range nodes {
			if n.c.raft != nil && n.c.raft.State() == raft.Leader {
				l = n
				return true
			}
		}
		return false
	})
	return l
}

// gossip records in n's member table that server id has status, as
// memberlist's delegate would.
func (n *testNode) gossip(t *testing.T, id, status string, meta nodeMeta) {
	t.Helper()
	meta.ID = id
	if meta.RaftAddr == "" {
		meta.RaftAddr = string(raftAddrOf(id))
	}
	data, err := json.Marshal(meta)
	if err != nil {
		t.Fatal(err)
	}
	n.c.members.set(&memberlist.Node{Name: id, Addr: net.IPv4(127, 0, 0, 1), Port: 1, Meta: data}, status)
	n.c.members.acked(id)
}

// configuration is n's Raft configuration: id → suffrage.
func (n *testNode) configuration(t *testing.T) map[string]raft.ServerSuffrage {
	t.Helper()
	f := n.c.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		t.Fatal(err)
	}
	out := map[string]raft.ServerSuffrage{}
	for _, s := range f.Configuration().Servers {
		out[string(s.ID)] = s.Suffrage
	}
	return out
}

// register applies a machine registration through n (the leader) and
// returns its API key.
func (n *testNode) register(t *testing.T, name string) string {
	t.Helper()
	key := "key-of-" + name
	cmd := fsm.MustEncode(fsm.CmdRegisterMachine, fsm.RegisterMachine{Machine: fsm.Machine{
		ID: "id-" + name, Name: name, KeyHash: fsm.HashKey(key), CreatedAt: time.Unix(1700000000, 0).UTC(),
	}})
	f := n.c.raft.Apply(cmd, 5*time.Second)
	if err := f.Error(); err != nil {
		t.Fatalf("register %s: %v", name, err)
	}
	if r, ok := f.Response().(*fsm.ApplyResult); ok && r.Err != nil {
		t.Fatalf("register %s: %v", name, r.Err)
	}
	return key
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func sha256hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// raftAddrOf is a test server's Raft address: host:port on the loopback
// host its gossip comes from, as the gossip identity checks (issue 11)
// require; the in-memory transport only uses it as a name.
func raftAddrOf(id string) raft.ServerAddress {
	h := fnv.New32a()
	h.Write([]byte(id))
	return raft.ServerAddress(fmt.Sprintf("127.0.0.1:%d", 10000+h.Sum32()%50000))
}
