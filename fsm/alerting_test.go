package fsm_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/lunasentri/lunasentri/fsm"
)

// receiver drains the outbox as a perfect dispatcher would and remembers,
// per (machine name, channel), every status it was told, in order.
type receiver struct {
	told      map[string][]string // "machine/channel" → statuses told
	ids       map[string][]string // the same, the ids that told them
	reminders int
	digests   int
}

func newReceiver() *receiver {
	return &receiver{told: map[string][]string{}, ids: map[string][]string{}}
}

func statusOf(ev fsm.Event) string {
	if ev.Type == fsm.EventOffline {
		return "offline"
	}
	return "online"
}

// drain delivers everything pending. Items pending together are in flight
// together, so the receiver orders them by when they happened, as a real
// receiver reads occurred_at.
func (r *receiver) drain(h *harness, at time.Time) {
	h.t.Helper()
	type item struct {
		at       time.Time
		key, id  string
		status   string
		reminder bool
	}
	var items []item
	var results []fsm.DeliveryResult
	for _, pd := range h.f.PendingDeliveries() {
		items = append(items, item{pd.Event.OccurredAt, pd.Event.Machine.Name + "/" + pd.Delivery.Channel, pd.Event.ID, statusOf(pd.Event), false})
		results = append(results, fsm.DeliveryResult{EventID: pd.Event.ID, Channel: pd.Delivery.Channel, State: fsm.DeliveryDelivered, Attempts: 1})
	}
	for _, n := range h.f.PendingNotices() {
		if n.Kind == fsm.NoticeDigest {
			r.digests++
		}
		for _, ev := range n.Events {
			if ev.Type == fsm.EventFlapping {
				continue
			}
			items = append(items, item{ev.OccurredAt, ev.Machine.Name + "/" + n.Channel, n.ID + ":" + ev.ID, statusOf(ev), ev.Reminder > 0})
		}
		results = append(results, fsm.DeliveryResult{EventID: n.ID, Channel: n.Channel, State: fsm.DeliveryDelivered, Attempts: 1})
	}
	slices.SortStableFunc(items, func(a, b item) int { return a.at.Compare(b.at) })
	for _, it := range items {
		if it.reminder {
			r.reminders++
			continue
		}
		r.told[it.key] = append(r.told[it.key], it.status)
		r.ids[it.key] = append(r.ids[it.key], it.id)
	}
	if len(results) > 0 {
		h.record(at, results...)
	}
}

func (r *receiver) last(machine, channel string) string {
	l := r.told[machine+"/"+channel]
	if len(l) == 0 {
		return "online" // never told anything: the channel assumes healthy
	}
	return l[len(l)-1]
}

func (h *harness) tick(at time.Time, cfg fsm.AlertingConfig) {
	h.t.Helper()
	h.ok(fsm.CmdAlertingTick, fsm.AlertingTick{At: at, Alerting: cfg})
}

func (h *harness) silence(at time.Time, s fsm.Silence) string {
	h.t.Helper()
	if s.StartsAt.IsZero() {
		s.StartsAt = at
	}
	s.CreatedAt, s.Comment = at, "test"
	return h.ok(fsm.CmdCreateSilence, fsm.CreateSilence{Silence: s, At: at}).Silence.ID
}

