package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"text/tabwriter"
)

// Cluster operations: gossip keys, Raft peers, leaving, snapshots.

const raftUsage = `Usage: lunasentri raft <subcommand> [flags]

Subcommands:
  peers              the Raft configuration: servers, suffrage, leader (alias list-peers)
  remove-peer ID     remove a server from the Raft configuration (through the leader)

Every subcommand takes -address, -token and -json.
`

const snapshotUsage = `Usage: lunasentri snapshot <subcommand> [flags]

Subcommands:
  save FILE          download a consistent backup archive from the leader ("-" for stdout)
  restore FILE       replace the whole cluster's state with an archive

Every subcommand takes -address and -token.
`

// cmdKeygen prints a new gossip encryption key for -gossip-key.
func (c *cli) cmdKeygen(_ context.Context, args []string) error {
	fs := newFlagSet("keygen", "lunasentri keygen", "Prints a new random gossip encryption key (32 bytes, base64) for -gossip-key.")
	pos, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("keygen", pos); err != nil {
		return err
	}
	key := make([]byte, 32)
	rand.Read(key)
	fmt.Fprintln(c.stdout, base64.StdEncoding.EncodeToString(key))
	return nil
}

func (c *cli) cmdRaft(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(c.stderr, raftUsage)
		return usageErrorf("raft: missing subcommand")
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "list-peers", "peers":
		return c.raftListPeers(ctx, rest)
	case "remove-peer":
		return c.raftRemovePeer(ctx, rest)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(c.stdout, raftUsage)
		return errHelpShown{}
	default:
		return usageErrorf("raft: unknown subcommand %q (list-peers, remove-peer)", sub)
	}
}

func (c *cli) raftListPeers(ctx context.Context, args []string) error {
	fs := newFlagSet("raft list-peers", "lunasentri raft list-peers [flags]", "Shows the Raft configuration (GET /v1/cluster/raft).")
	af := addAPIFlags(fs)
	pos, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("raft list-peers", pos); err != nil {
		return err
	}
	api, err := c.client(af, true)
	if err != nil {
		return err
	}
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
	raw, err := api.getJSON(ctx, "/v1/cluster/raft", nil, &out)
	if err != nil {
		return err
	}
	if af.json {
		printJSON(c.stdout, raw)
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tADDRESS\tSUFFRAGE\tLEADER")
	for _, s := range out.Servers {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.ID, dash(s.Address), dash(s.Suffrage), yesNo(s.Leader))
	}
	tw.Flush()
	fmt.Fprintf(c.stdout, "\nLeader %s, term %d, commit index %d, applied index %d (as seen by a %s).\n",
		dash(out.LeaderID), out.Term, out.CommitIndex, out.AppliedIndex, dash(out.State))
	return nil
}

func (c *cli) raftRemovePeer(ctx context.Context, args []string) error {
	fs := newFlagSet("raft remove-peer", "lunasentri raft remove-peer ID [flags]",
		"Removes a server from the Raft configuration, through the leader. Use it for a server\n"+
			"that is gone for good; a server that is still running should run \"lunasentri leave\".")
	af := addAPIFlags(fs)
	pos, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("raft remove-peer", pos, "ID"); err != nil {
		return err
	}
	api, err := c.client(af, true)
	if err != nil {
		return err
	}
	raw, err := api.do(ctx, http.MethodPost, "/v1/cluster/raft/remove-peer", nil, map[string]string{"id": pos[0]})
	if err != nil {
		return err
	}
	if af.json {
		printJSON(c.stdout, raw)
		return nil
	}
	fmt.Fprintf(c.stdout, "Removed %s from the Raft configuration.\n", pos[0])
	return nil
}

func (c *cli) cmdLeave(ctx context.Context, args []string) error {
	fs := newFlagSet("leave", "lunasentri leave [flags]",
		"Takes the node at -address out of the cluster (a leader hands over leadership first);\n"+
			"the node then shuts down.")
	af := addAPIFlags(fs)
	pos, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("leave", pos); err != nil {
		return err
	}
	api, err := c.client(af, true)
	if err != nil {
		return err
	}
	api.http = withoutTimeout(api.http) // the node bounds a leave itself
	raw, err := api.do(ctx, http.MethodPost, "/v1/cluster/leave", nil, nil)
	if err != nil {
		return err
	}
	if af.json {
		printJSON(c.stdout, raw)
		return nil
	}
	var out struct {
		NodeID string `json:"node_id"`
	}
	decode(raw, &out)
	fmt.Fprintf(c.stdout, "Node %s left the cluster and is shutting down.\n", dash(out.NodeID))
	return nil
}

func (c *cli) cmdSnapshot(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(c.stderr, snapshotUsage)
		return usageErrorf("snapshot: missing subcommand")
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "save":
		return c.snapshotSave(ctx, rest)
	case "restore":
		return c.snapshotRestore(ctx, rest)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(c.stdout, snapshotUsage)
		return errHelpShown{}
	default:
		return usageErrorf("snapshot: unknown subcommand %q (save, restore)", sub)
	}
}

// snapshotSave downloads GET /v1/snapshot. The archive is written to a
// temporary file beside FILE and renamed once complete, so an interrupted
// download never leaves a truncated archive under FILE's name.
func (c *cli) snapshotSave(ctx context.Context, args []string) (err error) {
	fs := newFlagSet("snapshot save", "lunasentri snapshot save FILE [flags]",
		"Downloads a consistent backup archive of the cluster's state from the leader\n"+
			"(any node forwards the request). FILE \"-\" writes the archive to stdout.")
	af := addAPIFlags(fs)
	pos, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("snapshot save", pos, "FILE"); err != nil {
		return err
	}
	api, err := c.client(af, true)
	if err != nil {
		return err
	}
	api.http = withoutTimeout(api.http) // archives can be large; ctx still cancels
	resp, err := api.send(ctx, http.MethodGet, "/v1/snapshot", "", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()

	path := pos[0]
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

func (c *cli) snapshotRestore(ctx context.Context, args []string) error {
	fs := newFlagSet("snapshot restore", "lunasentri snapshot restore FILE [flags]",
		"Replaces the whole cluster's state with a snapshot archive (any node forwards the\n"+
			"request to the leader). A bad archive changes nothing.")
	af := addAPIFlags(fs)
	pos, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("snapshot restore", pos, "FILE"); err != nil {
		return err
	}
	f, err := os.Open(pos[0])
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return usageErrorf("snapshot restore: %s: %v", pos[0], pe.Err)
		}
		return err
	}
	defer f.Close()
	api, err := c.client(af, true)
	if err != nil {
		return err
	}
	api.http = withoutTimeout(api.http)
	resp, err := api.send(ctx, http.MethodPost, "/v1/snapshot", "application/octet-stream", f)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if af.json {
		printJSON(c.stdout, raw)
		return nil
	}
	fmt.Fprintf(c.stdout, "Restored the cluster's state from %s.\n", pos[0])
	return nil
}

// withoutTimeout copies a client without its overall timeout.
func withoutTimeout(hc *http.Client) *http.Client {
	cp := *hc
	cp.Timeout = 0
	return &cp
}
