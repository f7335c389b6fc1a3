package e2e

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Issue 6, the chaos half: real server processes, a fleet of a few hundred
// simulated machines beating through all nodes as agents do, faults
// injected while some machines die or flap, and a verdict per scenario
// against the ground truth (the rule is in chaos_verdict_test.go).
//
// LUNASENTRI_SOAK=1 (make soak) runs the same scenarios with more machines
// and more rounds; LUNASENTRI_CHAOS_MACHINES and LUNASENTRI_CHAOS_ROUNDS
// override either.

// chaosParams sizes a chaos run.
type chaosParams struct {
	machines  int
	interval  time.Duration // heartbeat interval of every machine
	threshold time.Duration // -offline-threshold
	grace     time.Duration // the server's default failover grace for it
	slack     time.Duration
	rounds    int           // faults per scenario
	settle    time.Duration // how long deliveries may take to settle
	soak      bool
}

func chaosSettings(t testing.TB) chaosParams {
	p := chaosParams{
		machines:  200,
		interval:  500 * time.Millisecond,
		threshold: 5 * time.Second,
		grace:     5 * time.Second, // max(threshold/2, 5s)
		slack:     1500 * time.Millisecond,
		rounds:    2,
		settle:    30 * time.Second,
	}
	if os.Getenv("LUNASENTRI_SOAK") != "" {
		// Five times the machines at half the rate each (2.5× the
		// requests): what two shared cores sustain without the fleet's own
		// timeouts blurring the ground truth.
		p.soak, p.machines, p.interval, p.rounds, p.settle = true, 1000, time.Second, 8, 2*time.Minute
	}
	if n, err := strconv.Atoi(os.Getenv("LUNASENTRI_CHAOS_MACHINES")); err == nil && n > 0 {
		p.machines = n
	}
	if n, err := strconv.Atoi(os.Getenv("LUNASENTRI_CHAOS_ROUNDS")); err == nil && n > 0 {
		p.rounds = n
	}
	return p
}

// serverFlags are the flags every chaos server gets.
// Flap damping is off (-flap-threshold 1000): the fleet's flapping
// machines are the suite's way of making many silences, and the verdict
// judges every alert of every silence; damping is judged by the alerting
// tests.
func (p chaosParams) serverFlags() []string {
	return []string{"-offline-threshold", p.threshold.String(), "-max-events", "100000", "-flap-threshold", "1000"}
}

// chaosOptions change what runChaos sets up. The zero value is the
// classic scenario: chaosPlans, a channel that sends every transition
// alone (group_after at its maximum), no silences.
type chaosOptions struct {
	// plans, if set, replaces chaosPlans.
	plans func(r *chaosRun) []machinePlan
	// digests: the channel keeps the default group_after and a short
	// group_window, so transitions go out in digests; the run then also
	// waits for every digest to be sent.
	digests bool
	// judged, if set, hears the ground truth and the settled events once
	// the verdict is in (the soak derives detection delays from them).
	judged func(truths []truth, events []event)
	// chaosFrom, if set, replaces the 3s before the first fault: a fleet
	// beating every 10s needs more for every machine's first beat.
	chaosFrom time.Duration
}

// stormDigestWindow is the storm channel's group_window: short, so the
// run's tail does not wait 30s for the last digest.
const stormDigestWindow = 3 * time.Second

// chaosRun is one scenario in progress.
type chaosRun struct {
	t     *testing.T
	name  string
	p     chaosParams
	c     chaosCluster
	obs   *observer
	hook  *chaosHook
	fleet *fleet
	rng   *rand.Rand
	// chaosFrom and calmAt are offsets from the fleet's start: faults
	// happen in between, and every planned silence starts in between.
	chaosFrom, calmAt time.Duration
	forbidden         []forbiddenWindow
	// dupsAllowed: a sender was killed, frozen or cut off, so a delivery
	// may have been sent and not recorded (at most 1% duplicates).
	dupsAllowed bool
	// silences the script created (issue 10): the ground truth of what was
	// muted, for the verdict.
	silences []silenceSpan
}

// at waits until offset d from the fleet's start.
func (r *chaosRun) at(d time.Duration) { sleepUntil(context.Background(), r.fleet.start.Add(d)) }

// leader waits for a leader and returns it.
func (r *chaosRun) leader() int { return r.obs.waitLeader(r.t, 30*time.Second, 0, -1) }

// killLeader kills the leader (-9), waits for the next one, keeps the
// killed node down for `down`, restarts it and returns it.
func (r *chaosRun) killLeader(down time.Duration) int {
	l := r.leader()
	_, lt := r.obs.leaderNow()
	r.obs.act(l, "kill", func() { r.c.killNode(l) })
	r.obs.waitLeader(r.t, 30*time.Second, lt, l)
	time.Sleep(down)
	r.obs.act(l, "restart", func() { r.c.restartNode(l) })
	return l
}

