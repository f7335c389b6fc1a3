package monitor

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

const sec = time.Second

func TestNew_RequiresSourceAndProposer(t *testing.T) {
	if _, err := New(Options{Proposer: &fakeProposer{}}); !errors.Is(err, ErrNoSource) {
		t.Fatalf("no source: got %v", err)
	}
	if _, err := New(Options{Source: &fakeSource{}}); !errors.Is(err, ErrNoProposer) {
		t.Fatalf("no proposer: got %v", err)
	}
	m, err := New(Options{Source: &fakeSource{}, Proposer: &fakeProposer{}})
	if err != nil {
		t.Fatal(err)
	}
	if m.interval != DefaultCheckInterval || m.maxBatch != DefaultMaxBatch {
		t.Fatalf("defaults: interval %v max batch %d", m.interval, m.maxBatch)
	}
}

func TestMonitor_OfflineExactlyAtDeadline(t *testing.T) {
	bubble(t, func(t *testing.T) {
		h := newHarness(t, Options{FailoverGrace: sec})
		h.src.machines = []Machine{{ID: "a", LastSeen: t0, Threshold: 10 * sec}}
		h.start()

		h.stepTo(t0.Add(9 * sec))
		if got := h.prop.ids(); len(got) != 0 {
			t.Fatalf("proposed %v one tick before the deadline", got)
		}
		h.step(sec) // t0+10s: exactly the deadline
		want := []Expired{{ID: "a", LastSeen: t0, Deadline: t0.Add(10 * sec)}}
		if got := h.prop.proposed(); !sameExpired(got, want) {
			t.Fatalf("at the deadline: got %v, want %v", got, want)
		}
		h.stepTo(t0.Add(20 * sec))
		if got := h.prop.ids(); len(got) != 1 {
			t.Fatalf("proposed more than once: %v", got)
		}
		if n := h.m.Tracked(); n != 0 {
			t.Fatalf("tracked after offline: %d", n)
		}
	})
}

func TestMonitor_HeartbeatMovesDeadline(t *testing.T) {
	bubble(t, func(t *testing.T) {
		h := newHarness(t, Options{FailoverGrace: sec})
		h.src.machines = []Machine{{ID: "a", LastSeen: t0, Threshold: 10 * sec}}
		h.start()

		h.stepTo(t0.Add(8 * sec))
		h.m.MachineSeen("a", t0.Add(8*sec), 10*sec) // new deadline t0+18s
		h.stepTo(t0.Add(17 * sec))
		if got := h.prop.ids(); len(got) != 0 {
			t.Fatalf("proposed %v before the moved deadline", got)
		}
		h.step(sec)
		want := []Expired{{ID: "a", LastSeen: t0.Add(8 * sec), Deadline: t0.Add(18 * sec)}}
		if got := h.prop.proposed(); !sameExpired(got, want) {
			t.Fatalf("got %v, want %v", got, want)
		}
	})
}

func TestMonitor_OlderHeartbeatDoesNotMoveDeadlineBack(t *testing.T) {
	bubble(t, func(t *testing.T) {
		h := newHarness(t, Options{FailoverGrace: sec})
		h.src.machines = []Machine{{ID: "a", LastSeen: t0.Add(5 * sec), Threshold: 10 * sec}}
		h.start()
		h.m.MachineSeen("a", t0, 10*sec) // stale, e.g. a late duplicate
		h.stepTo(t0.Add(14 * sec))
		if got := h.prop.ids(); len(got) != 0 {
			t.Fatalf("a stale last_seen moved the deadline back: %v", got)
		}
		h.step(sec)
		if got := h.prop.proposed(); len(got) != 1 || !got[0].LastSeen.Equal(t0.Add(5*sec)) {
			t.Fatalf("got %v", got)
		}
	})
}

