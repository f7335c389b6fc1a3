package notify

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestNewDispatcher_RequiresDependencies(t *testing.T) {
	if _, err := NewDispatcher(DispatcherOptions{}); !errors.Is(err, ErrMissingDependency) {
		t.Fatalf("got %v", err)
	}
	h := newDispHarness(t, DispatcherOptions{MaxInFlight: 2, MaxInFlightPerChannel: 10}, nil)
	if h.d.maxPerChan != 2 {
		t.Fatalf("per-channel cap %d not clamped to the global 2", h.d.maxPerChan)
	}
	d, err := NewDispatcher(DispatcherOptions{Outbox: h.outbox, Recorder: h.rec, Leadership: h.leader, Channels: h.channels})
	if err != nil {
		t.Fatal(err)
	}
	if d.maxInFlight != 64 || d.maxPerChan != 16 || d.initial != time.Second || d.maxBackoff != 5*time.Minute ||
		d.maxAttempts != DefaultMaxAttempts || d.maxAge != DefaultMaxAge {
		t.Fatalf("defaults: %+v", d)
	}
}

// In a bubble on the real clock: the test only lets time pass.
func TestDispatcher_DeliversOnce(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		n := newDispNotifier(nil)
		var mu sync.Mutex
		var outcomes []string
		var delays []time.Duration
		h := newBubbleHarness(t, DispatcherOptions{
			OnOutcome: func(ct, o string) { mu.Lock(); outcomes = append(outcomes, ct+"/"+o); mu.Unlock() },
			ObserveDelay: func(ct string, d time.Duration) {
				mu.Lock()
				delays = append(delays, d)
				mu.Unlock()
			},
		}, n, testDelivery("e1", "ch"))
		time.Sleep(3 * time.Second) // the event happened 3s ago
		h.start()
		settle(t, "delivered recorded", func() bool { return len(h.rec.final()) == 1 })
		got := h.rec.final()[0]
		if got.State != StateDelivered || got.Attempts != 1 || got.LastError != "" || got.EventID != "e1" || got.Channel != "ch" {
			t.Fatalf("result %+v", got)
		}
		// Kicks after the record (every Apply kicks) send nothing more.
		reads := h.outbox.readCount()
		for range 10 {
			h.d.Kick()
		}
		settle(t, "outbox re-read", func() bool { return h.outbox.readCount() > reads })
		h.stop()
		if c := n.countFor("e1"); c != 1 {
			t.Fatalf("notified %d times", c)
		}
		if h.leader.callCount() != 1 {
			t.Fatalf("VerifyLeader called %d times for one attempt", h.leader.callCount())
		}
		mu.Lock()
		defer mu.Unlock()
		if len(outcomes) != 1 || outcomes[0] != "webhook/delivered" || len(delays) != 1 || delays[0] != 3*time.Second {
			t.Fatalf("metrics: outcomes %v delays %v", outcomes, delays)
		}
	})
}

// It runs in a synctest bubble so that "nothing is sent just before the
// backoff ends" is checked once the dispatcher has done all it would do
// (synctest.Wait), not merely before it got a chance to run.
func TestDispatcher_RetriesWithGrowingJitteredBackoff(t *testing.T) {
	inBubble(t, testRetriesWithGrowingJitteredBackoff)
}

func testRetriesWithGrowingJitteredBackoff(t *testing.T) {
	fails := 4
	n := newDispNotifier(nil)
	n.fn = func(context.Context, Event) (bool, error) {
		if n.countFor("e1") <= fails {
			return true, errDispUnavailable
		}
		return false, nil
	}
	h := newDispHarness(t, DispatcherOptions{InitialBackoff: time.Second, MaxBackoff: 4 * time.Second}, n, testDelivery("e1", "ch"))
	h.start()
	step := time.Second
	for attempt := 1; attempt <= fails; attempt++ {
		dispWaitFor(t, "attempt", func() bool { return n.count() == attempt })
		now := h.clk.Now()
		at := h.waitArmed(1)[0]
		wait := at.Sub(now)
		if wait < step/2 || wait > step {
			t.Fatalf("attempt %d: backoff %v outside [%v, %v]", attempt, wait, step/2, step)
		}
		dispWaitFor(t, "progress recorded", func() bool { return len(h.rec.all()) == attempt })
		prog := h.rec.all()[attempt-1]
		if prog.State != StatePending || prog.Attempts != attempt || prog.LastError != errDispUnavailable.Error() {
			t.Fatalf("progress %+v", prog)
		}
		// Just before the backoff ends nothing is sent, not even when
		// the outbox changes (every Apply kicks the dispatcher).
		h.clk.AdvanceTo(at.Add(-time.Nanosecond))
		h.d.Kick()
		synctest.Wait()
		if c := n.count(); c != attempt {
			t.Fatalf("attempt %d came %v early", c, time.Nanosecond)
		}
		h.clk.AdvanceTo(at)
		step = min(2*step, 4*time.Second)
	}
	dispWaitFor(t, "delivered", func() bool { return len(h.rec.final()) == 1 })
	if got := h.rec.final()[0]; got.State != StateDelivered || got.Attempts != fails+1 || got.LastError != "" {
		t.Fatalf("final %+v", got)
	}
}

