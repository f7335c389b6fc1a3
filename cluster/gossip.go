package cluster

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"
)

// nodeMeta is what every server tells the others through gossip. memberlist
// caps it at 512 bytes.
type nodeMeta struct {
	ID              string `json:"id"`
	HTTPAddr        string `json:"http"`
	RaftAddr        string `json:"raft"`
	BootstrapExpect int    `json:"expect"`
	// HasState: this server is (or was) part of a Raft cluster, so nobody
	// may bootstrap a new one with it.
	HasState bool `json:"state"`
	// Leaving: the server announced a graceful leave. memberlist cannot
	// tell a leave from a failure in NotifyLeave (its nodeState.State
	// shadows Node.State), so we carry the intent ourselves, as Serf does.
	Leaving bool `json:"leaving,omitempty"`
}

// Gossip statuses reported by Members (docs/api.md).
const (
	GossipAlive   = "alive"
	GossipSuspect = "suspect"
	GossipFailed  = "failed"
	GossipLeft    = "left"
)

// memberTable is this node's copy of gossip membership, kept from
// memberlist's delegate callbacks. memberlist.Members hands out pointers its
// own goroutines keep writing to, so reading them races; the callbacks run
// under memberlist's lock and we copy what we need there.
type memberTable struct {
	mu    sync.RWMutex
	nodes map[string]memberEntry
	// lastAck is when each member (by memberlist name) last answered one of
	// our probes.
	lastAck map[string]time.Time
	// probeInterval and probeTimeout are memberlist's; they set how long a
	// member may go unprobed before silence means something.
	probeInterval, probeTimeout time.Duration
}

type memberEntry struct {
	meta   nodeMeta
	name   string
	addr   string
	status string
	since  time.Time
}

func newMemberTable(probeInterval, probeTimeout time.Duration) *memberTable {
	return &memberTable{
		nodes:         make(map[string]memberEntry),
		lastAck:       make(map[string]time.Time),
		probeInterval: probeInterval,
		probeTimeout:  probeTimeout,
	}
}

// suspectAfter: memberlist probes the other k members round-robin in a
// reshuffled order, so one member can go up to 2k−1 intervals unprobed.
// Silence for longer than 2k+1 intervals means it stopped answering.
// Caller holds the lock.
func (t *memberTable) suspectAfter() time.Duration {
	k := 0
	for _, e := range t.nodes {
		if e.status == GossipAlive {
			k++
		}
	}
	k = max(k-1, 1)
	return time.Duration(2*k+1)*t.probeInterval + t.probeTimeout
}

