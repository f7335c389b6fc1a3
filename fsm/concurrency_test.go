package fsm_test

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lunasentri/lunasentri/fsm"
)

// discardSink is a raft.SnapshotSink that throws the bytes away.
type discardSink struct{ n int64 }

func (s *discardSink) Write(p []byte) (int, error) { s.n += int64(len(p)); return len(p), nil }
func (s *discardSink) Close() error                { return nil }
func (s *discardSink) Cancel() error               { return nil }
func (s *discardSink) ID() string                  { return "discard" }

var _ io.Writer = (*discardSink)(nil)

// Apply runs on Raft's goroutine while the HTTP API authenticates agents
// and answers reads on many others; the race detector checks the locking.
func TestFSM_ConcurrentReadsDuringApply(t *testing.T) {
	const machines = 50
	h := newHarness(t, fsm.Options{MaxEvents: 20})
	h.channel("a", fsm.ChannelWebhook, nil)
	h.channel("b", fsm.ChannelTelegram, map[string]string{"even": "yes"})
	names := make([]string, machines)
	for i := range names {
		names[i] = fmt.Sprintf("m%02d", i)
		labels := map[string]string{}
		if i%2 == 0 {
			labels["even"] = "yes"
		}
		h.register(names[i], labels, 0)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var stopOnce sync.Once
	halt := func() { stopOnce.Do(func() { close(stop) }); wg.Wait() }
	defer halt() // also when the writer fails the test
	var authOK, reads atomic.Int64
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := names[(g*7+i)%machines]
				if _, ok := h.f.Authenticate(keyOf(name)); ok {
					authOK.Add(1)
				}
				switch i % 8 {
				case 0:
					for _, m := range h.f.Machines("") {
						_ = len(m.Labels)
					}
				case 1:
					for _, ev := range h.f.Events(5) {
						_ = len(ev.Deliveries)
					}
				case 2:
					for _, p := range h.f.PendingDeliveries() {
						_ = p.Delivery.State
					}
				case 3:
					_ = h.f.Stats()
					_ = h.f.OnlineMachines()
				case 4:
					_, _ = h.f.MachineByName(name)
					_ = h.f.Channels()
				case 5:
					snap, err := h.f.Snapshot()
					if err == nil {
						_ = snap.Persist(&discardSink{})
						snap.Release()
					}
				default:
					_, _ = h.f.Event(fsm.EventID(uint64(i), 0))
				}
				reads.Add(1)
			}
		}()
	}

	// The writer: flapping machines, deliveries, key rotations, deletes;
	// at least 30 rounds, and on until the readers have read during it
	// (so they overlapped it, however the machine schedules them).
	waitReads(t, &reads, 1)
	readsBefore := reads.Load()
	at := t0
	for round := 0; round < 30 || (reads.Load() == readsBefore && round < 3000); round++ {
		at = at.Add(time.Minute)
		h.beat(at, at, names...)
		marks := fsm.MarkOffline{At: at.Add(defThreshold)}
		for i := round % 3; i < machines; i += 3 {
			marks.Machines = append(marks.Machines, fsm.OfflineMark{ID: machineID(names[i]), LastSeen: at})
		}
		h.ok(fsm.CmdMarkOffline, marks)
		rec := fsm.RecordDeliveries{At: at}
		for _, p := range h.f.PendingDeliveries() {
			rec.Results = append(rec.Results, fsm.DeliveryResult{EventID: p.Event.ID, Channel: p.Delivery.Channel, State: fsm.DeliveryDelivered, Attempts: 1})
		}
		h.ok(fsm.CmdRecordDeliveries, rec)
		victim := names[round%machines]
		h.ok(fsm.CmdRotateKey, fsm.RotateKey{Name: victim, KeyHash: fsm.HashKey(fmt.Sprintf("r%d", round))})
		h.ok(fsm.CmdRotateKey, fsm.RotateKey{Name: victim, KeyHash: fsm.HashKey(keyOf(victim))})
		if round%10 == 9 {
			h.ok(fsm.CmdDeleteMachine, fsm.DeleteMachine{Name: victim})
			h.register(victim, nil, 0)
		}
		if round%10 == 5 {
			data := persist(t, h.f)
			if err := restore(h.f, data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if during := reads.Load() - readsBefore; during == 0 {
		t.Fatal("no read ran while the writer did: the test proved nothing")
	}
	// Let the readers overlap the writer for a while even on a busy machine.
	deadline := time.Now().Add(5 * time.Second)
	for reads.Load() < 1000 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	halt()
	if authOK.Load() == 0 || reads.Load() == 0 {
		t.Fatalf("readers did nothing: auth %d reads %d", authOK.Load(), reads.Load())
	}
	if err := h.f.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
}

// A node installing a snapshot (a follower catching up) keeps serving
// heartbeats: a key that is valid before and after Restore must not be
// refused with a 401 while Restore runs.
func TestAuthenticate_ValidKeyNeverRefusedDuringRestore(t *testing.T) {
	const n = 2000
	f := fsm.New(fsm.Options{})
	for i := range n {
		name := fmt.Sprintf("m%05d", i)
		if res := f.ApplyBytes(uint64(i+1), fsm.MustEncode(fsm.CmdRegisterMachine, fsm.RegisterMachine{Machine: newMachine(name, nil, 0)})); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	data := persist(t, f)
	// The machine Restore re-inserts last has the longest gap.
	key := keyOf(fmt.Sprintf("m%05d", n-1))

	// restores counts Restore calls begun and ended; a check that saw the
	// same odd count before and after ran wholly inside one Restore.
	var refused, checked, inside, restores atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			before := restores.Load()
			if _, ok := f.Authenticate(key); !ok {
				refused.Add(1)
			}
			if before%2 == 1 && restores.Load() == before {
				inside.Add(1)
			}
			checked.Add(1)
		}
	}()
	// Wait until the reader is running, then restore while it checks: at
	// least 10 times, and on until some checks ran inside a Restore.
	waitReads(t, &checked, 1)
	for k := 0; k < 10 || (inside.Load() == 0 && k < 500); k++ {
		restores.Add(1)
		err := restore(f, data)
		restores.Add(1)
		if err != nil {
			t.Error(err)
			break
		}
	}
	close(stop)
	<-done
	if r := refused.Load(); r != 0 {
		t.Fatalf("a valid key was refused %d times (of %d checks) while Restore ran", r, checked.Load())
	}
	if inside.Load() == 0 {
		t.Fatalf("none of %d checks ran while a Restore did: the test proved nothing", checked.Load())
	}
	t.Logf("%d of %d checks ran inside a Restore (%d restores)", inside.Load(), checked.Load(), restores.Load()/2)
}

// waitReads waits (10s at most) until n has reached least.
func waitReads(t *testing.T, n *atomic.Int64, least int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for n.Load() < least {
		if time.Now().After(deadline) {
			t.Fatalf("the readers did not start within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}
