package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"sync"
	"time"

	"github.com/lunasentri/lunasentri/fsm"
)

// Agent facts (hostname, agent_version, info) reach the cluster only when
// they change: one Raft entry per change, never one per beat. Each node
// keeps the fingerprint of the facts it last saw per machine; a beat whose
// facts hash the same costs one hash and one map read under a shard lock.
// A beat that differs (or the first one this node sees) is checked against
// the replica, and only a real change is queued and proposed, batched per
// flush interval.

// Limits on what an agent may report, so that facts stay small in the log.
const (
	maxFactsHostname = 255 // the DNS limit on a full name
	maxFactsVersion  = 64
)

// check reports what is wrong with the facts of a heartbeat body, "" when
// nothing is.
func (b *heartbeatBody) check() string {
	switch {
	case len(b.Hostname) > maxFactsHostname:
		return fmt.Sprintf("field \"hostname\" is longer than %d characters", maxFactsHostname)
	case len(b.AgentVersion) > maxFactsVersion:
		return fmt.Sprintf("field \"agent_version\" is longer than %d characters", maxFactsVersion)
	}
	return ""
}

// hasFacts: the body says anything about the agent. `{}` does not, and
// leaves the stored facts as they are.
func (b *heartbeatBody) hasFacts() bool {
	return b.Hostname != "" || b.AgentVersion != "" || (len(b.Info) > 0 && string(b.Info) != "null")
}

const factsShards = 64

// factsTracker remembers, per machine, the fingerprint of the facts this
// node last saw, and queues changes for the leader.
type factsTracker struct {
	api    *API
	shards [factsShards]factsShard

	mu      sync.Mutex
	pending map[string]fsm.AgentFacts // id → newest changed facts not yet proposed

	seed maphash.Seed // for bodyHash and shard
}

type factsShard struct {
	mu sync.RWMutex
	m  map[string]factsSeen
}

// factsSeen is what this node remembers of a machine's last beats.
type factsSeen struct {
	fp   uint64 // fingerprint of the facts last seen; valid when hasFP
	body uint64 // bodyHash of the last body accepted; 0: none
	// hasFP: fp is set (a body without facts leaves it as it was).
	hasFP bool
}

func newFactsTracker(api *API) *factsTracker {
	t := &factsTracker{api: api, pending: make(map[string]fsm.AgentFacts), seed: maphash.MakeSeed()}
	for i := range t.shards {
		t.shards[i].m = make(map[string]factsSeen)
	}
	return t
}

// bodyHash is a heartbeat body's hash for sameBody, never 0. The seed is
// this process's own and secret, so an agent cannot make another body
// collide with the one it sent (and it could only mislead about its own
// machine if it did).
func (t *factsTracker) bodyHash(b []byte) uint64 {
	return maphash.Bytes(t.seed, b) | 1
}

// sameBody reports whether raw is the hash of the body this node last
// accepted from machine id: then it needs no decoding, checking or
// observing again (issue 14: agents send the same body every beat).
func (t *factsTracker) sameBody(id string, raw uint64) bool {
	s := t.shard(id)
	s.mu.RLock()
	seen, ok := s.m[id]
	s.mu.RUnlock()
	return ok && seen.body == raw
}

func (t *factsTracker) shard(id string) *factsShard {
	return &t.shards[maphash.String(t.seed, id)%factsShards]
}

// observe is called on the hot path with a beat's decoded body; raw is
// the body's bodyHash (0 when it was not read whole), remembered so that
// the same body again skips decoding.
func (t *factsTracker) observe(id string, b *heartbeatBody, raw uint64) {
	s := t.shard(id)
	if !b.hasFacts() {
		if raw != 0 {
			s.mu.Lock()
			seen := s.m[id]
			seen.body = raw
			s.m[id] = seen
			s.mu.Unlock()
		}
		return
	}
	info := []byte(b.Info)
	if string(info) == "null" {
		info = nil
	}
	fp := fsm.FactsFingerprint(b.Hostname, b.AgentVersion, info)
	s.mu.RLock()
	seen, ok := s.m[id]
	s.mu.RUnlock()
	if ok && seen.hasFP && seen.fp == fp {
		if seen.body != raw {
			s.mu.Lock()
			if cur, ok := s.m[id]; ok && cur.hasFP && cur.fp == fp {
				cur.body = raw
				s.m[id] = cur
			}
			s.mu.Unlock()
		}
		return
	}
	t.changed(id, fp, raw, b.Hostname, b.AgentVersion, info)
}

