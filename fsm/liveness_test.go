package fsm_test

import (
	"testing"
	"time"

	"github.com/lunasentri/lunasentri/fsm"
)

func TestHeartbeatBatch_UnknownToOnlineNoEvent(t *testing.T) {
	h := newHarness(t, fsm.Options{})
	h.channel("a", fsm.ChannelWebhook, nil)
	h.register("web1", nil, 0)
	at := t0.Add(time.Minute)
	seen := at.Add(-3 * time.Second)
	res := h.beat(at, seen, "web1")
	if len(res.Events) != 0 || len(h.f.Events(0)) != 0 || h.f.Stats().PendingDeliveries != 0 {
		t.Fatalf("unknown → online made events %v", res.Events)
	}
	m := h.machine("web1")
	if m.Status != fsm.StatusOnline || !m.LastSeen.Equal(seen) || !m.StatusChangedAt.Equal(at) {
		t.Fatalf("machine = %s last_seen %v changed %v", m.Status, m.LastSeen, m.StatusChangedAt)
	}
	if m.LastSeen.Location() != time.UTC {
		t.Fatalf("last_seen location = %v, want UTC", m.LastSeen.Location())
	}
	st := h.f.Stats()
	if st.TransitionsOnline != 0 || st.Machines[fsm.StatusOnline] != 1 || st.Machines[fsm.StatusUnknown] != 0 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestHeartbeatBatch_StaleBeatIgnored(t *testing.T) {
	h := newHarness(t, fsm.Options{})
	h.register("web1", nil, 0)
	newest := t0.Add(10 * time.Second)
	h.beat(newest, newest, "web1")
	for _, seen := range []time.Time{newest, newest.Add(-time.Second)} {
		h.beat(newest.Add(time.Second), seen, "web1")
		if got := h.machine("web1").LastSeen; !got.Equal(newest) {
			t.Fatalf("beat at %v moved last_seen to %v", seen, got)
		}
	}
	h.beat(newest.Add(time.Second), newest.Add(time.Nanosecond), "web1")
	if got := h.machine("web1").LastSeen; !got.Equal(newest.Add(time.Nanosecond)) {
		t.Fatalf("newer beat: last_seen %v", got)
	}
}

func TestHeartbeatBatch_DeletedMachineIgnored(t *testing.T) {
	h := newHarness(t, fsm.Options{})
	h.register("web1", nil, 0)
	h.register("web2", nil, 0)
	h.ok(fsm.CmdDeleteMachine, fsm.DeleteMachine{Name: "web1"})
	res := h.beat(t0, t0, "web1", "web2", "never-registered")
	if len(res.Events) != 0 || h.f.MachineCount() != 1 {
		t.Fatalf("events %v, machines %d", res.Events, h.f.MachineCount())
	}
	if h.machine("web2").Status != fsm.StatusOnline {
		t.Fatal("a beat to a deleted machine spoiled the rest of the batch")
	}
}

func TestHeartbeatBatch_OfflineToOnlineCreatesEvent(t *testing.T) {
	h := newHarness(t, fsm.Options{})
	h.channel("all", fsm.ChannelWebhook, nil)
	h.channel("prod", fsm.ChannelTelegram, map[string]string{"env": "prod"})
	h.channel("dev", fsm.ChannelWebhook, map[string]string{"env": "dev"})
	h.register("web1", map[string]string{"env": "prod"}, 0)
	_, off := h.goOffline(t0, "web1")

	at := off.Add(10 * time.Minute)
	res := h.beat(at, at.Add(-time.Second), "web1")
	if len(res.Events) != 1 || res.Events[0] != fsm.EventID(h.idx, 0) {
		t.Fatalf("events = %v, want [%s]", res.Events, fsm.EventID(h.idx, 0))
	}
	ev := h.event(res.Events[0])
	if ev.Type != fsm.EventOnline || !ev.OccurredAt.Equal(at) || ev.DownFor != 10*time.Minute {
		t.Fatalf("event = %s at %v down %v", ev.Type, ev.OccurredAt, ev.DownFor)
	}
	if ev.Machine.Status != fsm.StatusOnline || ev.Machine.KeyHash != (fsm.KeyHash{}) {
		t.Fatalf("event machine: status %s, key hash kept %v", ev.Machine.Status, ev.Machine.KeyHash != (fsm.KeyHash{}))
	}
	if got := deliveryStates(ev); got != "all=pending prod=pending" {
		t.Fatalf("deliveries = %q, want one pending per matching channel", got)
	}
	for _, d := range ev.Deliveries {
		if d.Attempts != 0 || !d.UpdatedAt.Equal(at) {
			t.Fatalf("delivery %+v", d)
		}
	}
	m := h.machine("web1")
	if m.Status != fsm.StatusOnline || !m.StatusChangedAt.Equal(at) {
		t.Fatalf("machine = %+v", m)
	}
	st := h.f.Stats()
	if st.TransitionsOnline != 1 || st.TransitionsOffline != 1 || st.PendingDeliveries != 4 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestHeartbeatBatch_OfflineStaleBeatStaysOffline(t *testing.T) {
	h := newHarness(t, fsm.Options{})
	h.channel("a", fsm.ChannelWebhook, nil)
	h.register("web1", nil, 0)
	_, off := h.goOffline(t0, "web1")
	pending := h.f.Stats().PendingDeliveries

	at := off.Add(time.Hour)
	seen := at.Add(-defThreshold) // exactly threshold old: stale
	res := h.beat(at, seen, "web1")
	if len(res.Events) != 0 {
		t.Fatalf("stale beat made events %v", res.Events)
	}
	m := h.machine("web1")
	if m.Status != fsm.StatusOffline || !m.StatusChangedAt.Equal(off) {
		t.Fatalf("machine = %s changed %v", m.Status, m.StatusChangedAt)
	}
	st := h.f.Stats()
	if st.TransitionsOnline != 0 || st.PendingDeliveries != pending || len(h.f.Events(0)) != 1 {
		t.Fatalf("stats = %+v", st)
	}
	// One nanosecond fresher than the threshold is news.
	res = h.beat(at, seen.Add(time.Nanosecond), "web1")
	if len(res.Events) != 1 || h.machine("web1").Status != fsm.StatusOnline {
		t.Fatalf("fresh beat: events %v status %s", res.Events, h.machine("web1").Status)
	}
}

func TestHeartbeatBatch_PerMachineThreshold(t *testing.T) {
	tests := []struct {
		name      string
		threshold time.Duration // machine override; 0 = cluster default (2m)
		age       time.Duration // At − seen of the beat reaching the offline machine
		online    bool
	}{
		{"default fresh", 0, time.Minute, true},
		{"default stale", 0, 5 * time.Minute, false},
		{"override longer fresh", 10 * time.Minute, 5 * time.Minute, true},
		{"override longer stale", 10 * time.Minute, 10 * time.Minute, false},
		{"override shorter stale", 30 * time.Second, time.Minute, false},
		{"override shorter fresh", 30 * time.Second, 29 * time.Second, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, fsm.Options{})
			h.register("web1", nil, tt.threshold)
			_, off := h.goOffline(t0, "web1")
			at := off.Add(time.Hour)
			h.beat(at, at.Add(-tt.age), "web1")
			if got := h.machine("web1").Status == fsm.StatusOnline; got != tt.online {
				t.Fatalf("online = %v, want %v", got, tt.online)
			}
		})
	}
}

