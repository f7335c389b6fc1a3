package notify

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// dt0 is where the fake clock starts. It is also where a synctest bubble's
// clock starts (midnight UTC 2000-01-01), so the tests that run the
// dispatcher on the real clock inside a bubble share testDelivery's times.
var dt0 = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// dispClock is a manually advanced clock. A timer fires (buffer of one, like
// time.Timer) when Advance reaches its deadline.
//
// Kept rather than replaced by testing/synctest (issue 13): the tests read
// the deadlines of armed timers (armed, waitArmed) to check each jittered
// backoff and to stop a nanosecond before it ends, which a bubble's clock
// does not show. Where "the dispatcher did all it would" matters, the test
// runs this clock inside a bubble as well (inBubble, synctest.Wait). Tests
// that only let time pass run on the real clock in a bubble
// (newBubbleHarness).
type dispClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*dispTimer
}

type dispTimer struct {
	clk *dispClock
	c   chan time.Time
	at  time.Time
	on  bool
}

func newDispClock() *dispClock { return &dispClock{now: dt0} }

func (c *dispClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *dispClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &dispTimer{clk: c, c: make(chan time.Time, 1), at: c.now.Add(d), on: true}
	if d <= 0 {
		t.on = false
		t.c <- c.now
		return t
	}
	c.timers = append(c.timers, t)
	return t
}

func (c *dispClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.timers[:0]
	for _, t := range c.timers {
		if !t.on {
			continue
		}
		if c.now.Before(t.at) {
			kept = append(kept, t)
			continue
		}
		t.on = false
		t.c <- c.now
	}
	c.timers = kept
}

// AdvanceTo moves time forward to at.
func (c *dispClock) AdvanceTo(at time.Time) { c.Advance(at.Sub(c.Now())) }

// armed lists the deadlines of timers that have not fired or been stopped.
func (c *dispClock) armed() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []time.Time
	for _, t := range c.timers {
		if t.on {
			out = append(out, t.at)
		}
	}
	slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
	return out
}

func (t *dispTimer) C() <-chan time.Time { return t.c }

func (t *dispTimer) Stop() bool {
	t.clk.mu.Lock()
	defer t.clk.mu.Unlock()
	was := t.on
	t.on = false
	return was
}

// dispOutbox is the replicated outbox as the FSM would keep it.
type dispOutbox struct {
	mu      sync.Mutex
	pending map[deliveryKey]Delivery
	order   []deliveryKey
	reads   int
}

func newDispOutbox(ds ...Delivery) *dispOutbox {
	o := &dispOutbox{pending: map[deliveryKey]Delivery{}}
	o.add(ds...)
	return o
}

func (o *dispOutbox) add(ds ...Delivery) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, d := range ds {
		k := deliveryKey{d.EventID, d.Channel}
		if _, ok := o.pending[k]; !ok {
			o.order = append(o.order, k)
		}
		o.pending[k] = d
	}
}

func (o *dispOutbox) remove(eventID, channel string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.pending, deliveryKey{eventID, channel})
}

func (o *dispOutbox) PendingDeliveries() []Delivery {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.reads++
	var out []Delivery
	for _, k := range o.order {
		if d, ok := o.pending[k]; ok {
			out = append(out, d)
		}
	}
	return out
}

func (o *dispOutbox) readCount() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.reads
}

// apply is the FSM side of RecordDeliveries.
func (o *dispOutbox) apply(results []Result) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, r := range results {
		k := deliveryKey{r.EventID, r.Channel}
		d, ok := o.pending[k]
		if !ok {
			continue
		}
		if r.State == StatePending {
			d.Attempts, d.LastError = r.Attempts, r.LastError
			o.pending[k] = d
			continue
		}
		delete(o.pending, k)
	}
}

// dispRecorder commits results into the fake outbox and kicks the
// dispatcher, as the FSM's Apply hook does.
type dispRecorder struct {
	mu      sync.Mutex
	outbox  *dispOutbox
	kick    func()
	calls   int
	results []Result
	fail    func(batch []Result) error
}

func (r *dispRecorder) RecordDeliveries(ctx context.Context, batch []Result) error {
	r.mu.Lock()
	r.calls++
	fail := r.fail
	r.mu.Unlock()
	if fail != nil {
		if err := fail(batch); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	r.results = append(r.results, batch...)
	r.mu.Unlock()
	r.outbox.apply(batch)
	if r.kick != nil {
		r.kick()
	}
	return nil
}

func (r *dispRecorder) all() []Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.results)
}

func (r *dispRecorder) callCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

// final returns the final (delivered or failed) results recorded.
func (r *dispRecorder) final() []Result {
	var out []Result
	for _, res := range r.all() {
		if res.State != StatePending {
			out = append(out, res)
		}
	}
	return out
}

type dispLeadership struct {
	mu    sync.Mutex
	err   error
	calls int
}

func (l *dispLeadership) VerifyLeader(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls++
	if l.err != nil {
		return l.err
	}
	return ctx.Err()
}

func (l *dispLeadership) set(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.err = err
}

func (l *dispLeadership) callCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.calls
}

