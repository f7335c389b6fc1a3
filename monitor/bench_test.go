package monitor

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// loadedMonitor returns an active Monitor tracking n machines whose
// deadlines are spread over the next hour, none due at t0. clock is nil (the
// real one) inside a bubble, stoppedClock{} in a benchmark.
func loadedMonitor(tb testing.TB, n int, clock Clock) (*Monitor, *fakeProposer) {
	tb.Helper()
	prop := &fakeProposer{}
	m, err := New(Options{Clock: clock, Source: &fakeSource{}, Proposer: prop, FailoverGrace: time.Nanosecond})
	if err != nil {
		tb.Fatal(err)
	}
	if err := m.start(); err != nil {
		tb.Fatal(err)
	}
	m.load(nil)
	for i := range n {
		m.MachineSeen(fmt.Sprintf("m%d", i), t0.Add(time.Duration(i%3600)*time.Second), time.Minute)
	}
	tb.Cleanup(m.stop)
	return m, prop
}

func TestMonitor_TickWorkIsProportionalToExpired(t *testing.T) {
	bubble(t, func(t *testing.T) {
		const n = 100_000
		m, prop := loadedMonitor(t, n, nil)
		// Ten machines whose deadline has passed.
		for i := range 10 {
			m.MachineSeen(fmt.Sprintf("due%d", i), t0.Add(-time.Hour), time.Minute)
		}
		time.Sleep(time.Second)
		m.mu.Lock()
		m.heap.ops = 0
		m.mu.Unlock()
		m.check(context.Background())
		if got := len(prop.proposed()); got != 10 {
			t.Fatalf("proposed %d, want 10", got)
		}
		m.mu.Lock()
		ops := m.heap.ops
		m.mu.Unlock()
		// Each pop is at most ~2·log2(n) ≈ 34 comparisons plus ~17 swaps.
		if limit := uint64(10 * 60); ops > limit {
			t.Fatalf("tick did %d heap operations for 10 expired of %d; want <= %d", ops, n, limit)
		}
		t.Logf("%d heap operations for 10 expired among %d machines", ops, n)

		// With nothing due a tick does no heap operation at all.
		m.mu.Lock()
		m.heap.ops = 0
		m.mu.Unlock()
		m.check(context.Background())
		if m.heap.ops != 0 {
			t.Fatalf("idle tick did %d heap operations", m.heap.ops)
		}
	})
}

func benchmarkIdleTick(b *testing.B, n int) {
	m, prop := loadedMonitor(b, n, stoppedClock{})
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		m.check(ctx)
	}
	b.StopTimer()
	if len(prop.proposed()) != 0 {
		b.Fatal("something was due")
	}
}

func BenchmarkTick_100kIdle(b *testing.B) { benchmarkIdleTick(b, 100_000) }
func BenchmarkTick_1MIdle(b *testing.B)   { benchmarkIdleTick(b, 1_000_000) }

func BenchmarkMachineSeen(b *testing.B) {
	const n = 100_000
	m, _ := loadedMonitor(b, n, stoppedClock{})
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("m%d", i)
	}
	ls := t0.Add(2 * time.Hour)
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		ls = ls.Add(time.Millisecond)
		m.MachineSeen(ids[i%n], ls, time.Minute)
		i++
	}
}

func BenchmarkMachineSeen_NotRunning(b *testing.B) {
	m, err := New(Options{Source: &fakeSource{}, Proposer: &fakeProposer{}})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		m.MachineSeen("m", t0, time.Minute)
	}
}

// BenchmarkMachinesSeen_Batch1000 applies heartbeat batches of 1000
// machines (one Raft entry's worth) to a monitor tracking 100k; ns/machine
// is the number to compare with BenchmarkMachineSeen's ns/op.
func BenchmarkMachinesSeen_Batch1000(b *testing.B) {
	const n, size = 100_000, 1000
	m, _ := loadedMonitor(b, n, stoppedClock{})
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("m%d", i)
	}
	batch := make([]Seen, size)
	ls := t0.Add(2 * time.Hour)
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		ls = ls.Add(time.Millisecond)
		for j := range batch {
			batch[j] = Seen{ID: ids[i%n], LastSeen: ls, Threshold: time.Minute}
			i++
		}
		m.MachinesSeen(batch)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/machine")
}