func TestSilence_HoldsThenReconcilesOnce(t *testing.T) {
	h := newHarness(t, fsm.Options{})
	h.channel("hook", fsm.ChannelWebhook, nil)
	h.register("down", nil, 0)
	h.register("blip", nil, 0)
	rx := newReceiver()
	h.silence(t0, fsm.Silence{ID: "s1", Machines: []string{"down", "blip"}, EndsAt: t0.Add(time.Hour)})

	evDown, at := h.goOffline(t0, "down")
	evBlip, _ := h.goOffline(t0, "blip")
	if got := deliveryStates(h.event(evDown)); got != "hook=silenced" {
		t.Fatalf("offline under silence: %s", got)
	}
	h.beat(at.Add(time.Second), at.Add(time.Second), "blip") // recovers under the silence
	rx.drain(h, at)
	if len(rx.told) != 0 {
		t.Fatalf("sent under a silence: %v", rx.told)
	}
	if h.f.TickDue(at.Add(time.Minute), noFlapDamping) {
		t.Fatal("tick due while the silence still holds")
	}
	res := h.ok(fsm.CmdExpireSilence, fsm.ExpireSilence{ID: "s1", At: at.Add(2 * time.Minute), Alerting: noFlapDamping})
	if res.Silence.StateAt(at.Add(2*time.Minute)) != fsm.SilenceExpired {
		t.Fatal("silence not expired")
	}
	rx.drain(h, at.Add(2*time.Minute))
	if got := rx.told["down/hook"]; len(got) != 1 || got[0] != "offline" {
		t.Fatalf("down told %v, want one offline", got)
	}
	if got := rx.told["blip/hook"]; len(got) != 0 {
		t.Fatalf("blip recovered under the silence, told %v", got)
	}
	if got := deliveryStates(h.event(evDown)); got != "hook=delivered" {
		t.Fatalf("the held event itself is sent late: %s", got)
	}
	_ = evBlip
	// Nothing more to do, ever.
	h.tick(at.Add(time.Hour*2), noFlapDamping)
	rx.drain(h, at.Add(2*time.Hour))
	if len(rx.told["down/hook"]) != 1 {
		t.Fatalf("reconciled twice: %v", rx.told)
	}
}

func TestDigest_StormGroupsIsolatedAlone(t *testing.T) {
	h := newHarness(t, fsm.Options{})
	h.ok(fsm.CmdCreateChannel, fsm.CreateChannel{Channel: fsm.Channel{Name: "hook", Type: fsm.ChannelWebhook, URL: "https://h/x", Secret: "0123456789abcdef",
		Policy: fsm.ChannelPolicy{GroupAfter: 5, GroupWindow: 30 * time.Second, GroupBy: []string{"dc"}}}})
	var marks []fsm.OfflineMark
	for i := range 2500 {
		name := fmt.Sprintf("m%04d", i)
		h.register(name, map[string]string{"dc": fmt.Sprint("dc", i%3)}, 0)
		h.beat(t0, t0, name)
		marks = append(marks, fsm.OfflineMark{ID: machineID(name), LastSeen: t0})
	}
	at := t0.Add(3 * time.Minute)
	h.ok(fsm.CmdMarkOffline, fsm.MarkOffline{At: at, Machines: marks, Alerting: noFlapDamping})
	if n := len(h.f.PendingDeliveries()); n != 0 {
		t.Fatalf("%d singles in a storm of 2500", n)
	}
	// Two full digests are pending at once; the third collects until the
	// window closes.
	if n := len(h.f.PendingNotices()); n != 2 {
		t.Fatalf("pending digests %d, want 2 full ones", n)
	}
	if h.f.TickDue(at.Add(29*time.Second), noFlapDamping) {
		t.Fatal("digest closed before its window")
	}
	h.tick(at.Add(30*time.Second), noFlapDamping)
	ns := h.f.PendingNotices()
	total := 0
	for _, n := range ns {
		if n.Kind != fsm.NoticeDigest || len(n.Events) > fsm.MaxDigestEvents {
			t.Fatalf("notice %s kind %s with %d events", n.ID, n.Kind, len(n.Events))
		}
		total += len(n.Events)
	}
	if len(ns) != 3 || total != 2500 {
		t.Fatalf("%d digests with %d events, want 3 with 2500", len(ns), total)
	}
	ev := h.f.Events(1)[0]
	if ev.Deliveries[0].State != fsm.DeliveryGrouped || ev.Deliveries[0].Digest == "" {
		t.Fatalf("delivery %+v, want grouped with a digest id", ev.Deliveries[0])
	}
	rx := newReceiver()
	rx.drain(h, at.Add(31*time.Second))
	// After a quiet window an isolated transition goes alone, at once.
	h.register("lonely", nil, 0)
	later := at.Add(2 * time.Minute)
	h.beat(later, later, "lonely")
	id, _ := h.goOffline(later, "lonely")
	if got := deliveryStates(h.event(id)); got != "hook=pending" {
		t.Fatalf("isolated transition: %s", got)
	}
}

