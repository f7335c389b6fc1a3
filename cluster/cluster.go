package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"
	autopilot "github.com/hashicorp/raft-autopilot"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// Cluster is one server's membership in the Raft cluster.
type Cluster struct {
	opts   Options
	logger hclog.Logger

	raft      *raft.Raft
	store     *raftboltdb.BoltStore
	snaps     *raft.FileSnapshotStore
	transport *raft.NetworkTransport
	watcher   *watchingTransport
	commits   commitWatch
	tracker   *trackingFSM
	notifyCh  chan bool
	// pilot manages voters while this server leads (autopilot.go).
	pilot *autopilot.Autopilot

	gossip   *memberlist.Memberlist
	members  *memberTable
	hadState bool

	shutdownOnce sync.Once
	shutdownCh   chan struct{}
	reconcileCh  chan struct{}
	wg           sync.WaitGroup

	leaderMu     sync.Mutex
	leaderCancel context.CancelFunc
	leaderDone   chan struct{}
	stopping     bool
	// leaving is announced in gossip metadata before a graceful leave.
	leaving atomic.Bool
	// peerGate holds back Raft's repeated errors about a dead peer.
	peerGate *peerLogGate

	// Issue 11: refused gossip claims, logged at most once a minute.
	untrustedMu     sync.Mutex
	untrustedLogged map[string]time.Time
}

// New opens the stores, starts Raft and gossip, and begins joining and
// bootstrapping in the background. It returns once the node is listening.
func New(opts Options) (*Cluster, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	c := &Cluster{
		opts:        opts,
		logger:      opts.Logger,
		notifyCh:    make(chan bool, 16),
		shutdownCh:  make(chan struct{}),
		reconcileCh: make(chan struct{}, 1),
	}
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	if err := c.startRaft(); err != nil {
		return nil, err
	}
	if err := c.startGossip(); err != nil {
		c.closeRaft()
		return nil, err
	}
	c.pilot = newAutopilot(c, nil)
	c.watchPeerRecovery(c.peerGate)
	c.wg.Add(3)
	go c.leadershipLoop()
	go c.joinLoop()
	go c.bootstrapLoop()
	return c, nil
}

