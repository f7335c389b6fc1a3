package fsm_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/lunasentri/lunasentri/fsm"
)

func TestSetAgentFacts_StoredOnChangeOnly(t *testing.T) {
	h := newHarness(t, fsm.Options{})
	h.register("web-1", nil, 0)
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	facts := fsm.AgentFacts{Hostname: "web-1.example", AgentVersion: "1.0.0",
		Info: json.RawMessage(`{"os":"linux"}`), ReportedAt: t0}
	h.ok(fsm.CmdSetAgentFacts, fsm.SetAgentFacts{Reports: []fsm.AgentReport{{ID: machineID("web-1"), Facts: facts}}})

	m := h.machine("web-1")
	if m.Agent == nil || !m.Agent.Same(&facts) || !m.Agent.ReportedAt.Equal(t0) {
		t.Fatalf("agent = %+v, want %+v", m.Agent, facts)
	}
	if fp, ok := h.f.AgentFingerprint(machineID("web-1")); !ok || fp != facts.Fingerprint() {
		t.Fatalf("AgentFingerprint = %x, %v; want %x", fp, ok, facts.Fingerprint())
	}

	// The same content again (a second node that had not heard yet) keeps
	// the first reported_at.
	again := facts
	again.ReportedAt = t0.Add(time.Minute)
	h.ok(fsm.CmdSetAgentFacts, fsm.SetAgentFacts{Reports: []fsm.AgentReport{{ID: machineID("web-1"), Facts: again}}})
	if got := h.machine("web-1").Agent.ReportedAt; !got.Equal(t0) {
		t.Fatalf("reported_at moved to %v on an unchanged report", got)
	}

	// A change replaces the facts; an unknown machine is ignored.
	changed := facts
	changed.AgentVersion = "1.1.0"
	changed.ReportedAt = t0.Add(2 * time.Minute)
	h.ok(fsm.CmdSetAgentFacts, fsm.SetAgentFacts{Reports: []fsm.AgentReport{
		{ID: machineID("web-1"), Facts: changed}, {ID: "gone", Facts: changed}}})
	if got := h.machine("web-1").Agent; got.AgentVersion != "1.1.0" || !got.ReportedAt.Equal(changed.ReportedAt) {
		t.Fatalf("after change: %+v", got)
	}
	// The copy handed out before the change still shows the old facts.
	if m.Agent.AgentVersion != "1.0.0" {
		t.Fatalf("stored facts were mutated in place: %+v", m.Agent)
	}
}

func TestSetAgentFacts_SurvivesSnapshot(t *testing.T) {
	h := newHarness(t, fsm.Options{})
	h.register("db-1", nil, 0)
	facts := fsm.AgentFacts{Hostname: "db-1", AgentVersion: "2.0.0", Info: json.RawMessage(`{"kernel":"6.1.0"}`),
		ReportedAt: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
	h.ok(fsm.CmdSetAgentFacts, fsm.SetAgentFacts{Reports: []fsm.AgentReport{{ID: machineID("db-1"), Facts: facts}}})

	data := persist(t, h.f)
	f2 := fsm.New(fsm.Options{})
	if err := restore(f2, data); err != nil {
		t.Fatalf("restore: %v", err)
	}
	m, err := f2.MachineByName("db-1")
	if err != nil {
		t.Fatal(err)
	}
	if m.Agent == nil || !m.Agent.Same(&facts) || !m.Agent.ReportedAt.Equal(facts.ReportedAt) {
		t.Fatalf("restored agent = %+v", m.Agent)
	}
}

func TestFactsFingerprint_FieldsDoNotRunTogether(t *testing.T) {
	if fsm.FactsFingerprint("ab", "c", nil) == fsm.FactsFingerprint("a", "bc", nil) {
		t.Fatal("hostname and version run together in the fingerprint")
	}
}
