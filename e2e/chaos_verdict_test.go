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
// max(T/2, 5s)), S the slack: 1.5s, covering the check interval (1s), the
// heartbeat flush interval, and the observer's 100ms polling. L (lag) is
// the longest scheduling stall this test process suffered during the run
// (measured by a 10ms ticker): every time it stamps (a beat's answer, a
// term's start, a webhook's arrival) may be that late. The stall must stay
// under stallCap, or the run fails: beyond it the verdict cannot tell an
// early alert from a late stamp, and widening the windows would let broken
// behaviour pass (an earlier version widened S by the stall; with a stall
// of a few seconds almost every silence became "may").
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
// uncertain: each of them may be the last beat the leader saw, and each
// allows one more offline/online pair (the cluster may have seen the
// machine come back for a moment).
//
// Leadership terms are observed from outside (GET /v1/status on every
// node every 100ms); a term ends when its leader is killed, stopped, frozen
// or cut off, or when the next term begins. The leader of a term that
// started at L owes a machine whose last beat it saw was a the deadline
//
//	D = max(a + T, L + G)                         (DESIGN invariant 6)
//
// a is known only between the beat's send and its answer, and L only up
// to the stall, so D is known between Dlo = max(a.sent + T, L − lag + G)
// and Dhi = max(a.answered + T, L + G).
//
// EVERY offline must be on time for its own silence: for some term whose
// leader could have written it (the offline falls within the term, ± S)
// and some beat a the leader may have seen last (the silence's last
// accepted beat, or one of its unanswered beats sent before the offline),
//
//	Dlo − S  ≤  offline  ≤  Dhi + S + lag.
//
// Earlier is an EARLY alert (the rule a monitor that alerts at
// last_seen + T/2, or a new leader that ignores its grace, breaks); later
// is a LATE alert. For each silence, besides:
//
//   - MUST alert: in some term, Dhi + S + lag passed before the term ended
//     and before the silence ended, even counting from its last unanswered
//     beat. At least one offline (more only as allowed for unanswered
//     beats), then as many machine.online once the machine is back (the
//     last one may still be due within S + 15s of the end of the run).
//   - MUST NOT alert: in every term, Dlo − S came after the term or the
//     silence ended. With one term throughout this is "shorter than
//     T − S"; after an election it is "back before L + G − S". No event.
//   - otherwise (the ambiguous band, e.g. a kill near the deadline): at
//     most one offline (on time), and its one online.
//
// The run also fails when the "must" silences are fewer than mustShare of
// the planned silences longer than T (deaths included): a scenario whose
// faults blur nearly every silence into "may" proves nothing.
//
// What this means for the faults: a machine that kept beating through any
// node never goes offline because of an election, a dead or frozen node,
// or a cut-off leader. After a full outage (every node down longer than
// T), a machine that died meanwhile is alerted once, after the new
// leader's grace; a machine that kept trying (to nothing) and got through
// once a node was back is not alerted, because it resumed before L + G.
//
// The counts of the verdict table (each also kept per machine):
//
//   - false: an offline for a silence that must not have one, or for no
//     silence; an online with no offline before it; a delivery for no event;
//     a webhook with a bad signature or shape.
//   - early / late: an offline outside its silence's window.
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
// False, early, late, missed, repeated, undelivered and stale sends must
// be zero.
//
// Extending the rule (issue 10 adds silences and digests): the inputs are
// plain data, and each silence is judged by judgeSilence from its window.
// A per-machine list of intervals in which alerts are suppressed would be
// one more field of verdictInput, consulted there (a suppressed offline is
// recorded but not delivered; a digest is one delivery for many events).

// stallCap is the longest scheduling stall of the test process the
// verdict accepts. Measured on two shared cores, with and without other
// suites running: 18ms to 766ms per scenario (five runs, -race). A longer stall
// fails the run with a message that says so (the machine is too loaded to
// judge alerts to the second) instead of widening every window by it.
const stallCap = time.Second