func TestReminders_DueUntilRecovery(t *testing.T) {
	h := newHarness(t, fsm.Options{})
	h.ok(fsm.CmdCreateChannel, fsm.CreateChannel{Channel: fsm.Channel{Name: "hook", Type: fsm.ChannelWebhook, URL: "https://h/x", Secret: "0123456789abcdef",
		Policy: fsm.ChannelPolicy{RepeatInterval: time.Minute, GroupAfter: 100}}})
	h.register("m", nil, 0)
	rx := newReceiver()
	_, at := h.goOffline(t0, "m")
	rx.drain(h, at)
	if h.f.TickDue(at.Add(59*time.Second), noFlapDamping) {
		t.Fatal("reminder before its interval")
	}
	for i := 1; i <= 3; i++ {
		now := at.Add(time.Duration(i) * time.Minute)
		if !h.f.TickDue(now, noFlapDamping) {
			t.Fatalf("reminder %d not due", i)
		}
		h.tick(now, noFlapDamping)
		ns := h.f.PendingNotices()
		if len(ns) != 1 || ns[0].Events[0].Reminder != i || ns[0].Kind != fsm.NoticeReminder {
			t.Fatalf("reminder %d: %+v", i, ns)
		}
		rx.drain(h, now)
	}
	back := at.Add(3*time.Minute + 30*time.Second)
	h.beat(back, back, "m")
	rx.drain(h, back)
	if h.f.TickDue(back.Add(time.Hour), noFlapDamping) {
		t.Fatal("reminder after recovery")
	}
	if rx.reminders != 3 || rx.last("m", "hook") != "online" {
		t.Fatalf("reminders %d, last %s", rx.reminders, rx.last("m", "hook"))
	}
}

func TestFlapping_OneNoticeThenQuietThenReconciled(t *testing.T) {
	h := newHarness(t, fsm.Options{})
	h.channel("hook", fsm.ChannelWebhook, nil)
	h.register("m", nil, 0)
	cfg := fsm.AlertingConfig{FlapThreshold: 4, FlapWindow: 10 * time.Minute}
	rx := newReceiver()
	at := t0
	h.ok(fsm.CmdHeartbeatBatch, fsm.HeartbeatBatch{At: at, DefaultThreshold: defThreshold, Alerting: cfg, Beats: []fsm.Beat{{ID: machineID("m"), SeenAt: at.UnixNano()}}})
	flapped := 0
	for i := range 6 { // off, on, off, on, off, on
		at = at.Add(defThreshold + time.Second)
		if i%2 == 0 {
			h.ok(fsm.CmdMarkOffline, fsm.MarkOffline{At: at, Alerting: cfg, Machines: []fsm.OfflineMark{{ID: machineID("m"), LastSeen: h.machine("m").LastSeen}}})
		} else {
			h.ok(fsm.CmdHeartbeatBatch, fsm.HeartbeatBatch{At: at, DefaultThreshold: defThreshold, Alerting: cfg, Beats: []fsm.Beat{{ID: machineID("m"), SeenAt: at.UnixNano()}}})
		}
		for _, n := range h.f.PendingNotices() {
			if n.Kind == fsm.NoticeFlapping {
				flapped++
			}
		}
		rx.drain(h, at)
	}
	if flapped != 1 || !h.machine("m").Flapping {
		t.Fatalf("flapping notices %d, flapping %v", flapped, h.machine("m").Flapping)
	}
	// Told: off, on, off (the 4th transition started flapping).
	if got := rx.told["m/hook"]; len(got) != 3 {
		t.Fatalf("told %v", got)
	}
	// Stable (online) for the window: flapping ends, told offline ≠ online → one online.
	stable := at.Add(cfg.FlapWindow)
	if !h.f.TickDue(stable, cfg) {
		t.Fatal("no tick due after the flap window")
	}
	h.tick(stable, cfg)
	rx.drain(h, stable)
	if h.machine("m").Flapping || rx.last("m", "hook") != "online" || len(rx.told["m/hook"]) != 4 {
		t.Fatalf("after stabilising: flapping %v, told %v", h.machine("m").Flapping, rx.told["m/hook"])
	}
}

