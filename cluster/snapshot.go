package cluster

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/hashicorp/raft"
)

// A backup archive is one JSON header line and then the FSM snapshot bytes.
// The header carries a checksum so that a truncated or corrupted file is
// refused before anything changes.
const (
	archiveFormat  = "lunasentri-snapshot"
	archiveVersion = 1
	// MaxArchiveBytes bounds a restore upload.
	MaxArchiveBytes = 4 << 30
)

type archiveHeader struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	Node    string `json:"node"`
	Index   uint64 `json:"index"`
	Term    uint64 `json:"term"`
	Size    int64  `json:"size"`
	SHA256  string `json:"sha256"`
}

// Sentinel errors for snapshots.
var (
	// ErrBadArchive: the upload is not a complete LunaSentri snapshot.
	ErrBadArchive = errors.New("not a valid lunasentri snapshot archive")
)

// SaveSnapshot takes a fresh Raft snapshot on the leader and writes it to w
// as a backup archive.
func (c *Cluster) SaveSnapshot(w io.Writer) error {
	if c.raft.State() != raft.Leader {
		return ErrNotLeader
	}
	f := c.raft.Snapshot()
	if err := f.Error(); err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) {
		return fmt.Errorf("take snapshot: %w", err)
	}
	if err := f.Error(); errors.Is(err, raft.ErrNothingNewToSnapshot) {
		return c.writeLatestSnapshot(w)
	}
	meta, rc, err := f.Open()
	if err != nil {
		return fmt.Errorf("open snapshot: %w", err)
	}
	defer rc.Close()
	return c.writeArchive(w, meta, rc)
}

// writeLatestSnapshot streams the newest snapshot on disk (nothing changed
// since it was taken).
func (c *Cluster) writeLatestSnapshot(w io.Writer) error {
	list, err := c.snaps.List()
	if err != nil || len(list) == 0 {
		return fmt.Errorf("no snapshot available: %v", err)
	}
	meta, rc, err := c.snaps.Open(list[0].ID)
	if err != nil {
		return fmt.Errorf("open snapshot: %w", err)
	}
	defer rc.Close()
	return c.writeArchive(w, meta, rc)
}

// writeArchive spools the snapshot to a temp file to learn its checksum,
// then writes header and data.
func (c *Cluster) writeArchive(w io.Writer, meta *raft.SnapshotMeta, r io.Reader) error {
	tmp, err := os.CreateTemp(c.opts.DataDir, "backup-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), r)
	if err != nil {
		return fmt.Errorf("read snapshot: %w", err)
	}
	hdr := archiveHeader{
		Format: archiveFormat, Version: archiveVersion, Node: c.opts.NodeID,
		Index: meta.Index, Term: meta.Term, Size: n, SHA256: hex.EncodeToString(h.Sum(nil)),
	}
	line, _ := json.Marshal(hdr)
	if _, err := w.Write(append(line, '\n')); err != nil {
		return err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return err
	}
	_, err = io.Copy(w, tmp)
	return err
}

// RestoreSnapshot replaces the whole cluster's state with an archive (Raft
// user restore on the leader; followers follow by snapshot install).
// validate decodes the FSM data fully first, so a bad archive changes
// nothing.
func (c *Cluster) RestoreSnapshot(r io.Reader, validate func(io.Reader) error) error {
	if c.raft.State() != raft.Leader {
		return ErrNotLeader
	}
	br := bufio.NewReaderSize(r, 64<<10)
	line, err := br.ReadSlice('\n')
	if err != nil {
		return fmt.Errorf("%w: missing header", ErrBadArchive)
	}
	var hdr archiveHeader
	if err := json.Unmarshal(line, &hdr); err != nil || hdr.Format != archiveFormat {
		return fmt.Errorf("%w: bad header", ErrBadArchive)
	}
	if hdr.Version > archiveVersion {
		return fmt.Errorf("%w: archive version %d is newer than this binary (%d)", ErrBadArchive, hdr.Version, archiveVersion)
	}
	if hdr.Size < 0 || hdr.Size > MaxArchiveBytes {
		return fmt.Errorf("%w: size %d out of range", ErrBadArchive, hdr.Size)
	}
	tmp, err := os.CreateTemp(c.opts.DataDir, "restore-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(br, hdr.Size+1))
	if err != nil {
		return fmt.Errorf("read archive: %w", err)
	}
	if n != hdr.Size || hex.EncodeToString(h.Sum(nil)) != hdr.SHA256 {
		return fmt.Errorf("%w: truncated or corrupted (checksum mismatch)", ErrBadArchive)
	}
	if validate != nil {
		if _, err := tmp.Seek(0, io.SeekStart); err != nil {
			return err
		}
		if err := validate(tmp); err != nil {
			return fmt.Errorf("%w: %v", ErrBadArchive, err)
		}
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return err
	}
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Index: hdr.Index, Term: hdr.Term, Size: hdr.Size}
	if err := c.raft.Restore(meta, tmp, 0); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	c.logger.Info("restored cluster state from snapshot", "source_node", hdr.Node, "source_index", hdr.Index)
	return nil
}
