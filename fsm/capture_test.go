package fsm_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/lunasentri/lunasentri/fsm"
)

// A snapshot persisted while Apply keeps changing the state, between any
// two shards of its copy, is byte for byte the snapshot of the state at the
// point it was taken (issue 14: snapshots no longer stop Apply).
func TestSnapshot_PersistDuringApplyIsTheStateWhenTaken(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		opts := fsm.Options{MaxEvents: 6, MaxPendingDeliveries: 5, MaxMachines: 5, MaxChannels: 3}
		a := fsm.New(opts)
		g := &cmdGen{f: a, now: t0}
		var log [][]byte
		for i := range rapid.IntRange(0, 60).Draw(t, "before") {
			data := g.next(t)
			a.ApplyBytes(uint64(i+1), data)
			log = append(log, data)
		}
		// The reference: a replica with the same prefix, persisted at once.
		ref := fsm.New(opts)
		for i, data := range log {
			ref.ApplyBytes(uint64(i+1), data)
		}
		want := mustPersist(t, ref)

		// Commands to apply during the copy, at shards drawn up front.
		after := rapid.IntRange(0, 60).Draw(t, "after")
		at := make(map[int]int) // shard → commands applied after it
		for range after {
			at[rapid.IntRange(-1, fsm.MapShards-1).Draw(t, "shard")]++
		}
		idx := uint64(len(log))
		step := func(n int) {
			for range n {
				idx++
				a.ApplyBytes(idx, g.next(t))
				if err := a.CheckInvariants(); err != nil {
					t.Fatalf("during persist: %v", err)
				}
			}
		}
		snap := a.SnapshotWithHook(func(shard int) { step(at[shard]) })
		step(at[-1]) // between Snapshot and Persist
		sink := &memSink{}
		if err := snap.Persist(sink); err != nil {
			t.Fatal(err)
		}
		snap.Release()
		if !bytes.Equal(sink.Bytes(), want) {
			t.Fatalf("snapshot taken after %d commands, persisted during %d more, differs:\n%s\n--- want\n%s", len(log), after, sink.Bytes(), want)
		}
		// Released: the next snapshot is the state now, with nothing stale.
		b := fsm.New(opts)
		if err := restore(b, mustPersist(t, a)); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(mustPersist(t, b), mustPersist(t, a)) {
			t.Fatal("a later snapshot does not round-trip")
		}
	})
}

func mustPersist(t *rapid.T, f *fsm.FSM) []byte {
	b, err := snapshotBytes(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Snapshot copies no machine, and Persist releases the lock between shards:
// Apply runs while a snapshot of many machines is being copied.
func TestSnapshot_ApplyRunsBetweenShards(t *testing.T) {
	h := newHarness(t, fsm.Options{})
	for i := range 2000 {
		h.register(fmt.Sprintf("m%d", i), nil, 0)
	}
	h.beat(t0, t0, "m1")
	applied := 0
	snap := h.f.SnapshotWithHook(func(shard int) {
		if h.f.LockHeld() {
			t.Errorf("the FSM lock is held after shard %d's copy", shard)
		}
		if shard%64 == 0 {
			applied++
			h.beat(t0.Add(time.Duration(shard+1)*time.Second), t0.Add(time.Duration(shard+1)*time.Second), "m1", "m2")
		}
	})
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	if applied != fsm.MapShards/64 {
		t.Fatalf("applied %d batches during the copy", applied)
	}
	if !bytes.Contains(sink.Bytes(), []byte(`"last_seen":"`+t0.Format(time.RFC3339Nano)+`"`)) {
		t.Fatal("the snapshot does not hold m1 as it was when taken")
	}
	if got := h.machine("m1").LastSeen; !got.After(t0) {
		t.Fatalf("m1 last_seen %v: the beats during the copy were lost", got)
	}
}
