package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"text/tabwriter"
)

// Cluster operations: gossip keys, Raft peers, leaving, snapshots.

func clusterCommands() []command {
	return []command{
		{path: "raft peers", aliases: []string{"list-peers"}, api: adminAPI, setup: setupRaftPeers,
			summary: "the Raft configuration: servers, suffrage, leader (alias list-peers)",
			help:    "Shows the Raft configuration (GET /v1/cluster/raft)."},
		{path: "raft remove-peer", args: "ID", argv: []string{"ID"}, api: adminAPI, setup: setupRaftRemovePeer,
			summary: "remove a server from the Raft configuration (through the leader)",
			help: "Removes a server from the Raft configuration, through the leader. Use it for a server\n" +
				"that is gone for good; a server that is still running should run \"lunasentri leave\"."},
		{path: "leave", api: adminAPI, setup: setupLeave,
			summary: "take the node at -address out of the cluster; it shuts down",
			help: "Takes the node at -address out of the cluster (a leader hands over leadership first);\n" +
				"the node then shuts down. With several addresses, the first that answers leaves."},
		{path: "snapshot save", args: "FILE", argv: []string{"FILE"}, api: adminAPI, setup: setupSnapshotSave,
			summary: "download a consistent backup archive from the leader (\"-\" for stdout)",
			help: "Downloads a consistent backup archive of the cluster's state from the leader\n" +
				"(any node forwards the request). FILE \"-\" writes the archive to stdout."},
		{path: "snapshot restore", args: "FILE", argv: []string{"FILE"}, api: adminAPI, setup: setupSnapshotRestore,
			summary: "replace the whole cluster's state with an archive",
			help: "Replaces the whole cluster's state with a snapshot archive (any node forwards the\n" +
				"request to the leader). A bad archive changes nothing."},
		{path: "keygen", setup: setupKeygen,
			summary: "print a new gossip encryption key for -gossip-key",
			help:    "Prints a new random gossip encryption key (32 bytes, base64) for -gossip-key."},
	}
}

// setupKeygen prints a new gossip encryption key for -gossip-key.
func setupKeygen(_ *cli, _ *flag.FlagSet) runner {
	return func(_ context.Context, x *call) error {
		key := make([]byte, 32)
		rand.Read(key)
		fmt.Fprintln(x.stdout, base64.StdEncoding.EncodeToString(key))
		return nil
	}
}

func setupRaftPeers(_ *cli, _ *flag.FlagSet) runner {
	return func(ctx context.Context, x *call) error {
		var out struct {
			Servers []struct {
				ID       string `json:"id"`
				Address  string `json:"address"`
				Suffrage string `json:"suffrage"`
				Leader   bool   `json:"leader"`
			} `json:"servers"`
			State        string `json:"raft_state"`
			LeaderID     string `json:"leader_id"`
			Term         uint64 `json:"term"`
			CommitIndex  uint64 `json:"commit_index"`
			AppliedIndex uint64 `json:"applied_index"`
		}
		raw, err := x.api.getJSON(ctx, "/v1/cluster/raft", nil, &out)
		if err != nil || x.raw(raw) {
			return err
		}
		tw := tabwriter.NewWriter(x.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tADDRESS\tSUFFRAGE\tLEADER")
		for _, s := range out.Servers {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.ID, dash(s.Address), dash(s.Suffrage), yesNo(s.Leader))
		}
		tw.Flush()
		fmt.Fprintf(x.stdout, "\nLeader %s, term %d, commit index %d, applied index %d (as seen by a %s).\n",
			dash(out.LeaderID), out.Term, out.CommitIndex, out.AppliedIndex, dash(out.State))
		return nil
	}
}

func setupRaftRemovePeer(_ *cli, _ *flag.FlagSet) runner {
	return func(ctx context.Context, x *call) error {
		raw, err := x.api.do(ctx, http.MethodPost, "/v1/cluster/raft/remove-peer", nil, map[string]string{"id": x.pos[0]})
		if err != nil || x.raw(raw) {
			return err
		}
		fmt.Fprintf(x.stdout, "Removed %s from the Raft configuration.\n", x.pos[0])
		return nil
	}
}

func setupLeave(_ *cli, _ *flag.FlagSet) runner {
	return func(ctx context.Context, x *call) error {
		x.api.http = withoutTimeout(x.api.http) // the node bounds a leave itself
		raw, err := x.api.do(ctx, http.MethodPost, "/v1/cluster/leave", nil, nil)
		if err != nil || x.raw(raw) {
			return err
		}
		var out struct {
			NodeID string `json:"node_id"`
		}
		decode(raw, &out)
		fmt.Fprintf(x.stdout, "Node %s left the cluster and is shutting down.\n", dash(out.NodeID))
		return nil
	}
}

func setupSnapshotSave(_ *cli, _ *flag.FlagSet) runner {
	return func(ctx context.Context, x *call) error { return x.snapshotSave(ctx, x.api, x.pos[0]) }
}

func setupSnapshotRestore(_ *cli, _ *flag.FlagSet) runner {
	return func(ctx context.Context, x *call) error { return x.snapshotRestore(ctx, x.api, x.pos[0], x.json) }
}

// snapshotSave downloads GET /v1/snapshot. The archive is written to a
// temporary file beside FILE and renamed once complete, so an interrupted
// download never leaves a truncated archive under FILE's name.
func (c *cli) snapshotSave(ctx context.Context, api *apiClient, path string) (err error) {
	api.http = withoutTimeout(api.http) // archives can be large; ctx still cancels
	resp, err := api.send(ctx, http.MethodGet, "/v1/snapshot", "", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()

	if path == "-" {
		if _, err := io.Copy(c.stdout, resp.Body); err != nil {
			return fmt.Errorf("downloading the snapshot: %w", err)
		}
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	n, err := io.Copy(tmp, resp.Body)
	if err != nil {
		return fmt.Errorf("downloading the snapshot: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "Saved snapshot to %s (%d bytes).\n", path, n)
	return nil
}

func (c *cli) snapshotRestore(ctx context.Context, api *apiClient, path string, asJSON bool) error {
	f, err := os.Open(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return usageErrorf("snapshot restore: %s: %v", path, pe.Err)
		}
		return err
	}
	defer f.Close()
	api.http = withoutTimeout(api.http)
	resp, err := api.send(ctx, http.MethodPost, "/v1/snapshot", "application/octet-stream", f)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if asJSON {
		printJSON(c.stdout, raw)
		return nil
	}
	fmt.Fprintf(c.stdout, "Restored the cluster's state from %s.\n", path)
	return nil
}

// withoutTimeout copies a client without its overall timeout.
func withoutTimeout(hc *http.Client) *http.Client {
	cp := *hc
	cp.Timeout = 0
	return &cp
}
