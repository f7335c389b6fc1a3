package notify

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestDispatcher_BatchesRecords(t *testing.T) {
	n := newDispNotifier(nil)
	var ds []Delivery
	for i := range 100 {
		ds = append(ds, testDelivery(fmt.Sprintf("e%d", i), "ch"))
	}
	h := newDispHarness(t, DispatcherOptions{MaxRecordBatch: 30, FlushInterval: 50 * time.Millisecond}, n, ds...)
	h.start()
	dispWaitFor(t, "all sent", func() bool { return n.count() == 100 })
	// Pump the flush timer until everything is recorded.
	dispWaitFor(t, "all recorded", func() bool {
		if len(h.rec.final()) == 100 {
			return true
		}
		if a := h.clk.armed(); len(a) > 0 {
			h.clk.AdvanceTo(a[0])
		}
		return false
	})
	calls := h.rec.callCount()
	if calls > 10 {
		t.Fatalf("%d RecordDeliveries calls for 100 outcomes", calls)
	}
	t.Logf("100 outcomes in %d calls", calls)
}

func TestDispatcher_SuccessRecordedWithinFlushInterval(t *testing.T) {
	n := newDispNotifier(nil)
	h := newDispHarness(t, DispatcherOptions{MaxRecordBatch: 500, FlushInterval: 50 * time.Millisecond}, n, testDelivery("e1", "ch"))
	h.start()
	dispWaitFor(t, "sent", func() bool { return n.count() == 1 })
	at := h.waitArmed(1)[0]
	if d := at.Sub(dt0); d != 50*time.Millisecond {
		t.Fatalf("flush after %v, want 50ms", d)
	}
	h.clk.AdvanceTo(at)
	dispWaitFor(t, "recorded", func() bool { return len(h.rec.final()) == 1 })
}

func TestDispatcher_RecordFailureGivesUpWithoutResending(t *testing.T) {
	n := newDispNotifier(nil)
	h := newDispHarness(t, DispatcherOptions{}, n, testDelivery("e1", "ch"))
	h.rec.fail = func([]Result) error { return errors.New("raft: apply timed out") }
	h.start()
	for try := 1; try <= maxRecordTries; try++ {
		dispWaitFor(t, "record attempt", func() bool { return h.rec.callCount() == try })
		if try < maxRecordTries {
			h.clk.AdvanceTo(h.waitArmed(1)[0]) // the pause before the next record call
		}
	}
	// Given up: no timer, and neither kicks nor time bring a resend or
	// another record call in this term.
	h.waitArmed(0)
	reads := h.outbox.readCount()
	h.d.Kick()
	dispWaitFor(t, "outbox re-read", func() bool { return h.outbox.readCount() > reads })
	h.clk.Advance(time.Hour)
	h.stop() // the final flush tries once more, bounded
	if n.count() != 1 {
		t.Fatalf("sent %d times", n.count())
	}
	if c := h.rec.callCount(); c > maxRecordTries+1 {
		t.Fatalf("%d record calls", c)
	}
	// Still pending in the replica: the next leader sends it again.
	if p := h.outbox.PendingDeliveries(); len(p) != 1 {
		t.Fatalf("outbox %+v", p)
	}
}

func TestDispatcher_RecordRetriedAfterTransientFailure(t *testing.T) {
	n := newDispNotifier(nil)
	h := newDispHarness(t, DispatcherOptions{}, n, testDelivery("e1", "ch"))
	failed := false
	h.rec.fail = func([]Result) error {
		if !failed {
			failed = true
			return errors.New("raft: apply timed out")
		}
		return nil
	}
	h.start()
	dispWaitFor(t, "first record call", func() bool { return h.rec.callCount() == 1 })
	h.clk.AdvanceTo(h.waitArmed(1)[0])
	dispWaitFor(t, "recorded", func() bool { return len(h.rec.final()) == 1 })
	if n.count() != 1 {
		t.Fatalf("sent %d times", n.count())
	}
}

// In a bubble: AttemptTimeout runs on the real clock, which the bubble
// moves past the deadline at once.
func TestDispatcher_AttemptTimeoutIsRetryable(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		// A notifier that reports its own timeout as permanent must not turn a
		// hanging receiver into a failed testDelivery: our deadline means "retry".
		n := newDispNotifier(func(ctx context.Context, _ Event) (bool, error) {
			<-ctx.Done()
			return false, ctx.Err()
		})
		h := newDispHarness(t, DispatcherOptions{AttemptTimeout: 10 * time.Millisecond}, n, testDelivery("e1", "ch"))
		h.start()
		time.Sleep(10 * time.Millisecond) // the attempt's deadline
		settle(t, "progress recorded", func() bool { return len(h.rec.all()) == 1 })
		if r := h.rec.all()[0]; r.State != StatePending || r.Attempts != 1 {
			t.Fatalf("result %+v", r)
		}
	})
}

func TestDispatcher_SendTest(t *testing.T) {
	errBad := errors.New("401 unauthorized")
	n := newDispNotifier(func(context.Context, Event) (bool, error) { return false, errBad })
	h := newDispHarness(t, DispatcherOptions{}, n)
	ev := Event{ID: "test-1", Type: EventTest}
	if err := h.d.SendTest(context.Background(), "ch", ev); !errors.Is(err, errBad) {
		t.Fatalf("got %v, want the receiver's error", err)
	}
	if n.countFor("test-1") != 1 || h.leader.callCount() != 1 {
		t.Fatalf("sent %d, verified %d", n.countFor("test-1"), h.leader.callCount())
	}
	if err := h.d.SendTest(context.Background(), "nope", ev); !errors.Is(err, ErrUnknownChannel) {
		t.Fatalf("got %v", err)
	}
	h.leader.set(errors.New("node is not the leader"))
	if err := h.d.SendTest(context.Background(), "ch", ev); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("got %v", err)
	}
	if n.countFor("test-1") != 1 {
		t.Fatal("sent without leadership")
	}
	if len(h.rec.all()) != 0 {
		t.Fatal("a test send was recorded")
	}
	n.fn = nil
	h.leader.set(nil)
	if err := h.d.SendTest(context.Background(), "ch", ev); err != nil {
		t.Fatal(err)
	}
}