// ready waits until node i answers /readyz with 200.
func (r *chaosRun) ready(i int) {
	r.t.Helper()
	waitFor(r.t, 30*time.Second, r.c.nodeName(i)+" ready", func() bool {
		return api("GET", r.c.nodeURL(i)+"/readyz", "", nil, nil) == http.StatusOK
	})
}

// runChaos runs one scenario on a started cluster: a webhook channel to
// hook, a fleet with plans spanning chaosLen, script for the faults, then
// the tail, the ground truth and the verdict.
func runChaos(t *testing.T, name string, c chaosCluster, hook *chaosHook, p chaosParams, chaosLen time.Duration, script func(r *chaosRun)) {
	runChaosWith(t, name, c, hook, p, chaosLen, chaosOptions{}, script)
}

// runChaosWith is runChaos with options.
func runChaosWith(t *testing.T, name string, c chaosCluster, hook *chaosHook, p chaosParams, chaosLen time.Duration, opts chaosOptions, script func(r *chaosRun)) {
	seed := uint64(time.Now().UnixNano())
	r := &chaosRun{t: t, name: name, p: p, c: c, hook: hook, rng: rand.New(rand.NewPCG(seed, seed>>1))}
	t.Logf("%s: %d machines, interval %s, threshold %s, grace %s, slack %s, rounds %d, seed %d",
		name, p.machines, p.interval, p.threshold, p.grace, p.slack, p.rounds, seed)
	stalls := watchStalls(t)
	r.obs = newObserver(t, c)
	leader := r.leader()
	channel := map[string]any{"type": "webhook", "name": "chaos", "url": hook.url(), "secret": hook.secret, "group_after": 10000}
	if opts.digests {
		channel = map[string]any{"type": "webhook", "name": "chaos", "url": hook.url(), "secret": hook.secret,
			"group_window": stormDigestWindow.String()}
	}
	waitFor(t, 20*time.Second, "create the webhook channel", func() bool {
		code := api("POST", c.nodeURL(leader)+"/v1/channels", adminToken, channel, nil)
		return code == http.StatusCreated || code == http.StatusConflict
	})

	r.chaosFrom = 3 * time.Second
	if opts.chaosFrom > 0 {
		r.chaosFrom = opts.chaosFrom
	}
	r.calmAt = r.chaosFrom + chaosLen
	plans := chaosPlans(name, p.machines, r.chaosFrom, r.calmAt, p.threshold, p.slack, r.rng)
	if opts.plans != nil {
		plans = opts.plans(r)
	}
	r.fleet = newFleet(t, clusterURLs(c), p.interval, p.threshold-p.slack)
	began := time.Now()
	r.fleet.register(plans)
	t.Logf("registered %d machines in %s", p.machines, time.Since(began).Round(time.Millisecond))
	r.fleet.run()
	for deadline := time.Now().Add(r.chaosFrom); ; time.Sleep(50 * time.Millisecond) {
		waiting, sample := 0, ""
		for _, m := range r.fleet.machines {
			m.mu.Lock()
			if m.accepted == 0 {
				waiting++
				if sample == "" && len(m.failures) > 0 {
					sample = m.plan.name + ": " + m.failures[len(m.failures)-1].String()
				}
			}
			m.mu.Unlock()
		}
		if waiting == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s, %d of %d machines have had no heartbeat accepted yet (%s); fleet: %s", r.chaosFrom, waiting, p.machines, sample, r.fleet.counts())
		}
	}

	r.at(r.chaosFrom)
	script(r)

	// The tail: long enough for the last planned silence and the last
	// leader's grace to run out, so every due alert is due well before the
	// end.
	r.leader()
	lastStart := r.fleet.start
	for _, tm := range r.obs.terms(time.Now()) {
		lastStart = later(lastStart, tm.start)
	}
	tailEnd := later(r.fleet.start.Add(r.calmAt+p.threshold), lastStart.Add(p.grace)).Add(p.slack + 1500*time.Millisecond)
	sleepUntil(context.Background(), tailEnd)

	r.fleet.stop()
	end := r.fleet.stopped
	t.Logf("fleet: %s", r.fleet.counts())
	// Every time this process stamps (beats, status samples, webhooks)
	// may be late by as much as it was ever stalled: the rule's lag (at
	// most stallCap, or the run fails).
	stall, stallAt := stalls()
	t.Logf("test process: longest scheduling stall %s, ended %s (cap %s)", stall.Round(time.Millisecond), stallAt.Format("15:04:05.000"), stallCap)
	events := r.settledEvents(end)
	if opts.digests {
		r.digestsSent()
	}
	time.Sleep(lateDupWindow) // observation window for late duplicates
	all := r.allEvents()
	truths := r.fleet.groundTruth(lostBeats(r.obs.actionList(), nodeNames(c)))
	v := judge(verdictInput{
		scenario: name, threshold: p.threshold, grace: p.grace, slack: p.slack, stall: stall, plannedLong: plannedLong(plans, p.threshold),
		truths: truths, terms: r.obs.terms(end), end: end,
		events: events, allEvents: all, received: hook.requests(), senders: hook.from(),
		failovers: r.obs.failovers(), forbidden: r.forbidden, actions: r.obs.actionList(), nodes: nodeNames(c),
		attempts: r.fleet.failuresBetween, silences: r.silences,
	})
	for _, tm := range r.obs.terms(end) {
		t.Logf("term %d: %s led %s → %s", tm.n, tm.leader, tm.start.Format("15:04:05.000"), tm.end.Format("15:04:05.000"))
	}
	for _, a := range r.obs.actionList() {
		node := "all"
		if a.node >= 0 {
			node = c.nodeName(a.node)
		}
		t.Logf("action %s %s %s", a.at.Format("15:04:05.000"), a.what, node)
	}
	v.report(t, r.dupsAllowed)
	if opts.judged != nil {
		opts.judged(truths, events)
	}
}

