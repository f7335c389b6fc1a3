package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The fleet simulator: N machines beating from one process, each as the
// real agent does (cmd/lunasentri/agent.go, written again here from its
// documented behaviour): try the server that worked last, move on at once
// on a network error, a timeout or a 5xx, back off when every server
// failed, one request timeout of clamp(interval, 1s, 5s).
//
// Every machine follows a schedule of silences it keeps on purpose (steady,
// die at T, flap). The fleet records the ground truth as the machine saw
// it: every request to every node and its answer (202, refused, or none),
// and every planned pause. Once the run is over, groundTruth turns that
// into silences between beats a server ACCEPTED, knowing by then which
// accepted beats may have been lost with their node.

// offWindow is a planned silence, relative to the fleet's start; to == 0
// means the machine never beats again (it died).
type offWindow struct{ from, to time.Duration }

// machinePlan is one simulated machine.
type machinePlan struct {
	name string
	kind string // steady, dies, flaps
	off  []offWindow
}

// beatStamp is when one accepted heartbeat was sent and when its 202 came
// back; the server took it somewhere in between.
type beatStamp struct{ sent, answered time.Time }

// silence is a gap between two accepted heartbeats (or after the last one,
// open). Only gaps that may matter (at least minSilence long) are kept.
type silence struct {
	a    beatStamp // the last accepted beat before the gap
	b    beatStamp // the next accepted beat; zero while open
	open bool
	// resumed is when the machine tried to beat again after its last
	// planned pause within the gap (or after a, if it never paused): from
	// then on the gap is the cluster's doing, not the machine's. Zero if it
	// never tried again (still pausing, or dead).
	resumed time.Time
	// voluntary: the gap contains a planned pause (or death).
	voluntary bool
	// uncertain are beats in the gap that may or may not have reached
	// the leader: no answer came (a timeout, a connection lost
	// mid-request), or the node that took them was killed, frozen or cut
	// off before it could pass them on.
	uncertain []beatStamp
}

// simMachine is a machine's live state in the fleet.
type simMachine struct {
	plan    machinePlan
	key     string
	current int // the server tried first (the one that worked last)

	mu       sync.Mutex
	accepted int
	// timeline is everything that happened to the machine, in order:
	// silences are computed from it once the run is over, when it is known
	// which taken beats were lost with a node.
	timeline []mEvent
	// failures keeps the last failed attempts, for reports.
	failures []attempt
}

// mEvent is one entry of a machine's timeline: a planned pause began, or
// one request to one node was answered (or not).
type mEvent struct {
	pause bool
	beat  beatStamp
	node  int
	what  int // outcome of the request: tookIt, noAnswer, refusedIt
}

const (
	tookIt    = iota // 202
	noAnswer         // timeout or connection lost mid-request: may have been taken
	refusedIt        // an HTTP error status, or connection refused: not taken
)

func (m *simMachine) note(e mEvent) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !e.pause && e.what == tookIt {
		m.accepted++
	}
	m.timeline = append(m.timeline, e)
}

// attempt is one failed heartbeat request.
type attempt struct {
	at   time.Time
	took time.Duration
	node int
	code int
	err  string
}

func (a attempt) String() string {
	what := fmt.Sprint(a.code)
	if a.code == 0 {
		what = a.err
		if i := strings.LastIndex(what, ": "); i >= 0 {
			what = what[i+2:]
		}
	}
	return fmt.Sprintf("%s node%d %s (%s)", a.at.Format("15:04:05.000"), a.node+1, what, a.took.Round(time.Millisecond))
}

func (m *simMachine) noteFailure(a attempt) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.failures) == 256 {
		m.failures = append(m.failures[:0], m.failures[128:]...)
	}
	m.failures = append(m.failures, a)
}

// failuresBetween lists failed attempts in [from, to].
func (f *fleet) failuresBetween(name string, from, to time.Time) []string {
	m := f.byName[name]
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, a := range m.failures {
		if !a.at.Before(from) && !a.at.After(to) {
			out = append(out, a.String())
		}
	}
	return out
}

