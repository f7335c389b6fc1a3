package monitor

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// t0 is an arbitrary, fixed start of time for the fake clock.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// fakeClock is a manually advanced clock. A ticker fires (non-blocking,
// buffer of one, like time.Ticker) on every Advance that reaches its next
// tick time.
//
// Kept rather than testing/synctest (issue 13): Options.Clock is production
// code (cmd/lunasentri-bench drives a monitor at scale through it), and
// these tests step to one exact tick and wait for the check it started (the
// checks counter), or call the monitor without Run at all; a bubble would
// fit the Run-driven tests, not the direct ones.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	tickers []*fakeTicker
	created int
}

type fakeTicker struct {
	clk     *fakeClock
	c       chan time.Time
	d       time.Duration
	next    time.Time
	stopped bool
}

func newFakeClock() *fakeClock { return &fakeClock{now: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTicker(d time.Duration) Ticker {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTicker{clk: c, c: make(chan time.Time, 1), d: d, next: c.now.Add(d)}
	c.tickers = append(c.tickers, t)
	c.created++
	return t
}

func (c *fakeClock) tickersCreated() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.created
}

// Advance moves time forward and reports whether a ticker fired.
func (c *fakeClock) Advance(d time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	fired := false
	for _, t := range c.tickers {
		if t.stopped || c.now.Before(t.next) {
			continue
		}
		t.next = c.now.Add(t.d)
		select {
		case t.c <- c.now:
			fired = true
		default:
		}
	}
	return fired
}

func (t *fakeTicker) C() <-chan time.Time { return t.c }

func (t *fakeTicker) Stop() {
	t.clk.mu.Lock()
	defer t.clk.mu.Unlock()
	t.stopped = true
}

type fakeSource struct {
	machines []Machine
	// during, if set, runs inside OnlineMachines: it simulates Applies
	// landing while the new leader reads its replica.
	during func()
}

func (s *fakeSource) OnlineMachines() []Machine {
	if s.during != nil {
		s.during()
	}
	return append([]Machine(nil), s.machines...)
}

type fakeProposer struct {
	mu      sync.Mutex
	batches [][]Expired
	calls   int
	// hook, if set, decides the outcome of a call (after it is recorded as
	// a call, before it is recorded as a committed batch).
	hook func(ctx context.Context, batch []Expired) error
}

func (p *fakeProposer) ProposeOffline(ctx context.Context, batch []Expired) error {
	p.mu.Lock()
	p.calls++
	hook := p.hook
	p.mu.Unlock()
	if hook != nil {
		if err := hook(ctx, batch); err != nil {
			return err
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.batches = append(p.batches, append([]Expired(nil), batch...))
	return nil
}

func (p *fakeProposer) callCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

func (p *fakeProposer) setHook(h func(ctx context.Context, batch []Expired) error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hook = h
}

// proposed returns every committed expiry, in order.
func (p *fakeProposer) proposed() []Expired {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Expired
	for _, b := range p.batches {
		out = append(out, b...)
	}
	return out
}

func (p *fakeProposer) ids() []string {
	var ids []string
	for _, e := range p.proposed() {
		ids = append(ids, e.ID)
	}
	return ids
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; !cond(); i++ {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		// Yield first: the other side is usually one scheduling away.
		if i < 100 {
			runtime.Gosched()
		} else {
			time.Sleep(100 * time.Microsecond)
		}
	}
}

// harness runs a Monitor against fakes.
type harness struct {
	t      testing.TB
	clk    *fakeClock
	src    *fakeSource
	prop   *fakeProposer
	m      *Monitor
	cancel context.CancelFunc
	done   chan error
}

func newHarness(t testing.TB, opts Options) *harness {
	t.Helper()
	h := &harness{t: t, clk: newFakeClock(), src: &fakeSource{}, prop: &fakeProposer{}}
	opts.Clock = h.clk
	if opts.Source == nil {
		opts.Source = h.src
	}
	opts.Proposer = h.prop
	m, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	h.m = m
	return h
}

// start runs the monitor and waits until it has loaded its source and is
// ticking.
func (h *harness) start() {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	before := h.clk.tickersCreated()
	go func() { h.done <- h.m.Run(ctx) }()
	waitFor(h.t, "monitor to start ticking", func() bool { return h.clk.tickersCreated() > before })
	h.t.Cleanup(h.stop)
}

// stop cancels Run and waits for it to return.
func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run returned %v", err)
		}
	case <-time.After(10 * time.Second):
		h.t.Fatal("Run did not return after cancel")
	}
	h.cancel = nil
}

// step advances the clock and, if a tick fired, waits until the monitor has
// finished the check it triggered.
func (h *harness) step(d time.Duration) {
	h.t.Helper()
	before := h.m.checks.Load()
	if h.clk.Advance(d) {
		waitFor(h.t, "check to finish", func() bool { return h.m.checks.Load() > before })
	}
}

// stepTo advances in CheckInterval steps until the clock reaches at.
func (h *harness) stepTo(at time.Time) {
	h.t.Helper()
	for h.clk.Now().Before(at) {
		d := min(h.m.interval, at.Sub(h.clk.Now()))
		h.step(d)
	}
}