// watchStalls measures how late a 10ms ticker in this process fires: how
// long the process (fleet, observer, receiver) can be unable to run. It
// returns a function giving the longest stall so far and when it ended.
func watchStalls(t testing.TB) func() (time.Duration, time.Time) {
	var mu sync.Mutex
	var worst time.Duration
	var worstAt time.Time
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		const every = 10 * time.Millisecond
		tick := time.NewTicker(every)
		defer tick.Stop()
		last := time.Now()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if late := time.Since(last) - every; late > worst {
					mu.Lock()
					worst, worstAt = late, time.Now()
					mu.Unlock()
				}
				last = time.Now()
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return func() (time.Duration, time.Time) {
		mu.Lock()
		defer mu.Unlock()
		return worst, worstAt
	}
}

func nodeNames(c chaosCluster) []string {
	var out []string
	for i := range c.size() {
		out = append(out, c.nodeName(i))
	}
	return out
}

// fetchEvents asks the current leader (or any node) for the event history.
func (r *chaosRun) fetchEvents() ([]event, bool) {
	order := []int{}
	if l, _ := r.obs.leaderNow(); l >= 0 {
		order = append(order, l)
	}
	for i := range r.c.size() {
		order = append(order, i)
	}
	for _, i := range order {
		if !r.c.isRunning(i) {
			continue
		}
		var out struct {
			Events []event `json:"events"`
		}
		if api("GET", r.c.nodeURL(i)+"/v1/events?limit=10000", adminToken, nil, &out) == http.StatusOK {
			if len(out.Events) >= 10000 {
				r.t.Fatalf("10000 events or more: the history is truncated and cannot be judged")
			}
			return out.Events, true
		}
	}
	return nil, false
}