func TestBackoff_BoundsCapAndHint(t *testing.T) {
	lo := func(time.Duration) time.Duration { return 0 }
	hi := func(n time.Duration) time.Duration { return n }
	initial, maxWait := time.Second, 5*time.Minute
	prevHi := time.Duration(0)
	for attempt := 1; attempt <= 40; attempt++ {
		step := min(initial<<min(attempt-1, 20), maxWait)
		a, b := backoff(initial, maxWait, attempt, 0, lo), backoff(initial, maxWait, attempt, 0, hi)
		if a != step/2 || b != step {
			t.Fatalf("attempt %d: range [%v, %v], want [%v, %v]", attempt, a, b, step/2, step)
		}
		if b < prevHi {
			t.Fatalf("attempt %d: backoff shrank", attempt)
		}
		prevHi = b
	}
	for range 1000 {
		w := backoff(initial, maxWait, 3, 0, jitter)
		if w < 2*time.Second || w > 4*time.Second {
			t.Fatalf("random backoff %v outside [2s, 4s]", w)
		}
	}
	if w := backoff(initial, maxWait, 1, 90*time.Second, hi); w != 90*time.Second {
		t.Fatalf("hint not honoured: %v", w)
	}
	if w := backoff(initial, maxWait, 12, time.Second, lo); w != maxWait/2 {
		t.Fatalf("small hint changed the backoff: %v", w)
	}
	if w := backoff(time.Second, time.Duration(1<<62), 200, 0, hi); w <= 0 {
		t.Fatalf("overflow: %v", w)
	}
}

// In a synctest bubble for the same reason as the backoff test.
func TestDispatcher_HonoursRetryAfter(t *testing.T) {
	inBubble(t, testHonoursRetryAfter)
}

// inBubble runs f in a synctest bubble, with a watchdog on the real clock:
// a dispatcher that spins (never durably blocks) would otherwise keep the
// bubble's time from moving and hang the test until go test's timeout.
func inBubble(t *testing.T, f func(t *testing.T)) {
	watchdog := time.AfterFunc(time.Minute, func() {
		panic(t.Name() + ": the synctest bubble made no progress for a minute (a goroutine spinning?)")
	})
	defer watchdog.Stop()
	synctest.Test(t, f)
}

// settle waits (in a bubble) until the dispatcher has done all it will
// without time passing, then requires cond.
func settle(t *testing.T, what string, cond func() bool) {
	t.Helper()
	synctest.Wait()
	if !cond() {
		t.Fatalf("the dispatcher settled without %s", what)
	}
}

func testHonoursRetryAfter(t *testing.T) {
	n := newDispNotifier(func(context.Context, Event) (bool, error) {
		return true, &RetryAfterError{After: 90 * time.Second, Err: errors.New("429 too many requests")}
	})
	h := newDispHarness(t, DispatcherOptions{}, n, testDelivery("e1", "ch"))
	h.start()
	dispWaitFor(t, "first attempt", func() bool { return n.count() == 1 })
	at := h.waitArmed(1)[0]
	if wait := at.Sub(dt0); wait < 90*time.Second {
		t.Fatalf("retry after %v, receiver asked for 90s", wait)
	}
	h.clk.AdvanceTo(at.Add(-time.Nanosecond))
	h.d.Kick()
	synctest.Wait()
	if n.count() != 1 {
		t.Fatal("retried before Retry-After")
	}
	h.clk.AdvanceTo(at)
	dispWaitFor(t, "second attempt", func() bool { return n.count() == 2 })
}

