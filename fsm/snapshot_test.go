package fsm_test

import (
	"bytes"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lunasentri/lunasentri/fsm"
)

// richState builds state that touches every field a snapshot carries:
// unknown/online/offline machines, labels, overrides, a rotated key,
// channels with and without match, pending/delivered/failed deliveries, an
// outbox-full drop and every counter.
func richState(t *testing.T, obs fsm.Observer) (*harness, []string) {
	t.Helper()
	h := newHarness(t, fsm.Options{MaxPendingDeliveries: 3, Observer: obs})
	h.channel("hook", fsm.ChannelWebhook, nil)
	h.channel("tg-prod", fsm.ChannelTelegram, map[string]string{"env": "prod"})
	h.register("db1", map[string]string{"env": "prod", "role": "db"}, 5*time.Minute)
	h.register("web1", map[string]string{"env": "prod"}, 0)
	h.register("web2", nil, 0)
	h.register("new", nil, 0)
	h.ok(fsm.CmdRotateKey, fsm.RotateKey{Name: "web2", KeyHash: fsm.HashKey("rotated")})
	ev1, off := h.goOffline(t0, "web1")
	h.record(off, fsm.DeliveryResult{EventID: ev1, Channel: "hook", State: fsm.DeliveryDelivered, Attempts: 1},
		fsm.DeliveryResult{EventID: ev1, Channel: "tg-prod", State: fsm.DeliveryFailed, Attempts: 5, LastError: "403"})
	back := off.Add(90 * time.Second)
	h.beat(back, back.Add(-time.Second), "web1", "web2")
	h.goOffline(t0, "db1")
	h.record(back, fsm.DeliveryResult{EventID: h.f.PendingDeliveries()[0].Event.ID, Channel: "hook", Attempts: 2, LastError: "503"})
	if h.f.Stats().DeliveriesDropped == 0 {
		t.Fatal("rich state has no dropped delivery")
	}
	return h, []string{keyOf("db1"), keyOf("web1"), keyOf("web2"), "rotated", keyOf("new"), "nope"}
}

// view is everything the queries answer.
type view struct {
	Machines []fsm.Machine
	Online   []fsm.Liveness
	Channels []fsm.Channel
	Events   []fsm.Event
	Pending  []fsm.PendingDelivery
	Stats    fsm.Stats
	Auth     []string
}

func viewOf(f *fsm.FSM, keys []string) view {
	v := view{Machines: f.Machines(""), Online: f.OnlineMachines(), Channels: f.Channels(),
		Events: f.Events(0), Pending: f.PendingDeliveries(), Stats: f.Stats()}
	slices.SortFunc(v.Online, func(a, b fsm.Liveness) int { return strings.Compare(a.ID, b.ID) })
	for _, k := range keys {
		id, ok := f.Authenticate(k)
		if !ok {
			id = "-"
		}
		v.Auth = append(v.Auth, id)
	}
	return v
}

func TestSnapshot_RestoreRoundTrip(t *testing.T) {
	h, keys := richState(t, nil)
	data := persist(t, h.f)
	if !bytes.HasPrefix(data, []byte(`{"format":"lunasentri-fsm","version":2,`)) {
		t.Fatalf("snapshot header: %.80s", data)
	}

	obs := &recObserver{}
	h2 := newHarness(t, fsm.Options{MaxPendingDeliveries: 3, Observer: obs})
	h2.idx = h.idx
	if err := restore(h2.f, data); err != nil {
		t.Fatal(err)
	}
	if err := h2.f.CheckInvariants(); err != nil {
		t.Fatalf("after restore: %v", err)
	}
	if _, _, _, restored := obs.take(); restored != 1 {
		t.Fatalf("Observer.Restored called %d times", restored)
	}
	if again := persist(t, h2.f); !bytes.Equal(again, data) {
		t.Fatalf("re-persisted snapshot differs:\n%s\n---\n%s", data, again)
	}
	if a, b := viewOf(h.f, keys), viewOf(h2.f, keys); !reflect.DeepEqual(a, b) {
		t.Fatalf("queries differ after restore:\n%+v\n---\n%+v", a, b)
	}

	// The restored replica goes on exactly like the original.
	for _, x := range []*harness{h, h2} {
		pd := x.f.PendingDeliveries()
		x.record(t0.Add(time.Hour), fsm.DeliveryResult{EventID: pd[0].Event.ID, Channel: pd[0].Delivery.Channel, State: fsm.DeliveryDelivered})
		x.goOffline(t0.Add(time.Hour), "web2")
		x.beat(t0.Add(2*time.Hour), t0.Add(2*time.Hour), "db1", "new")
		x.ok(fsm.CmdDeleteChannel, fsm.DeleteChannel{Name: "tg-prod"})
		x.ok(fsm.CmdDeleteMachine, fsm.DeleteMachine{Name: "web1"})
	}
	if a, b := persist(t, h.f), persist(t, h2.f); !bytes.Equal(a, b) {
		t.Fatalf("original and restored replicas diverged:\n%s\n---\n%s", a, b)
	}
}

func TestRestore_ReplacesAllState(t *testing.T) {
	h, _ := richState(t, nil)
	data := persist(t, h.f)
	other := newHarness(t, fsm.Options{})
	other.channel("old", fsm.ChannelWebhook, nil)
	other.register("old", nil, 0)
	other.goOffline(t0, "old")
	if err := restore(other.f, data); err != nil {
		t.Fatal(err)
	}
	if _, ok := other.f.Authenticate(keyOf("old")); ok {
		t.Fatal("key of a machine not in the snapshot still authenticates")
	}
	if !bytes.Equal(persist(t, other.f), data) {
		t.Fatal("restore into a non-empty FSM kept old state")
	}
}