// settledEvents waits until every event up to end has no pending delivery
// and returns them.
func (r *chaosRun) settledEvents(end time.Time) []event {
	r.t.Helper()
	var evs []event
	pending := 0
	deadline := time.Now().Add(r.p.settle)
	for {
		all, ok := r.fetchEvents()
		if ok {
			evs, pending = evs[:0], 0
			for _, ev := range all {
				if ev.OccurredAt.After(end) {
					continue
				}
				evs = append(evs, ev)
				for _, d := range ev.Deliveries {
					if d.State == "pending" {
						pending++
					}
				}
			}
			if pending == 0 {
				return evs
			}
		}
		if time.Now().After(deadline) {
			r.t.Errorf("%d deliveries still pending %s after the run", pending, r.p.settle)
			return evs
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (r *chaosRun) allEvents() []event {
	var evs []event
	waitFor(r.t, 20*time.Second, "the event history", func() bool {
		var ok bool
		evs, ok = r.fetchEvents()
		return ok
	})
	return evs
}

// staleWindow forbids node i, frozen or cut off at `at`, to send anything
// that reaches the receiver more than receiveLag later (a webhook written
// just before may be stamped that late by this busy process), until it
// leads again in a term after lostTerm (then it may, legitimately).
func (r *chaosRun) staleWindow(i int, at time.Time, lostTerm uint64) {
	r.forbidden = append(r.forbidden, forbiddenWindow{node: r.c.nodeName(i), from: at.Add(receiveLag), lostTerm: lostTerm})
}

// newLoopbackChaos starts three servers on loopback and a receiver that
// knows which of them sent each webhook.
func newLoopbackChaos(t *testing.T, p chaosParams, secret string) (chaosCluster, *chaosHook) {
	pc := newChaosProcCluster(t, 3, p.serverFlags())
	c := procChaos{pc}
	port := chaosPorts(t, 1)[0]
	hook := newChaosHook(t, secret, fmt.Sprintf("127.0.0.1:%d", port), loopbackSender(c, port))
	return c, hook
}

// newChaosProcCluster is newProcCluster (harness_test.go) with ports from
// chaosPorts. freePorts hands out ports from the kernel's ephemeral range
// and frees them before the server binds them; with a fleet opening
// connections next door (other scenarios run in parallel), an outgoing
// connection can take such a port first ("bind: address already in use",
// seen in a run). Restarted nodes bind the same ports again later, so they
// must come from outside that range.
func newChaosProcCluster(t *testing.T, n int, extra []string) *procCluster {
	t.Helper()
	pc := &procCluster{t: t, dir: t.TempDir(), extra: extra, expect: n, joinOnly: map[int][]string{}}
	ports := chaosPorts(t, 3*n)
	var join []string
	for i := range n {
		p := &proc{
			name:       fmt.Sprintf("node%d", i+1),
			httpAddr:   fmt.Sprintf("127.0.0.1:%d", ports[3*i]),
			raftAddr:   fmt.Sprintf("127.0.0.1:%d", ports[3*i+1]),
			gossipAddr: fmt.Sprintf("127.0.0.1:%d", ports[3*i+2]),
		}
		p.dataDir = filepath.Join(pc.dir, p.name)
		p.logPath = filepath.Join(pc.dir, p.name+".log")
		join = append(join, p.gossipAddr)
		pc.procs = append(pc.procs, p)
	}
	for i := range pc.procs {
		pc.start(i, join)
	}
	t.Cleanup(func() {
		pc.stopAll()
		if t.Failed() {
			pc.dumpLogs()
		}
	})
	return pc
}

var (
	chaosPortMu   sync.Mutex
	chaosPortUsed = map[int]bool{}
)

// chaosPorts returns n loopback ports below the kernel's ephemeral range
// (so no outgoing connection can take them), free now (TCP and UDP, for
// gossip) and never handed out twice in this process.
func chaosPorts(t testing.TB, n int) []int {
	t.Helper()
	lo := 32768
	if data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(data)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil && v > 12000 {
				lo = v
			}
		}
	}
	chaosPortMu.Lock()
	defer chaosPortMu.Unlock()
	var out []int
	for tries := 0; len(out) < n && tries < 10000; tries++ {
		port := 10000 + rand.IntN(lo-10000)
		if chaosPortUsed[port] {
			continue
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		chaosPortUsed[port] = true
		out = append(out, port)
	}
	if len(out) < n {
		t.Fatalf("found only %d free ports below %d", len(out), lo)
	}
	return out
}

// TestChaos runs every scenario (the netns partition needs root) and
// prints the verdict table.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos suite skipped in -short mode")
	}
	p := chaosSettings(t)
	verdictMu.Lock()
	verdictRows = nil
	verdictMu.Unlock()
	t.Cleanup(func() {
		verdictMu.Lock()
		defer verdictMu.Unlock()
		if len(verdictRows) > 0 {
			t.Logf("chaos verdict table (%d machines per scenario, threshold %s, grace %s, slack %s):\n%s",
				p.machines, p.threshold, p.grace, p.slack, verdictTable(verdictRows))
			checkDuplicateRate(t, verdictRows)
		}
	})
	rounds := p.rounds

	t.Run("leader-kill", func(t *testing.T) {
		t.Parallel()
		c, hook := newLoopbackChaos(t, p, "chaos-leader-kill-secret-0123")
		// Each kill starts a term that must last long enough to owe
		// alerts: a failover (up to 3s measured under load), then the
		// grace, a threshold and the slack. With 9s, as before, the terms
		// between kills were too short for any silence to be "must": the
		// must share fell to 17% in a run where failovers took 3s.
		period := 3*time.Second + p.grace + p.threshold + p.slack
		runChaos(t, "leader-kill", c, hook, p, time.Duration(rounds)*period, func(r *chaosRun) {
			r.dupsAllowed = true
			for k := range rounds {
				r.at(r.chaosFrom + time.Duration(k)*period)
				r.killLeader(2 * time.Second)
			}
		})
	})

	t.Run("storm", func(t *testing.T) {
		t.Parallel()
		// Issue 10: four fifths of the fleet go dark within 2s (a storm:
		// the channel switches to digests), a quarter of them under a
		// silence; the leader is killed while the storm's digests are going
		// out, the silence expires while its machines are still dark (their
		// offlines go out then, once), and everyone comes back together
		// across a second kill. Every transition must reach the receiver
		// exactly once, alone or inside one digest, or be held by the
		// silence and no longer true when it ended.
		c, hook := newLoopbackChaos(t, p, "chaos-storm-secret-0123456789")
		wave := 5 * time.Second
		dark := p.threshold + p.grace + 6*time.Second
		opts := chaosOptions{digests: true, plans: func(r *chaosRun) []machinePlan { return stormPlans(r, wave, dark) }}
		runChaosWith(t, "storm", c, hook, p, wave+2*time.Second+dark+2*time.Second, opts, func(r *chaosRun) {
			r.dupsAllowed = true
			var muted []string
			for _, m := range r.fleet.machines {
				if m.plan.kind == "storm" && len(muted) < p.machines/5 {
					muted = append(muted, m.plan.name)
				}
			}
			expire := r.silenceMachines(muted)
			kill := func(at time.Duration) {
				r.at(at)
				r.killLeader(2 * time.Second)
			}
			kill(wave + p.threshold + 3*time.Second) // the offline wave's digests in flight
			r.at(wave + p.threshold + p.grace + 3*time.Second)
			expire()                        // its machines are still dark
			kill(wave + dark + time.Second) // the online wave
		})
	})

	t.Run("follower-restart", func(t *testing.T) {
		t.Parallel()
		c, hook := newLoopbackChaos(t, p, "chaos-follower-secret-0123456")
		period := 7 * time.Second
		runChaos(t, "follower-restart", c, hook, p, time.Duration(rounds)*period, func(r *chaosRun) {
			for k := range rounds {
				r.at(r.chaosFrom + time.Duration(k)*period)
				l := r.leader()
				f := (l + 1 + r.rng.IntN(2)) % 3
				r.obs.act(f, "kill", func() { c.killNode(f) })
				time.Sleep(3 * time.Second)
				r.obs.act(f, "restart", func() { c.restartNode(f) })
				r.ready(f)
			}
		})
	})

	t.Run("rolling-restart", func(t *testing.T) {
		t.Parallel()
		c, hook := newLoopbackChaos(t, p, "chaos-rolling-secret-01234567")
		passes := max(1, rounds/2)
		runChaos(t, "rolling-restart", c, hook, p, time.Duration(passes)*21*time.Second, func(r *chaosRun) {
			for range passes {
				// Followers first, the leader last, as an operator does.
				l := r.leader()
				order := []int{(l + 1) % 3, (l + 2) % 3, l}
				for _, i := range order {
					r.obs.act(i, "stop", func() { c.stopNode(i) })
					r.obs.act(i, "restart", func() { c.restartNode(i) })
					r.ready(i)
					time.Sleep(3 * time.Second)
				}
			}
		})
	})

	t.Run("full-outage", func(t *testing.T) {
		t.Parallel()
		c, hook := newLoopbackChaos(t, p, "chaos-outage-secret-012345678")
		// Down for longer than the threshold; then long enough up for
		// machines to flap again before the next outage.
		down, up := p.threshold+3*time.Second, 12*time.Second
		passes := max(1, rounds/2)
		runChaos(t, "full-outage", c, hook, p, time.Duration(passes)*(2*time.Second+down+up), func(r *chaosRun) {
			r.dupsAllowed = true
			for k := range passes {
				r.at(r.chaosFrom + 2*time.Second + time.Duration(k)*(2*time.Second+down+up))
				r.obs.record(chaosAction{at: time.Now(), node: -1, what: "kill"})
				var wg sync.WaitGroup
				for i := range 3 {
					wg.Add(1)
					go func() { defer wg.Done(); c.killNode(i) }()
				}
				wg.Wait()
				time.Sleep(down)
				r.obs.record(chaosAction{at: time.Now(), node: -1, what: "restart", leaderFrom: true})
				for i := range 3 {
					c.restartNode(i)
				}
				r.leader()
			}
		})
	})

	t.Run("frozen-leader", func(t *testing.T) {
		t.Parallel()
		c, hook := newLoopbackChaos(t, p, "chaos-frozen-secret-012345678")
		frozen := p.threshold + 3*time.Second
		runChaos(t, "frozen-leader", c, hook, p, time.Duration(rounds)*(frozen+6*time.Second), func(r *chaosRun) {
			r.dupsAllowed = true
			for k := range rounds {
				r.at(r.chaosFrom + time.Duration(k)*(frozen+6*time.Second))
				l := r.leader()
				_, lt := r.obs.leaderNow()
				r.obs.act(l, "freeze", func() { c.signalNode(l, syscall.SIGSTOP) })
				r.staleWindow(l, time.Now(), lt)
				t.Cleanup(func() { c.signalNode(l, syscall.SIGCONT) })
				r.obs.waitLeader(t, 30*time.Second, lt, l)
				time.Sleep(frozen)
				r.obs.act(l, "thaw", func() { c.signalNode(l, syscall.SIGCONT) })
			}
		})
	})

	t.Run("partition", func(t *testing.T) {
		t.Parallel()
		testChaosPartition(t, p)
	})
}

