package cluster

import (
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Raft logs every failed heartbeat and append to an unreachable peer: twice
// a second per dead peer (its backoff is capped at HeartbeatTimeout/2). In a
// tour with one node killed that was 158 of 159 ERROR lines. peerLogGate
// wraps the logger handed to Raft so that a peer that stops answering is
// logged once, then at most once per peerLogEvery with how many failures were
// not logged, and once more when heartbeats to it resume.

// peerLogEvery is the longest silence about a peer that is still down.
const peerLogEvery = time.Minute

// peerFailureMessages are Raft's per-attempt errors about one peer, all
// carrying a "peer" argument.
var peerFailureMessages = map[string]bool{
	"failed to heartbeat to":                  true,
	"failed to appendEntries to":              true,
	"failed to start pipeline replication to": true,
	"failed to pipeline appendEntries":        true,
	"failed to send snapshot to":              true,
}

type peerLogGate struct {
	mu    sync.Mutex
	peers map[string]*peerTrouble // by peer address
	out   hclog.Logger            // where summaries go
}

type peerTrouble struct {
	since      time.Time
	lastLogged time.Time
	unlogged   int // failures since lastLogged
	total      int
	lastError  string
}

func newPeerLogGate(out hclog.Logger) *peerLogGate {
	return &peerLogGate{peers: make(map[string]*peerTrouble), out: out}
}

// wrap returns a logger that passes everything to l except the repeats.
func (g *peerLogGate) wrap(l hclog.Logger) hclog.Logger { return &gatedLogger{Logger: l, gate: g} }

// allow decides about one Raft log line: true logs it as it is.
func (g *peerLogGate) allow(msg string, args []any) bool {
	if !peerFailureMessages[msg] {
		return true
	}
	peer, errText := "", ""
	for i := 0; i+1 < len(args); i += 2 {
		switch args[i] {
		case "peer":
			peer = peerAddress(args[i+1])
		case "error":
			errText = fmt.Sprint(args[i+1])
		}
	}
	if peer == "" {
		return true
	}
	now := time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	t, ok := g.peers[peer]
	if !ok {
		g.peers[peer] = &peerTrouble{since: now, lastLogged: now, total: 1, lastError: errText}
		return true // the first failure is logged as Raft wrote it
	}
	t.total++
	t.unlogged++
	t.lastError = errText
	if now.Sub(t.lastLogged) < peerLogEvery {
		return false
	}
	g.out.Error("raft peer still unreachable", "peer", peer, "down_for", now.Sub(t.since).Round(time.Second),
		"failures", t.unlogged, "last_error", t.lastError)
	t.lastLogged, t.unlogged = now, 0
	return false
}

// recovered notes that Raft reaches peer again; one line says so if its
// failures were being held back.
func (g *peerLogGate) recovered(peer string) {
	g.mu.Lock()
	t, ok := g.peers[peer]
	delete(g.peers, peer)
	g.mu.Unlock()
	if ok {
		g.out.Info("raft peer reachable again", "peer", peer,
			"down_for", time.Since(t.since).Round(time.Second), "failures", t.total)
	}
}

// peerAddress reads the "peer" argument Raft passes: an address, or a
// whole raft.Server.
func peerAddress(v any) string {
	switch p := v.(type) {
	case raft.ServerAddress:
		return string(p)
	case raft.Server:
		return string(p.Address)
	case *raft.Server:
		return string(p.Address)
	case string:
		return p
	}
	return fmt.Sprint(v)
}

// gatedLogger is an hclog.Logger whose Error/Warn/Log consult the gate.
type gatedLogger struct {
	hclog.Logger
	gate *peerLogGate
}

func (l *gatedLogger) Error(msg string, args ...any) {
	if l.gate.allow(msg, args) {
		l.Logger.Error(msg, args...)
	}
}

func (l *gatedLogger) Warn(msg string, args ...any) {
	if l.gate.allow(msg, args) {
		l.Logger.Warn(msg, args...)
	}
}

func (l *gatedLogger) Log(level hclog.Level, msg string, args ...any) {
	if level < hclog.Warn || l.gate.allow(msg, args) {
		l.Logger.Log(level, msg, args...)
	}
}

func (l *gatedLogger) With(args ...any) hclog.Logger {
	return &gatedLogger{Logger: l.Logger.With(args...), gate: l.gate}
}

func (l *gatedLogger) Named(name string) hclog.Logger {
	return &gatedLogger{Logger: l.Logger.Named(name), gate: l.gate}
}

func (l *gatedLogger) ResetNamed(name string) hclog.Logger {
	return &gatedLogger{Logger: l.Logger.ResetNamed(name), gate: l.gate}
}

// watchPeerRecovery tells the gate when heartbeats to a peer resume, until
// the cluster shuts down.
func (c *Cluster) watchPeerRecovery(g *peerLogGate) {
	ch := make(chan raft.Observation, 16)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.ResumedHeartbeatObservation)
		return ok
	})
	c.raft.RegisterObserver(obs)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer c.raft.DeregisterObserver(obs)
		for {
			select {
			case <-c.shutdownCh:
				return
			case o := <-ch:
				id := o.Data.(raft.ResumedHeartbeatObservation).PeerID
				if addr := c.peerAddressOf(id); addr != "" {
					g.recovered(addr)
				}
			}
		}
	}()
}

// peerAddressOf looks up a server's Raft address in the configuration.
func (c *Cluster) peerAddressOf(id raft.ServerID) string {
	f := c.raft.GetConfiguration()
	if f.Error() != nil {
		return ""
	}
	for _, s := range f.Configuration().Servers {
		if s.ID == id {
			return string(s.Address)
		}
	}
	return ""
}
