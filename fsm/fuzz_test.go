package fsm_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/lunasentri/lunasentri/fsm"
)

// Fuzz targets for everything the FSM decodes from outside bytes (issue 11).
// Their seeds run as ordinary tests; CI runs each with -fuzz for a short time.

// applySeeds are framed commands of every type, good and broken.
func applySeeds() [][]byte {
	m := newMachine("web1", map[string]string{"env": "prod"}, time.Minute)
	seeds := [][]byte{
		fsm.MustEncode(fsm.CmdRegisterMachine, fsm.RegisterMachine{Machine: m}),
		fsm.MustEncode(fsm.CmdDeleteMachine, fsm.DeleteMachine{Name: "web1"}),
		fsm.MustEncode(fsm.CmdRotateKey, fsm.RotateKey{Name: "web1", KeyHash: fsm.HashKey("k2")}),
		fsm.MustEncode(fsm.CmdHeartbeatBatch, fsm.HeartbeatBatch{At: t0, DefaultThreshold: time.Minute, Beats: []fsm.Beat{{ID: m.ID, SeenAt: t0.UnixNano()}}}),
		fsm.MustEncode(fsm.CmdMarkOffline, fsm.MarkOffline{At: t0.Add(time.Hour), Machines: []fsm.OfflineMark{{ID: m.ID, LastSeen: t0}}}),
		fsm.MustEncode(fsm.CmdCreateChannel, fsm.CreateChannel{Channel: fsm.Channel{Name: "c", Type: fsm.ChannelWebhook, URL: "https://x"}}),
		fsm.MustEncode(fsm.CmdDeleteChannel, fsm.DeleteChannel{Name: "c"}),
		fsm.MustEncode(fsm.CmdRecordDeliveries, fsm.RecordDeliveries{At: t0, Results: []fsm.DeliveryResult{{EventID: "ev-5-0", Channel: "c", State: fsm.DeliveryDelivered}}}),
		fsm.MustEncode(fsm.CmdCreateToken, fsm.CreateToken{Token: newToken("t1", "n", fsm.RoleRead, "s")}),
		fsm.MustEncode(fsm.CmdDeleteToken, fsm.DeleteToken{ID: "t1"}),
		{}, {0}, {255, '{', '}'}, {byte(fsm.CmdHeartbeatBatch), '['}, {byte(fsm.CmdRegisterMachine), 'n', 'u', 'l', 'l'},
	}
	return seeds
}

// FuzzApply feeds raw log bytes to Apply after a fixed prefix of good
// commands: Apply must never panic, and the invariants must hold after.
func FuzzApply(f *testing.F) {
	for _, s := range applySeeds() {
		f.Add(s)
	}
	prefix := applySeeds()[:6]
	f.Fuzz(func(t *testing.T, data []byte) {
		h := newHarness(t, fsm.Options{MaxEvents: 4, MaxPendingDeliveries: 4})
		for _, p := range prefix {
			h.raw(p)
		}
		res := h.raw(data) // checks invariants
		if res == nil {
			t.Fatal("nil result")
		}
		// The same bytes applied twice in a row keep the invariants too
		// (a replay after a crash).
		h.raw(data)
	})
}

// FuzzRestore feeds arbitrary bytes to Restore: it must never panic, a
// refused restore changes nothing, and an accepted one leaves a state that
// keeps its invariants and snapshots again to something that restores.
func FuzzRestore(f *testing.F) {
	h := newHarness(f, fsm.Options{})
	for _, s := range applySeeds() {
		h.idx++
		h.f.ApplyBytes(h.idx, s)
	}
	h.register("db1", nil, 0)
	h.channel("hook", fsm.ChannelWebhook, nil)
	h.goOffline(t0, "db1")
	h.ok(fsm.CmdCreateToken, fsm.CreateToken{Token: newToken("t9", "wall", fsm.RoleRead, "s9")})
	good := persist(f, h.f)
	f.Add(good)
	f.Add(persist(f, fsm.New(fsm.Options{})))
	lines := bytes.SplitAfter(good, []byte("\n"))
	f.Add(bytes.Join(append(lines[:len(lines)-1:len(lines)-1], lines[len(lines)-2:]...), nil))
	f.Add([]byte(`{"format":"lunasentri-fsm","version":1,"machines":1,"channels":0,"events":0}` + "\n" + `{"id":"a","name":"a","status":"online"}`))
	f.Add([]byte(`{"format":"lunasentri-fsm","version":1,"machines":0,"channels":0,"events":2}` + "\n" + `{"id":"e"}` + "\n" + `{"id":"e"}`))
	f.Add([]byte("{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		target := fsm.New(fsm.Options{MaxEvents: 8, MaxPendingDeliveries: 8, MaxMachines: 64})
		before := persist(t, target)
		if err := restore(target, data); err != nil {
			if !bytes.Equal(persist(t, target), before) {
				t.Fatalf("refused restore (%v) changed state", err)
			}
			return
		}
		if err := target.CheckInvariants(); err != nil {
			t.Fatalf("accepted snapshot breaks invariants: %v", err)
		}
		again := persist(t, target)
		other := fsm.New(fsm.Options{MaxEvents: 8, MaxPendingDeliveries: 8, MaxMachines: 64})
		if err := restore(other, again); err != nil {
			t.Fatalf("our own snapshot of an accepted state is refused: %v", err)
		}
		// Apply keeps working on restored state.
		hh := &harness{t: t, f: target, idx: 1 << 40}
		for _, s := range applySeeds() {
			hh.raw(s)
		}
	})
}

// FuzzKeyHashUnmarshal: any JSON value either decodes to a hash that
// round-trips, or is refused; never a panic.
func FuzzKeyHashUnmarshal(f *testing.F) {
	h := fsm.HashKey("k")
	hexForm, _ := json.Marshal(h)
	f.Add(hexForm)
	f.Add([]byte(`""`))
	f.Add([]byte(`[1,2,3]`))
	arr, _ := json.Marshal([32]int{1, 2, 3, 255})
	f.Add(arr)
	f.Add([]byte(`"zz"`))
	f.Add([]byte(`[256,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,-1]`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var k fsm.KeyHash
		if err := json.Unmarshal(data, &k); err != nil {
			return
		}
		out, err := json.Marshal(k)
		if err != nil {
			t.Fatal(err)
		}
		var back fsm.KeyHash
		if err := json.Unmarshal(out, &back); err != nil || back != k {
			t.Fatalf("round trip of %x: %v", k, err)
		}
	})
}
