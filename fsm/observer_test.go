package fsm_test

import (
	"slices"
	"testing"
	"time"

	"github.com/lunasentri/lunasentri/fsm"
)

func TestObserver_MachineSeenWithEffectiveThreshold(t *testing.T) {
	obs := &recObserver{}
	h := newHarness(t, fsm.Options{Observer: obs})
	h.register("dflt", nil, 0)
	h.register("long", nil, 10*time.Minute)
	h.register("gone", nil, 0)
	h.ok(fsm.CmdDeleteMachine, fsm.DeleteMachine{Name: "gone"})
	obs.take()

	h.beat(t0, t0, "dflt", "long", "gone")
	seen, _, _, _ := obs.take()
	want := []seenCall{{machineID("dflt"), t0, defThreshold}, {machineID("long"), t0, 10 * time.Minute}}
	if !slices.Equal(seen, want) {
		t.Fatalf("MachineSeen calls = %v, want %v", seen, want)
	}

	h.beat(t0, t0, "dflt") // stale: last_seen did not move
	if seen, _, _, _ := obs.take(); len(seen) != 0 {
		t.Fatalf("stale beat reported %v", seen)
	}

	// Offline machine: a stale beat is not news, a fresh one brings it back.
	_, off := h.goOffline(t0, "dflt")
	obs.take()
	late := off.Add(time.Hour)
	h.beat(late, late.Add(-defThreshold), "dflt")
	if seen, _, _, _ := obs.take(); len(seen) != 0 {
		t.Fatalf("stale beat to an offline machine reported %v", seen)
	}
	h.beat(late, late, "dflt")
	if seen, _, _, _ := obs.take(); !slices.Equal(seen, []seenCall{{machineID("dflt"), late, defThreshold}}) {
		t.Fatalf("back online: %v", seen)
	}
}

func TestObserver_MachineGoneOnOfflineAndDelete(t *testing.T) {
	obs := &recObserver{}
	h := newHarness(t, fsm.Options{Observer: obs})
	h.register("a", nil, 0)
	h.register("b", nil, 0)
	h.beat(t0, t0, "a", "b")
	obs.take()

	fence := h.machine("b").LastSeen
	h.beat(t0.Add(time.Second), t0.Add(time.Second), "b")
	obs.take()
	h.ok(fsm.CmdMarkOffline, fsm.MarkOffline{At: t0.Add(time.Hour), Machines: []fsm.OfflineMark{
		{ID: machineID("a"), LastSeen: t0}, {ID: machineID("b"), LastSeen: fence},
	}})
	if _, gone, _, _ := obs.take(); !slices.Equal(gone, []string{machineID("a")}) {
		t.Fatalf("MachineGone after MarkOffline = %v, want only a (b's fencepost moved)", gone)
	}
	h.ok(fsm.CmdDeleteMachine, fsm.DeleteMachine{Name: "b"})
	if _, gone, _, _ := obs.take(); !slices.Equal(gone, []string{machineID("b")}) {
		t.Fatalf("MachineGone after delete = %v", gone)
	}
	h.apply(fsm.CmdDeleteMachine, fsm.DeleteMachine{Name: "b"})
	if _, gone, _, _ := obs.take(); len(gone) != 0 {
		t.Fatalf("failed delete reported %v", gone)
	}
}

func TestObserver_OutboxChanged(t *testing.T) {
	obs := &recObserver{}
	h := newHarness(t, fsm.Options{Observer: obs})
	h.channel("a", fsm.ChannelWebhook, nil)
	h.channel("b", fsm.ChannelWebhook, nil)
	h.register("x", nil, 0)
	h.register("y", nil, 0)
	h.beat(t0, t0, "x", "y")
	if _, _, outbox, _ := obs.take(); outbox != 0 {
		t.Fatalf("no deliveries yet, OutboxChanged called %d times", outbox)
	}
	step := func(name string, want int, apply func()) {
		t.Helper()
		apply()
		if _, _, outbox, _ := obs.take(); outbox != want {
			t.Fatalf("%s: OutboxChanged called %d times, want %d", name, outbox, want)
		}
	}
	var evX, evY string
	var off time.Time
	step("added by offline", 1, func() { evX, off = h.goOffline(t0, "x") })
	step("added by online", 1, func() { h.beat(off, off, "x") })
	// The dispatcher's own outcomes do not wake it: it already knows.
	step("finished", 0, func() {
		h.record(off, fsm.DeliveryResult{EventID: evX, Channel: "a", State: fsm.DeliveryDelivered},
			fsm.DeliveryResult{EventID: evX, Channel: "b", State: fsm.DeliveryFailed})
	})
	step("finished again", 0, func() {
		h.record(off, fsm.DeliveryResult{EventID: evX, Channel: "a", State: fsm.DeliveryDelivered})
	})
	step("dropped by channel delete", 1, func() { h.ok(fsm.CmdDeleteChannel, fsm.DeleteChannel{Name: "b"}) })
	step("added for y", 1, func() { evY, _ = h.goOffline(t0, "y") })
	step("dropped by machine delete", 1, func() { h.ok(fsm.CmdDeleteMachine, fsm.DeleteMachine{Name: "y"}) })
	step("unknown event", 0, func() {
		h.record(off, fsm.DeliveryResult{EventID: evY, Channel: "a", State: fsm.DeliveryDelivered})
	})
}

// reentrantObserver calls back into the FSM from every callback, as the
// monitor and dispatcher may; it would deadlock if Apply held the lock.
type reentrantObserver struct {
	f      *fsm.FSM
	calls  int
	locked int // callbacks made while the FSM lock was held
}

func (o *reentrantObserver) touch() {
	o.calls++
	if o.f.LockHeld() {
		o.locked++
	}
	_ = o.f.Stats()
	_ = o.f.Machines("")
	_ = o.f.PendingDeliveries()
	_ = o.f.OnlineMachines()
	_, _ = o.f.Authenticate("k")
	snap, err := o.f.Snapshot()
	if err == nil {
		snap.Release()
	}
}

func (o *reentrantObserver) MachinesSeen([]fsm.SeenMachine) { o.touch() }
func (o *reentrantObserver) MachineGone(string)             { o.touch() }
func (o *reentrantObserver) OutboxChanged()                 { o.touch() }
func (o *reentrantObserver) Restored()                      { o.touch() }

func TestObserver_NotCalledUnderLock(t *testing.T) {
	obs := &reentrantObserver{}
	f := fsm.New(fsm.Options{Observer: obs})
	obs.f = f
	done := make(chan struct{})
	go func() {
		defer close(done)
		h := &harness{t: t, f: f}
		h.channel("a", fsm.ChannelWebhook, nil)
		h.register("x", nil, 0)
		_, off := h.goOffline(t0, "x")                           // seen, gone, outbox
		h.beat(off, off, "x")                                    // seen, outbox
		h.ok(fsm.CmdDeleteMachine, fsm.DeleteMachine{Name: "x"}) // gone, outbox
		data := persist(t, f)
		if err := restore(f, data); err != nil { // restored
			t.Error(err)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("deadlock: an Observer callback that queries the FSM never returned")
	}
	if obs.calls < 8 {
		t.Fatalf("observer called %d times, want at least 8", obs.calls)
	}
	if obs.locked != 0 {
		t.Fatalf("%d of %d observer callbacks ran with the FSM lock held", obs.locked, obs.calls)
	}
}