// mustShare is the least share of the planned silences longer than T
// (deaths included) that must be "must alert" silences. Without faults all
// of them are; a silence that spans a failover is ambiguous for the grace
// (G = 5s is most of a planned 7.5–9.5s silence), and a term cut short by
// the next kill or an election nobody caused judges nothing, so scenarios
// with many failovers have far fewer. Measured (up to four runs, two shared
// cores): frozen-leader 70–94%, follower-restart 64–100%, partition 65–93%,
// rolling-restart 47–66%, full-outage 32–41%, leader-kill 17–66% with kills
// every 9s (17% when failovers took 3s: the terms between kills were too
// short to owe anything), so its period now leaves a failover, the grace,
// a threshold and the slack after each kill: 27% (a run with an extra
// election nobody caused) and 75%. 15% still demands 15–30 silences
// alerted on time in every scenario and fails the degenerate run where
// nearly every silence became ambiguous.
const mustShare = 0.15

// onlineLag bounds how long after a machine's first beat after a silence
// its online event may come: a beat held by a node during an election is
// shipped when the next leader is known.
const onlineLag = 15 * time.Second

// tally counts what the rule forbids; the verdict keeps one for the
// scenario and one per machine.
type tally struct {
	falseAlerts int
	early, late int
	missed      int
	repeated    int
	undelivered int
	staleSends  int
}

func (t tally) failures() int {
	return t.falseAlerts + t.early + t.late + t.missed + t.repeated + t.undelivered + t.staleSends
}

// chaosVerdict is one row of the verdict table.
type chaosVerdict struct {
	scenario    string
	machines    int
	transitions int
	tally
	byMachine     map[string]tally // only machines with something counted
	dupDeliveries int
	deliveries    int
	grouped       int // transitions sent inside a digest (issue 10)
	silenced      int // transitions held by a silence and never sent
	heldThenSent  int // held by a silence, sent once it ended
	badDups       int // duplicates not explained by the sender's death
	worstFailover time.Duration
	must, may     int
	mayAlerted    int
	plannedLong   int           // planned silences longer than T (0: not known)
	stall         time.Duration // the test process's longest stall (lag)
	problems      []string
	notes         []string // worth reading, not failures
}

// count applies f to the scenario's tally and to machine's.
func (v *chaosVerdict) count(machine string, f func(*tally)) {
	f(&v.tally)
	if v.byMachine == nil {
		v.byMachine = map[string]tally{}
	}
	m := v.byMachine[machine]
	f(&m)
	v.byMachine[machine] = m
}

// verdictInput is everything a verdict is computed from: plain data (the
// one function, attempts, only enriches reports).
type verdictInput struct {
	scenario                string
	threshold, grace, slack time.Duration
	// stall is the longest scheduling stall of the test process during the
	// run (the lag of the rule); plannedLong the planned silences longer
	// than the threshold, deaths included (0: unknown, no share check).
	stall       time.Duration
	plannedLong int
	truths      []truth
	terms       []term
	end         time.Time // the fleet stopped: the ground truth ends here
	events      []event   // every event up to end, settled
	allEvents   []event   // every event the cluster knows, later
	// received is every request the receiver saw; senders says which node
	// sent each (by delivery id and arrival).
	received  []hookSeen
	senders   []hookFrom
	failovers []time.Duration
	actions   []chaosAction
	nodes     []string
	// attempts lists a machine's failed heartbeat requests in a window.
	attempts func(machine string, from, to time.Time) []string
	// forbidden are windows in which a node must send nothing.
	forbidden []forbiddenWindow
	// silences are what the scenario muted (issue 10): a transition of a
	// silenced machine inside one is recorded but not sent (delivery
	// "silenced"), unless it is still true when the silence ends; then it
	// is sent once, late.
	silences []silenceSpan
}

// silenceSpan is one silence as the scenario created and expired it.
type silenceSpan struct {
	machines map[string]bool
	from, to time.Time
}

// heldBySilence reports whether ev's machine was under a silence when ev
// happened (± slack and lag: the silence's stamps are this process's).
func (in verdictInput) heldBySilence(ev event, margin time.Duration) bool {
	_, ok := in.silenceOf(ev, margin)
	return ok
}