func TestMonitor_FailoverGraceFloorsStaleMachines(t *testing.T) {
	bubble(t, func(t *testing.T) {
		// Default grace: max(threshold/2, 5s) per machine.
		h := newHarness(t, Options{})
		long := t0.Add(-time.Hour)
		h.src.machines = []Machine{
			{ID: "short", LastSeen: long, Threshold: 2 * sec}, // grace 5s
			{ID: "long", LastSeen: long, Threshold: 60 * sec}, // grace 30s
			{ID: "fresh", LastSeen: t0, Threshold: 60 * sec},  // deadline t0+60s beats grace
		}
		h.start()

		h.stepTo(t0.Add(4 * sec))
		if got := h.prop.ids(); len(got) != 0 {
			t.Fatalf("proposed %v inside the grace window", got)
		}
		h.step(sec)
		if got := h.prop.ids(); !slices.Equal(got, []string{"short"}) {
			t.Fatalf("at t0+5s: got %v, want [short]", got)
		}
		h.stepTo(t0.Add(29 * sec))
		if got := h.prop.ids(); len(got) != 1 {
			t.Fatalf("proposed %v before t0+30s", got)
		}
		h.step(sec)
		if got := h.prop.ids(); !slices.Equal(got, []string{"short", "long"}) {
			t.Fatalf("at t0+30s: got %v", got)
		}
		h.stepTo(t0.Add(59 * sec))
		if got := h.prop.ids(); len(got) != 2 {
			t.Fatalf("fresh proposed early: %v", got)
		}
		h.step(sec)
		if got := h.prop.ids(); !slices.Equal(got, []string{"short", "long", "fresh"}) {
			t.Fatalf("at t0+60s: got %v", got)
		}
		// The fencepost is the last_seen that was known, not the grace.
		if got := h.prop.proposed()[1]; !got.LastSeen.Equal(long) || !got.Deadline.Equal(t0.Add(30*sec)) {
			t.Fatalf("long: got %+v", got)
		}
	})
}

func TestMonitor_GraceAppliesToMachineSeenDuringLoad(t *testing.T) {
	bubble(t, func(t *testing.T) {
		// Applies landing while the new leader reads its replica reach the
		// monitor through MachineSeen before the merge. They must get the grace
		// floor too, and a newer last_seen must win over the replica's.
		h := newHarness(t, Options{FailoverGrace: 20 * sec})
		stale := t0.Add(-time.Hour)
		h.src.machines = []Machine{
			{ID: "a", LastSeen: stale, Threshold: 10 * sec},
			{ID: "b", LastSeen: t0.Add(15 * sec), Threshold: 10 * sec}, // newer than the MachineSeen below
			{ID: "d", LastSeen: t0, Threshold: 10 * sec},               // deleted while the list was read
		}
		h.src.during = func() {
			h.m.MachineSeen("c", stale, 10*sec)           // only seen through MachineSeen
			h.m.MachineSeen("a", t0.Add(12*sec), 10*sec)  // newer than the replica's
			h.m.MachineSeen("b", t0.Add(-5*sec), 10*sec)  // older than the replica's
			h.m.MachineSeen("d", t0.Add(-30*sec), 10*sec) // gone below; must stay gone
			h.m.MachineGone("d")
		}
		h.start()
		if n := h.m.Tracked(); n != 3 {
			t.Fatalf("tracked %d, want 3 (a, b, c)", n)
		}
		h.stepTo(t0.Add(19 * sec))
		if got := h.prop.ids(); len(got) != 0 {
			t.Fatalf("proposed %v inside the grace window", got)
		}
		h.step(sec) // t0+20s: c at the grace floor
		if got := h.prop.ids(); !slices.Equal(got, []string{"c"}) {
			t.Fatalf("at t0+20s: got %v", got)
		}
		h.stepTo(t0.Add(25 * sec)) // t0+22s: a (12+10); t0+25s: b (15+10)
		want := []Expired{
			{ID: "c", LastSeen: stale, Deadline: t0.Add(20 * sec)},
			{ID: "a", LastSeen: t0.Add(12 * sec), Deadline: t0.Add(22 * sec)},
			{ID: "b", LastSeen: t0.Add(15 * sec), Deadline: t0.Add(25 * sec)},
		}
		if got := h.prop.proposed(); !sameExpired(got, want) {
			t.Fatalf("got %v\nwant %v", got, want)
		}
	})
}

func TestMonitor_GraceFloorHoldsForMachineSeenAfterStart(t *testing.T) {
	bubble(t, func(t *testing.T) {
		// A heartbeat batch with a large age (from a node that was cut off)
		// arriving during the grace window does not undercut the grace.
		h := newHarness(t, Options{FailoverGrace: 10 * sec})
		h.start()
		h.step(sec)
		h.m.MachineSeen("a", t0.Add(-time.Minute), 5*sec)
		h.stepTo(t0.Add(9 * sec))
		if got := h.prop.ids(); len(got) != 0 {
			t.Fatalf("proposed %v inside the grace window", got)
		}
		h.step(sec)
		if got := h.prop.ids(); !slices.Equal(got, []string{"a"}) {
			t.Fatalf("got %v", got)
		}
	})
}