func TestPauseAndReportedFailure(t *testing.T) {
	h := newHarness(t, fsm.Options{})
	h.channel("hook", fsm.ChannelWebhook, nil)
	h.register("m", nil, 0)
	h.beat(t0, t0, "m")
	h.ok(fsm.CmdPauseMachine, fsm.PauseMachine{Name: "m", At: t0.Add(time.Second)})
	if h.machine("m").Status != fsm.StatusPaused {
		t.Fatal("not paused")
	}
	// Beats while paused are contact, not transitions.
	h.beat(t0.Add(time.Hour), t0.Add(time.Hour), "m")
	if m := h.machine("m"); m.Status != fsm.StatusPaused || !m.LastSeen.Equal(t0.Add(time.Hour)) {
		t.Fatalf("paused machine after a beat: %+v", m)
	}
	res := h.ok(fsm.CmdReportFailure, fsm.ReportFailure{ID: machineID("m"), At: t0.Add(time.Hour), Message: "disk"})
	if len(res.Events) != 0 {
		t.Fatal("a paused machine reported an event")
	}
	h.ok(fsm.CmdResumeMachine, fsm.ResumeMachine{Name: "m", At: t0.Add(2 * time.Hour)})
	if h.machine("m").Status != fsm.StatusUnknown {
		t.Fatal("resume is not unknown")
	}
	now := t0.Add(2*time.Hour + time.Second)
	if r := h.beat(now, now, "m"); len(r.Events) != 0 || h.machine("m").Status != fsm.StatusOnline {
		t.Fatalf("first beat after resume: events %v status %s", r.Events, h.machine("m").Status)
	}
	// A reported failure: offline at once with the reason and message.
	fail := now.Add(time.Second)
	res = h.ok(fsm.CmdReportFailure, fsm.ReportFailure{ID: machineID("m"), At: fail, Message: "backup failed", Alerting: noFlapDamping})
	ev := h.event(res.Events[0])
	if ev.Reason != fsm.ReasonReported || ev.Message != "backup failed" || deliveryStates(ev) != "hook=pending" {
		t.Fatalf("reported event %+v", ev)
	}
	// A beat taken before the failure (shipped late) does not bring it back.
	h.beat(fail.Add(100*time.Millisecond), fail.Add(-100*time.Millisecond), "m")
	if h.machine("m").Status != fsm.StatusOffline {
		t.Fatal("a beat from before the failure brought it back")
	}
	h.beat(fail.Add(time.Second), fail.Add(time.Second), "m")
	if h.machine("m").Status != fsm.StatusOnline {
		t.Fatal("the next plain beat did not bring it back")
	}
}

func TestMaintenanceWindow_CronAcrossDST(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	// Every day 01:30 local for 1h. On 2030-11-03 01:30 happens twice
	// (fall back); on 2030-03-10 02:00–03:00 does not exist.
	s := fsm.Silence{ID: "w", Machines: []string{"m"}, Schedule: "30 1 * * *", Timezone: "America/New_York",
		Duration: time.Hour, StartsAt: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	if err := fsm.CompileSilence(&s); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		at   time.Time
		want bool
	}{
		{time.Date(2030, 3, 9, 1, 29, 0, 0, ny), false},
		{time.Date(2030, 3, 9, 1, 30, 0, 0, ny), true},
		{time.Date(2030, 3, 9, 2, 29, 0, 0, ny), true},
		{time.Date(2030, 3, 9, 2, 30, 0, 0, ny), false},
		// Spring forward: 01:30 EST exists, the hour runs to 03:30 EDT.
		{time.Date(2030, 3, 10, 1, 45, 0, 0, ny), true},
		{time.Date(2030, 3, 10, 3, 29, 0, 0, ny), true},
		{time.Date(2030, 3, 10, 3, 31, 0, 0, ny), false},
		// Fall back: the window opens at the first 01:30 (EDT) and lasts
		// one real hour.
		{time.Date(2030, 11, 3, 5, 29, 0, 0, time.UTC), false}, // 01:29 EDT
		{time.Date(2030, 11, 3, 5, 31, 0, 0, time.UTC), true},  // 01:31 EDT
		{time.Date(2030, 11, 3, 10, 0, 0, 0, time.UTC), false}, // 05:00 EST
		{time.Date(2030, 11, 4, 6, 45, 0, 0, time.UTC), true},  // 01:45 EST the next day
	}
	for _, c := range cases {
		if got := s.ActiveAt(c.at); got != c.want {
			t.Errorf("ActiveAt(%s) = %v, want %v", c.at.In(ny), got, c.want)
		}
	}
	for _, bad := range []fsm.Silence{
		{ID: "x", Machines: []string{"m"}, Schedule: "not cron", Duration: time.Hour, StartsAt: t0},
		{ID: "x", Machines: []string{"m"}, Schedule: "0 3 * * *", Duration: time.Hour, Timezone: "Nowhere/City", StartsAt: t0},
		{ID: "x", Machines: []string{"m"}, Schedule: "0 3 * * *", StartsAt: t0},
		{ID: "x", Schedule: "0 3 * * *", Duration: time.Hour, StartsAt: t0},
		{ID: "x", Machines: []string{"m"}, StartsAt: t0, EndsAt: t0.Add(-time.Hour)},
	} {
		if err := fsm.CompileSilence(&bad); err == nil {
			t.Errorf("CompileSilence(%+v) accepted", bad)
		}
	}
}

