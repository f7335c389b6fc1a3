package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/lunasentri/lunasentri/cluster"
	"github.com/lunasentri/lunasentri/fsm"
	"github.com/lunasentri/lunasentri/transport"
)

// operator adapts the cluster to the HTTP API's operations endpoints.
type operator struct{ n *Node }

func (o operator) RaftInfo() (transport.RaftInfo, error) { return o.n.Cluster.RaftInfo() }

// RemoveServer tells the API which refusal it was (404 unknown, 409 quorum).
func (o operator) RemoveServer(id string) error {
	err := o.n.Cluster.RemoveServer(id)
	switch {
	case errors.Is(err, cluster.ErrUnknownServer):
		return fmt.Errorf("%w: %w", transport.ErrUnknownPeer, err)
	case errors.Is(err, cluster.ErrWouldLoseQuorum):
		return fmt.Errorf("%w: %w", transport.ErrPeerQuorum, err)
	}
	return err
}

func (o operator) SaveSnapshot(w io.Writer) error { return o.n.Cluster.SaveSnapshot(w) }

func (o operator) RestoreSnapshot(r io.Reader) error {
	err := o.n.Cluster.RestoreSnapshot(r, func(data io.Reader) error {
		// Decode into a scratch FSM: the real one changes only if all of
		// it is good.
		return fsm.New(fsm.Options{}).Restore(io.NopCloser(data))
	})
	if errors.Is(err, cluster.ErrBadArchive) {
		return fmt.Errorf("%w: %v", transport.ErrBadSnapshot, err)
	}
	return err
}

func (o operator) Leave(ctx context.Context) error {
	o.n.logger.Info("leave requested through the API")
	return o.n.Leave(ctx)
}

// Leave takes this node out of the cluster: a leader hands leadership over
// first, then the leader removes this node from Raft, and the node shuts
// down (gossip leave, Raft, stores).
func (n *Node) Leave(ctx context.Context) error {
	n.logger.Info("leaving the cluster")
	// Announce first, so the leader's reconciliation does not add this
	// server straight back once it is removed.
	n.Cluster.AnnounceLeaving()
	if n.Cluster.IsLeader() {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := n.Dispatcher.Drain(dctx); err != nil {
			n.logger.Warn("notifications in flight did not finish before leaving", "error", err)
		}
		cancel()
		n.Cluster.StopLeaderWork()
		n.Cluster.TransferLeadership()
	}
	deadline := time.Now().Add(10 * time.Second)
	for !n.Cluster.HasLeft() {
		err := n.API.RemovePeer(ctx, n.opts.NodeID)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("remove from raft: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	// Wait until the removal reaches this node's configuration, so a
	// restart does not try to rejoin elections.
	for !n.Cluster.HasLeft() && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	n.logger.Info("removed from raft; shutting down")
	n.leaveOnce.Do(func() { close(n.left) })
	return nil
}

// Left is closed once the node has left the cluster and should stop.
func (n *Node) Left() <-chan struct{} { return n.left }

// probeServer asks another server's API for its Raft progress, so the
// leader promotes a new server only once it has caught up.
func probeServer(client *http.Client, scheme string) func(ctx context.Context, httpAddr string) (cluster.ServerProgress, error) {
	return func(ctx context.Context, httpAddr string) (cluster.ServerProgress, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+httpAddr+"/v1/status", nil)
		if err != nil {
			return cluster.ServerProgress{}, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return cluster.ServerProgress{}, err
		}
		defer resp.Body.Close()
		var st transport.NodeStatus
		if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&st); err != nil {
			return cluster.ServerProgress{}, err
		}
		return cluster.ServerProgress{Term: st.Term, AppliedIndex: st.AppliedIndex}, nil
	}
}