func TestMonitor_PerMachineThresholds(t *testing.T) {
	bubble(t, func(t *testing.T) {
		h := newHarness(t, Options{FailoverGrace: sec})
		h.src.machines = []Machine{
			{ID: "slow", LastSeen: t0, Threshold: 7 * sec},
			{ID: "fast", LastSeen: t0, Threshold: 3 * sec},
			{ID: "mid", LastSeen: t0, Threshold: 5 * sec},
		}
		h.start()
		seen := map[time.Duration][]string{}
		for i := 1; i <= 8; i++ {
			h.step(sec)
			seen[time.Duration(i)*sec] = h.prop.ids()
		}
		for at, want := range map[time.Duration][]string{
			2 * sec: nil,
			3 * sec: {"fast"},
			4 * sec: {"fast"},
			5 * sec: {"fast", "mid"},
			6 * sec: {"fast", "mid"},
			7 * sec: {"fast", "mid", "slow"},
		} {
			if !slices.Equal(seen[at], want) {
				t.Errorf("at t0+%v: got %v, want %v", at, seen[at], want)
			}
		}
	})
}

func TestMonitor_ProposalFailureRetriedNextTick(t *testing.T) {
	bubble(t, func(t *testing.T) {
		h := newHarness(t, Options{FailoverGrace: sec})
		h.src.machines = []Machine{{ID: "a", LastSeen: t0, Threshold: 2 * sec}}
		h.prop.setHook(func(context.Context, []Expired) error { return errors.New("raft: apply timed out") })
		h.start()
		h.stepTo(t0.Add(2 * sec))
		if h.prop.callCount() != 1 || len(h.prop.proposed()) != 0 {
			t.Fatalf("calls %d proposed %v", h.prop.callCount(), h.prop.proposed())
		}
		if n := h.m.Tracked(); n != 1 {
			t.Fatalf("failed entry not requeued: tracked %d", n)
		}
		h.step(sec)
		if h.prop.callCount() != 2 {
			t.Fatalf("not retried: calls %d", h.prop.callCount())
		}
		h.prop.setHook(nil)
		h.step(sec)
		want := []Expired{{ID: "a", LastSeen: t0, Deadline: t0.Add(2 * sec)}}
		if got := h.prop.proposed(); !sameExpired(got, want) {
			t.Fatalf("got %v, want %v (original fencepost and deadline)", got, want)
		}
	})
}

func TestMonitor_MachineGoneRemoves(t *testing.T) {
	bubble(t, func(t *testing.T) {
		h := newHarness(t, Options{FailoverGrace: sec})
		h.src.machines = []Machine{
			{ID: "a", LastSeen: t0, Threshold: 3 * sec},
			{ID: "b", LastSeen: t0, Threshold: 3 * sec},
		}
		h.start()
		h.m.MachineGone("a")
		h.m.MachineGone("unknown") // harmless
		if n := h.m.Tracked(); n != 1 {
			t.Fatalf("tracked %d", n)
		}
		h.stepTo(t0.Add(10 * sec))
		if got := h.prop.ids(); !slices.Equal(got, []string{"b"}) {
			t.Fatalf("got %v", got)
		}
	})
}

func TestMonitor_NotRunningIsNoop(t *testing.T) {
	h := newHarness(t, Options{})
	h.m.MachineSeen("a", t0, sec)
	h.m.MachineGone("a")
	if n := h.m.Tracked(); n != 0 {
		t.Fatalf("follower tracked %d", n)
	}
}

func TestMonitor_NothingProposedAfterCancel(t *testing.T) {
	bubble(t, func(t *testing.T) {
		h := newHarness(t, Options{FailoverGrace: sec})
		h.src.machines = []Machine{{ID: "a", LastSeen: t0, Threshold: 2 * sec}}
		// The proposal in flight when leadership is lost sees its ctx cancelled.
		started := make(chan struct{})
		h.prop.setHook(func(ctx context.Context, _ []Expired) error {
			close(started)
			<-ctx.Done()
			return ctx.Err()
		})
		h.start()
		time.Sleep(2 * sec)
		<-started
		h.stop()
		if n := h.m.Tracked(); n != 0 {
			t.Fatalf("state kept after Run returned: %d", n)
		}
		h.m.MachineSeen("b", t0, sec)
		time.Sleep(time.Minute)
		if got := h.prop.proposed(); len(got) != 0 {
			t.Fatalf("committed after cancel: %v", got)
		}
		if h.prop.callCount() != 1 {
			t.Fatalf("proposed after cancel: %d calls", h.prop.callCount())
		}
	})
}