func TestHeartbeatBatch_FutureSeenClampedToAt(t *testing.T) {
	h := newHarness(t, fsm.Options{})
	h.register("web1", nil, 0)
	at := t0.Add(time.Minute)
	h.beat(at, at.Add(time.Hour), "web1")
	if got := h.machine("web1").LastSeen; !got.Equal(at) {
		t.Fatalf("last_seen = %v, want clamped to %v", got, at)
	}
	// A later batch at the same At with another "future" beat is not newer.
	h.beat(at, at.Add(2*time.Hour), "web1")
	if got := h.machine("web1").LastSeen; !got.Equal(at) {
		t.Fatalf("last_seen = %v, want %v", got, at)
	}
}

func TestHeartbeatBatch_SeveralTransitionsOneEntry(t *testing.T) {
	h := newHarness(t, fsm.Options{})
	h.register("a", nil, 0)
	h.register("b", nil, 0)
	h.register("c", nil, 0)
	h.goOffline(t0, "a")
	_, off := h.goOffline(t0, "b")
	h.beat(off, off, "c")
	at := off.Add(time.Minute)
	res := h.beat(at, at, "a", "c", "b")
	want := []string{fsm.EventID(h.idx, 0), fsm.EventID(h.idx, 1)}
	if len(res.Events) != 2 || res.Events[0] != want[0] || res.Events[1] != want[1] {
		t.Fatalf("events = %v, want %v", res.Events, want)
	}
	if h.event(want[0]).Machine.Name != "a" || h.event(want[1]).Machine.Name != "b" {
		t.Fatal("event ids not in batch order")
	}
}