func (c *Cluster) startRaft() error {
	cfg := raft.DefaultConfig()
	cfg.LocalID = raft.ServerID(c.opts.NodeID)
	// Issue 13: an unreachable peer is logged once, then once a minute.
	peerGate := newPeerLogGate(c.logger.Named("raft"))
	cfg.Logger = peerGate.wrap(c.logger.Named("raft"))
	cfg.NotifyCh = c.notifyCh
	timing, err := RaftTimingFor(c.opts.RaftMultiplier)
	if err != nil {
		return err
	}
	timing.apply(cfg)
	c.logger.Info("raft timing", "multiplier", max(1, c.opts.RaftMultiplier), "timing", timing.String())
	if c.opts.RaftConfig != nil {
		c.opts.RaftConfig(cfg)
	}
	if err := raft.ValidateConfig(cfg); err != nil {
		return fmt.Errorf("raft config: %w", err)
	}

	store, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(c.opts.DataDir, "raft.db")})
	if err != nil {
		return fmt.Errorf("open raft store: %w", err)
	}
	c.store = store
	logs, err := raft.NewLogCache(512, store)
	if err != nil {
		store.Close()
		return fmt.Errorf("raft log cache: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(c.opts.DataDir, c.opts.SnapshotRetain, c.logger.Named("snapshot"))
	if err != nil {
		store.Close()
		return fmt.Errorf("open snapshot store: %w", err)
	}
	c.snaps = snaps
	adv, err := net.ResolveTCPAddr("tcp", c.opts.RaftAdvertise)
	if err != nil {
		store.Close()
		return fmt.Errorf("raft advertise address: %w", err)
	}
	var trans *raft.NetworkTransport
	if c.opts.RaftTLS != nil {
		// Issue 11: mutual TLS between servers.
		layer, lerr := newTLSStreamLayer(c.opts.RaftBind, adv, c.opts.RaftTLS, c.opts.RaftTLSClient)
		if lerr != nil {
			store.Close()
			return fmt.Errorf("raft transport: %w", lerr)
		}
		trans = raft.NewNetworkTransportWithLogger(layer, 3, 10*time.Second, c.logger.Named("raft-net"))
	} else {
		trans, err = raft.NewTCPTransportWithLogger(c.opts.RaftBind, adv, 3, 10*time.Second, c.logger.Named("raft-net"))
	}
	if err != nil {
		store.Close()
		return fmt.Errorf("raft transport: %w", err)
	}
	c.transport = trans

	c.hadState, err = raft.HasExistingState(logs, store, snaps)
	if err != nil {
		trans.Close()
		store.Close()
		return fmt.Errorf("check raft state: %w", err)
	}
	c.watcher = newWatchingTransport(unpipelinedTransport{trans}, &c.commits)
	c.tracker = &trackingFSM{FSM: c.opts.FSM}
	r, err := raft.NewRaft(cfg, c.tracker, logs, store, snaps, c.watcher)
	if err != nil {
		c.watcher.close()
		trans.Close()
		store.Close()
		return fmt.Errorf("start raft: %w", err)
	}
	c.raft = r
	c.peerGate = peerGate
	return nil
}

func (c *Cluster) closeRaft() {
	if c.raft != nil {
		if err := c.raft.Shutdown().Error(); err != nil {
			c.logger.Warn("raft shutdown", "error", err)
		}
	}
	if c.watcher != nil {
		c.watcher.close()
	}
	if c.transport != nil {
		c.transport.Close()
	}
	if c.store != nil {
		if err := c.store.Close(); err != nil {
			c.logger.Warn("close raft store", "error", err)
		}
	}
}

// Shutdown stops leader work, leaves gossip, shuts Raft down and closes the
// stores, in that order. The HTTP server is stopped by the caller before.
func (c *Cluster) Shutdown() error { return c.shutdown(true) }

// AnnounceLeaving tells peers through gossip metadata that this server is
// going away on purpose: the leader will not add it back to Raft, and peers
// record it as left rather than failed once it is gone.
func (c *Cluster) AnnounceLeaving() {
	if c.leaving.Swap(true) {
		return
	}
	c.refreshMeta()
}

// Halt stops like a crash would, as far as peers can tell: no gossip leave,
// no leadership transfer. Peers see the node fail. For failure tests and
// for stopping a node that must not announce anything.
func (c *Cluster) Halt() error { return c.shutdown(false) }

func (c *Cluster) shutdown(leaveGossip bool) error {
	var err error
	c.shutdownOnce.Do(func() {
		close(c.shutdownCh)
		c.StopLeaderWork()
		if c.gossip != nil {
			if leaveGossip {
				// Announce the intent first so peers record "left", not
				// "failed", when we go.
				c.AnnounceLeaving()
				if lerr := c.gossip.Leave(2 * time.Second); lerr != nil {
					c.logger.Warn("leave gossip", "error", lerr)
				}
			}
			if serr := c.gossip.Shutdown(); serr != nil {
				err = errors.Join(err, serr)
			}
		}
		c.wg.Wait()
		c.closeRaft()
	})
	return err
}

// Raft exposes the underlying Raft for status and tests.
func (c *Cluster) Raft() *raft.Raft { return c.raft }

// NodeID is this node's id.
func (c *Cluster) NodeID() string { return c.opts.NodeID }

// IsLeader reports whether this node is the Raft leader right now.
func (c *Cluster) IsLeader() bool { return c.raft.State() == raft.Leader }

// Apply proposes a command on the leader and returns the FSM's answer and
// the entry's index.
func (c *Cluster) Apply(ctx context.Context, cmd []byte) (any, uint64, error) {
	if c.raft.State() != raft.Leader {
		return nil, 0, ErrNotLeader
	}
	timeout := c.opts.ApplyTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	start := time.Now()
	f := c.raft.Apply(cmd, timeout)
	err := f.Error()
	if obs := c.opts.ObserveApply; obs != nil {
		obs(time.Since(start), err)
	}
	if err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return nil, 0, fmt.Errorf("%w: %v", ErrNotLeader, err)
		}
		return nil, 0, err
	}
	return f.Response(), f.Index(), nil
}

// VerifyLeader confirms with a quorum that this node is still the leader. A
// deposed or partitioned leader gets an error.
func (c *Cluster) VerifyLeader(ctx context.Context) error {
	f := c.raft.VerifyLeader()
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("%w: %v", ErrNotLeader, err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// WaitForIndex blocks until this replica has applied index, so a write
// forwarded through this node is visible in its reads.
func (c *Cluster) WaitForIndex(ctx context.Context, index uint64) error {
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	// Raft's AppliedIndex moves when an entry is handed to the FSM
	// goroutine, before Apply has run; an FSM that counts what it applied
	// answers read-your-writes truthfully.
	applied := c.raft.AppliedIndex
	if a, ok := c.opts.FSM.(interface{ AppliedIndex() uint64 }); ok {
		applied = a.AppliedIndex
	}
	for applied() < index {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.shutdownCh:
			return ErrShutdown
		case <-t.C:
		}
	}
	return nil
}
