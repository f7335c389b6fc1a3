package cluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lunasentri/lunasentri/fsm"
)

// validateFSM is the check the server runs before a restore
// (cmd/lunasentri/internal/server/operator.go): decode into a scratch FSM.
func validateFSM(data io.Reader) error {
	return fsm.New(fsm.Options{}).Restore(io.NopCloser(data))
}

// splitArchive returns an archive's header and its data.
func splitArchive(t *testing.T, archive []byte) (archiveHeader, []byte) {
	t.Helper()
	i := bytes.IndexByte(archive, '\n')
	var hdr archiveHeader
	if i < 0 || json.Unmarshal(archive[:i], &hdr) != nil {
		t.Fatalf("archive has no header: %.80q", archive)
	}
	return hdr, archive[i+1:]
}

func joinArchive(t *testing.T, hdr archiveHeader, data []byte) []byte {
	t.Helper()
	line, err := json.Marshal(hdr)
	if err != nil {
		t.Fatal(err)
	}
	return append(append(line, '\n'), data...)
}

// nodeState is what a refused restore must leave as it was.
type nodeState struct {
	machines  int
	keys      map[string]bool
	lastIndex uint64
	tmpFiles  []string
}

func stateOf(t *testing.T, n *testNode, keys ...string) nodeState {
	t.Helper()
	st := nodeState{machines: n.fsm.MachineCount(), keys: map[string]bool{}, lastIndex: n.c.raft.LastIndex()}
	for _, k := range keys {
		_, st.keys[k] = n.fsm.Authenticate(k)
	}
	st.tmpFiles, _ = filepath.Glob(filepath.Join(n.c.opts.DataDir, "*.tmp"))
	return st
}

func (s nodeState) String() string {
	b, _ := json.Marshal(map[string]any{"machines": s.machines, "keys": s.keys, "last_index": s.lastIndex, "tmp": s.tmpFiles})
	return string(b)
}

// TestRestoreSnapshot_RefusalsChangeNothing: every way an archive is
// refused (no header, a bad header, a newer version, a size out of range,
// truncation, a corrupted byte at the same length, data that does not
// decode) returns ErrBadArchive and leaves the node as it was: the same
// machines and keys, no new Raft entry, no temp file. Then the good
// archive restores, and a machine key valid before the restore (its
// machine registered after the backup) is unknown after it, while the
// key from the backup works.
func TestRestoreSnapshot_RefusalsChangeNothing(t *testing.T) {
	nodes := newRaftCluster(t, 1, Options{})
	n := nodes[0]
	keep := n.register(t, "in-backup")
	var buf bytes.Buffer
	if err := n.c.SaveSnapshot(&buf); err != nil {
		t.Fatalf("SaveSnapshot: %v", err)
	}
	good := buf.Bytes()
	later := n.register(t, "after-backup")
	if _, ok := n.fsm.Authenticate(later); !ok {
		t.Fatal("the key registered after the backup does not work before the restore")
	}
	hdr, data := splitArchive(t, good)
	if len(data) == 0 || int64(len(data)) != hdr.Size {
		t.Fatalf("archive header %+v for %d bytes of data", hdr, len(data))
	}

	newer := hdr
	newer.Version = archiveVersion + 1
	oversize := hdr
	oversize.Size = MaxArchiveBytes + 1
	negative := hdr
	negative.Size = -1
	otherFormat := hdr
	otherFormat.Format = "something-else"
	flipped := bytes.Clone(data)
	flipped[len(flipped)/2] ^= 0x20
	// Not an FSM snapshot, with a header that vouches for it: only
	// validation can refuse it.
	junk := []byte(`{"not":"an fsm snapshot"`)
	junkHdr := hdr
	junkHdr.Size = int64(len(junk))
	junkHdr.SHA256 = sha256hex(junk)
	junkErr := validateFSM(bytes.NewReader(junk))
	if junkErr == nil {
		t.Fatal("the scratch FSM decodes junk")
	}

	cases := []struct {
		name    string
		archive []byte
		want    string
	}{
		{"empty", nil, "missing header"},
		{"no newline after the header", []byte(`{"format":"lunasentri-snapshot"`), "missing header"},
		{"not json", []byte("hello\n"), "bad header"},
		{"another format", joinArchive(t, otherFormat, data), "bad header"},
		{"newer version", joinArchive(t, newer, data), "newer than this binary"},
		{"oversize", joinArchive(t, oversize, data), "out of range"},
		{"negative size", joinArchive(t, negative, data), "out of range"},
		{"truncated", joinArchive(t, hdr, data[:len(data)-1]), "checksum mismatch"},
		{"longer than the header says", joinArchive(t, hdr, append(bytes.Clone(data), 'x')), "checksum mismatch"},
		{"a byte corrupted, same length", joinArchive(t, hdr, flipped), "checksum mismatch"},
		{"fails validation", joinArchive(t, junkHdr, junk), junkErr.Error()},
	}
	before := stateOf(t, n, keep, later)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := n.c.RestoreSnapshot(bytes.NewReader(tc.archive), validateFSM)
			if !errors.Is(err, ErrBadArchive) {
				t.Fatalf("RestoreSnapshot = %v, want ErrBadArchive", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("RestoreSnapshot = %v, want it to say %q", err, tc.want)
			}
			if after := stateOf(t, n, keep, later); after.String() != before.String() {
				t.Errorf("refused, but the node changed: %s → %s", before, after)
			}
		})
	}

	if err := n.c.RestoreSnapshot(bytes.NewReader(good), validateFSM); err != nil {
		t.Fatalf("RestoreSnapshot(good archive) = %v", err)
	}
	if _, ok := n.fsm.Authenticate(later); ok {
		t.Error("a key registered after the backup still authenticates after restoring it")
	}
	if _, ok := n.fsm.Authenticate(keep); !ok {
		t.Error("the key in the backup does not authenticate after the restore")
	}
	if got := n.fsm.MachineCount(); got != 1 {
		t.Errorf("%d machines after the restore, want 1", got)
	}
	if tmp, _ := filepath.Glob(filepath.Join(n.c.opts.DataDir, "*.tmp")); len(tmp) > 0 {
		t.Errorf("temp files left: %v", tmp)
	}
	if _, err := os.Stat(n.c.opts.DataDir); err != nil {
		t.Fatal(err)
	}
}

// TestRestoreSnapshot_LeaderOnly: a follower refuses and changes nothing.
func TestRestoreSnapshot_LeaderOnly(t *testing.T) {
	nodes := newRaftCluster(t, 3, Options{})
	l := leader(t, nodes)
	l.register(t, "m")
	var buf bytes.Buffer
	if err := l.c.SaveSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	f := otherThan(nodes, l)[0]
	if err := f.c.RestoreSnapshot(bytes.NewReader(buf.Bytes()), validateFSM); !errors.Is(err, ErrNotLeader) {
		t.Errorf("RestoreSnapshot on a follower = %v, want ErrNotLeader", err)
	}
	if err := f.c.SaveSnapshot(io.Discard); !errors.Is(err, ErrNotLeader) {
		t.Errorf("SaveSnapshot on a follower = %v, want ErrNotLeader", err)
	}
}