func TestMarkOffline_OnlineToOffline(t *testing.T) {
	h := newHarness(t, fsm.Options{})
	h.channel("a", fsm.ChannelWebhook, nil)
	h.register("web1", nil, 0)
	h.beat(t0, t0, "web1")
	at := t0.Add(defThreshold + time.Second)
	res := h.markOffline(at, "web1")
	if len(res.Events) != 1 || res.Events[0] != fsm.EventID(h.idx, 0) {
		t.Fatalf("events = %v", res.Events)
	}
	ev := h.event(res.Events[0])
	if ev.Type != fsm.EventOffline || !ev.OccurredAt.Equal(at) || ev.DownFor != 0 ||
		ev.Machine.Status != fsm.StatusOffline || !ev.Machine.LastSeen.Equal(t0) {
		t.Fatalf("event = %+v", ev)
	}
	if got := deliveryStates(ev); got != "a=pending" {
		t.Fatalf("deliveries = %q", got)
	}
	m := h.machine("web1")
	if m.Status != fsm.StatusOffline || !m.StatusChangedAt.Equal(at) || !m.LastSeen.Equal(t0) {
		t.Fatalf("machine = %+v", m)
	}
	st := h.f.Stats()
	if st.TransitionsOffline != 1 || st.Machines[fsm.StatusOffline] != 1 || st.Machines[fsm.StatusOnline] != 0 {
		t.Fatalf("stats = %+v", st)
	}
}