// TestChaos_GracefulLeaderStopKeepsInFlightDelivery: a leader stopped
// gracefully (SIGTERM, as in a rolling restart) while a webhook is in
// flight to a receiver that takes a moment to answer (300ms, ordinary for
// a real webhook endpoint). The send should complete and be recorded
// before leadership moves, so the next leader does not send it again. The
// rolling-restart chaos scenario hit this by chance; this makes it
// deterministic.
func TestChaos_GracefulLeaderStopKeepsInFlightDelivery(t *testing.T) {
	t.Parallel()
	const threshold = 3 * time.Second
	hook := newWebhookReceiver(t, "chaos-graceful-secret-0123456")
	pc := newChaosProcCluster(t, 3, []string{"-offline-threshold", threshold.String()})
	leader := pc.leader(30 * time.Second)
	f := pc.follower(leader)
	pc.notifyChannel(f, map[string]any{"type": "webhook", "name": "ops", "url": hook.url(), "secret": hook.secret})
	key := pc.register(f, map[string]any{"name": "web-1"})
	hook.holdNextN(1)
	waitFor(t, 10*time.Second, "web-1 beat", func() bool {
		return api("POST", pc.url(f)+"/v1/heartbeat", key, "{}", nil) == http.StatusAccepted
	})
	waitFor(t, threshold+20*time.Second, "the offline webhook held at the receiver", func() bool {
		return len(hook.requests()) == 1
	})
	held := hook.requests()[0]
	sender := pc.leader(10 * time.Second)
	stopAt := time.Now()
	pc.signal(sender, syscall.SIGTERM)
	time.Sleep(300 * time.Millisecond)
	hook.releaseHeld()
	if !pc.waitExit(sender, 30*time.Second) {
		t.Fatal("the leader did not exit within 30s of SIGTERM")
	}
	pc.mu.Lock()
	code := pc.procs[sender].exitCode
	pc.mu.Unlock()
	if code != 0 {
		t.Errorf("node%d exited with status %d after SIGTERM with a send in flight, want 0", sender+1, code)
	}
	next := pc.leader(20 * time.Second)
	t.Logf("stopped node%d with %s in flight; node%d leads after %s", sender+1, held.DeliveryID, next+1, time.Since(stopAt).Round(time.Millisecond))
	pc.eventsWhere(next, 20*time.Second, "the offline event settled", settled(1))
	time.Sleep(lateDupWindow) // observation window for a second copy
	for _, s := range hook.requests() {
		t.Logf("  %s received +%s answered %d client gone %v", s.DeliveryID, s.Received.Sub(stopAt).Round(time.Millisecond), s.Status, s.ClientGone)
	}
	if n := hook.accepted()[held.DeliveryID]; n != 1 {
		t.Errorf("%s accepted %d times across a graceful leader stop, want 1: the stopping leader cancelled its in-flight send instead of finishing and recording it", held.DeliveryID, n)
	}
}