// changed is the rare path: this node has not seen these facts for id.
func (t *factsTracker) changed(id string, rawFP, raw uint64, hostname, version string, info []byte) {
	facts := fsm.AgentFacts{Hostname: hostname, AgentVersion: version, ReportedAt: time.Now().UTC()}
	if len(info) > 0 {
		// Stored compacted: that is how the command's JSON carries it, so
		// the replica's fingerprint is over the compact form.
		var buf bytes.Buffer
		if err := json.Compact(&buf, info); err == nil {
			facts.Info = buf.Bytes()
		}
	}
	s := t.shard(id)
	s.mu.Lock()
	s.m[id] = factsSeen{fp: rawFP, body: raw, hasFP: true}
	s.mu.Unlock()
	if stored, ok := t.api.opts.FSM.AgentFingerprint(id); ok && stored == facts.Fingerprint() {
		return // another node already recorded them, or this node restarted
	}
	t.mu.Lock()
	t.pending[id] = facts
	t.mu.Unlock()
}

// forget drops what this node remembers of id, so its next beat is checked
// against the replica again (after a failed proposal).
func (t *factsTracker) forget(id string) {
	s := t.shard(id)
	s.mu.Lock()
	delete(s.m, id)
	s.mu.Unlock()
}

// maxFactsPerEntry bounds one SetAgentFacts command. A fleet that upgrades
// its agents at once changes every machine's facts within a minute; a few
// hundred reports (about 200 bytes each) keep an entry well under Raft's
// comfortable size.
const maxFactsPerEntry = 500

// flush proposes the queued changes, at most maxFactsPerEntry per entry.
// Reports that fail are forgotten by the tracker, so the machine's next beat
// queues them again: nothing waits here for a leader.
func (t *factsTracker) flush(ctx context.Context) {
	t.mu.Lock()
	if len(t.pending) == 0 {
		t.mu.Unlock()
		return
	}
	reports := make([]fsm.AgentReport, 0, min(len(t.pending), maxFactsPerEntry))
	for id, f := range t.pending {
		reports = append(reports, fsm.AgentReport{ID: id, Facts: f})
		delete(t.pending, id)
		if len(reports) == maxFactsPerEntry {
			break
		}
	}
	t.mu.Unlock()

	cmd, err := fsm.Encode(fsm.CmdSetAgentFacts, fsm.SetAgentFacts{Reports: reports})
	if err == nil {
		var res *fsm.ApplyResult
		if res, err = t.api.propose(ctx, cmd); err == nil && res.Err != nil {
			err = res.Err
		}
	}
	if err != nil {
		t.api.logger.Warn("agent facts not recorded; they are sent again with the next beat",
			"machines", len(reports), "error", err)
		for _, r := range reports {
			t.forget(r.ID)
		}
	}
	t.trim()
}

// trim forgets everything when the tracker remembers far more machines than
// exist (deleted machines); the next beats re-learn from the replica at the
// cost of one read each.
func (t *factsTracker) trim() {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	if n <= 2*t.api.opts.FSM.MachineCount()+1024 {
		return
	}
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		s.m = make(map[string]factsSeen)
		s.mu.Unlock()
	}
}

// run flushes every FlushInterval until ctx ends.
func (t *factsTracker) run(ctx context.Context) {
	tick := time.NewTicker(t.api.opts.FlushInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			t.flush(ctx)
		}
	}
}
