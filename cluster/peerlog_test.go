package cluster

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Split(strings.TrimSpace(l.b.String()), "\n")
}

// TestPeerLogGate_DeadPeerLoggedOnceThenPerMinute: five minutes of a dead
// peer at Raft's pace (two failures a second) give one line when it fails,
// one per minute after, and one when it is back. synctest's fake clock
// makes the five minutes take no time.
func TestPeerLogGate_DeadPeerLoggedOnceThenPerMinute(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf lockedBuffer
		base := hclog.New(&hclog.LoggerOptions{Output: &buf, Level: hclog.Debug, Name: "raft"})
		gate := newPeerLogGate(base)
		logger := gate.wrap(base)
		dead := raft.ServerAddress("127.0.0.1:8302")
		refused := errors.New("dial tcp 127.0.0.1:8302: connect: connection refused")

		for i := 0; i < 600; i++ { // 5 minutes
			logger.Error("failed to heartbeat to", "peer", dead, "backoff time", 500*time.Millisecond, "error", refused)
			if i%50 == 0 {
				// Appends name the peer as a whole raft.Server: same peer.
				logger.Error("failed to appendEntries to", "peer", raft.Server{ID: "node2", Address: dead}, "error", refused)
			}
			logger.Info("unrelated line")
			time.Sleep(500 * time.Millisecond)
		}
		// Other errors pass untouched.
		logger.Named("sub").Error("failed to commit logs", "error", "disk full")
		gate.recovered(string(dead))

		var failures, summaries, other, back int
		for _, l := range buf.lines() {
			switch {
			case strings.Contains(l, "failed to heartbeat to"), strings.Contains(l, "failed to appendEntries to"):
				failures++
			case strings.Contains(l, "raft peer still unreachable"):
				summaries++
				if !strings.Contains(l, "failures=") || !strings.Contains(l, "connection refused") {
					t.Errorf("summary lacks count or error: %s", l)
				}
			case strings.Contains(l, "failed to commit logs"):
				other++
			case strings.Contains(l, "raft peer reachable again"):
				back++
			}
		}
		if failures != 1 || summaries != 4 || other != 1 || back != 1 {
			t.Fatalf("failures %d (want 1), summaries %d (want 4), other %d (want 1), recovered %d (want 1):\n%s",
				failures, summaries, other, back, strings.Join(buf.lines(), "\n"))
		}

		// A new outage is logged again at once.
		logger.Error("failed to heartbeat to", "peer", dead, "error", refused)
		if got := buf.lines(); !strings.Contains(got[len(got)-1], "failed to heartbeat to") {
			t.Fatalf("second outage not logged: %s", got[len(got)-1])
		}
	})
}