// TestChaos_FrozenLeaderKeepsIntakeOpen: the leader freezes (SIGSTOP: it
// keeps its connections but answers nothing, as a hung host or a cut-off
// leader does). The other two elect a leader within seconds, and machines
// that keep beating through them must be accepted throughout and never go
// offline. The chaos frozen-leader and partition scenarios show the same
// fault with hundreds of machines; this pins it down with twenty.
func TestChaos_FrozenLeaderKeepsIntakeOpen(t *testing.T) {
	t.Parallel()
	p := chaosSettings(t)
	pc := newChaosProcCluster(t, 3, p.serverFlags())
	c := procChaos{pc}
	obs := newObserver(t, c)
	leader := obs.waitLeader(t, 30*time.Second, 0, -1)
	plans := make([]machinePlan, 20)
	for i := range plans {
		plans[i] = machinePlan{name: fmt.Sprintf("steady-%02d", i), kind: "steady"}
	}
	fl := newFleet(t, clusterURLs(c), p.interval, 500*time.Millisecond)
	fl.register(plans)
	fl.run()
	waitFor(t, 10*time.Second, "every machine online", func() bool {
		var out struct {
			Machines []machine `json:"machines"`
		}
		api("GET", c.nodeURL(leader)+"/v1/machines?status=online", adminToken, nil, &out)
		return len(out.Machines) == len(plans)
	})
	_, term := obs.leaderNow()
	frozeAt := time.Now()
	c.signalNode(leader, syscall.SIGSTOP)
	t.Cleanup(func() { c.signalNode(leader, syscall.SIGCONT) })
	next := obs.waitLeader(t, 30*time.Second, term, leader)
	t.Logf("froze node%d; node%d leads after %s", leader+1, next+1, time.Since(frozeAt).Round(time.Millisecond))
	// Past the new leader's grace and a whole threshold, and the slack of
	// the verdict: an alert caused by the freeze would have come by then.
	time.Sleep(p.grace + p.threshold + p.slack)
	fl.stop()
	c.signalNode(leader, syscall.SIGCONT)

	var worst time.Duration
	var worstAt string
	for _, tr := range fl.groundTruth(nil) {
		for _, s := range tr.silences {
			stop := fl.stopped
			if !s.open {
				stop = s.b.sent
			}
			if d := stop.Sub(s.a.sent); d > worst {
				worst = d
				worstAt = fmt.Sprintf("%s: no beat accepted from +%s to +%s after the freeze: %s", tr.name,
					s.a.sent.Sub(frozeAt).Round(time.Millisecond), stop.Sub(frozeAt).Round(time.Millisecond),
					strings.Join(fl.failuresBetween(tr.name, s.a.sent, stop), ", "))
			}
		}
	}
	t.Logf("fleet: %s", fl.counts())
	var evs []event
	waitFor(t, 10*time.Second, "the event history from the new leader", func() bool {
		var ok bool
		evs, ok = pc.events(next)
		return ok
	})
	// A machine whose beat went to the frozen node waits out one request
	// timeout, then the next node takes it; its previous beat was an
	// interval before that. Plus 500ms for the next node's answer and this
	// busy process (the bound was 2s flat before it was derived).
	const refuseSlack = 500 * time.Millisecond
	if limit := fl.interval + fl.beats.timeout + refuseSlack; worst > limit {
		t.Errorf("machines that kept beating were refused by every node for up to %s (at most %s expected: an interval %s, a request timeout %s on the frozen node, then the others, and slack %s):\n%s",
			worst.Round(time.Millisecond), limit, fl.interval, fl.beats.timeout, refuseSlack, worstAt)
	}
	if len(evs) > 0 {
		t.Errorf("%d events for machines that never stopped beating, first: %s %s at +%s",
			len(evs), evs[len(evs)-1].Type, evs[len(evs)-1].Machine.Name, evs[len(evs)-1].OccurredAt.Sub(frozeAt).Round(time.Millisecond))
	}
}