// fleet beats for many machines against a list of servers.
type fleet struct {
	t          testing.TB
	servers    []string
	interval   time.Duration
	minSilence time.Duration // gaps shorter than this are not recorded
	beats      *beatClient
	machines   []*simMachine
	byName     map[string]*simMachine

	start    time.Time
	stopped  time.Time
	stopOnce sync.Once
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	sent, ok, refused, netErr atomic.Int64
	perServer                 []serverCounts
}

type serverCounts struct {
	ok, refused, netErr atomic.Int64
	mu                  sync.Mutex
	codes               map[int]int
}

func newFleet(t testing.TB, servers []string, interval, minSilence time.Duration) *fleet {
	timeout := min(max(interval, time.Second), 5*time.Second)
	// At most 1024 connections per server: a fleet of 100k starting within
	// one interval would otherwise dial thousands at once and overflow the
	// servers' accept queues; real agents are spread over many hosts, and
	// each keeps one connection.
	beats, err := newBeatClient(servers, timeout, 1024)
	if err != nil {
		t.Fatal(err)
	}
	f := &fleet{
		t: t, servers: servers, interval: interval,
		minSilence: minSilence,
		beats:      beats,
		byName:     map[string]*simMachine{},
		perServer:  make([]serverCounts, len(servers)),
	}
	t.Cleanup(func() { f.stop(); beats.closeIdle() })
	return f
}

// register creates every machine through the API, spread over the nodes
// and concurrently, riding out elections; each node answers 201 once.
func (f *fleet) register(plans []machinePlan) {
	f.t.Helper()
	type res struct {
		i   int
		key string
		err error
	}
	work := make(chan int)
	out := make(chan res)
	for w := 0; w < 16; w++ {
		go func() {
			for i := range work {
				key, err := f.registerOne(plans[i].name, i)
				out <- res{i, key, err}
			}
		}()
	}
	go func() {
		for i := range plans {
			work <- i
		}
		close(work)
	}()
	f.machines = make([]*simMachine, len(plans))
	var errs []string
	for range plans {
		r := <-out
		if r.err != nil {
			errs = append(errs, r.err.Error())
			continue
		}
		m := &simMachine{plan: plans[r.i], key: r.key, current: r.i % len(f.servers)}
		f.machines[r.i] = m
		f.byName[m.plan.name] = m
	}
	if len(errs) > 0 {
		f.t.Fatalf("registering %d machines: %d failed, first: %s", len(plans), len(errs), errs[0])
	}
}

