package monitor

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

// checkHeap verifies the heap order, the index bookkeeping and the lazy
// deadline invariant (key <= deadline) of every tracked entry.
func checkHeap(t testing.TB, m *Monitor) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	items := m.heap.items
	if len(items) != len(m.byID) {
		t.Fatalf("heap holds %d entries, byID %d", len(items), len(m.byID))
	}
	for i, e := range items {
		if e.index != i {
			t.Fatalf("%s: index %d at position %d", e.id, e.index, i)
		}
		if m.byID[e.id] != e {
			t.Fatalf("%s: heap entry is not the tracked one", e.id)
		}
		if e.key.After(e.deadline) {
			t.Fatalf("%s: key %v after deadline %v", e.id, e.key, e.deadline)
		}
		if p := (i - 1) / 2; i > 0 && items[p].key.After(e.key) {
			t.Fatalf("%s: heap order broken at %d", e.id, i)
		}
	}
}

// farMonitor returns an active Monitor (driven by check, not Run) on the
// real clock, tracking n filler machines whose deadlines are a day away.
// Call it inside a bubble, before time moves: its term starts at t0.
func farMonitor(tb testing.TB, n int) (*Monitor, *fakeProposer) {
	tb.Helper()
	prop := &fakeProposer{}
	m, err := New(Options{Source: &fakeSource{}, Proposer: prop, FailoverGrace: sec})
	if err != nil {
		tb.Fatal(err)
	}
	if err := m.start(); err != nil {
		tb.Fatal(err)
	}
	m.load(nil)
	for i := range n {
		m.MachineSeen(fmt.Sprintf("m%d", i), t0.Add(time.Duration(i%3600)*sec), 24*time.Hour)
	}
	tb.Cleanup(m.stop)
	return m, prop
}

func heapOps(m *Monitor) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.heap.ops
}

func TestMonitor_SteadyHeartbeatsCostNoHeapOps(t *testing.T) {
	bubble(t, func(t *testing.T) {
		const n, beats, threshold = 10_000, 1000, 10 * sec
		m, prop := farMonitor(t, n)
		ids := []string{"beat0", "beat1", "beat2"}
		for _, id := range ids {
			m.MachineSeen(id, t0, threshold)
		}
		var tickOps uint64
		for range beats {
			time.Sleep(sec)
			now := time.Now()
			before := heapOps(m)
			for _, id := range ids {
				m.MachineSeen(id, now, threshold)
			}
			m.MachinesSeen([]Seen{{ID: ids[0], LastSeen: now, Threshold: threshold}})
			if ops := heapOps(m) - before; ops != 0 {
				t.Fatalf("at %v: a later deadline cost %d heap operations", now.Sub(t0), ops)
			}
			before = heapOps(m)
			m.check(context.Background())
			tickOps += heapOps(m) - before
		}
		checkHeap(t, m)
		if got := prop.ids(); len(got) != 0 {
			t.Fatalf("steadily beating machines expired: %v", got)
		}
		if tr := m.Tracked(); tr != n+len(ids) {
			t.Fatalf("tracked %d", tr)
		}
		// Each machine is re-keyed about once per threshold, not once per beat:
		// beats/10 re-keys of ~2·log2(n) comparisons plus swaps each.
		rekeys := uint64(len(ids) * (beats/int(threshold/sec) + 1))
		if limit := rekeys * 60; tickOps > limit {
			t.Fatalf("ticks did %d heap operations; want <= %d", tickOps, limit)
		}
		t.Logf("%d beats of %d machines: 0 heap operations per beat, %d in all ticks", beats, len(ids), tickOps)
	})
}

func TestMonitor_StaleHeapKeyIsReKeyedNotExpired(t *testing.T) {
	bubble(t, func(t *testing.T) {
		var mu sync.Mutex
		var delays []time.Duration
		h := newHarness(t, Options{FailoverGrace: sec, ObserveDetectionDelay: func(d time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			delays = append(delays, d)
		}})
		h.src.machines = []Machine{
			{ID: "a", LastSeen: t0, Threshold: 10 * sec},
			{ID: "b", LastSeen: t0.Add(2 * sec), Threshold: 10 * sec},
		}
		h.start()
		h.stepTo(t0.Add(5 * sec))
		before := heapOps(h.m)
		h.m.MachineSeen("a", t0.Add(5*sec), 10*sec) // deadline t0+15s, key stays t0+10s
		h.m.mu.Lock()
		top, ops := h.m.heap.min(), h.m.heap.ops-before
		h.m.mu.Unlock()
		if ops != 0 || top.id != "a" || !top.key.Equal(t0.Add(10*sec)) || !top.deadline.Equal(t0.Add(15*sec)) {
			t.Fatalf("after a later deadline: %d ops, top %s key %v deadline %v", ops, top.id, top.key, top.deadline)
		}
		h.stepTo(t0.Add(10 * sec)) // a's key is due, its deadline is not
		if got := h.prop.ids(); len(got) != 0 {
			t.Fatalf("stale key expired: %v", got)
		}
		h.m.mu.Lock()
		top = h.m.heap.min()
		a := h.m.byID["a"]
		h.m.mu.Unlock()
		if top.id != "b" || !a.key.Equal(t0.Add(15*sec)) {
			t.Fatalf("not re-keyed: top %s, a key %v", top.id, a.key)
		}
		checkHeap(t, h.m)
		h.stepTo(t0.Add(14 * sec))
		if got := h.prop.ids(); !slices.Equal(got, []string{"b"}) {
			t.Fatalf("at t0+14s: got %v", got)
		}
		h.step(sec)
		want := []Expired{
			{ID: "b", LastSeen: t0.Add(2 * sec), Deadline: t0.Add(12 * sec)},
			{ID: "a", LastSeen: t0.Add(5 * sec), Deadline: t0.Add(15 * sec)},
		}
		if got := h.prop.proposed(); !sameExpired(got, want) {
			t.Fatalf("got %v, want %v", got, want)
		}
		// Detection delay is measured from the real deadline, not the old key.
		mu.Lock()
		defer mu.Unlock()
		if !slices.Equal(delays, []time.Duration{0, 0}) {
			t.Fatalf("delays %v", delays)
		}
	})
}

