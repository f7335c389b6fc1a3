package e2e

import (
	"fmt"
	"testing"
	"time"
)

// TestChaosVerdict_Rule runs the verdict on a made-up history with one
// machine for each kind of mistake, so the rule the chaos scenarios rely
// on is itself tested (it needs no cluster).
func TestChaosVerdict_Rule(t *testing.T) {
	const T, G, S = 5 * time.Second, 5 * time.Second, 1500 * time.Millisecond
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }
	beat := func(sec float64) beatStamp {
		return beatStamp{sent: at(sec), answered: at(sec).Add(2 * time.Millisecond)}
	}
	gap := func(from, to float64) silence {
		return silence{a: beat(from), b: beat(to), resumed: at(to), voluntary: true}
	}
	end := at(70)
	// One leader from 0 to 30, killed; the next one seen at 32; every node
	// killed at 50 and restarted at 55; a leader again at 57.
	terms := []term{
		{n: 2, leader: "node1", start: at(0), end: at(30), mustEnd: at(30)},
		{n: 3, leader: "node2", start: at(32), end: at(50), mustEnd: at(50)},
		{n: 4, leader: "node3", start: at(57), end: end, mustEnd: end},
	}
	actions := []chaosAction{
		{at: at(30), node: 0, nodeName: "node1", what: "kill", leaderLost: true, term: 2, leaderName: "node1"},
		{at: at(31), node: 0, nodeName: "node1", what: "restart"},
		{at: at(50), node: -1, what: "kill"},
		{at: at(55), node: -1, what: "restart", leaderFrom: true},
	}

	var events []event
	var seen []*hookSeen
	var from []hookFrom
	n := 0
	ev := func(machineName, typ string, sec float64, copies ...string) {
		n++
		id := fmt.Sprintf("ev-%d-0", n)
		events = append(events, event{ID: id, Type: typ, OccurredAt: at(sec), Machine: machine{Name: machineName},
			Deliveries: []delivery{{Channel: "chaos", State: "delivered", Attempts: 1}}})
		for i, node := range copies {
			when := at(sec + 0.01 + float64(i))
			seen = append(seen, &hookSeen{DeliveryID: id, Status: 200, SigValid: true, Received: when})
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
		{name: "grace", silences: []silence{gap(27, 35)}},    // back before L + G - S = 35.5: must not
		{name: "graceful", silences: []silence{gap(27, 45)}}, // past the grace: must
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
	}
	ev("ok", "machine.offline", 10.5, "node1")
	ev("ok", "machine.online", 15.2, "node1")
	ev("false", "machine.offline", 7.1, "node1")
	ev("false", "machine.online", 7.3, "node1")
	ev("repeated", "machine.offline", 10.5, "node1")
	ev("repeated", "machine.online", 12, "node1")
	ev("repeated", "machine.offline", 13, "node1")
	ev("repeated", "machine.online", 15.2, "node1")
	ev("flicker", "machine.offline", 10.5, "node1")
	ev("flicker", "machine.online", 11.2, "node1")
	ev("flicker", "machine.offline", 16.5, "node1")
	ev("flicker", "machine.online", 20.2, "node1")
	ev("grace", "machine.offline", 34, "node2")
	ev("grace", "machine.online", 35.2, "node2")
	ev("graceful", "machine.offline", 37.5, "node2")
	ev("graceful", "machine.online", 45.2, "node2")
	ev("dead", "machine.offline", 45.5, "node2")
	ev("refused", "machine.offline", 10.5, "node1")
	ev("refused", "machine.online", 15.2, "node1")
	ev("died-in-outage", "machine.offline", 62.3, "node3")
	ev("undelivered", "machine.offline", 10.5)
	ev("undelivered", "machine.online", 15.2, "node1")
	ev("dup", "machine.offline", 10.5, "node1", "node1")
	ev("dup", "machine.online", 15.2, "node1")

	w := &webhookReceiver{seen: seen}
	hook := &chaosHook{webhookReceiver: w, log: from}
	v := judge(verdictInput{
		scenario: "rule", threshold: T, grace: G, slack: S, truths: truths, terms: terms, end: end,
		events: events, allEvents: events, hook: hook, actions: actions, nodes: []string{"node1", "node2", "node3"},
	})
	for _, p := range v.problems {
		t.Logf("problem: %s", p)
	}
	// false: "false", "grace", "refused", and the online in the middle of
	// "repeated" (its second offline is the repeat); missed: "missed".
	want := chaosVerdict{falseAlerts: 4, missed: 1, repeated: 1, undelivered: 1, dupDeliveries: 1, badDups: 1}
	got := chaosVerdict{falseAlerts: v.falseAlerts, missed: v.missed, repeated: v.repeated, undelivered: v.undelivered, dupDeliveries: v.dupDeliveries, badDups: v.badDups}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("verdict %+v, want %+v", got, want)
	}
	if v.must != 9 {
		t.Errorf("%d silences must alert, want 9 (all but false, grace, refused and kept-trying)", v.must)
	}
}