// TestChaos_ThawedNodeDropsHeartbeatsItSleptThrough: a node that was
// frozen (SIGSTOP; a long GC or VM pause looks the same) finds, when it
// wakes, heartbeat requests that waited in its sockets while it slept; the
// agents gave up on them long ago. It must not take them as fresh signs of
// life: those machines stopped beating while the node slept and are
// offline. The frozen-leader soak found missed outages and false
// recoveries from exactly this. The leader is the one frozen here, and
// twenty machines each leave one request waiting, since whether the node
// reads them before or after it first looks at its leader is a race.
func TestChaos_ThawedNodeDropsHeartbeatsItSleptThrough(t *testing.T) {
	t.Parallel()
	const threshold = 3 * time.Second
	pc := newChaosProcCluster(t, 3, []string{"-offline-threshold", threshold.String()})
	keys := map[string]string{}
	for i := range 20 {
		name := fmt.Sprintf("machine-%02d", i)
		keys[name] = pc.register(pc.leader(30*time.Second), map[string]any{"name": name})
	}
	for round := range 2 {
		leader := pc.leader(30 * time.Second)
		judge := pc.follower(leader)
		for name, key := range keys {
			waitFor(t, 10*time.Second, name+" beat", func() bool {
				return api("POST", pc.url(judge)+"/v1/heartbeat", key, "{}", nil) == http.StatusAccepted
			})
		}
		for name := range keys {
			pc.waitMachineOn(judge, name, "online", 10*time.Second)
		}
		before := pc.mustEvents(t, judge)

		pc.signal(leader, syscall.SIGSTOP)
		frozeAt := time.Now()
		t.Cleanup(func() { pc.signal(leader, syscall.SIGCONT) })
		// Each agent's last beat goes to the frozen node and times out;
		// the machines then die.
		var wg sync.WaitGroup
		for _, key := range keys {
			wg.Add(1)
			go func() {
				defer wg.Done()
				client := &http.Client{Timeout: time.Second}
				req, _ := http.NewRequest("POST", pc.url(leader)+"/v1/heartbeat", strings.NewReader("{}"))
				req.Header.Set("Authorization", "Bearer "+key)
				if resp, err := client.Do(req); err == nil {
					resp.Body.Close()
					t.Errorf("the frozen node answered %d", resp.StatusCode)
				}
			}()
		}
		wg.Wait()
		for name := range keys {
			pc.waitMachineOn(judge, name, "offline", threshold+20*time.Second)
		}
		time.Sleep(time.Until(frozeAt.Add(3 * threshold)))
		pc.signal(leader, syscall.SIGCONT)
		thawedAt := time.Now()
		time.Sleep(2 * threshold) // observation window: no machine beat again
		var back []string
		for name := range keys {
			if m, _ := pc.mustMachine(t, judge, name); m.Status != "offline" {
				back = append(back, name+" "+m.Status+" last seen "+m.LastSeen.Local().Format("15:04:05.000"))
			}
		}
		after := pc.mustEvents(t, judge)
		if n := len(after) - len(before); len(back) > 0 || n != len(keys) {
			sort.Strings(back)
			t.Fatalf("round %d: node%d woke at %s after %s asleep and took the heartbeats that waited in its sockets as fresh: %d events (want %d offline only); back: %s",
				round, leader+1, thawedAt.Format("15:04:05.000"), thawedAt.Sub(frozeAt).Round(time.Millisecond), n, len(keys), strings.Join(back, ", "))
		}
	}
}