func (t *memberTable) set(n *memberlist.Node, status string) {
	var meta nodeMeta
	if err := json.Unmarshal(n.Meta, &meta); err != nil || meta.ID == "" {
		return // not a LunaSentri server
	}
	if !claimMatchesName(n, meta) {
		return // issue 11: a member may only speak for the name it gossips under
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	prev, ok := t.nodes[meta.ID]
	since := time.Now()
	if ok && prev.status == status {
		since = prev.since
	}
	t.nodes[meta.ID] = memberEntry{meta: meta, name: n.Name, addr: n.Address(), status: status, since: since}
}

func (t *memberTable) acked(name string) {
	t.mu.Lock()
	t.lastAck[name] = time.Now()
	t.mu.Unlock()
}

// status is alive, suspect, failed or left for one entry.
func (t *memberTable) statusOf(e memberEntry, self string) string {
	if e.status != GossipAlive || e.meta.ID == self {
		return e.status
	}
	last := t.lastAck[e.name]
	if e.since.After(last) {
		last = e.since
	}
	if time.Since(last) > t.suspectAfter() {
		return GossipSuspect
	}
	return GossipAlive
}

func (t *memberTable) get(id string) (memberEntry, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	e, ok := t.nodes[id]
	return e, ok
}

// all returns every known server with its current gossip status.
func (t *memberTable) all(self string) map[string]memberEntry {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make(map[string]memberEntry, len(t.nodes))
	for k, v := range t.nodes {
		v.status = t.statusOf(v, self)
		out[k] = v
	}
	return out
}

// pingDelegate notes every probe a member answered.
type pingDelegate struct{ c *Cluster }

func (pingDelegate) AckPayload() []byte { return nil }
func (p pingDelegate) NotifyPingComplete(other *memberlist.Node, _ time.Duration, _ []byte) {
	p.c.members.acked(other.Name)
}

// gossipDelegate serves our metadata; eventDelegate keeps the member table.
type gossipDelegate struct{ c *Cluster }

func (d gossipDelegate) NodeMeta(limit int) []byte {
	b, _ := json.Marshal(d.c.localMeta())
	if len(b) > limit {
		d.c.logger.Error("gossip metadata too large", "bytes", len(b), "limit", limit)
		return nil
	}
	return b
}
func (gossipDelegate) NotifyMsg([]byte)                {}
func (gossipDelegate) GetBroadcasts(int, int) [][]byte { return nil }
func (gossipDelegate) LocalState(bool) []byte          { return nil }
func (gossipDelegate) MergeRemoteState([]byte, bool)   {}

type eventDelegate struct{ c *Cluster }

func (e eventDelegate) NotifyJoin(n *memberlist.Node) {
	e.c.members.set(n, GossipAlive)
	e.c.logger.Debug("gossip member joined", "node", n.Name, "addr", n.Address())
	e.c.kickReconcile()
}

func (e eventDelegate) NotifyLeave(n *memberlist.Node) {
	status := GossipFailed
	var meta nodeMeta
	if json.Unmarshal(n.Meta, &meta) == nil && meta.Leaving {
		status = GossipLeft
	}
	e.c.members.set(n, status)
	e.c.logger.Info("gossip member gone", "node", n.Name, "status", status)
	e.c.kickReconcile()
}

func (e eventDelegate) NotifyUpdate(n *memberlist.Node) {
	e.c.members.set(n, GossipAlive)
	e.c.kickReconcile()
}

func (c *Cluster) localMeta() nodeMeta {
	return nodeMeta{
		ID:              c.opts.NodeID,
		HTTPAddr:        c.opts.HTTPAdvertise,
		RaftAddr:        c.opts.RaftAdvertise,
		BootstrapExpect: c.opts.BootstrapExpect,
		HasState:        c.hasRaftState(),
		Leaving:         c.leaving.Load(),
	}
}

func (c *Cluster) startGossip() error {
	host, port, err := splitHostPort(c.opts.GossipBind)
	if err != nil {
		return err
	}
	advHost, advPort, err := splitHostPort(c.opts.GossipAdvertise)
	if err != nil {
		return err
	}
	cfg := memberlist.DefaultLANConfig()
	cfg.Name = c.opts.NodeID
	cfg.BindAddr = host
	if cfg.BindAddr == "" {
		cfg.BindAddr = "0.0.0.0"
	}
	cfg.BindPort = port
	cfg.AdvertiseAddr = advHost
	cfg.AdvertisePort = advPort
	cfg.Delegate = gossipDelegate{c}
	cfg.Events = eventDelegate{c}
	cfg.Ping = pingDelegate{c}
	cfg.LogOutput = nil
	cfg.Logger = c.logger.Named("memberlist").StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true})
	if p := c.opts.GossipProbeInterval; p > 0 {
		cfg.ProbeInterval = p
		cfg.ProbeTimeout = p / 2
		cfg.GossipInterval = p / 5
		cfg.PushPullInterval = 10 * p
	}
	c.members = newMemberTable(cfg.ProbeInterval, cfg.ProbeTimeout)
	if len(c.opts.GossipKey) > 0 {
		cfg.SecretKey = c.opts.GossipKey
		cfg.GossipVerifyIncoming, cfg.GossipVerifyOutgoing = true, true
	}
	ml, err := memberlist.Create(cfg)
	if err != nil {
		return fmt.Errorf("start gossip on %s: %w", c.opts.GossipBind, err)
	}
	c.gossip = ml
	return nil
}

// joinLoop retries -join until one address answers, with capped, jittered
// backoff, like Consul's retry_join.
func (c *Cluster) joinLoop() {
	defer c.wg.Done()
	if len(c.opts.Join) == 0 {
		return
	}
	backoff := 500 * time.Millisecond
	for {
		n, err := c.gossip.Join(c.opts.Join)
		if n > 0 {
			c.logger.Info("joined gossip", "contacted", n)
			return
		}
		if err != nil && isKeyMismatch(err) {
			c.logger.Error("join failed: gossip encryption key mismatch (check -gossip-key on every server)", "addrs", c.opts.Join, "error", err)
		} else {
			c.logger.Warn("join failed, retrying", "addrs", c.opts.Join, "error", err, "in", backoff)
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		select {
		case <-c.shutdownCh:
			return
		case <-time.After(wait):
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

// refreshMeta re-announces metadata after it changed (HasState).
func (c *Cluster) refreshMeta() {
	if err := c.gossip.UpdateNode(2 * time.Second); err != nil {
		c.logger.Warn("update gossip metadata", "error", err)
	}
}

// isKeyMismatch recognises memberlist's errors for a peer whose gossip key
// differs from ours (or that gossips in clear while we encrypt).
func isKeyMismatch(err error) bool {
	msg := err.Error()
	for _, s := range []string{"decrypt", "encryption", "No installed keys", "Encryption is configured"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