// silenceOf is the silence that held ev, if any.
func (in verdictInput) silenceOf(ev event, margin time.Duration) (silenceSpan, bool) {
	for _, s := range in.silences {
		if s.machines[ev.Machine.Name] && !ev.OccurredAt.Before(s.from.Add(-margin)) && !ev.OccurredAt.After(s.to.Add(margin)) {
			return s, true
		}
	}
	return silenceSpan{}, false
}

// forbiddenWindow: node must send nothing from `from` until it leads
// again in a term after lostTerm.
type forbiddenWindow struct {
	node     string
	from     time.Time
	lostTerm uint64
}

// rule holds the rule's durations: T, G, S and the lag.
type rule struct{ T, G, S, lag time.Duration }

// window is when the leader of tm may alert a machine whose last beat it
// saw was a: [Dlo − S, Dhi + S + lag].
func (r rule) window(a beatStamp, tm term) (from, to time.Time) {
	lo := later(a.sent.Add(r.T), tm.start.Add(-r.lag).Add(r.G))
	hi := later(a.answered.Add(r.T), tm.start.Add(r.G))
	return lo.Add(-r.S), hi.Add(r.S + r.lag)
}

// onTime says whether an offline at `at` fits silence s: some term whose
// leader could have written it, and some beat the leader may have seen
// last (a, or an unanswered beat sent before the offline), put it inside
// the window. When it does not, early says which side it missed on.
func (r rule) onTime(s silence, terms []term, at time.Time) (ok, early bool) {
	cands := []beatStamp{s.a}
	for _, u := range s.uncertain {
		if u.sent.Before(at) {
			cands = append(cands, u)
		}
	}
	early = true
	for _, tm := range terms {
		if at.Before(tm.start.Add(-r.S)) || at.After(tm.end.Add(r.S)) {
			continue
		}
		for _, a := range cands {
			from, to := r.window(a, tm)
			if at.Before(from) {
				continue
			}
			if !at.After(to) {
				return true, false
			}
			early = false
		}
	}
	return false, early
}