// The fencepost: the leader reads last_seen, a heartbeat batch commits, and
// only then does the leader's MarkOffline commit. It must be a no-op.
func TestMarkOffline_FencepostMismatchIgnored(t *testing.T) {
	h := newHarness(t, fsm.Options{})
	h.channel("a", fsm.ChannelWebhook, nil)
	h.register("web1", nil, 0)
	h.beat(t0, t0, "web1")

	fencepost := h.machine("web1").LastSeen // the leader's monitor reads this...
	later := t0.Add(defThreshold)
	h.beat(later, later, "web1") // ...a batch lands in between...
	res := h.markOfflineAt(later.Add(time.Second), "web1", fencepost)

	if len(res.Events) != 0 {
		t.Fatalf("stale MarkOffline made events %v", res.Events)
	}
	m := h.machine("web1")
	if m.Status != fsm.StatusOnline || !m.LastSeen.Equal(later) {
		t.Fatalf("machine = %s last_seen %v", m.Status, m.LastSeen)
	}
	st := h.f.Stats()
	if st.TransitionsOffline != 0 || st.PendingDeliveries != 0 || st.Events != 0 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestMarkOffline_UnknownOrOfflineIgnored(t *testing.T) {
	h := newHarness(t, fsm.Options{})
	h.channel("a", fsm.ChannelWebhook, nil)
	h.register("new", nil, 0)
	h.register("web1", nil, 0)
	_, off := h.goOffline(t0, "web1")
	fence := h.machine("web1").LastSeen

	res := h.ok(fsm.CmdMarkOffline, fsm.MarkOffline{At: off.Add(time.Minute), Machines: []fsm.OfflineMark{
		{ID: machineID("new")},                   // never seen: stays unknown
		{ID: machineID("new"), LastSeen: t0},     // whatever the fencepost
		{ID: "no-such-machine", LastSeen: t0},    // deleted or bogus
		{ID: machineID("web1"), LastSeen: fence}, // already offline
		{ID: machineID("web1"), LastSeen: fence}, // twice in one entry
	}})
	if len(res.Events) != 0 {
		t.Fatalf("events = %v", res.Events)
	}
	if h.machine("new").Status != fsm.StatusUnknown {
		t.Fatal("unknown machine marked offline")
	}
	if m := h.machine("web1"); !m.StatusChangedAt.Equal(off) {
		t.Fatalf("offline machine's status_changed_at moved to %v", m.StatusChangedAt)
	}
	st := h.f.Stats()
	if st.TransitionsOffline != 1 || st.Events != 1 || st.PendingDeliveries != 1 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestCounters_StatsThroughEveryCommand(t *testing.T) {
	h := newHarness(t, fsm.Options{})
	type want struct{ unknown, online, offline, toOffline, toOnline, pending, events, channels int }
	check := func(step string, w want) {
		t.Helper()
		st := h.f.Stats()
		got := want{st.Machines[fsm.StatusUnknown], st.Machines[fsm.StatusOnline], st.Machines[fsm.StatusOffline],
			int(st.TransitionsOffline), int(st.TransitionsOnline), st.PendingDeliveries, st.Events, st.Channels}
		if got != w {
			t.Fatalf("%s: stats = %+v, want %+v", step, got, w)
		}
		if n := len(h.f.Machines("")); n != w.unknown+w.online+w.offline {
			t.Fatalf("%s: %d machines, counts say %d", step, n, w.unknown+w.online+w.offline)
		}
		if n := len(h.f.PendingDeliveries()); n != w.pending {
			t.Fatalf("%s: %d pending deliveries listed, stats say %d", step, n, w.pending)
		}
	}
	check("empty", want{})
	h.channel("a", fsm.ChannelWebhook, nil)
	check("channel", want{channels: 1})
	h.register("x", nil, 0)
	h.register("y", nil, 0)
	check("register", want{unknown: 2, channels: 1})
	h.beat(t0, t0, "x", "y")
	check("first beats", want{online: 2, channels: 1})
	ev, off := h.goOffline(t0, "x")
	check("offline", want{online: 1, offline: 1, toOffline: 1, pending: 1, events: 1, channels: 1})
	h.beat(off, off, "x")
	check("back online", want{online: 2, toOffline: 1, toOnline: 1, pending: 2, events: 2, channels: 1})
	h.record(off, fsm.DeliveryResult{EventID: ev, Channel: "a", State: fsm.DeliveryDelivered, Attempts: 1})
	check("delivered", want{online: 2, toOffline: 1, toOnline: 1, pending: 1, events: 2, channels: 1})
	h.goOffline(off, "y")
	check("y offline", want{online: 1, offline: 1, toOffline: 2, toOnline: 1, pending: 2, events: 3, channels: 1})
	h.ok(fsm.CmdRotateKey, fsm.RotateKey{Name: "y", KeyHash: fsm.HashKey("new")})
	check("rotate", want{online: 1, offline: 1, toOffline: 2, toOnline: 1, pending: 2, events: 3, channels: 1})
	h.ok(fsm.CmdDeleteMachine, fsm.DeleteMachine{Name: "y"})
	check("delete offline y", want{online: 1, toOffline: 2, toOnline: 1, pending: 1, events: 3, channels: 1})
	h.ok(fsm.CmdDeleteChannel, fsm.DeleteChannel{Name: "a"})
	check("delete channel", want{online: 1, toOffline: 2, toOnline: 1, events: 3})
	h.ok(fsm.CmdDeleteMachine, fsm.DeleteMachine{Name: "x"})
	check("delete online x", want{toOffline: 2, toOnline: 1, events: 3})
}
