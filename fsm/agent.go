package fsm

import (
	"bytes"
	"encoding/json"
	"time"
)

// Agent facts (issue 13): what a machine's agent says about itself. They are
// replicated only when they change, never once per beat: the receiving node
// compares a fingerprint of the reported facts with the one stored here and
// proposes CmdSetAgentFacts only on a difference.

// CmdSetAgentFacts records changed agent facts for one or more machines.
const CmdSetAgentFacts CommandType = 50

// AgentFacts is what an agent last reported. Info is the agent's JSON object
// exactly as received (compacted), never parsed by the cluster.
type AgentFacts struct {
	Hostname     string          `json:"hostname"`
	AgentVersion string          `json:"agent_version"`
	Info         json.RawMessage `json:"info,omitempty"` // a JSON object, or nil
	ReportedAt   time.Time       `json:"reported_at"`    // the receiving node's time of the change
}

// SetAgentFacts carries one or more machines' changed facts.
type SetAgentFacts struct {
	Reports []AgentReport `json:"reports"`
}

// AgentReport is one machine's new facts.
type AgentReport struct {
	ID    string     `json:"id"`
	Facts AgentFacts `json:"facts"`
}

// Same reports whether two reports say the same thing (ReportedAt aside).
func (a *AgentFacts) Same(b *AgentFacts) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Hostname == b.Hostname && a.AgentVersion == b.AgentVersion && bytes.Equal(a.Info, b.Info)
}

// FactsFingerprint is a 64-bit FNV-1a hash of a report's content, what the
// heartbeat path compares per beat instead of the facts themselves. Fields
// are separated by a byte no valid hostname, version or JSON text contains
// unescaped.
func FactsFingerprint(hostname, agentVersion string, info []byte) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < len(hostname); i++ {
		h = (h ^ uint64(hostname[i])) * prime
	}
	h = (h ^ 0) * prime
	for i := 0; i < len(agentVersion); i++ {
		h = (h ^ uint64(agentVersion[i])) * prime
	}
	h = (h ^ 0) * prime
	for _, c := range info {
		h = (h ^ uint64(c)) * prime
	}
	return h
}

// Fingerprint is FactsFingerprint of these facts.
func (a *AgentFacts) Fingerprint() uint64 {
	return FactsFingerprint(a.Hostname, a.AgentVersion, a.Info)
}

// AgentFingerprint returns the fingerprint of a machine's stored facts; ok
// is false when the machine is unknown or its agent never reported any.
func (f *FSM) AgentFingerprint(id string) (fp uint64, ok bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	m, _ := f.machines.get(id)
	if m == nil || m.Agent == nil {
		return 0, false
	}
	return m.Agent.Fingerprint(), true
}

// setAgentFacts stores reports whose content differs from what is stored.
// A report for a deleted machine is dropped. AgentFacts values are never
// mutated once stored (replaced whole), so copies of a Machine may share them.
func (f *FSM) setAgentFacts(c SetAgentFacts) *ApplyResult {
	for i := range c.Reports {
		r := &c.Reports[i]
		m, _ := f.machines.get(r.ID)
		if m == nil || m.Agent.Same(&r.Facts) {
			continue
		}
		f.noteMachine(r.ID, m)
		facts := r.Facts
		m.Agent = &facts
	}
	return &ApplyResult{}
}