func TestMonitor_DeadlineMovingEarlierIsHonouredExactly(t *testing.T) {
	bubble(t, func(t *testing.T) {
		h := newHarness(t, Options{FailoverGrace: sec})
		h.src.machines = []Machine{
			{ID: "a", LastSeen: t0, Threshold: 60 * sec},
			{ID: "b", LastSeen: t0, Threshold: 10 * sec},
		}
		h.start()
		h.step(sec)
		// a: threshold cut from 60s to 3s; deadline t0+60s -> t0+4s.
		before := heapOps(h.m)
		h.m.MachineSeen("a", t0.Add(sec), 3*sec)
		if heapOps(h.m) == before {
			t.Fatal("an earlier deadline did no heap fix")
		}
		// b: first lazily later (key stays t0+10s, deadline t0+32s), then
		// earlier than its key (t0+6s).
		h.m.MachineSeen("b", t0.Add(2*sec), 30*sec)
		h.m.MachineSeen("b", t0.Add(3*sec), 3*sec)
		checkHeap(t, h.m)
		h.stepTo(t0.Add(3 * sec))
		if got := h.prop.ids(); len(got) != 0 {
			t.Fatalf("proposed %v early", got)
		}
		h.step(sec)
		if got := h.prop.ids(); !slices.Equal(got, []string{"a"}) {
			t.Fatalf("at t0+4s: got %v", got)
		}
		h.stepTo(t0.Add(5 * sec))
		if got := h.prop.ids(); len(got) != 1 {
			t.Fatalf("b proposed early: %v", got)
		}
		h.step(sec)
		want := []Expired{
			{ID: "a", LastSeen: t0.Add(sec), Deadline: t0.Add(4 * sec)},
			{ID: "b", LastSeen: t0.Add(3 * sec), Deadline: t0.Add(6 * sec)},
		}
		if got := h.prop.proposed(); !sameExpired(got, want) {
			t.Fatalf("got %v, want %v", got, want)
		}
	})
}

// entryState is one tracked or in-flight entry, for comparing monitors.
type entryState struct {
	id                 string
	lastSeen, dl, key  time.Time
	threshold          time.Duration
	tracked, proposing bool
}

func snapshot(m *Monitor) []entryState {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []entryState
	for id, e := range m.byID {
		out = append(out, entryState{id, e.lastSeen, e.deadline, e.key, e.threshold, true, false})
	}
	for id, e := range m.proposing {
		out = append(out, entryState{id, e.lastSeen, e.deadline, e.key, e.threshold, false, true})
	}
	slices.SortFunc(out, func(a, b entryState) int {
		if c := cmp.Compare(a.id, b.id); c != 0 {
			return c
		}
		return cmp.Compare(b2i(a.proposing), b2i(b.proposing))
	})
	return out
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestMonitor_MachinesSeenEqualsSequenceOfMachineSeen(t *testing.T) {
	for seed := range uint64(10) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			bubble(t, func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, 7))
				batched, bprop := farMonitor(t, 50)
				single, sprop := farMonitor(t, 50)
				// Every third proposal fails, on both, so requeue is exercised.
				for _, p := range []*fakeProposer{bprop, sprop} {
					calls := 0
					p.setHook(func(context.Context, []Expired) error {
						if calls++; calls%3 == 0 {
							return fmt.Errorf("raft: apply timed out")
						}
						return nil
					})
				}
				for range 200 {
					now := time.Now()
					batch := make([]Seen, rng.IntN(30))
					for i := range batch {
						batch[i] = Seen{
							ID:        fmt.Sprintf("x%d", rng.IntN(40)),
							LastSeen:  now.Add(-time.Duration(rng.IntN(20_000)) * time.Millisecond),
							Threshold: time.Duration(rng.IntN(31)) * sec, // 0 is invalid
						}
					}
					batched.MachinesSeen(batch)
					for _, s := range batch {
						single.MachineSeen(s.ID, s.LastSeen, s.Threshold)
					}
					if rng.IntN(4) == 0 {
						id := fmt.Sprintf("x%d", rng.IntN(40))
						batched.MachineGone(id)
						single.MachineGone(id)
					}
					if !slices.Equal(snapshot(batched), snapshot(single)) {
						t.Fatalf("at %v: state differs after a batch of %d", now.Sub(t0), len(batch))
					}
					checkHeap(t, batched)
					d := time.Duration(rng.IntN(3000)) * time.Millisecond
					time.Sleep(d) // both monitors' clock
					batched.check(context.Background())
					single.check(context.Background())
				}
				if b, s := bprop.proposed(), sprop.proposed(); !slices.Equal(b, s) || len(b) == 0 {
					t.Fatalf("proposals differ or none: %d vs %d", len(b), len(s))
				}
			})
		})
	}
}
