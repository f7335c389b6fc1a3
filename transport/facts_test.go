package transport_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lunasentri/lunasentri/fsm"
	"github.com/lunasentri/lunasentri/transport"
)

// TestFacts_OneEntryPerChange: a thousand beats with the same facts cost one
// Raft entry; a change costs one more; beats without facts cost none.
func TestFacts_OneEntryPerChange(t *testing.T) {
	n := newNode(t, true, func(o *transport.Options) { o.FlushInterval = 10 * time.Millisecond })
	_, key := n.register(t, "web-1")
	n.runFlusher(t)

	v1 := `{"hostname":"web-1.example","agent_version":"1.0.0","info":{"os":"linux", "kernel":"6.1.0"}}`
	for i := 0; i < 200; i++ {
		if r := n.beat(t, key, v1); r.status != http.StatusAccepted {
			t.Fatalf("beat %d: %d %s", i, r.status, r.raw)
		}
	}
	eventually(t, 5*time.Second, "facts recorded", func() bool { return n.cons.applied(fsm.CmdSetAgentFacts) == 1 })
	for i := 0; i < 200; i++ {
		n.beat(t, key, v1)
		n.beat(t, key, `{}`) // says nothing about the agent: changes nothing
	}
	m := machine(t, n.fsm, "web-1")
	if m.Agent == nil || m.Agent.Hostname != "web-1.example" || string(m.Agent.Info) != `{"os":"linux","kernel":"6.1.0"}` {
		t.Fatalf("agent = %+v", m.Agent)
	}

	n.beat(t, key, `{"hostname":"web-1.example","agent_version":"1.1.0","info":{"os":"linux","kernel":"6.1.0"}}`)
	eventually(t, 5*time.Second, "changed facts recorded", func() bool { return n.cons.applied(fsm.CmdSetAgentFacts) == 2 })
	// Wait a few flushes more: nothing else is proposed.
	time.Sleep(100 * time.Millisecond) //nolint: a negative check needs some time to pass
	if got := n.cons.applied(fsm.CmdSetAgentFacts); got != 2 {
		t.Fatalf("SetAgentFacts applied %d times, want 2", got)
	}

	// The API shows them, and the registered-without-hostname machine shows
	// the agent's hostname.
	r := n.admin(t, http.MethodGet, "/v1/machines/web-1", "")
	mv := r.body["machine"].(map[string]any)
	if mv["hostname"] != "web-1.example" {
		t.Errorf("hostname = %v, want the agent's", mv["hostname"])
	}
	agent, _ := mv["agent"].(map[string]any)
	if agent["agent_version"] != "1.1.0" || agent["hostname"] != "web-1.example" || agent["reported_at"] == nil {
		t.Errorf("agent = %v", agent)
	}
	if info, _ := agent["info"].(map[string]any); info["kernel"] != "6.1.0" {
		t.Errorf("agent.info = %v", agent["info"])
	}
}

// TestFacts_NodeThatSeesKnownFactsProposesNothing: facts the replica already
// holds (another node recorded them, or this node restarted) are not
// proposed again.
func TestFacts_NodeThatSeesKnownFactsProposesNothing(t *testing.T) {
	n := newNode(t, true, func(o *transport.Options) { o.FlushInterval = 10 * time.Millisecond })
	id, key := n.register(t, "db-1")
	facts := fsm.AgentFacts{Hostname: "db-1", AgentVersion: "2.0.0", Info: json.RawMessage(`{"os":"linux"}`), ReportedAt: time.Now().UTC()}
	if _, _, err := n.cons.Apply(t.Context(), fsm.MustEncode(fsm.CmdSetAgentFacts,
		fsm.SetAgentFacts{Reports: []fsm.AgentReport{{ID: id, Facts: facts}}})); err != nil {
		t.Fatal(err)
	}
	n.runFlusher(t)
	for i := 0; i < 50; i++ {
		n.beat(t, key, `{"hostname":"db-1","agent_version":"2.0.0","info":{ "os" : "linux" }}`)
	}
	time.Sleep(100 * time.Millisecond) //nolint: a negative check needs some time to pass
	if got := n.cons.applied(fsm.CmdSetAgentFacts); got != 1 {
		t.Fatalf("SetAgentFacts applied %d times, want only the test's own", got)
	}
}

// TestFacts_FollowerForwardsChange: a follower's change reaches the leader.
func TestFacts_FollowerForwardsChange(t *testing.T) {
	p := newPair(t, nil, func(o *transport.Options) { o.FlushInterval = 10 * time.Millisecond })
	_, key := p.both(t, "edge-1")
	p.follower.runFlusher(t)
	p.leader.runFlusher(t)
	if r := p.follower.beat(t, key, `{"hostname":"edge-1.lan","agent_version":"1.0.0"}`); r.status != http.StatusAccepted {
		t.Fatalf("beat: %d %s", r.status, r.raw)
	}
	eventually(t, 5*time.Second, "facts on the leader", func() bool {
		m := machine(t, p.leader.fsm, "edge-1")
		return m.Agent != nil && m.Agent.Hostname == "edge-1.lan"
	})
}

func TestFacts_BadFactsRefused(t *testing.T) {
	n := newNode(t, true, nil)
	_, key := n.register(t, "m1")
	for _, body := range []string{
		fmt.Sprintf(`{"hostname":%q}`, strings.Repeat("h", 256)),
		fmt.Sprintf(`{"agent_version":%q}`, strings.Repeat("1", 65)),
		`{"info":[1,2]}`, `{"info":"x"}`,
	} {
		if r := n.beat(t, key, body); r.status != http.StatusBadRequest {
			t.Errorf("body %.40q: %d, want 400", body, r.status)
		}
	}
}