func (f *fleet) registerOne(name string, i int) (string, error) {
	deadline := time.Now().Add(30 * time.Second)
	var last int
	for n := 0; time.Now().Before(deadline); n++ {
		var out struct {
			APIKey string `json:"api_key"`
		}
		url := f.servers[(i+n)%len(f.servers)]
		last = api("POST", url+"/v1/machines", adminToken, map[string]any{"name": name, "labels": map[string]string{"fleet": "chaos"}}, &out)
		switch last {
		case http.StatusCreated:
			return out.APIKey, nil
		case http.StatusConflict:
			// A retry of a write the cluster did commit: the key is lost.
			return "", fmt.Errorf("register %s: 409 after a retry", name)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "", fmt.Errorf("register %s: last status %d", name, last)
}

// run starts every machine's loop. Each machine starts at a random phase
// within one interval.
func (f *fleet) run() {
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	f.start = time.Now()
	for _, m := range f.machines {
		f.wg.Add(1)
		go f.loop(ctx, m, time.Duration(rand.Int64N(int64(f.interval))))
	}
}

// stop ends every loop and waits for them; the ground truth ends at the
// moment of the first call.
func (f *fleet) stop() {
	f.stopOnce.Do(func() {
		f.stopped = time.Now()
		if f.cancel != nil {
			f.cancel()
		}
	})
	f.wg.Wait()
}

// offAt reports whether the plan keeps the machine silent at offset d, and
// until when (0: forever).
func (p machinePlan) offAt(d time.Duration) (bool, time.Duration) {
	for _, w := range p.off {
		if d >= w.from && (w.to == 0 || d < w.to) {
			return true, w.to
		}
	}
	return false, 0
}

func (f *fleet) loop(ctx context.Context, m *simMachine, phase time.Duration) {
	defer f.wg.Done()
	next := f.start.Add(phase)
	failures := 0
	for {
		if !sleepUntil(ctx, next) {
			return
		}
		if off, until := m.plan.offAt(time.Since(f.start)); off {
			m.note(mEvent{pause: true, beat: beatStamp{sent: time.Now()}})
			if until == 0 {
				return // died
			}
			next = f.start.Add(until)
			failures = 0
			continue
		}
		began := time.Now()
		switch f.beat(ctx, m) {
		case beatAccepted:
			failures = 0
			// The interval less up to 10% jitter, as the agent waits.
			next = began.Add(f.interval - time.Duration(rand.Int64N(int64(f.interval/10)+1)))
		case beatRetry:
			if ctx.Err() != nil {
				return
			}
			failures++
			next = began.Add(agentBackoff(failures, f.interval))
		default:
			// Every server answered 4xx (e.g. 401): the agent waits a
			// whole interval.
			failures++
			next = began.Add(f.interval)
		}
	}
}

// agentBackoff is the agent's wait after the n-th beat in a row that reached
// no server: 1s doubling, capped at the interval, equal jitter.
func agentBackoff(n int, interval time.Duration) time.Duration {
	d := time.Second
	for i := 1; i < n && d < interval; i++ {
		d *= 2
	}
	d = min(d, interval)
	half := d / 2
	return half + time.Duration(rand.Int64N(int64(d-half)+1))
}

func sleepUntil(ctx context.Context, at time.Time) bool {
	d := time.Until(at)
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// How one beat went, as the agent ranks it: the worst answer of all
// servers decides the wait after a beat nobody accepted.
const (
	beatAccepted = iota
	beatRejected // every server answered a 4xx other than 408/429
	beatRetry    // some server failed: network error, timeout, 408, 429, 5xx
)

// beat tries each server once, starting with the one that worked last.
func (f *fleet) beat(ctx context.Context, m *simMachine) int {
	n := len(f.servers)
	worst := beatAccepted
	for i := 0; i < n; i++ {
		idx := (m.current + i) % n
		sent := time.Now()
		code, errText := f.send(ctx, idx, m.key)
		if ctx.Err() != nil {
			return beatRetry // the fleet stopped: not part of the run
		}
		st := beatStamp{sent: sent, answered: time.Now()}
		if code == http.StatusAccepted {
			m.current = idx
			m.note(mEvent{beat: st, node: idx, what: tookIt})
			return beatAccepted
		}
		m.noteFailure(attempt{at: sent, took: st.answered.Sub(sent), node: idx, code: code, err: errText})
		what := refusedIt
		if code == 0 && !strings.Contains(errText, "connection refused") {
			what = noAnswer
		}
		m.note(mEvent{beat: st, node: idx, what: what})
		res := beatRetry
		if code/100 == 4 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests {
			res = beatRejected
		}
		worst = max(worst, res)
	}
	m.current = (m.current + 1) % n
	return worst
}

func (f *fleet) send(ctx context.Context, idx int, key string) (int, string) {
	f.sent.Add(1)
	code, err := f.beats.beat(ctx, idx, key)
	if err != nil {
		f.netErr.Add(1)
		f.perServer[idx].netErr.Add(1)
		return 0, err.Error()
	}
	if code == http.StatusAccepted {
		f.ok.Add(1)
		f.perServer[idx].ok.Add(1)
	} else {
		f.refused.Add(1)
		c := &f.perServer[idx]
		c.refused.Add(1)
		c.mu.Lock()
		if c.codes == nil {
			c.codes = map[int]int{}
		}
		c.codes[code]++
		c.mu.Unlock()
	}
	return code, ""
}

// truth is one machine's ground truth: its silences (the last one open if
// it had not beaten again when the fleet stopped), in order.
type truth struct {
	name     string
	kind     string
	accepted int
	silences []silence
}

// groundTruth returns every machine's silences once the fleet has stopped
// at f.stopped. lost says whether a beat node took was lost with it (the
// node was killed or frozen before it could pass the beat on, or was cut
// off from the leader): such a beat counts as unanswered, neither a sign
// of life nor proof of silence.
func (f *fleet) groundTruth(lost func(node int, b beatStamp) bool) []truth {
	var out []truth
	for _, m := range f.machines {
		m.mu.Lock()
		tr := truth{name: m.plan.name, kind: m.plan.kind, accepted: m.accepted}
		var (
			last      beatStamp // the last certain beat
			triedAt   time.Time // first request after it, or after the last pause
			paused    bool
			uncertain []beatStamp
		)
		for _, e := range m.timeline {
			if e.pause {
				triedAt, paused = time.Time{}, true
				continue
			}
			if triedAt.IsZero() {
				triedAt = e.beat.sent
			}
			switch {
			case e.what == tookIt && (lost == nil || !lost(e.node, e.beat)):
				if !last.sent.IsZero() && e.beat.answered.Sub(last.sent) >= f.minSilence {
					tr.silences = append(tr.silences, silence{a: last, b: e.beat, resumed: triedAt, voluntary: paused, uncertain: uncertain})
				}
				last, triedAt, paused, uncertain = e.beat, time.Time{}, false, nil
			case e.what == tookIt, e.what == noAnswer:
				if !last.sent.IsZero() {
					uncertain = append(uncertain, e.beat)
				}
			}
		}
		if !last.sent.IsZero() && f.stopped.Sub(last.sent) >= f.minSilence {
			tr.silences = append(tr.silences, silence{a: last, open: true, resumed: triedAt, voluntary: paused, uncertain: uncertain})
		}
		m.mu.Unlock()
		out = append(out, tr)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// chaosPlans builds the machine mix for a chaos run: about half steady,
// one in ten dying during the chaos, the rest flapping with silences either
// clearly shorter than the threshold (no alert) or clearly longer (one
// offline, one online), two long ones for each short one. Every planned
// silence starts between chaosFrom and calmAt and ends by calmAt, so the
// verdict sees every due alert.
func chaosPlans(prefix string, n int, chaosFrom, calmAt, threshold, slack time.Duration, rng *rand.Rand) []machinePlan {
	plans := make([]machinePlan, n)
	between := func(lo, hi time.Duration) time.Duration {
		if hi <= lo {
			return lo
		}
		return lo + time.Duration(rng.Int64N(int64(hi-lo)))
	}
	short := func() time.Duration { return between(threshold/8, threshold-slack-time.Second) }
	long := func() time.Duration { return between(threshold+slack+time.Second, threshold+slack+3*time.Second) }
	for i := range plans {
		p := machinePlan{name: fmt.Sprintf("%s-%04d", prefix, i), kind: "steady"}
		switch r := rng.IntN(100); {
		case r < 10:
			p.kind = "dies"
			p.off = []offWindow{{from: between(chaosFrom, calmAt)}}
		case r < 50:
			p.kind = "flaps"
			at := between(chaosFrom, chaosFrom+3*time.Second)
			for {
				d := long()
				if rng.IntN(3) == 0 {
					d = short()
				}
				if at+d > calmAt {
					break
				}
				p.off = append(p.off, offWindow{from: at, to: at + d})
				at += d + between(1500*time.Millisecond, 4*time.Second)
			}
		}
		plans[i] = p
	}
	return plans
}

// counts summarises the fleet's traffic for logs.
func (f *fleet) counts() string {
	var per []string
	for i := range f.perServer {
		c := &f.perServer[i]
		c.mu.Lock()
		per = append(per, fmt.Sprintf("node%d %d/%d%v/%d", i+1, c.ok.Load(), c.refused.Load(), c.codes, c.netErr.Load()))
		c.mu.Unlock()
	}
	return fmt.Sprintf("sent %d, accepted %d, refused %d, network errors %d (accepted/refused/errors: %s)",
		f.sent.Load(), f.ok.Load(), f.refused.Load(), f.netErr.Load(), strings.Join(per, ", "))
}

// plannedLong counts the planned silences longer than the threshold,
// deaths included: the verdict wants most of them to be "must alert".
func plannedLong(plans []machinePlan, threshold time.Duration) int {
	n := 0
	for _, p := range plans {
		for _, w := range p.off {
			if w.to == 0 || w.to-w.from > threshold {
				n++
			}
		}
	}
	return n
}