// TestReconcile_Property: random interleavings of silences, pauses, flaps
// and transitions. Once every suppression has ended, each channel has been
// told the truth, and never the same status twice in a row.
func TestReconcile_Property(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		h := newHarness(t, fsm.Options{})
		cfg := fsm.AlertingConfig{FlapThreshold: rapid.IntRange(2, 6).Draw(rt, "flapN"), FlapWindow: 5 * time.Minute}
		names := []string{"a", "b", "c"}
		h.ok(fsm.CmdCreateChannel, fsm.CreateChannel{Channel: fsm.Channel{Name: "hook", Type: fsm.ChannelWebhook, URL: "https://h/x", Secret: "0123456789abcdef",
			Policy: fsm.ChannelPolicy{GroupAfter: rapid.IntRange(1, 5).Draw(rt, "groupAfter"), GroupWindow: 20 * time.Second}}})
		for _, n := range names {
			h.register(n, map[string]string{"role": n}, 0)
		}
		rx := newReceiver()
		at := t0
		silences := 0
		for range rapid.IntRange(5, 60).Draw(rt, "steps") {
			at = at.Add(time.Duration(rapid.IntRange(1, 200).Draw(rt, "dt")) * time.Second)
			name := rapid.SampledFrom(names).Draw(rt, "machine")
			m := h.machine(name)
			switch rapid.IntRange(0, 6).Draw(rt, "op") {
			case 0, 1: // beat
				h.ok(fsm.CmdHeartbeatBatch, fsm.HeartbeatBatch{At: at, DefaultThreshold: defThreshold, Alerting: cfg, Beats: []fsm.Beat{{ID: machineID(name), SeenAt: at.UnixNano()}}})
			case 2: // offline
				if m.Status == fsm.StatusOnline {
					h.ok(fsm.CmdMarkOffline, fsm.MarkOffline{At: at, Alerting: cfg, Machines: []fsm.OfflineMark{{ID: m.ID, LastSeen: m.LastSeen}}})
				}
			case 3: // silence
				silences++
				h.silence(at, fsm.Silence{ID: fmt.Sprint("s", silences), Machines: []string{name}, EndsAt: at.Add(time.Duration(rapid.IntRange(1, 600).Draw(rt, "len")) * time.Second)})
			case 4: // expire a silence
				if silences > 0 {
					h.ok(fsm.CmdExpireSilence, fsm.ExpireSilence{ID: fmt.Sprint("s", rapid.IntRange(1, silences).Draw(rt, "which")), At: at, Alerting: cfg})
				}
			case 5: // pause or resume
				if m.Status == fsm.StatusPaused {
					h.ok(fsm.CmdResumeMachine, fsm.ResumeMachine{Name: name, At: at})
				} else if rapid.Bool().Draw(rt, "pause") {
					h.ok(fsm.CmdPauseMachine, fsm.PauseMachine{Name: name, At: at})
				}
			case 6: // reported failure
				h.ok(fsm.CmdReportFailure, fsm.ReportFailure{ID: m.ID, At: at, Alerting: cfg})
			}
			if h.f.TickDue(at, cfg) {
				h.tick(at, cfg)
			}
			rx.drain(h, at)
		}
		// Every suppression ends: resume, silences expire, flapping settles.
		for _, n := range names {
			if h.machine(n).Status == fsm.StatusPaused {
				h.ok(fsm.CmdResumeMachine, fsm.ResumeMachine{Name: n, At: at})
			}
		}
		at = at.Add(24 * time.Hour)
		h.tick(at, cfg)
		rx.drain(h, at)
		at = at.Add(time.Minute)
		h.tick(at, cfg)
		rx.drain(h, at)
		for _, n := range names {
			m := h.machine(n)
			want := "online"
			if m.Status == fsm.StatusUnknown {
				continue // resumed and not heard from since: nothing true to tell yet
			}
			if m.Status == fsm.StatusOffline {
				want = "offline"
			}
			if got := rx.last(n, "hook"); got != want {
				rt.Fatalf("%s is %s, channel last told %s (%v by %v)", n, m.Status, got, rx.told[n+"/hook"], rx.ids[n+"/hook"])
			}
			told := rx.told[n+"/hook"]
			for i := 1; i < len(told); i++ {
				if told[i] == told[i-1] {
					rt.Fatalf("%s: told %s twice in a row: %v", n, told[i], told)
				}
			}
		}
	})
}