func TestDispatcher_PermanentFailureIsImmediate(t *testing.T) {
	n := newDispNotifier(func(context.Context, Event) (bool, error) {
		return false, errors.New("404 not found")
	})
	var mu sync.Mutex
	var outcomes []string
	h := newDispHarness(t, DispatcherOptions{OnOutcome: func(_, o string) { mu.Lock(); outcomes = append(outcomes, o); mu.Unlock() }},
		n, testDelivery("e1", "ch"))
	h.start()
	dispWaitFor(t, "failed recorded", func() bool { return len(h.rec.final()) == 1 })
	got := h.rec.all()
	if len(got) != 1 || got[0].State != StateFailed || got[0].Attempts != 1 || got[0].LastError != "404 not found" {
		t.Fatalf("results %+v", got)
	}
	if a := h.clk.armed(); len(a) != 0 {
		t.Fatalf("a retry was scheduled: %v", a)
	}
	h.stop()
	mu.Lock()
	defer mu.Unlock()
	if len(outcomes) != 1 || outcomes[0] != OutcomeFailed {
		t.Fatalf("outcomes %v", outcomes)
	}
}

func TestDispatcher_AttemptBudget(t *testing.T) {
	n := newDispNotifier(func(context.Context, Event) (bool, error) { return true, errDispUnavailable })
	h := newDispHarness(t, DispatcherOptions{MaxAttempts: 3}, n, testDelivery("e1", "ch"))
	h.start()
	for attempt := 1; attempt < 3; attempt++ {
		dispWaitFor(t, "attempt", func() bool { return n.count() == attempt })
		h.clk.AdvanceTo(h.waitArmed(1)[0])
	}
	dispWaitFor(t, "failed recorded", func() bool { return len(h.rec.final()) == 1 })
	got := h.rec.final()[0]
	if got.State != StateFailed || got.Attempts != 3 || got.LastError != errDispUnavailable.Error() {
		t.Fatalf("final %+v", got)
	}
	if n.count() != 3 {
		t.Fatalf("%d attempts, budget 3", n.count())
	}
}

func TestDispatcher_AgeBudget(t *testing.T) {
	n := newDispNotifier(func(context.Context, Event) (bool, error) { return true, errDispUnavailable })
	old := testDelivery("old", "ch")
	old.FirstQueued = dt0.Add(-time.Hour)
	young := testDelivery("young", "ch")
	young.FirstQueued = dt0.Add(-9 * time.Second)
	h := newDispHarness(t, DispatcherOptions{MaxAge: 10 * time.Second, InitialBackoff: 4 * time.Second}, n, old, young)
	h.start()
	dispWaitFor(t, "both final", func() bool { return len(h.rec.final()) == 2 })
	res := map[string]Result{}
	for _, r := range h.rec.final() {
		res[r.EventID] = r
	}
	// Too old before the first attempt: failed without a send, saying why.
	if r := res["old"]; r.State != StateFailed || r.Attempts != 0 || !strings.Contains(r.LastError, "not delivered within 10s") {
		t.Fatalf("old: %+v", r)
	}
	if c := n.countFor("old"); c != 0 {
		t.Fatalf("old was sent %d times", c)
	}
	// One attempt; the next (>= 2s later) would be past the age: failed now
	// with the last error rather than retried.
	if r := res["young"]; r.State != StateFailed || r.Attempts != 1 || r.LastError != errDispUnavailable.Error() {
		t.Fatalf("young: %+v", r)
	}
}

func TestDispatcher_VerifyLeaderFailureSendsNothing(t *testing.T) {
	n := newDispNotifier(nil)
	// One slot, so the sequence of leadership checks is deterministic.
	h := newDispHarness(t, DispatcherOptions{MaxInFlight: 1}, n, testDelivery("e1", "ch"), testDelivery("e2", "ch"))
	h.leader.set(errors.New("node is not the leader"))
	h.start()
	dispWaitFor(t, "leadership check", func() bool { return h.leader.callCount() == 1 })
	hold := h.waitArmed(1)[0] // every send paused until then
	if hold.Sub(dt0) != time.Second {
		t.Fatalf("paused for %v, want InitialBackoff", hold.Sub(dt0))
	}
	if n.count() != 0 {
		t.Fatalf("sent %d without leadership", n.count())
	}
	h.clk.AdvanceTo(hold)
	dispWaitFor(t, "second leadership check", func() bool { return h.leader.callCount() == 2 })
	hold = h.waitArmed(1)[0]
	if n.count() != 0 || len(h.rec.all()) != 0 {
		t.Fatalf("sent %d, recorded %v without leadership", n.count(), h.rec.all())
	}
	// Leadership confirmed again: both are sent, and the failed checks were
	// not charged as attempts.
	h.leader.set(nil)
	h.clk.AdvanceTo(hold)
	dispWaitFor(t, "delivered", func() bool { return len(h.rec.final()) == 2 })
	for _, r := range h.rec.final() {
		if r.Attempts != 1 {
			t.Fatalf("attempts charged while not leader: %+v", r)
		}
	}
	if c := h.leader.callCount(); c != 4 {
		t.Fatalf("VerifyLeader called %d times for 4 attempts", c)
	}
}