func TestMonitor_RunRestartsCleanly(t *testing.T) {
	bubble(t, func(t *testing.T) {
		h := newHarness(t, Options{FailoverGrace: 5 * sec})
		h.src.machines = []Machine{{ID: "a", LastSeen: t0, Threshold: 100 * sec}}
		h.start()
		h.m.MachineSeen("b", t0, 100*sec)
		h.stop()

		// Next term, 200s later: "b" is no longer online in the replica and
		// must not survive from the previous term; "a" gets a fresh grace.
		time.Sleep(200 * sec)
		start2 := time.Now()
		h.start()
		if n := h.m.Tracked(); n != 1 {
			t.Fatalf("tracked %d after restart, want 1", n)
		}
		h.stepTo(start2.Add(4 * sec))
		if got := h.prop.ids(); len(got) != 0 {
			t.Fatalf("proposed %v inside the second term's grace", got)
		}
		h.step(sec)
		if got := h.prop.ids(); !slices.Equal(got, []string{"a"}) {
			t.Fatalf("got %v", got)
		}
	})
}

func TestMonitor_SecondRunFails(t *testing.T) {
	bubble(t, func(t *testing.T) {
		h := newHarness(t, Options{})
		h.start()
		if err := h.m.Run(context.Background()); !errors.Is(err, ErrAlreadyRunning) {
			t.Fatalf("got %v", err)
		}
	})
}

func TestMonitor_BatchesBoundedByMaxBatch(t *testing.T) {
	bubble(t, func(t *testing.T) {
		h := newHarness(t, Options{FailoverGrace: sec, MaxBatch: 4})
		for i := range 10 {
			h.src.machines = append(h.src.machines, Machine{ID: string(rune('a' + i)), LastSeen: t0, Threshold: 2 * sec})
		}
		h.start()
		h.stepTo(t0.Add(2 * sec))
		h.prop.mu.Lock()
		sizes := []int{}
		for _, b := range h.prop.batches {
			sizes = append(sizes, len(b))
		}
		h.prop.mu.Unlock()
		if !slices.Equal(sizes, []int{4, 4, 2}) {
			t.Fatalf("batch sizes %v", sizes)
		}
	})
}

func TestMonitor_MachineSeenDoesNotWaitForProposal(t *testing.T) {
	bubble(t, func(t *testing.T) {
		h := newHarness(t, Options{FailoverGrace: sec})
		h.src.machines = []Machine{
			{ID: "a", LastSeen: t0, Threshold: 2 * sec},
			{ID: "c", LastSeen: t0, Threshold: 2 * sec},
		}
		release := make(chan struct{})
		started := make(chan struct{})
		var once sync.Once
		h.prop.setHook(func(ctx context.Context, _ []Expired) error {
			once.Do(func() { close(started) })
			<-release
			return errors.New("lost leadership")
		})
		h.start()
		time.Sleep(2 * sec)
		<-started

		// While the proposal hangs, a newer heartbeat for "a", a new machine and
		// the deletion of "c" arrive; the calls return at once.
		h.m.MachineSeen("a", t0.Add(2*sec), 2*sec)
		h.m.MachineGone("c")
		h.m.MachineSeen("b", t0.Add(2*sec), 5*sec)
		h.m.MachineGone("b")
		if n := h.m.Tracked(); n != 1 {
			t.Fatalf("tracked %d, want 1", n)
		}
		close(release)
		synctest.Wait() // the failed check has finished
		h.prop.setHook(nil)
		// The failed proposal must not put back the stale entry for "a"
		// (deadline t0+2s): the newer heartbeat's deadline (t0+4s) stands. Nor
		// may it resurrect the deleted "c".
		if n := h.m.Tracked(); n != 1 {
			t.Fatalf("tracked %d after the failed proposal, want 1", n)
		}
		h.step(sec) // t0+3s
		if got := h.prop.ids(); len(got) != 0 {
			t.Fatalf("stale entry requeued: %v", got)
		}
		h.step(sec) // t0+4s
		want := []Expired{{ID: "a", LastSeen: t0.Add(2 * sec), Deadline: t0.Add(4 * sec)}}
		if got := h.prop.proposed(); !sameExpired(got, want) {
			t.Fatalf("got %v, want %v", got, want)
		}
	})
}

func TestMonitor_ObservesDetectionDelay(t *testing.T) {
	bubble(t, func(t *testing.T) {
		var mu sync.Mutex
		var delays []time.Duration
		h := newHarness(t, Options{FailoverGrace: sec, CheckInterval: 2 * sec, ObserveDetectionDelay: func(d time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			delays = append(delays, d)
		}})
		h.src.machines = []Machine{{ID: "a", LastSeen: t0, Threshold: 3 * sec}}
		h.start()
		h.stepTo(t0.Add(4 * sec)) // ticks at 2s, 4s: deadline 3s seen at 4s
		mu.Lock()
		defer mu.Unlock()
		if !slices.Equal(delays, []time.Duration{sec}) {
			t.Fatalf("delays %v", delays)
		}
	})
}
