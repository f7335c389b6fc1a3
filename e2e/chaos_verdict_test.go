package e2e

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// The verdict: what every machine's events should have been, given what
// really happened to it, and what the cluster and the receiver did.
//
// THE RULE (the contract the chaos suite holds the cluster to)
//
// T is the offline threshold, G the failover grace (server default
// max(T/2, 5s)), S the slack: 1.5s, covering the heartbeat flush interval,
// the check interval, a beat lost with a node killed before its flush, and
// the observer's 100ms polling.
//
// A silence starts at a machine's last heartbeat a server ACCEPTED (202):
// a beat that reached no node is no sign of life. It ends, for judgement,
// when the machine tried to beat again after its own pause — except while
// every server process was down (killed, stopped or frozen): then it ends
// when the first one came back. So a machine that kept beating is judged
// as beating even if every node refused it (503) while a majority was up:
// refusing live machines and then alerting them is the cluster's fault.
// (The gap to the next accepted beat is used only to tell which silence an
// event belongs to.)
//
// Some beats are neither signs of life nor proof of silence: a beat whose
// answer never came (a timeout, a connection lost mid-request: the node
// may have taken it); a beat taken (202) by a node that was killed or
// frozen within 1s after (it may not have passed it on); a beat taken by a
// node that was cut off from the leader (it reaches the leader after the
// heal, if in time at all). Such "unanswered" beats inside a silence make it
// uncertain: an alert is required only for the part after the last of
// them, forbidden only for the whole silence, and each of them allows one
// more offline/online pair (the cluster may have seen the machine come
// back for a moment).
//
// S is widened by the longest scheduling stall this test process suffered
// during the run (measured), since every timestamp it takes may be that
// late.
//
// Leadership terms are observed from outside (GET /v1/status on every
// node every 100ms); a term ends when its leader is killed, stopped, frozen
// or cut off, or when the next term begins. The leader of a term that
// started at L owes a machine silent since a the deadline
// D = max(a + T, L + G) (DESIGN invariant 6). For each silence:
//
//   - MUST alert: in some term, D + S passed before the term ended and
//     before the silence ended. One machine.offline (more only as allowed
//     for unanswered beats), then as many machine.online once the machine
//     is back (the last one may still be due within S + 15s of the end of
//     the run).
//   - MUST NOT alert: in every term, D − S came after the term or the
//     silence ended. With one term throughout this is "shorter than
//     T − S"; after an election it is "back before L + G − S". No event.
//   - otherwise (the ambiguous band, e.g. a kill near the deadline): at
//     most one offline, and its one online.
//
// What this means for the faults: a machine that kept beating through any
// node never goes offline because of an election, a dead or frozen node,
// or a cut-off leader. After a full outage (every node down longer than
// T), a machine that died meanwhile is alerted once, after the new
// leader's grace; a machine that kept trying (to nothing) and got through
// once a node was back is not alerted, because it resumed before L + G.
//
// The counts of the verdict table:
//
//   - false: an offline for a silence that must not have one, or for no
//     silence; an online with no offline before it; a delivery for no event;
//     a webhook with a bad signature or shape.
//   - missed: no offline for a silence that must have one; no online after
//     an alerted silence that ended.
//   - repeated: a second offline (or online) for one silence, beyond what
//     its unanswered beats allow.
//   - undelivered: an event whose delivery is not "delivered", or that the
//     receiver never accepted (2xx).
//   - dup deliveries: extra accepted copies of a delivery id, of all
//     accepted deliveries. The design allows one when a leader dies between
//     sending and recording (the receiver drops it by id). Each copy must
//     be explained so (its sender was killed, frozen, cut off or stopped
//     within 2s after sending it, or up to 1s before the receiver stamped
//     it); there must be none in scenarios where
//     no leader was taken away mid-flight, and at most 1% of all accepted
//     deliveries of the suite (per scenario it is only reported: one kill
//     right after a heartbeat batch brought several machines back
//     duplicates the whole batch).
//   - worst failover: from taking the leader away (or bringing a dead
//     cluster back) until a node names a new leader.
//   - stale sends: webhooks from a node that reached the receiver more
//     than 1s after the node was frozen or cut off, until (1s before) it
//     was seen leading again: DESIGN invariant 1.
//
// False, missed, repeated, undelivered and stale sends must be zero.

