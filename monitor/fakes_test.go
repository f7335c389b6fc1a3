package monitor

import (
	"context"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// t0 is where a synctest bubble's clock starts (midnight UTC 2000-01-01):
// the tests below run the monitor on the real clock inside a bubble, so the
// term starts at t0.
var t0 = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// stoppedClock is a Clock whose time stands at t0 and never ticks. Only the
// benchmarks use it: a testing.B cannot run in a synctest bubble, and they
// call check directly instead of Run.
type stoppedClock struct{}

func (stoppedClock) Now() time.Time                 { return t0 }
func (stoppedClock) NewTicker(time.Duration) Ticker { panic("stoppedClock: the benchmarks do not Run") }

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

// bubble runs f in a synctest bubble and checks the bubble's clock starts
// at t0, which the tests' times are written against. A watchdog on the real
// clock turns a goroutine that spins (and so keeps the bubble's time from
// moving) into a failure instead of a hang until go test's timeout.
func bubble(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	watchdog := time.AfterFunc(time.Minute, func() {
		panic(t.Name() + ": the synctest bubble made no progress for a minute (a goroutine spinning?)")
	})
	defer watchdog.Stop()
	synctest.Test(t, func(t *testing.T) {
		if now := time.Now(); !now.Equal(t0) {
			t.Fatalf("bubble starts at %v, tests assume %v", now, t0)
		}
		f(t)
	})
}

// sameExpired compares by instant: the monitor's times carry the real
// clock's monotonic reading and location, the wanted ones do not.
func sameExpired(a, b []Expired) bool {
	return slices.EqualFunc(a, b, func(x, y Expired) bool {
		return x.ID == y.ID && x.LastSeen.Equal(y.LastSeen) && x.Deadline.Equal(y.Deadline)
	})
}

// harness runs a Monitor against fakes, on the real clock. It must be used
// inside a bubble: step moves the bubble's time and synctest.Wait tells it
// when the monitor has done all it will for that tick.
type harness struct {
	t      testing.TB
	src    *fakeSource
	prop   *fakeProposer
	m      *Monitor
	cancel context.CancelFunc
	done   chan error
}

func newHarness(t testing.TB, opts Options) *harness {
	t.Helper()
	h := &harness{t: t, src: &fakeSource{}, prop: &fakeProposer{}}
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
// waiting for its first tick.
func (h *harness) start() {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	go func() { h.done <- h.m.Run(ctx) }()
	synctest.Wait()
	if !h.m.Running() {
		h.t.Fatal("monitor did not start")
	}
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

// step lets d pass and waits until the monitor has finished any check a
// tick in that time started.
func (h *harness) step(d time.Duration) {
	h.t.Helper()
	// The race detector does not count the bubble's clock as
	// synchronisation: hand over through mu, which a check takes before it
	// touches anything, so what the test did so far happens before the tick.
	h.m.mu.Lock()
	h.m.mu.Unlock()
	time.Sleep(d)
	synctest.Wait()
}

// stepTo advances in CheckInterval steps until the clock reaches at.
func (h *harness) stepTo(at time.Time) {
	h.t.Helper()
	for time.Now().Before(at) {
		h.step(min(h.m.interval, time.Until(at)))
	}
}