// In a bubble on the real clock: the test only lets time pass.
func TestDispatcher_CancelCancelsInFlightSendsAndJoins(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		var cancelled sync.WaitGroup
		cancelled.Add(3)
		n := newDispNotifier(func(ctx context.Context, _ Event) (bool, error) {
			<-ctx.Done()
			cancelled.Done()
			return true, ctx.Err()
		})
		h := newBubbleHarness(t, DispatcherOptions{}, n, testDelivery("e1", "ch"), testDelivery("e2", "ch"), testDelivery("e3", "ch"))
		h.start()
		settle(t, "three sends in flight", func() bool { return n.current() == 3 })
		h.stop() // returns only after the goroutines are joined (goleak checks at cleanup)
		cancelled.Wait()
		if n.current() != 0 {
			t.Fatalf("%d sends still running after Run returned", n.current())
		}
		if got := h.rec.all(); len(got) != 0 {
			t.Fatalf("cancelled sends recorded: %+v", got)
		}
		// Nothing more is sent once Run has returned.
		h.outbox.add(testDelivery("e4", "ch"))
		h.d.Kick()
		time.Sleep(time.Hour)
		if n.count() != 3 {
			t.Fatalf("sent after cancel: %d", n.count())
		}
	})
}

func TestDispatcher_RecordsCompletedSendsOnShutdown(t *testing.T) {
	// The receiver got it, but Run was cancelled before the outcome was
	// handled: it was delivered, so it is recorded delivered if possible.
	started := make(chan struct{})
	n := newDispNotifier(func(ctx context.Context, _ Event) (bool, error) {
		close(started)
		<-ctx.Done()
		return false, nil
	})
	h := newDispHarness(t, DispatcherOptions{}, n, testDelivery("e1", "ch"))
	h.start()
	<-started
	h.stop()
	if got := h.rec.final(); len(got) != 1 || got[0].State != StateDelivered {
		t.Fatalf("final %+v", got)
	}
}

func TestDispatcher_HangingChannelDoesNotBlockOthers(t *testing.T) {
	hang := newDispNotifier(func(ctx context.Context, _ Event) (bool, error) {
		<-ctx.Done()
		return true, ctx.Err()
	})
	ok := newDispNotifier(nil)
	var ds []Delivery
	for i := range 20 {
		ds = append(ds, testDelivery(fmt.Sprintf("h%d", i), "hang"))
	}
	for i := range 20 {
		ds = append(ds, testDelivery(fmt.Sprintf("o%d", i), "ok"))
	}
	h := newDispHarness(t, DispatcherOptions{MaxInFlight: 6, MaxInFlightPerChannel: 4}, nil, ds...)
	h.channels.set("hang", hang)
	h.channels.set("ok", ok)
	h.start()
	dispWaitFor(t, "every ok delivery", func() bool { return len(h.rec.final()) == 20 })
	dispWaitFor(t, "hanging channel to fill its slots", func() bool { return hang.current() == 4 })
	if hang.count() != 4 {
		t.Fatalf("hanging channel got %d calls; want its 4 slots only", hang.count())
	}
	if ok.peak > 4 {
		t.Fatalf("ok channel peaked at %d in flight, cap 4", ok.peak)
	}
}