// onlineLag bounds how long after a machine's first beat after a silence
// its online event may come: a beat held by a node during an election is
// shipped when the next leader is known.
const onlineLag = 15 * time.Second

// chaosVerdict is one row of the verdict table.
type chaosVerdict struct {
	scenario      string
	machines      int
	transitions   int
	falseAlerts   int
	missed        int
	repeated      int
	undelivered   int
	dupDeliveries int
	deliveries    int
	staleSends    int
	badDups       int // duplicates not explained by the sender's death
	worstFailover time.Duration
	must, may     int
	mayAlerted    int
	problems      []string
	notes         []string // worth reading, not failures
}

// verdictInput is everything a verdict is computed from.
type verdictInput struct {
	scenario                string
	threshold, grace, slack time.Duration
	truths                  []truth
	terms                   []term
	end                     time.Time // the fleet stopped: the ground truth ends here
	events                  []event   // every event up to end, settled
	allEvents               []event   // every event the cluster knows, later
	hook                    *chaosHook
	failovers               []time.Duration
	actions                 []chaosAction
	nodes                   []string
	// attempts lists a machine's failed heartbeat requests in a window.
	attempts func(machine string, from, to time.Time) []string
	// forbidden are windows in which a node must send nothing.
	forbidden []forbiddenWindow
}

// forbiddenWindow: node must send nothing from `from` until it leads
// again in a term after lostTerm.
type forbiddenWindow struct {
	node     string
	from     time.Time
	lostTerm uint64
}

// classify says whether a silence must, may or must not be alerted. The
// silence is the machine's own from its last accepted beat a to when it
// tried again (judgedEnd): refusals after that are the cluster's doing,
// except while every node was down (then the silence lasts until a node
// came back).
func classify(s silence, terms []term, T, G, S time.Duration, end time.Time, outages []outage) (must, may bool) {
	bj := s.judgedEnd(end, outages)
	for _, tm := range terms {
		d := later(s.a.answered.Add(T), tm.start.Add(G))
		if d.Add(S).Before(earlier(tm.mustEnd, bj)) {
			must = true
		}
		d = later(s.a.sent.Add(T), tm.start.Add(G))
		if d.Add(-S).Before(earlier(tm.end, bj)) {
			may = true
		}
	}
	return must, may
}

// judgedEnd is when the machine's own silence ended: when it tried to beat
// again, or when a node came back if every node was down then; end if it
// never tried again.
func (s silence) judgedEnd(end time.Time, outages []outage) time.Time {
	if s.resumed.IsZero() {
		return end
	}
	r := s.resumed
	for _, o := range outages {
		// An attempt begun just before the kill fails with it.
		if !r.Before(o.from.Add(-time.Second)) && r.Before(o.to) {
			r = o.to
		}
	}
	return earlier(r, end)
}

// lossWindow bounds how long after a node answered 202 the beat may still
// be only in that node (the heartbeat flush interval is 250ms; under load
// it takes longer to reach the leader and commit).
const lossWindow = time.Second

