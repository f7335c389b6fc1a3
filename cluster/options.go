package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Options configures a Cluster.
type Options struct {
	NodeID  string
	DataDir string

	RaftBind        string // host:port to listen on for Raft
	RaftAdvertise   string // host:port peers dial; default RaftBind
	GossipBind      string // host:port for memberlist
	GossipAdvertise string // host:port peers gossip to; default GossipBind
	// HTTPAdvertise is this node's API address (host:port), carried in
	// gossip metadata so any node can find the leader's API.
	HTTPAdvertise string

	BootstrapExpect int      // 0: never bootstrap (join an existing cluster)
	Join            []string // gossip addresses, retried until one answers

	FSM raft.FSM
	// LeaderWork runs while this node is leader, after a Barrier, in its own
	// goroutine. ctx is cancelled the moment leadership is lost; the cluster
	// waits for LeaderWork to return before it starts the next term's.
	LeaderWork func(ctx context.Context)
	// LeadershipChanged, if set, hears every gain (true) and loss (false)
	// of leadership on this node, for metrics.
	LeadershipChanged func(isLeader bool)
	// ObserveApply, if set, hears how long each Raft apply this node
	// proposed took, and its error, for metrics.
	ObserveApply func(d time.Duration, err error)

	Logger hclog.Logger

	// RaftMultiplier scales the Raft timeouts (raftconfig.go), 1 to
	// MaxRaftMultiplier; 0 means 1.
	RaftMultiplier int
	// RaftConfig adjusts the Raft configuration (tests use it for shorter
	// timeouts). Called on a copy of raft.DefaultConfig with LocalID and
	// the timing of RaftMultiplier set.
	RaftConfig func(*raft.Config)
	// GossipInterval scales memberlist's probe interval; zero keeps the LAN
	// default. Tests shorten it.
	GossipProbeInterval time.Duration
	// SnapshotRetain is how many Raft snapshots stay on disk; default 2.
	SnapshotRetain int
	// ApplyTimeout bounds each Raft apply; default 5s.
	ApplyTimeout time.Duration

	// GossipKey encrypts gossip (16, 24 or 32 bytes); nil gossips in clear.
	GossipKey []byte

	// Issue 11. RaftTLS, when set, serves Raft over TLS (it must require
	// and verify client certificates); RaftTLSClient dials peers with this
	// node's certificate. Both or neither.
	RaftTLS       *tls.Config
	RaftTLSClient *tls.Config

	// ServerStabilization is how long a new server must stay healthy and
	// caught up as a non-voter before it is promoted; default 10s.
	ServerStabilization time.Duration
	// DeadServerCleanup is how long a server must have failed in gossip
	// before the leader removes it from Raft; default 30s.
	DeadServerCleanup time.Duration
	// ReconcileInterval is how often the leader compares gossip with the
	// Raft configuration besides reacting to gossip events; default 2s.
	ReconcileInterval time.Duration
	// ProbeServer asks another server for its Raft progress (its API
	// address from gossip). The leader promotes a non-voter only once it
	// has caught up. nil: promote on gossip health alone.
	ProbeServer func(ctx context.Context, httpAddr string) (ServerProgress, error)
}

// ServerProgress is what the leader needs to know of a non-voter before
// promoting it.
type ServerProgress struct {
	Term         uint64
	AppliedIndex uint64
}

// Sentinel errors.
var (
	// ErrNotLeader: the call needs the leader and this node is not it.
	ErrNotLeader = errors.New("not the leader")
	// ErrNoLeader: no leader is known right now (election or partition).
	ErrNoLeader = errors.New("no cluster leader")
	// ErrShutdown: the cluster is shutting down.
	ErrShutdown = errors.New("cluster is shutting down")
	// ErrUnknownServer: no server with that id in the Raft configuration.
	ErrUnknownServer = errors.New("no such server in the raft configuration")
	// ErrWouldLoseQuorum: removing that voter would leave the voters
	// without a live majority (issue 16).
	ErrWouldLoseQuorum = errors.New("refused: the cluster would lose quorum")
)

func (o *Options) validate() error {
	switch {
	case o.NodeID == "":
		return errors.New("cluster: node id is required")
	case o.DataDir == "":
		return errors.New("cluster: data dir is required")
	case o.FSM == nil:
		return errors.New("cluster: FSM is required")
	case o.BootstrapExpect < 0:
		return errors.New("cluster: bootstrap-expect must not be negative")
	}
	if _, err := RaftTimingFor(o.RaftMultiplier); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	for name, addr := range map[string]string{"raft": o.RaftBind, "gossip": o.GossipBind} {
		if _, _, err := splitHostPort(addr); err != nil {
			return fmt.Errorf("cluster: %s address: %w", name, err)
		}
	}
	if o.RaftAdvertise == "" {
		o.RaftAdvertise = o.RaftBind
	}
	if o.GossipAdvertise == "" {
		o.GossipAdvertise = o.GossipBind
	}
	if o.SnapshotRetain <= 0 {
		o.SnapshotRetain = 2
	}
	if o.ApplyTimeout <= 0 {
		o.ApplyTimeout = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	if o.ServerStabilization <= 0 {
		o.ServerStabilization = DefaultServerStabilization
	}
	if o.DeadServerCleanup <= 0 {
		o.DeadServerCleanup = DefaultDeadServerCleanup
	}
	if o.ReconcileInterval <= 0 {
		o.ReconcileInterval = 2 * time.Second
	}
	if n := len(o.GossipKey); n != 0 && n != 16 && n != 24 && n != 32 {
		return fmt.Errorf("cluster: gossip key must be 16, 24 or 32 bytes, not %d", n)
	}
	if (o.RaftTLS == nil) != (o.RaftTLSClient == nil) {
		return errors.New("cluster: RaftTLS and RaftTLSClient go together")
	}
	if o.RaftTLS != nil && len(o.GossipKey) == 0 {
		return errors.New("cluster: with TLS on, gossip must be encrypted (a gossip key is required)")
	}
	if o.LeaderWork == nil {
		o.LeaderWork = func(ctx context.Context) { <-ctx.Done() }
	}
	return nil
}

func splitHostPort(addr string) (string, int, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("invalid port in %q", addr)
	}
	return host, port, nil
}

// Membership defaults, written once; the server and the command line refer
// to them. Stabilization as Consul's autopilot (10s); cleanup after 30s of
// gossip failure, long enough to ride out a restart.
const (
	DefaultServerStabilization = 10 * time.Second
	DefaultDeadServerCleanup   = 30 * time.Second
)
