package e2e

import (
	"fmt"
	"math"
	"testing"
	"time"
)

// TestChaosVerdict_Rule runs the verdict on a made-up history with one
// machine for each kind of mistake (and for each kind of right answer), so
// the rule the chaos scenarios rely on is itself tested (it needs no
// cluster). It asserts per machine: a mistake counted against the wrong
// machine, or two mistakes cancelling out in the totals, fail it.
func TestChaosVerdict_Rule(t *testing.T) {
	const T, G, S = 5 * time.Second, 5 * time.Second, 1500 * time.Millisecond
	const lag = 200 * time.Millisecond // the measured stall
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }
	beat := func(sec float64) beatStamp {
		return beatStamp{sent: at(sec), answered: at(sec).Add(2 * time.Millisecond)}
	}
	gap := func(from, to float64) silence {
		return silence{a: beat(from), b: beat(to), resumed: at(to), voluntary: true}
	}
	end := at(70)
	nodes := []string{"node1", "node2", "node3"}
	// One leader from 0 to 30, killed; the next one seen at 32; every node
	// killed at 50 and restarted at 55; a leader again at 57. node2 (a
	// follower then) is killed at 20.5 and restarted at 21.
	terms := []term{
		{n: 2, leader: "node1", start: at(0), end: at(30), mustEnd: at(30)},
		{n: 3, leader: "node2", start: at(32), end: at(50), mustEnd: at(50)},
		{n: 4, leader: "node3", start: at(57), end: end, mustEnd: end},
	}
	actions := []chaosAction{
		{at: at(20.5), node: 1, nodeName: "node2", what: "kill"},
		{at: at(21), node: 1, nodeName: "node2", what: "restart"},
		{at: at(30), node: 0, nodeName: "node1", what: "kill", leaderLost: true, term: 2, leaderName: "node1"},
		{at: at(31), node: 0, nodeName: "node1", what: "restart"},
		{at: at(50), node: -1, what: "kill"},
		{at: at(55), node: -1, what: "restart", leaderFrom: true},
	}
	// node1 was cut off at 30 (as if isolated rather than killed): it must
	// send nothing until it leads again.
	forbidden := []forbiddenWindow{{node: "node1", from: at(30).Add(receiveLag), lostTerm: 2}}

	var events []event
	var seen []hookSeen
	var from []hookFrom
	n := 0
	ev := func(machineName, typ string, sec float64, copies ...string) {
		n++
		id := fmt.Sprintf("ev-%d-0", n)
		events = append(events, event{ID: id, Type: typ, OccurredAt: at(sec), Machine: machine{Name: machineName},
			Deliveries: []delivery{{Channel: "chaos", State: "delivered", Attempts: 1}}})
		for i, node := range copies {
			when := at(sec + 0.01 + float64(i))
			seen = append(seen, hookSeen{DeliveryID: id, Status: 200, SigValid: true, Received: when})
			from = append(from, hookFrom{id: id, at: when, from: node})
		}
	}
	unanswered := func(s silence, sec float64) silence {
		s.uncertain = append(s.uncertain, beat(sec))
		return s
	}
	truths := []truth{
		{name: "ok", silences: []silence{gap(5, 15)}},
		{name: "missed", silences: []silence{gap(5, 15)}},
		{name: "false", silences: []silence{gap(5, 7)}},
		{name: "repeated", silences: []silence{gap(5, 15)}},
		{name: "flicker", silences: []silence{unanswered(gap(5, 20), 11)}},
		// Alerted 2s into a 10s silence (a monitor alerting at
		// last_seen + T/2 does this): the old rule credited it.
		{name: "early", silences: []silence{gap(5, 15)}},
		{name: "late", silences: []silence{gap(5, 15)}},
		{name: "grace", silences: []silence{gap(27, 35)}},    // back before L + G - S = 35.5: must not
		{name: "graceful", silences: []silence{gap(27, 45)}}, // past the grace: must
		// The new leader (from 32) alerted at 33, ignoring its grace: the
		// old leader's window (due at 32) does not count, its term ended.
		{name: "graceless", silences: []silence{gap(27, 45)}},
		{name: "dead", silences: []silence{{a: beat(40), open: true}}},
		// Tried again at 6, every node up refused it until 15: not its
		// silence, the cluster's.
		{name: "refused", silences: []silence{{a: beat(5), b: beat(15), resumed: at(6)}}},
		// Kept trying through the full outage, taken at 55.5: back before
		// the new leader's grace (57 + 5).
		{name: "kept-trying", silences: []silence{{a: beat(49.8), b: beat(55.5), resumed: at(50.3)}}},
		// Died during the full outage: alerted after the grace.
		{name: "died-in-outage", silences: []silence{{a: beat(49.5), open: true, voluntary: true}}},
		{name: "undelivered", silences: []silence{gap(5, 15)}},
		{name: "dup", silences: []silence{gap(5, 15)}},
		// Alerted correctly by node2, but node1, cut off at 30, also sent it.
		{name: "stale", silences: []silence{gap(27, 45)}},
	}
	// Two machines whose ground truth comes from the fleet's timeline: the
	// last beat before each dies, at 20.0, was taken by node2 (killed at
	// 20.5, before it could pass the beat on: lost) or by node3 (never
	// killed: certain). Both are alerted at 23.2, on time from the beat
	// at 19.5, 0.3s before the window from 20.0 opens.
	lostFleet := &fleet{minSilence: T - S, stopped: end}
	for _, m := range []struct {
		name string
		node int
	}{{"lost-beat", 1}, {"counted-beat", 2}} {
		sm := &simMachine{plan: machinePlan{name: m.name, kind: "dies"}}
		sm.note(mEvent{beat: beat(19.5), node: 0, what: tookIt})
		sm.note(mEvent{beat: beat(20), node: m.node, what: tookIt})
		sm.note(mEvent{pause: true})
		lostFleet.machines = append(lostFleet.machines, sm)
	}
	truths = append(truths, lostFleet.groundTruth(lostBeats(actions, nodes))...)

	ev("ok", "machine.offline", 10.5, "node1")
	ev("ok", "machine.online", 15.2, "node1")
	ev("false", "machine.offline", 7.1, "node1")
	ev("false", "machine.online", 7.3, "node1")
	ev("repeated", "machine.offline", 10.5, "node1")
	ev("repeated", "machine.online", 10.8, "node1")
	ev("repeated", "machine.offline", 11, "node1")
	ev("repeated", "machine.online", 15.2, "node1")
	ev("flicker", "machine.offline", 10.5, "node1")
	ev("flicker", "machine.online", 11.2, "node1")
	ev("flicker", "machine.offline", 16.5, "node1")
	ev("flicker", "machine.online", 20.2, "node1")
	ev("early", "machine.offline", 7.5, "node1")
	ev("early", "machine.online", 15.2, "node1")
	ev("late", "machine.offline", 12, "node1") // window closes at 11.702
	ev("late", "machine.online", 15.2, "node1")
	ev("grace", "machine.offline", 34, "node2")
	ev("grace", "machine.online", 35.2, "node2")
	ev("graceful", "machine.offline", 37.5, "node2")
	ev("graceful", "machine.online", 45.2, "node2")
	ev("graceless", "machine.offline", 33, "node2")
	ev("graceless", "machine.online", 45.2, "node2")
	ev("dead", "machine.offline", 45.5, "node2")
	ev("refused", "machine.offline", 10.5, "node1")
	ev("refused", "machine.online", 15.2, "node1")
	ev("died-in-outage", "machine.offline", 62.3, "node3")
	ev("undelivered", "machine.offline", 10.5)
	ev("undelivered", "machine.online", 15.2, "node1")
	ev("dup", "machine.offline", 10.5, "node1", "node1")
	ev("dup", "machine.online", 15.2, "node1")
	ev("stale", "machine.offline", 37.5, "node1")
	ev("stale", "machine.online", 45.2, "node2")
	ev("lost-beat", "machine.offline", 23.2, "node1")
	ev("counted-beat", "machine.offline", 23.2, "node1")

	v := judge(verdictInput{
		scenario: "rule", threshold: T, grace: G, slack: S, stall: lag, truths: truths, terms: terms, end: end,
		events: events, allEvents: events, received: seen, senders: from, actions: actions, nodes: nodes,
		forbidden: forbidden,
	})
	for _, p := range v.problems {
		t.Logf("problem: %s", p)
	}
	want := map[string]tally{
		"missed":       {missed: 1},
		"false":        {falseAlerts: 1},              // its online is part of the same false alert
		"repeated":     {falseAlerts: 1, repeated: 1}, // the online at 10.8 follows no beat; the second offline repeats
		"early":        {early: 1},
		"late":         {late: 1},
		"grace":        {falseAlerts: 1},
		"graceless":    {early: 1},
		"refused":      {falseAlerts: 1},
		"undelivered":  {undelivered: 1},
		"stale":        {staleSends: 1},
		"counted-beat": {early: 1},
	}
	for _, tr := range truths {
		if got := v.byMachine[tr.name]; got != want[tr.name] {
			t.Errorf("%s: counted %+v, want %+v", tr.name, got, want[tr.name])
		}
	}
	for name := range v.byMachine {
		if _, ok := want[name]; !ok && v.byMachine[name] != (tally{}) {
			t.Errorf("%q: counted %+v, want nothing", name, v.byMachine[name])
		}
	}
	if v.dupDeliveries != 1 || v.badDups != 1 {
		t.Errorf("duplicates %d (unexplained %d), want 1 (1): dup's copy was sent twice by a node nobody took away", v.dupDeliveries, v.badDups)
	}
	// The lost beat is uncertain; the counted one ends its silence.
	for _, tr := range truths {
		if tr.name == "lost-beat" && (len(tr.silences) != 1 || len(tr.silences[0].uncertain) != 1 || !tr.silences[0].a.sent.Equal(at(19.5))) {
			t.Errorf("lost-beat: silences %+v, want one from 19.5 with the beat at 20 unanswered", tr.silences)
		}
		if tr.name == "counted-beat" && (len(tr.silences) != 1 || len(tr.silences[0].uncertain) != 0 || !tr.silences[0].a.sent.Equal(at(20))) {
			t.Errorf("counted-beat: silences %+v, want one from 20", tr.silences)
		}
	}
	// All but false, grace, refused and kept-trying must be alerted.
	if wantMust := len(truths) - 4; v.must != wantMust {
		t.Errorf("%d silences must alert, want %d (all but false, grace, refused and kept-trying)", v.must, wantMust)
	}
}

// TestChaosVerdict_Window pins the window arithmetic: one term from 0,
// a beat at 10 (answered 10.1): the offline is owed from 15 − S to
// 15.1 + S + lag; a term that began at 12 moves it to its grace.
func TestChaosVerdict_Window(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(sec float64) time.Time { return t0.Add(time.Duration(math.Round(sec*1000)) * time.Millisecond) }
	r := rule{T: 5 * time.Second, G: 5 * time.Second, S: time.Second, lag: 300 * time.Millisecond}
	a := beatStamp{sent: at(10), answered: at(10.1)}
	from, to := r.window(a, term{start: at(0)})
	if !from.Equal(at(14)) || !to.Equal(at(16.4)) {
		t.Errorf("window %s–%s, want 14–16.4", from.Sub(t0), to.Sub(t0))
	}
	from, to = r.window(a, term{start: at(12)})
	if !from.Equal(at(15.7)) || !to.Equal(at(18.3)) {
		t.Errorf("after an election at 12: window %s–%s, want 15.7 (12 − lag + G − S) – 18.3", from.Sub(t0), to.Sub(t0))
	}
}