// digestsSent waits until the leader has no digest (or other notice) left
// to send: the deliveries of grouped transitions are final in the events,
// but their digest may still be collecting or in flight.
func (r *chaosRun) digestsSent() {
	r.t.Helper()
	waitFor(r.t, r.p.settle+stormDigestWindow, "every digest sent", func() bool {
		l, _ := r.obs.leaderNow()
		if l < 0 || !r.c.isRunning(l) {
			return false
		}
		v, ok := metricValue(r.c.nodeURL(l), "lunasentri_notices_pending")
		return ok && v == 0
	})
}

// metricValue reads one unlabelled series from a node's /metrics.
func metricValue(base, name string) (float64, bool) {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return 0, false
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f, err == nil
		}
	}
	return 0, false
}

// silenceMachines silences the named machines through the leader until
// expired, and records the span for the verdict; expire ends it.
func (r *chaosRun) silenceMachines(names []string) (expire func()) {
	r.t.Helper()
	var out struct {
		Silence struct {
			ID string `json:"id"`
		} `json:"silence"`
	}
	from := time.Now()
	waitFor(r.t, 20*time.Second, "create the silence", func() bool {
		return api("POST", r.c.nodeURL(r.leader())+"/v1/silences", adminToken, map[string]any{
			"machines": names, "duration": "1h", "comment": "chaos: a silence that expires mid-storm",
		}, &out) == http.StatusCreated
	})
	span := silenceSpan{machines: map[string]bool{}, from: from}
	for _, n := range names {
		span.machines[n] = true
	}
	return func() {
		waitFor(r.t, 20*time.Second, "expire the silence", func() bool {
			return api("DELETE", r.c.nodeURL(r.leader())+"/v1/silences/"+out.Silence.ID, adminToken, nil, nil) == http.StatusNoContent
		})
		span.to = time.Now()
		r.silences = append(r.silences, span)
		r.t.Logf("silence over %d machines %s → %s", len(names), span.from.Format("15:04:05.000"), span.to.Format("15:04:05.000"))
	}
}

// stormPlans: most of the fleet goes dark together (a storm: digests),
// stays dark through a leader kill and a silence's expiry, and comes back
// together; the rest beats steadily or flaps as usual.
func stormPlans(r *chaosRun, wave, dark time.Duration) []machinePlan {
	plans := chaosPlans("storm", r.p.machines, r.chaosFrom, r.calmAt, r.p.threshold, r.p.slack, r.rng)
	for i := range plans {
		if i%5 == 4 {
			continue // a fifth keeps chaosPlans' steady, dying and flapping mix
		}
		spread := time.Duration(r.rng.Int64N(int64(2 * time.Second)))
		plans[i].kind = "storm"
		plans[i].off = []offWindow{{from: wave + spread, to: wave + spread + dark}}
	}
	return plans
}