// lostBeats says, from the actions, whether a beat node took may have been
// lost with it: the node was killed or frozen within lossWindow after
// answering, before passing the beat on; or it was cut off from the other
// nodes when it took the beat (it reaches the leader only after the heal,
// if ever in time).
func lostBeats(actions []chaosAction, nodes []string) func(node int, b beatStamp) bool {
	type span struct{ from, to time.Time }
	gone := map[string][]time.Time{}
	cut := map[string][]span{}
	for _, a := range actions {
		names := nodes
		if a.node >= 0 {
			names = []string{a.nodeName}
		}
		for _, n := range names {
			switch a.what {
			case "kill", "freeze":
				gone[n] = append(gone[n], a.at)
			case "isolate":
				cut[n] = append(cut[n], span{from: a.at, to: time.Now().Add(time.Hour)})
			case "heal":
				if c := cut[n]; len(c) > 0 {
					c[len(c)-1].to = a.at
				}
			}
		}
	}
	return func(node int, b beatStamp) bool {
		if node < 0 || node >= len(nodes) {
			return false
		}
		n := nodes[node]
		for _, at := range gone[n] {
			if at.After(b.sent) && !at.After(b.answered.Add(lossWindow)) {
				return true
			}
		}
		for _, c := range cut[n] {
			if !b.answered.Before(c.from) && b.sent.Before(c.to) {
				return true
			}
		}
		return false
	}
}

// outage is a time when no server process was up and awake.
type outage struct{ from, to time.Time }