// dispNotifier answers with fn and counts calls per event.
type dispNotifier struct {
	mu       sync.Mutex
	fn       func(ctx context.Context, ev Event) (bool, error)
	calls    map[string]int
	total    int
	inFlight int
	peak     int
}

func newDispNotifier(fn func(ctx context.Context, ev Event) (bool, error)) *dispNotifier {
	return &dispNotifier{fn: fn, calls: map[string]int{}}
}

func (n *dispNotifier) Notify(ctx context.Context, ev Event) (bool, error) {
	n.mu.Lock()
	n.calls[ev.ID]++
	n.total++
	n.inFlight++
	n.peak = max(n.peak, n.inFlight)
	fn := n.fn
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		n.inFlight--
		n.mu.Unlock()
	}()
	if fn == nil {
		return false, nil
	}
	return fn(ctx, ev)
}

func (n *dispNotifier) count() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.total
}

func (n *dispNotifier) countFor(id string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.calls[id]
}

func (n *dispNotifier) current() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.inFlight
}

type dispChannels struct {
	mu sync.Mutex
	m  map[string]*dispNotifier
}

func (c *dispChannels) Notifier(name string) (Notifier, string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.m[name]
	if !ok {
		return nil, "", false
	}
	return n, "webhook", true
}

func (c *dispChannels) set(name string, n *dispNotifier) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n == nil {
		delete(c.m, name)
		return
	}
	c.m[name] = n
}

// testDelivery builds a pending testDelivery of event id to channel.
func testDelivery(id, channel string) Delivery {
	return Delivery{EventID: id, Channel: channel, FirstQueued: dt0, Event: Event{ID: id, Type: EventOffline, OccurredAt: dt0}}
}

// dispHarness runs a Dispatcher against fakes.
type dispHarness struct {
	t        *testing.T
	clk      *dispClock
	outbox   *dispOutbox
	rec      *dispRecorder
	leader   *dispLeadership
	channels *dispChannels
	d        *Dispatcher
	cancel   context.CancelFunc
	done     chan error
}

// newDispHarness builds a dispatcher with one channel "ch" answering with
// notifier. MaxRecordBatch defaults to 1 so every outcome is recorded at
// once and tests need not pump the flush timer.
func newDispHarness(t *testing.T, opts DispatcherOptions, notifier *dispNotifier, ds ...Delivery) *dispHarness {
	t.Helper()
	return newDispHarnessOn(t, newDispClock(), opts, notifier, ds...)
}

// newBubbleHarness is newDispHarness on the real clock, for tests that only
// let time pass: call it inside a synctest bubble, before time moves, so
// the clock reads dt0. h.clk is nil.
func newBubbleHarness(t *testing.T, opts DispatcherOptions, notifier *dispNotifier, ds ...Delivery) *dispHarness {
	t.Helper()
	if now := time.Now(); !now.Equal(dt0) {
		t.Fatalf("clock reads %v, want dt0 (%v): not at the start of a bubble", now, dt0)
	}
	return newDispHarnessOn(t, nil, opts, notifier, ds...)
}

// newDispHarnessOn builds the harness on clk, or on the real clock if clk
// is nil.
func newDispHarnessOn(t *testing.T, clk *dispClock, opts DispatcherOptions, notifier *dispNotifier, ds ...Delivery) *dispHarness {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	h := &dispHarness{
		t:        t,
		clk:      clk,
		outbox:   newDispOutbox(ds...),
		leader:   &dispLeadership{},
		channels: &dispChannels{m: map[string]*dispNotifier{}},
	}
	if notifier != nil {
		h.channels.set("ch", notifier)
	}
	h.rec = &dispRecorder{outbox: h.outbox}
	if clk != nil {
		opts.Clock = clk
	}
	opts.Outbox = h.outbox
	opts.Recorder = h.rec
	opts.Leadership = h.leader
	opts.Channels = h.channels
	if opts.MaxRecordBatch == 0 {
		opts.MaxRecordBatch = 1
	}
	d, err := NewDispatcher(opts)
	if err != nil {
		t.Fatal(err)
	}
	h.d = d
	h.rec.kick = d.Kick
	return h
}

func (h *dispHarness) start() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	go func() { h.done <- h.d.Run(ctx) }()
	h.t.Cleanup(h.stop)
}

// stop cancels Run and waits for it to return.
func (h *dispHarness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run returned %v", err)
		}
	case <-time.After(10 * time.Second):
		h.t.Fatal("Run did not return after cancel")
	}
}

// dispWaitFor polls cond until it holds or a generous deadline passes.
func dispWaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; !cond(); i++ {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		if i < 100 {
			runtime.Gosched()
		} else {
			time.Sleep(100 * time.Microsecond)
		}
	}
}

// waitArmed waits until exactly n timers are armed and returns them.
func (h *dispHarness) waitArmed(n int) []time.Time {
	h.t.Helper()
	var got []time.Time
	dispWaitFor(h.t, "armed timers", func() bool {
		got = h.clk.armed()
		return len(got) == n
	})
	return got
}

var errDispUnavailable = errors.New("503 service unavailable")