// classify says whether a silence must, may or must not be alerted. The
// silence is the machine's own from its last accepted beat a to when it
// tried again (judgedEnd): refusals after that are the cluster's doing,
// except while every node was down (then the silence lasts until a node
// came back).
func (r rule) classify(s silence, terms []term, end time.Time, outages []outage) (must, may bool) {
	bj := s.judgedEnd(end, outages)
	for _, tm := range terms {
		from, to := r.window(s.a, tm)
		if to.Before(earlier(tm.mustEnd, bj)) {
			must = true
		}
		if from.Before(earlier(tm.end, bj)) {
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
	v := chaosVerdict{scenario: in.scenario, machines: len(in.truths), plannedLong: in.plannedLong, stall: in.stall}
	r := rule{T: in.threshold, G: in.grace, S: in.slack, lag: min(in.stall, stallCap)}
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
			v.count(name, func(t *tally) { t.falseAlerts += len(byMachine[name]) })
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
		js := make([]silenceJudgement, len(tr.silences))
		for _, ev := range evs {
			at := ev.OccurredAt
			switch ev.Type {
			case "machine.offline":
				if k := tr.offlineSilence(at, r.S); k >= 0 {
					js[k].offs = append(js[k].offs, ev)
					continue
				}
				v.count(tr.name, func(t *tally) { t.falseAlerts++ })
				problem("%s: offline %s at %s while it was beating (%s)", tr.name, ev.ID, at.Format("15:04:05.000"), tr.describe(at))
			case "machine.online":
				if k := tr.onlineSilence(at, r.S); k >= 0 {
					js[k].ons++
					continue
				}
				v.count(tr.name, func(t *tally) { t.falseAlerts++ })
				problem("%s: online %s at %s follows no silence that ended just before (%s)", tr.name, ev.ID, at.Format("15:04:05.000"), tr.describe(at))
				if k := tr.offlineSilence(at, 0); k >= 0 {
					js[k].ons++ // counted; it still answers one offline
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
			js[i].judge(&v, r, tr, s, in, outs, evs)
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
	for _, s := range in.received {
		if s.Status/100 == 2 {
			accepted[s.DeliveryID]++
			v.deliveries++
		}
	}
	all := map[string]string{} // event id → machine
	for _, ev := range in.allEvents {
		all[ev.ID] = ev.Machine.Name
	}
	for id, n := range accepted {
		if _, ok := all[id]; !ok {
			v.count("", func(t *tally) { t.falseAlerts += n })
			problem("receiver accepted %s, which is no event", id)
		}
	}
	dupSent := map[string]bool{}
	for _, ev := range in.events {
		n := accepted[ev.ID]
		d, ok := deliveryFor(ev, "chaos")
		if ok && d.State == "silenced" {
			// Held by a silence and no longer true when it ended: never
			// sent, and that is right only inside a silence.
			switch {
			case !in.heldBySilence(ev, in.slack+in.stall):
				v.count(ev.Machine.Name, func(t *tally) { t.undelivered++ })
				problem("%s %s of %s: recorded silenced outside any silence", ev.ID, ev.Type, ev.Machine.Name)
			case n > 0:
				v.count(ev.Machine.Name, func(t *tally) { t.falseAlerts += n })
				problem("%s %s of %s: silenced, yet the receiver accepted it %d times", ev.ID, ev.Type, ev.Machine.Name, n)
			}
			v.silenced++
			continue
		}
		// A transition that happened well inside a silence is sent only once
		// the silence has ended (it was still true then).
		if sp, held := in.silenceOf(ev, 0); held && n > 0 && ev.OccurredAt.Before(sp.to.Add(-in.slack)) {
			for _, s := range in.received {
				if s.DeliveryID == ev.ID && s.Status/100 == 2 && s.Received.Before(sp.to.Add(-in.stall)) {
					v.count(ev.Machine.Name, func(t *tally) { t.falseAlerts++ })
					problem("%s %s of %s: sent at %s, while its silence lasted (until %s)", ev.ID, ev.Type, ev.Machine.Name,
						s.Received.Format("15:04:05.000"), sp.to.Format("15:04:05.000"))
					break
				}
			}
			v.heldThenSent++
		}
		// Alone (delivered) or inside a digest (grouped), exactly once.
		if n == 0 || !ok || (d.State != "delivered" && d.State != "grouped") {
			v.count(ev.Machine.Name, func(t *tally) { t.undelivered++ })
			problem("%s %s of %s: receiver accepted %d, delivery %+v", ev.ID, ev.Type, ev.Machine.Name, n, d)
		}
		if d.State == "grouped" {
			v.grouped++
		}
		if n > 1 {
			sentAs := ev.ID
			if d.State == "grouped" {
				sentAs = d.Digest // the digest is what was sent (again)
			}
			// A digest sent twice is one duplicate delivery, whatever it
			// carried.
			if dupSent[sentAs] {
				continue // judged with the first of its events
			}
			dupSent[sentAs] = true
			v.dupDeliveries += n - 1
			var copies []hookFrom
			var text []string
			for _, h := range in.senders {
				if h.id == sentAs {
					copies = append(copies, h)
					text = append(text, h.at.Format("15:04:05.000")+" from "+h.from)
				}
			}
			line := fmt.Sprintf("duplicate: %s (%s %s, occurred %s) accepted %d times: %s",
				ev.ID, ev.Type, ev.Machine.Name, ev.OccurredAt.Format("15:04:05.000"), n, strings.Join(text, ", "))
			if sentAs != ev.ID {
				line += " (inside digest " + sentAs + ", sent again whole)"
			}
			if why := unexplainedCopy(copies, in.actions); why != "" {
				v.badDups++
				problem("%s; %s", line, why)
			} else {
				v.notes = append(v.notes, line+" (its first sender was taken away right after sending it)")
			}
		}
	}
	for _, s := range in.received {
		if !s.SigValid || s.Problem != "" {
			v.count(all[s.DeliveryID], func(t *tally) { t.falseAlerts++ })
			problem("a request with a bad signature or shape: %+v", s)
		}
	}
	for _, w := range in.forbidden {
		to := in.end.Add(time.Hour)
		for _, tm := range in.terms {
			// Observed up to a poll (and a stall) after it began.
			if start := tm.start.Add(-receiveLag); tm.n > w.lostTerm && tm.leader == w.node && start.Before(to) {
				to = start
			}
		}
		for _, h := range in.senders {
			if h.from == w.node && h.at.After(w.from) && h.at.Before(to) {
				v.count(all[h.id], func(t *tally) { t.staleSends++ })
				problem("%s sent %s (of %s) at %s, %s after it was frozen or cut off", w.node, h.id, all[h.id], h.at.Format("15:04:05.000"), h.at.Sub(w.from).Round(time.Millisecond))
			}
		}
	}
	for _, d := range in.failovers {
		v.worstFailover = max(v.worstFailover, d)
	}
	return v
}

// silenceJudgement is what one silence got: the offlines attributed to it
// and how many onlines.
type silenceJudgement struct {
	offs []event
	ons  int
}

// judge holds one silence to the rule: its class (must, may, must not),
// each offline's window, and the onlines that answer them. This is the
// place where a suppression (a silence, a maintenance window, a digest:
// issue 10) would change what is owed.
func (j silenceJudgement) judge(v *chaosVerdict, r rule, tr truth, s silence, in verdictInput, outs []outage, evs []event) {
	problem := func(format string, args ...any) {
		v.problems = append(v.problems, fmt.Sprintf(format, args...))
	}
	n := len(j.offs)
	// A beat whose answer never came may still have reached a node: an
	// alert is required only for the silence after the last such beat,
	// forbidden only for the whole gap.
	must, _ := r.classify(s.afterUncertain(in.end, outs), in.terms, in.end, outs)
	_, may := r.classify(s, in.terms, in.end, outs)
	span := s.span(in.end)
	switch {
	case must:
		v.must++
		if n == 0 {
			v.count(tr.name, func(t *tally) { t.missed++ })
			problem("%s: silent %s from %s (%s) and never alerted", tr.name, span, s.a.sent.Format("15:04:05.000"), tr.kind)
		}
	case may:
		v.may++
		if n > 0 {
			v.mayAlerted++
		}
	default:
		if n > 0 {
			v.count(tr.name, func(t *tally) { t.falseAlerts += n })
			problem("%s: offline for a silence of %s from %s that must not alert (terms %s)", tr.name, span, s.a.sent.Format("15:04:05.000"), termsAround(in.terms, s.a.sent))
			return // its online is part of the same false alert
		}
	}
	// Every offline inside its window.
	for _, ev := range j.offs {
		ok, early := r.onTime(s, in.terms, ev.OccurredAt)
		switch {
		case ok:
		case early:
			v.count(tr.name, func(t *tally) { t.early++ })
			problem("%s: offline %s at %s is early: silent from %s (last beat answered %s), owed no sooner than %s (terms %s)", tr.name, ev.ID,
				ev.OccurredAt.Format("15:04:05.000"), s.a.sent.Format("15:04:05.000"), s.a.answered.Format("15:04:05.000"),
				r.earliest(s, in.terms, ev.OccurredAt).Format("15:04:05.000"), termsAround(in.terms, s.a.sent))
		default:
			v.count(tr.name, func(t *tally) { t.late++ })
			problem("%s: offline %s at %s is late: silent from %s, due by the window of its term (terms %s)", tr.name, ev.ID,
				ev.OccurredAt.Format("15:04:05.000"), s.a.sent.Format("15:04:05.000"), termsAround(in.terms, s.a.sent))
		}
	}
	// One offline per silence, and one more for each beat in it that may
	// have been taken (it may have brought the machine back online for a
	// moment).
	if extra := n - 1 - len(s.uncertain); extra > 0 {
		v.count(tr.name, func(t *tally) { t.repeated += extra })
		problem("%s: %d offline events for one silence of %s from %s (%d unanswered beats in it)", tr.name, n, span, s.a.sent.Format("15:04:05.000"), len(s.uncertain))
	}
	// Every offline is followed by one online once the machine is back;
	// while the silence is open (or just ended) the last one may still be
	// due.
	lo, hi := n, n
	if s.open || s.b.answered.Add(r.S+onlineLag).After(in.end) {
		lo = max(n-1, 0)
	}
	if s.open && len(s.uncertain) == 0 {
		hi = lo
	}
	switch ons := j.ons; {
	case ons > hi && n == 0:
		v.count(tr.name, func(t *tally) { t.falseAlerts += ons - hi })
		problem("%s: online without an offline after a silence of %s from %s", tr.name, span, s.a.sent.Format("15:04:05.000"))
	case ons > hi:
		v.count(tr.name, func(t *tally) { t.repeated += ons - hi })
		problem("%s: %d online events after %d offline for one silence of %s from %s (%s; events %s)", tr.name, ons, n, span, s.a.sent.Format("15:04:05.000"), tr.describe(s.a.sent), eventTimes(evs))
	case ons < lo:
		v.count(tr.name, func(t *tally) { t.missed += lo - ons })
		problem("%s: back at %s after an alerted silence, no online event (%s; events %s)", tr.name, s.b.sent.Format("15:04:05.000"), tr.describe(s.b.sent), eventTimes(evs))
	}
}

// earliest is the earliest the window for s opens in a term that holds
// at, for reports.
func (r rule) earliest(s silence, terms []term, at time.Time) time.Time {
	var out time.Time
	for _, tm := range terms {
		if at.Before(tm.start.Add(-r.S)) || at.After(tm.end.Add(r.S)) {
			continue
		}
		if from, _ := r.window(s.a, tm); out.IsZero() || from.Before(out) {
			out = from
		}
	}
	return out
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

const verdictHeader = "%-18s | %8s | %11s | %5s | %5s | %4s | %6s | %8s | %11s | %14s | %14s | %11s"

func verdictTable(rows []chaosVerdict) string {
	var b strings.Builder
	fmt.Fprintf(&b, verdictHeader+"\n", "scenario", "machines", "transitions", "false", "early", "late", "missed", "repeated", "undelivered", "dup deliveries", "worst failover", "stale sends")
	fmt.Fprintf(&b, "%s\n", strings.Repeat("-", 18+8+11+5+5+4+6+8+11+14+14+11+3*11))
	for _, v := range rows {
		dup := fmt.Sprintf("%d/%d", v.dupDeliveries, v.deliveries)
		fo := "-"
		if v.worstFailover > 0 {
			fo = v.worstFailover.Round(time.Millisecond).String()
		}
		fmt.Fprintf(&b, "%-18s | %8d | %11d | %5d | %5d | %4d | %6d | %8d | %11d | %14s | %14s | %11d\n",
			v.scenario, v.machines, v.transitions, v.falseAlerts, v.early, v.late, v.missed, v.repeated, v.undelivered, dup, fo, v.staleSends)
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
	t.Logf("silences: %d must alert, %d ambiguous (%d of them alerted); %d planned longer than the threshold; test process stalled up to %s (cap %s)",
		v.must, v.may, v.mayAlerted, v.plannedLong, v.stall.Round(time.Millisecond), stallCap)
	if v.grouped > 0 || v.silenced > 0 || v.heldThenSent > 0 {
		t.Logf("deliveries: %d transitions went out inside digests; %d were held by a silence and sent once it ended; %d were held and never sent (each no longer true when its silence ended)",
			v.grouped, v.heldThenSent, v.silenced)
	}
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
	if v.failures() > 0 {
		t.Errorf("%s: false %d, early %d, late %d, missed %d, repeated %d, undelivered %d, stale sends %d; all must be zero",
			v.scenario, v.falseAlerts, v.early, v.late, v.missed, v.repeated, v.undelivered, v.staleSends)
	}
	if v.stall > stallCap {
		t.Errorf("%s: the test process stalled for %s, more than the %s the verdict allows: the machine is too loaded to judge alerts to the second (the rule's windows are not widened to hide it)",
			v.scenario, v.stall.Round(time.Millisecond), stallCap)
	}
	if v.plannedLong > 0 && float64(v.must) < mustShare*float64(v.plannedLong) {
		t.Errorf("%s: only %d silences had to be alerted, fewer than %.0f%% of the %d planned longer than the threshold; the scenario proves too little",
			v.scenario, v.must, 100*mustShare, v.plannedLong)
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