// outages derives from the actions when every node was down (killed,
// stopped or frozen).
func outages(actions []chaosAction, nodes []string, end time.Time) []outage {
	down := map[string]bool{}
	var out []outage
	var from time.Time
	for _, a := range actions {
		names := nodes
		if a.node >= 0 {
			names = []string{a.nodeName}
		}
		for _, n := range names {
			switch a.what {
			case "kill", "stop", "freeze":
				down[n] = true
			case "restart", "thaw":
				down[n] = false
			}
		}
		all := true
		for _, n := range nodes {
			all = all && down[n]
		}
		switch {
		case all && from.IsZero():
			from = a.at
		case !all && !from.IsZero():
			out = append(out, outage{from, a.at})
			from = time.Time{}
		}
	}
	if !from.IsZero() {
		out = append(out, outage{from, end})
	}
	return out
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// judge computes the verdict.
func judge(in verdictInput) chaosVerdict {
	v := chaosVerdict{scenario: in.scenario, machines: len(in.truths)}
	T, G, S := in.threshold, in.grace, in.slack
	problem := func(format string, args ...any) {
		v.problems = append(v.problems, fmt.Sprintf(format, args...))
	}
	byMachine := map[string][]event{}
	for _, ev := range in.events {
		byMachine[ev.Machine.Name] = append(byMachine[ev.Machine.Name], ev)
	}
	known := map[string]bool{}
	for _, tr := range in.truths {
		known[tr.name] = true
	}
	for name := range byMachine {
		if !known[name] {
			v.falseAlerts += len(byMachine[name])
			problem("%d events for %s, which is not in the fleet", len(byMachine[name]), name)
		}
	}
	v.transitions = len(in.events)

	outs := outages(in.actions, in.nodes, in.end)
	refused, longestRefused, longestWho := 0, time.Duration(0), ""
	uncertain := 0
	for _, tr := range in.truths {
		evs := byMachine[tr.name]
		sort.Slice(evs, func(i, j int) bool { return evs[i].OccurredAt.Before(evs[j].OccurredAt) })
		offs := make([]int, len(tr.silences))
		ons := make([]int, len(tr.silences))
		for _, ev := range evs {
			at := ev.OccurredAt
			switch ev.Type {
			case "machine.offline":
				if k := tr.offlineSilence(at, S); k >= 0 {
					offs[k]++
					continue
				}
				v.falseAlerts++
				problem("%s: offline %s at %s while it was beating (%s)", tr.name, ev.ID, at.Format("15:04:05.000"), tr.describe(at))
			case "machine.online":
				if k := tr.onlineSilence(at, S); k >= 0 {
					ons[k]++
					continue
				}
				v.falseAlerts++
				problem("%s: online %s at %s follows no silence that ended just before (%s)", tr.name, ev.ID, at.Format("15:04:05.000"), tr.describe(at))
				if k := tr.offlineSilence(at, 0); k >= 0 {
					ons[k]++ // counted; it still answers one offline
				}
			default:
				problem("%s: unknown event type %q", tr.name, ev.Type)
			}
		}
		for i, s := range tr.silences {
			if !s.resumed.IsZero() {
				bj := s.judgedEnd(in.end, outs)
				stop := in.end
				if !s.open {
					stop = s.b.sent
				}
				if d := stop.Sub(bj); d > 500*time.Millisecond {
					refused++
					if d > longestRefused {
						longestRefused = d
						longestWho = fmt.Sprintf("%s from %s to %s", tr.name, bj.Format("15:04:05.000"), stop.Format("15:04:05.000"))
						if in.attempts != nil {
							fails := in.attempts(tr.name, bj, stop)
							if len(fails) > 12 {
								fails = append(fails[:12], fmt.Sprintf("… %d more", len(fails)-12))
							}
							longestWho += ": " + strings.Join(fails, ", ")
						}
					}
				}
			}
			uncertain += len(s.uncertain)
			// A beat whose answer never came may still have reached a
			// node: an alert is required only for the silence after the
			// last such beat, forbidden only for the whole gap.
			must, _ := classify(s.afterUncertain(in.end, outs), in.terms, T, G, S, in.end, outs)
			_, may := classify(s, in.terms, T, G, S, in.end, outs)
			span := s.span(in.end)
			switch {
			case must:
				v.must++
				if offs[i] == 0 {
					v.missed++
					problem("%s: silent %s from %s (%s) and never alerted", tr.name, span, s.a.sent.Format("15:04:05.000"), tr.kind)
				}
			case may:
				v.may++
				if offs[i] > 0 {
					v.mayAlerted++
				}
			default:
				if offs[i] > 0 {
					v.falseAlerts += offs[i]
					problem("%s: offline for a silence of %s from %s that must not alert (terms %s)", tr.name, span, s.a.sent.Format("15:04:05.000"), termsAround(in.terms, s.a.sent))
					continue // its online is part of the same false alert
				}
			}
			// One offline per silence, and one more for each beat in it
			// that may have been taken (it may have brought the machine
			// back online for a moment).
			if extra := offs[i] - 1 - len(s.uncertain); extra > 0 {
				v.repeated += extra
				problem("%s: %d offline events for one silence of %s from %s (%d unanswered beats in it)", tr.name, offs[i], span, s.a.sent.Format("15:04:05.000"), len(s.uncertain))
			}
			// Every offline is followed by one online once the machine is
			// back; while the silence is open (or just ended) the last
			// one may still be due.
			lo, hi := offs[i], offs[i]
			if s.open || s.b.answered.Add(S+onlineLag).After(in.end) {
				lo = max(offs[i]-1, 0)
			}
			if s.open && len(s.uncertain) == 0 {
				hi = lo
			}
			switch {
			case ons[i] > hi && offs[i] == 0:
				v.falseAlerts += ons[i] - hi
				problem("%s: online without an offline after a silence of %s from %s", tr.name, span, s.a.sent.Format("15:04:05.000"))
			case ons[i] > hi:
				v.repeated += ons[i] - hi
				problem("%s: %d online events after %d offline for one silence of %s from %s (%s; events %s)", tr.name, ons[i], offs[i], span, s.a.sent.Format("15:04:05.000"), tr.describe(s.a.sent), eventTimes(evs))
			case ons[i] < lo:
				v.missed += lo - ons[i]
				problem("%s: back at %s after an alerted silence, no online event (%s; events %s)", tr.name, s.b.sent.Format("15:04:05.000"), tr.describe(s.b.sent), eventTimes(evs))
			}
		}
	}
	if uncertain > 0 {
		v.notes = append(v.notes, fmt.Sprintf("%d heartbeats timed out or lost their connection with no answer; they may have been taken", uncertain))
	}

	if refused > 0 {
		v.notes = append(v.notes, fmt.Sprintf("%d silences went on while the machine was trying every node and none accepted (nodes up); longest %s (%s)",
			refused, longestRefused.Round(time.Millisecond), longestWho))
	}
	for _, o := range outs {
		v.notes = append(v.notes, fmt.Sprintf("every node down %s → %s", o.from.Format("15:04:05.000"), o.to.Format("15:04:05.000")))
	}

	// Deliveries.
	accepted := map[string]int{}
	for _, s := range in.hook.requests() {
		if s.Status/100 == 2 {
			accepted[s.DeliveryID]++
			v.deliveries++
		}
	}
	all := map[string]bool{}
	for _, ev := range in.allEvents {
		all[ev.ID] = true
	}
	for id, n := range accepted {
		if !all[id] {
			v.falseAlerts += n
			problem("receiver accepted %s, which is no event", id)
		}
	}
	for _, ev := range in.events {
		n := accepted[ev.ID]
		d, ok := deliveryFor(ev, "chaos")
		if n == 0 || !ok || d.State != "delivered" {
			v.undelivered++
			problem("%s %s of %s: receiver accepted %d, delivery %+v", ev.ID, ev.Type, ev.Machine.Name, n, d)
		}
		if n > 1 {
			v.dupDeliveries += n - 1
			var copies []hookFrom
			var text []string
			for _, h := range in.hook.from() {
				if h.id == ev.ID {
					copies = append(copies, h)
					text = append(text, h.at.Format("15:04:05.000")+" from "+h.from)
				}
			}
			line := fmt.Sprintf("duplicate: %s (%s %s, occurred %s) accepted %d times: %s",
				ev.ID, ev.Type, ev.Machine.Name, ev.OccurredAt.Format("15:04:05.000"), n, strings.Join(text, ", "))
			if why := unexplainedCopy(copies, in.actions); why != "" {
				v.badDups++
				problem("%s; %s", line, why)
			} else {
				v.notes = append(v.notes, line+" (its first sender was taken away right after sending it)")
			}
		}
	}
	if bad := in.hook.badRequests(); len(bad) > 0 {
		v.falseAlerts += len(bad)
		problem("%d requests with a bad signature or shape, first %+v", len(bad), bad[0])
	}
	for _, w := range in.forbidden {
		to := in.end.Add(time.Hour)
		for _, tm := range in.terms {
			// Observed up to a poll (and a stall) after it began.
			if start := tm.start.Add(-receiveLag); tm.n > w.lostTerm && tm.leader == w.node && start.Before(to) {
				to = start
			}
		}
		for _, h := range in.hook.from() {
			if h.from == w.node && h.at.After(w.from) && h.at.Before(to) {
				v.staleSends++
				problem("%s sent %s at %s, %s after it was frozen or cut off", w.node, h.id, h.at.Format("15:04:05.000"), h.at.Sub(w.from).Round(time.Millisecond))
			}
		}
	}
	for _, d := range in.failovers {
		v.worstFailover = max(v.worstFailover, d)
	}
	return v
}

// sendToRecord bounds how long after a send its outcome is recorded (the
// dispatcher batches outcomes for 50ms, then one Raft commit).
const sendToRecord = 2 * time.Second

// receiveLag bounds how long after a sender wrote a webhook the receiver
// (in this busy test process) stamps it; runs measured up to ~0.5s.
const receiveLag = time.Second

// unexplainedCopy says why copies of one delivery are not the documented
// duplicate (the sender died, was frozen, cut off or stopped between
// sending a copy and recording it; a later leader sent it again), or "".
func unexplainedCopy(copies []hookFrom, actions []chaosAction) string {
	for k := 0; k+1 < len(copies); k++ {
		c1, c2 := copies[k], copies[k+1]
		explained := false
		for _, a := range actions {
			gone := a.what == "kill" || a.what == "stop" || a.what == "freeze" || a.what == "isolate"
			// The copy was sent at most receiveLag before the receiver
			// stamped it, and recorded at most sendToRecord after. A sender
			// killed right after connecting cannot be named (its process
			// is gone when the receiver looks): then any node taken away
			// then explains it.
			if gone && (a.node == -1 || a.nodeName == c1.from || c1.from == "") &&
				!a.at.Before(c1.at.Add(-receiveLag)) && a.at.Before(c1.at.Add(sendToRecord)) && a.at.Before(c2.at) {
				explained = true
			}
		}
		if !explained {
			return fmt.Sprintf("copy %d from %s was not followed by %s's death", k+1, c1.from, c1.from)
		}
	}
	return ""
}

// afterUncertain is the silence from its last unanswered beat on (the
// shortest it may have been, as a node saw it), or s itself.
func (s silence) afterUncertain(end time.Time, outs []outage) silence {
	bj := s.judgedEnd(end, outs)
	for i := len(s.uncertain) - 1; i >= 0; i-- {
		if u := s.uncertain[i]; u.sent.Before(bj) {
			s.a = u
			break
		}
	}
	return s
}

// offlineSilence is the silence an offline at `at` is about: the last one
// that began before it, unless that one ended more than S before; -1 if
// none.
func (tr truth) offlineSilence(at time.Time, S time.Duration) int {
	k := -1
	for i, s := range tr.silences {
		if s.a.sent.Before(at) {
			k = i
		}
	}
	if k >= 0 && !tr.silences[k].open && at.After(tr.silences[k].b.answered.Add(S)) {
		return -1
	}
	return k
}

// onlineSilence is the silence an online at `at` ends: the one whose
// beat came closest before it, counting each silence's closing beat (an
// online may follow the beat by up to S + onlineLag: a beat taken during an
// election reaches the leader late) and its unanswered beats (the cluster
// may have seen the machine for a moment); -1 if none.
func (tr truth) onlineSilence(at time.Time, S time.Duration) int {
	best, bestAt := -1, time.Time{}
	consider := func(i int, b beatStamp) {
		if b.sent.Before(at) && !at.After(b.answered.Add(S+onlineLag)) && (best < 0 || b.sent.After(bestAt)) {
			best, bestAt = i, b.sent
		}
	}
	for i, s := range tr.silences {
		if !s.open {
			consider(i, s.b)
		}
		for _, u := range s.uncertain {
			consider(i, u)
		}
	}
	return best
}

// span is the silence's length, "≥" when still open.
func (s silence) span(end time.Time) string {
	if s.open {
		return "≥" + end.Sub(s.a.sent).Round(10*time.Millisecond).String()
	}
	return s.b.sent.Sub(s.a.answered).Round(10 * time.Millisecond).String()
}

// describe lists the machine's silences around at, for a problem report.
func (tr truth) describe(at time.Time) string {
	var parts []string
	for _, s := range tr.silences {
		if s.a.sent.Before(at.Add(15*time.Second)) && (s.open || s.b.answered.After(at.Add(-15*time.Second))) {
			end := "open"
			if !s.open {
				end = s.b.sent.Format("15:04:05.000")
			}
			part := s.a.sent.Format("15:04:05.000") + "→" + end
			if len(s.uncertain) > 0 {
				var us []string
				for _, u := range s.uncertain {
					us = append(us, u.sent.Format("05.000"))
				}
				part += " (unanswered " + strings.Join(us, " ") + ")"
			}
			parts = append(parts, part)
		}
	}
	if len(parts) == 0 {
		return "no silence near it"
	}
	return "silences " + strings.Join(parts, ", ")
}

func eventTimes(evs []event) string {
	var parts []string
	for _, ev := range evs {
		parts = append(parts, strings.TrimPrefix(ev.Type, "machine.")+" "+ev.OccurredAt.Local().Format("15:04:05.000"))
	}
	return strings.Join(parts, ", ")
}

func termsAround(terms []term, at time.Time) string {
	var parts []string
	for _, tm := range terms {
		if tm.end.After(at.Add(-20*time.Second)) && tm.start.Before(at.Add(20*time.Second)) {
			parts = append(parts, fmt.Sprintf("%d:%s %s–%s", tm.n, tm.leader, tm.start.Format("15:04:05.000"), tm.end.Format("15:04:05.000")))
		}
	}
	return strings.Join(parts, ", ")
}

// The verdict table, printed by TestChaos once every scenario is done.
var (
	verdictMu   sync.Mutex
	verdictRows []chaosVerdict
)

const verdictHeader = "%-18s | %8s | %11s | %5s | %6s | %8s | %11s | %14s | %14s | %11s"

func verdictTable(rows []chaosVerdict) string {
	var b strings.Builder
	fmt.Fprintf(&b, verdictHeader+"\n", "scenario", "machines", "transitions", "false", "missed", "repeated", "undelivered", "dup deliveries", "worst failover", "stale sends")
	fmt.Fprintf(&b, "%s\n", strings.Repeat("-", 18+8+11+5+6+8+11+14+14+11+3*9))
	for _, v := range rows {
		dup := fmt.Sprintf("%d/%d", v.dupDeliveries, v.deliveries)
		fo := "-"
		if v.worstFailover > 0 {
			fo = v.worstFailover.Round(time.Millisecond).String()
		}
		fmt.Fprintf(&b, "%-18s | %8d | %11d | %5d | %6d | %8d | %11d | %14s | %14s | %11d\n",
			v.scenario, v.machines, v.transitions, v.falseAlerts, v.missed, v.repeated, v.undelivered, dup, fo, v.staleSends)
	}
	return b.String()
}

// report logs one verdict, keeps it for the table, and fails the test on
// anything the rule forbids.
func (v chaosVerdict) report(t *testing.T, dupsAllowed bool) {
	t.Helper()
	verdictMu.Lock()
	verdictRows = append(verdictRows, v)
	verdictMu.Unlock()
	t.Logf("verdict:\n%s", verdictTable([]chaosVerdict{v}))
	t.Logf("silences: %d must alert, %d ambiguous (%d of them alerted)", v.must, v.may, v.mayAlerted)
	for _, n := range v.notes {
		t.Logf("note: %s", n)
	}
	for i, p := range v.problems {
		if i == 40 {
			t.Logf("… %d more problems", len(v.problems)-i)
			break
		}
		t.Logf("problem: %s", p)
	}
	if v.falseAlerts+v.missed+v.repeated+v.undelivered+v.staleSends > 0 {
		t.Errorf("%s: false %d, missed %d, repeated %d, undelivered %d, stale sends %d; all must be zero",
			v.scenario, v.falseAlerts, v.missed, v.repeated, v.undelivered, v.staleSends)
	}
	switch {
	case v.badDups > 0:
		t.Errorf("%s: %d deliveries duplicated without their sender dying in between", v.scenario, v.badDups)
	case !dupsAllowed && v.dupDeliveries > 0:
		t.Errorf("%s: %d duplicate deliveries with no sender killed, frozen or cut off", v.scenario, v.dupDeliveries)
	case v.dupDeliveries*100 > v.deliveries:
		// Judged over the whole suite (checkDuplicateRate): one kill that
		// lands right after a heartbeat batch brought several machines
		// back duplicates that whole batch.
		t.Logf("%s: %d duplicate deliveries of %d, more than 1%% in this scenario", v.scenario, v.dupDeliveries, v.deliveries)
	}
	if v.must == 0 {
		t.Errorf("%s: no silence had to be alerted; the scenario proves nothing", v.scenario)
	}
}

// checkDuplicateRate fails when more than 1% of all accepted deliveries of
// the suite were duplicates.
func checkDuplicateRate(t *testing.T, rows []chaosVerdict) {
	dups, total := 0, 0
	for _, v := range rows {
		dups += v.dupDeliveries
		total += v.deliveries
	}
	if dups*100 > total {
		t.Errorf("%d duplicate deliveries of %d accepted in the whole suite, more than 1%%", dups, total)
	}
}