func TestDispatcher_ResumesWithRecordedAttempts(t *testing.T) {
	n := newDispNotifier(func(context.Context, Event) (bool, error) { return true, errDispUnavailable })
	resumed := testDelivery("e1", "ch")
	resumed.Attempts = 4
	spent := testDelivery("e2", "ch")
	spent.Attempts, spent.LastError = 5, "connection refused"
	h := newDispHarness(t, DispatcherOptions{MaxAttempts: 5}, n, resumed, spent)
	h.start()
	dispWaitFor(t, "both final", func() bool { return len(h.rec.final()) == 2 })
	res := map[string]Result{}
	for _, r := range h.rec.final() {
		res[r.EventID] = r
	}
	if r := res["e1"]; r.State != StateFailed || r.Attempts != 5 || n.countFor("e1") != 1 {
		t.Fatalf("e1: %+v after %d sends; want one attempt (the 5th)", r, n.countFor("e1"))
	}
	if r := res["e2"]; r.State != StateFailed || r.Attempts != 5 || r.LastError != "connection refused" || n.countFor("e2") != 0 {
		t.Fatalf("e2: %+v after %d sends; want failed without a send", r, n.countFor("e2"))
	}
}

func TestDispatcher_KickPicksUpNewWork(t *testing.T) {
	n := newDispNotifier(nil)
	h := newDispHarness(t, DispatcherOptions{}, n)
	h.start()
	dispWaitFor(t, "first read", func() bool { return h.outbox.readCount() >= 1 })
	h.outbox.add(testDelivery("e1", "ch"))
	h.d.Kick()
	dispWaitFor(t, "delivered", func() bool { return len(h.rec.final()) == 1 })
}

func TestDispatcher_NoDuplicatesUnderConcurrentKicks(t *testing.T) {
	n := newDispNotifier(nil)
	var ds []Delivery
	for i := range 200 {
		ds = append(ds, testDelivery(fmt.Sprintf("e%d", i), "ch"))
	}
	h := newDispHarness(t, DispatcherOptions{}, n, ds...)
	h.start()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 2000 {
				h.d.Kick()
			}
		})
	}
	wg.Wait()
	dispWaitFor(t, "all delivered", func() bool { return len(h.rec.final()) == 200 })
	h.stop()
	for i := range 200 {
		if c := n.countFor(fmt.Sprintf("e%d", i)); c != 1 {
			t.Fatalf("e%d sent %d times", i, c)
		}
	}
}

func TestDispatcher_UnknownChannelDropped(t *testing.T) {
	n := newDispNotifier(nil)
	h := newDispHarness(t, DispatcherOptions{}, n, testDelivery("e1", "deleted"), testDelivery("e2", "ch"))
	h.start()
	dispWaitFor(t, "e2 delivered", func() bool { return len(h.rec.final()) == 1 })
	reads := h.outbox.readCount()
	h.d.Kick()
	dispWaitFor(t, "outbox re-read", func() bool { return h.outbox.readCount() > reads })
	h.stop()
	if got := h.rec.all(); len(got) != 1 || got[0].EventID != "e2" {
		t.Fatalf("results %+v", got)
	}
}

func TestDispatcher_RemovedFromOutboxWhileBackingOff(t *testing.T) {
	n := newDispNotifier(func(context.Context, Event) (bool, error) { return true, errDispUnavailable })
	h := newDispHarness(t, DispatcherOptions{}, n, testDelivery("e1", "ch"))
	h.start()
	dispWaitFor(t, "first attempt", func() bool { return n.count() == 1 })
	at := h.waitArmed(1)[0]
	h.outbox.remove("e1", "ch") // machine deleted
	h.d.Kick()
	h.waitArmed(0) // the retry is forgotten
	h.clk.AdvanceTo(at.Add(time.Hour))
	h.stop()
	if n.count() != 1 {
		t.Fatalf("sent %d times", n.count())
	}
}

func TestDispatcher_SecondRunFails(t *testing.T) {
	h := newDispHarness(t, DispatcherOptions{}, nil)
	h.start()
	dispWaitFor(t, "running", func() bool { return h.d.running.Load() })
	if err := h.d.Run(context.Background()); !errors.Is(err, ErrAlreadyRunning) {
		t.Fatalf("got %v", err)
	}
}

func TestDispatcher_RunRestarts(t *testing.T) {
	n := newDispNotifier(func(context.Context, Event) (bool, error) { return true, errDispUnavailable })
	h := newDispHarness(t, DispatcherOptions{}, n, testDelivery("e1", "ch"))
	h.start()
	dispWaitFor(t, "progress recorded", func() bool { return len(h.rec.all()) == 1 })
	h.stop()
	// Next term: continues from the recorded attempt, immediately.
	n.mu.Lock()
	n.fn = nil
	n.mu.Unlock()
	h.start()
	dispWaitFor(t, "delivered", func() bool { return len(h.rec.final()) == 1 })
	if r := h.rec.final()[0]; r.Attempts != 2 {
		t.Fatalf("final %+v", r)
	}
}