func TestRestore_BadSnapshotLeavesStateUntouched(t *testing.T) {
	h0, _ := richState(t, nil)
	good := persist(t, h0.f)
	firstLine := bytes.IndexByte(good, '\n') + 1
	tests := []struct {
		name string
		data string
	}{
		{"empty", ""},
		{"garbage", "this is not a snapshot"},
		{"binary", "\x00\x01\x02\xff"},
		{"json but not a header", `[1,2,3]`},
		{"wrong format", `{"format":"consul-fsm","version":1}`},
		{"no format", `{"version":1,"machines":0}`},
		{"newer version", `{"format":"lunasentri-fsm","version":3,"machines":0,"channels":0,"events":0}`},
		{"truncated after header", string(good[:firstLine])},
		{"truncated mid-record", string(good[:firstLine+40])},
		{"truncated last line", string(good[:len(good)-10])},
		{"counts larger than records", strings.Replace(string(good), `"events":`, `"events":9`, 1)},
		{"bad record", `{"format":"lunasentri-fsm","version":1,"machines":1}` + "\n" + `{"id":7}`},
		{"negative count", `{"format":"lunasentri-fsm","version":1,"machines":-1,"channels":0,"events":0}`},
		{"absurd count", `{"format":"lunasentri-fsm","version":1,"machines":1125899906842624,"channels":0,"events":0}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obs := &recObserver{}
			h, keys := richState(t, obs)
			before, beforeView := persist(t, h.f), viewOf(h.f, keys)
			obs.take()
			err := restore(h.f, []byte(tt.data))
			if err == nil {
				t.Fatal("Restore succeeded")
			}
			if strings.Contains(err.Error(), "panicked") {
				t.Fatal(err)
			}
			if !bytes.Equal(persist(t, h.f), before) || !reflect.DeepEqual(viewOf(h.f, keys), beforeView) {
				t.Fatalf("failed restore (%v) changed the state", err)
			}
			if err := h.f.CheckInvariants(); err != nil {
				t.Fatal(err)
			}
			if _, _, _, restored := obs.take(); restored != 0 {
				t.Fatal("Observer.Restored called for a failed restore")
			}
		})
	}
}

func TestRestore_OlderVersionAndUnknownFieldsAccepted(t *testing.T) {
	// A snapshot from the first release, plus a field a later minor
	// release might add: both must load.
	data := `{"format":"lunasentri-fsm","version":1,"counters":{"transitions_offline":3},"machines":1,"channels":0,"events":0,"future":true}` + "\n" +
		`{"id":"m1","name":"web1","labels":null,"key_hash":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32],"status":"online","last_seen":"2030-01-02T03:04:05Z","later":"x"}` + "\n"
	f := fsm.New(fsm.Options{})
	if err := restore(f, []byte(data)); err != nil {
		t.Fatal(err)
	}
	if err := f.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
	st := f.Stats()
	if st.TransitionsOffline != 3 || st.Machines[fsm.StatusOnline] != 1 {
		t.Fatalf("stats = %+v", st)
	}
	if m, err := f.MachineByName("web1"); err != nil || len(m.Labels) != 0 {
		t.Fatalf("machine = %+v, %v", m, err)
	}
}

func TestSnapshot_IsolatedFromLaterApplies(t *testing.T) {
	h, _ := richState(t, nil)
	want := persist(t, h.f)
	snap, err := h.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	for _, p := range h.f.PendingDeliveries() {
		h.record(t0.Add(time.Hour), fsm.DeliveryResult{EventID: p.Event.ID, Channel: p.Delivery.Channel, State: fsm.DeliveryDelivered})
	}
	h.ok(fsm.CmdRotateKey, fsm.RotateKey{Name: "db1", KeyHash: fsm.HashKey("k9")})
	h.beat(t0.Add(2*time.Hour), t0.Add(2*time.Hour), "web1", "web2", "new")
	h.ok(fsm.CmdDeleteChannel, fsm.DeleteChannel{Name: "hook"})
	h.ok(fsm.CmdDeleteMachine, fsm.DeleteMachine{Name: "web1"})
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sink.Bytes(), want) {
		t.Fatal("a snapshot changed after it was taken")
	}
}

func TestSnapshot_PersistErrorCancelsSink(t *testing.T) {
	h, _ := richState(t, nil)
	snap, err := h.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	boom := errors.New("disk full")
	sink := &memSink{failWrites: boom}
	if err := snap.Persist(sink); !errors.Is(err, boom) {
		t.Fatalf("Persist = %v, want %v", err, boom)
	}
	if !sink.cancelled || sink.closed {
		t.Fatalf("cancelled=%v closed=%v, want cancelled only", sink.cancelled, sink.closed)
	}
}

func TestSnapshot_EqualStatesPersistIdentically(t *testing.T) {
	// Same state reached through a different map history: channels and
	// machines created in another order.
	a := newHarness(t, fsm.Options{})
	b := newHarness(t, fsm.Options{})
	for _, n := range []string{"c", "a", "b"} {
		a.register(n, map[string]string{"z": "1", "a": "2", n: n}, 0)
		a.channel(n, fsm.ChannelWebhook, map[string]string{"z": "1", "a": "2"})
	}
	for _, n := range []string{"b", "c", "a"} {
		b.register(n, map[string]string{n: n, "a": "2", "z": "1"}, 0)
		b.channel(n, fsm.ChannelWebhook, map[string]string{"a": "2", "z": "1"})
	}
	if !bytes.Equal(persist(t, a.f), persist(t, b.f)) {
		t.Fatal("equal states persisted differently")
	}
}