// TestReminders_StopWhenTheChannelNoLongerMatches: a channel whose match
// (or the machine's labels) changed so it no longer wants the machine gets
// no more reminders for it.
func TestReminders_StopWhenTheChannelNoLongerMatches(t *testing.T) {
	h := newHarness(t, fsm.Options{})
	ch := fsm.Channel{Name: "hook", Type: fsm.ChannelWebhook, URL: "https://h/x", Secret: "0123456789abcdef",
		Match: map[string]string{"env": "prod"}, Policy: fsm.ChannelPolicy{RepeatInterval: time.Minute, GroupAfter: 100}}
	h.ok(fsm.CmdCreateChannel, fsm.CreateChannel{Channel: ch})
	h.register("m", map[string]string{"env": "prod"}, 0)
	rx := newReceiver()
	_, at := h.goOffline(t0, "m")
	rx.drain(h, at)
	h.tick(at.Add(time.Minute), noFlapDamping)
	rx.drain(h, at.Add(time.Minute))
	if rx.reminders != 1 {
		t.Fatalf("reminders %d, want 1 while it matches", rx.reminders)
	}
	ch.Match = map[string]string{"env": "staging"}
	h.ok(fsm.CmdUpdateChannel, fsm.UpdateChannel{Channel: ch})
	if h.f.TickDue(at.Add(3*time.Minute), noFlapDamping) {
		t.Fatal("a reminder is due for a channel that no longer matches")
	}
	h.tick(at.Add(3*time.Minute), noFlapDamping)
	rx.drain(h, at.Add(3*time.Minute))
	if rx.reminders != 1 {
		t.Fatalf("reminders %d after the channel stopped matching", rx.reminders)
	}
}

// The storm rule counts a Raft entry's transitions once: an entry that
// brings exactly group_after is sent alone, every one of them; one more
// and the whole entry goes into a digest. (It used to count the entry's
// own earlier notifications again: 1 alone, the rest in a digest.)
func TestDigest_EntryOfExactlyGroupAfterIsSentAlone(t *testing.T) {
	for _, tc := range []struct {
		n           int
		alone, held int
	}{{5, 5, 0}, {6, 0, 6}} {
		h := newHarness(t, fsm.Options{})
		h.ok(fsm.CmdCreateChannel, fsm.CreateChannel{Channel: fsm.Channel{Name: "hook", Type: fsm.ChannelWebhook, URL: "https://h/x", Secret: "0123456789abcdef",
			Policy: fsm.ChannelPolicy{GroupAfter: 5, GroupWindow: 30 * time.Second}}})
		var marks []fsm.OfflineMark
		for i := range tc.n {
			name := fmt.Sprintf("m%d", i)
			h.register(name, nil, 0)
			h.beat(t0, t0, name)
			marks = append(marks, fsm.OfflineMark{ID: machineID(name), LastSeen: t0})
		}
		at := t0.Add(3 * time.Minute)
		h.ok(fsm.CmdMarkOffline, fsm.MarkOffline{At: at, Machines: marks, Alerting: noFlapDamping})
		h.tick(at.Add(30*time.Second), noFlapDamping)
		held := 0
		for _, n := range h.f.PendingNotices() {
			held += len(n.Events)
		}
		if alone := len(h.f.PendingDeliveries()); alone != tc.alone || held != tc.held {
			t.Errorf("%d in one entry, group_after 5: %d alone, %d in digests; want %d and %d", tc.n, alone, held, tc.alone, tc.held)
		}
	}
}
