package fsm_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lunasentri/lunasentri/fsm"
)

func TestCreateChannel_Table(t *testing.T) {
	tests := []struct {
		name     string
		max      int
		existing []string
		channel  fsm.Channel
		wantErr  error
		want     int
	}{
		{name: "webhook", channel: fsm.Channel{Name: "hook", Type: fsm.ChannelWebhook, URL: "https://x", Secret: "s"}, want: 1},
		{name: "telegram", channel: fsm.Channel{Name: "tg", Type: fsm.ChannelTelegram, ChatID: "1"}, want: 1},
		{name: "with match", channel: fsm.Channel{Name: "m", Type: fsm.ChannelWebhook, Match: map[string]string{"env": "prod"}}, want: 1},
		{name: "duplicate", existing: []string{"hook"}, channel: fsm.Channel{Name: "hook", Type: fsm.ChannelTelegram}, wantErr: fsm.ErrChannelExists, want: 1},
		{name: "unknown type", channel: fsm.Channel{Name: "x", Type: "pigeon"}, wantErr: fsm.ErrBadCommand},
		{name: "no type", channel: fsm.Channel{Name: "x"}, wantErr: fsm.ErrBadCommand},
		{name: "no name", channel: fsm.Channel{Type: fsm.ChannelWebhook}, wantErr: fsm.ErrBadCommand},
		{name: "limit", max: 2, existing: []string{"a", "b"}, channel: fsm.Channel{Name: "c", Type: fsm.ChannelWebhook}, wantErr: fsm.ErrLimit, want: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, fsm.Options{MaxChannels: tt.max})
			for _, n := range tt.existing {
				h.channel(n, fsm.ChannelWebhook, nil)
			}
			res := h.apply(fsm.CmdCreateChannel, fsm.CreateChannel{Channel: tt.channel})
			wantErrIs(t, res.Err, tt.wantErr)
			if got := len(h.f.Channels()); got != tt.want {
				t.Fatalf("%d channels, want %d", got, tt.want)
			}
			if tt.wantErr != nil {
				if res.Channel != nil {
					t.Fatalf("failed create returned %+v", res.Channel)
				}
				return
			}
			c, err := h.f.Channel(tt.channel.Name)
			if err != nil || c.Type != tt.channel.Type || c.Secret != tt.channel.Secret || c.Match == nil {
				t.Fatalf("Channel = %+v, %v", c, err)
			}
			if res.Channel == nil || res.Channel.Name != tt.channel.Name {
				t.Fatalf("result channel %+v", res.Channel)
			}
		})
	}
}

func TestChannels_QueriesReturnCopies(t *testing.T) {
	h := newHarness(t, fsm.Options{})
	h.channel("a", fsm.ChannelWebhook, map[string]string{"env": "prod"})
	h.f.Channels()[0].Match["env"] = "dev"
	c, _ := h.f.Channel("a")
	c.Match["env"] = "dev"
	if c, _ := h.f.Channel("a"); c.Match["env"] != "prod" {
		t.Fatalf("stored match changed to %q by a caller", c.Match["env"])
	}
	if _, err := h.f.Channel("nope"); err != fsm.ErrChannelNotFound {
		t.Fatalf("Channel(nope) = %v", err)
	}
}

func TestDeleteChannel_DropsOnlyItsPending(t *testing.T) {
	h := newHarness(t, fsm.Options{})
	h.channel("a", fsm.ChannelWebhook, nil)
	h.channel("b", fsm.ChannelTelegram, nil)
	h.register("web1", nil, 0)
	h.register("web2", nil, 0)
	ev1, off := h.goOffline(t0, "web1")
	h.record(off, fsm.DeliveryResult{EventID: ev1, Channel: "b", State: fsm.DeliveryFailed, Attempts: 5, LastError: "boom"})
	ev2, _ := h.goOffline(t0, "web2")

	h.ok(fsm.CmdDeleteChannel, fsm.DeleteChannel{Name: "b"})

	if got := deliveryStates(h.event(ev1)); got != "a=pending b=failed" {
		t.Fatalf("ev1 = %q: finished delivery of the deleted channel must stay as history", got)
	}
	if got := deliveryStates(h.event(ev2)); got != "a=pending" {
		t.Fatalf("ev2 = %q", got)
	}
	if got := h.f.Stats().PendingDeliveries; got != 2 {
		t.Fatalf("pending = %d, want 2", got)
	}
	if _, err := h.f.Channel("b"); err != fsm.ErrChannelNotFound {
		t.Fatalf("deleted channel: %v", err)
	}
	// New events no longer go to b.
	ev3, _ := h.goOffline(t0.Add(time.Hour), "web1")
	if got := deliveryStates(h.event(ev3)); got != "a=pending" {
		t.Fatalf("ev3 = %q", got)
	}
	res := h.apply(fsm.CmdDeleteChannel, fsm.DeleteChannel{Name: "b"})
	wantErrIs(t, res.Err, fsm.ErrChannelNotFound)
}

func TestChannelMatch_OnlyMachinesWithAllPairs(t *testing.T) {
	h := newHarness(t, fsm.Options{})
	h.channel("all", fsm.ChannelWebhook, nil)
	h.channel("prod-eu", fsm.ChannelWebhook, map[string]string{"env": "prod", "region": "eu"})
	h.channel("prod", fsm.ChannelTelegram, map[string]string{"env": "prod"})
	tests := []struct {
		labels map[string]string
		want   string
	}{
		{nil, "all=pending"},
		{map[string]string{"env": "prod"}, "all=pending prod=pending"},
		{map[string]string{"env": "prod", "region": "eu", "x": "y"}, "all=pending prod=pending prod-eu=pending"},
		{map[string]string{"env": "prod", "region": "us"}, "all=pending prod=pending"},
		{map[string]string{"env": "dev", "region": "eu"}, "all=pending"},
		{map[string]string{"region": "eu"}, "all=pending"},
	}
	for i, tt := range tests {
		name := fmt.Sprintf("m%d", i)
		h.register(name, tt.labels, 0)
		ev, _ := h.goOffline(t0, name)
		if got := deliveryStates(h.event(ev)); got != tt.want {
			t.Errorf("labels %v: deliveries %q, want %q", tt.labels, got, tt.want)
		}
	}
}

func TestRecordDeliveries_Lifecycle(t *testing.T) {
	h := newHarness(t, fsm.Options{})
	h.channel("a", fsm.ChannelWebhook, nil)
	h.channel("b", fsm.ChannelTelegram, nil)
	h.register("web1", nil, 0)
	ev, off := h.goOffline(t0, "web1")
	get := func(ch string) fsm.Delivery {
		t.Helper()
		for _, d := range h.event(ev).Deliveries {
			if d.Channel == ch {
				return d
			}
		}
		t.Fatalf("no delivery for %s", ch)
		return fsm.Delivery{}
	}
	steps := []struct {
		name   string
		result fsm.DeliveryResult
		want   fsm.Delivery // Channel, State, Attempts, LastError compared
		at     time.Time    // expected UpdatedAt
	}{
		{"attempt while pending", fsm.DeliveryResult{Channel: "a", State: fsm.DeliveryPending, Attempts: 2, LastError: "503"},
			fsm.Delivery{Channel: "a", State: fsm.DeliveryPending, Attempts: 2, LastError: "503"}, off.Add(1 * time.Second)},
		{"attempts never go back", fsm.DeliveryResult{Channel: "a", State: fsm.DeliveryPending, Attempts: 1, LastError: "timeout"},
			fsm.Delivery{Channel: "a", State: fsm.DeliveryPending, Attempts: 2, LastError: "timeout"}, off.Add(2 * time.Second)},
		{"delivered", fsm.DeliveryResult{Channel: "a", State: fsm.DeliveryDelivered, Attempts: 3},
			fsm.Delivery{Channel: "a", State: fsm.DeliveryDelivered, Attempts: 3}, off.Add(3 * time.Second)},
		{"second result for a finished delivery", fsm.DeliveryResult{Channel: "a", State: fsm.DeliveryFailed, Attempts: 9, LastError: "late"},
			fsm.Delivery{Channel: "a", State: fsm.DeliveryDelivered, Attempts: 3}, off.Add(3 * time.Second)},
		{"failed", fsm.DeliveryResult{Channel: "b", State: fsm.DeliveryFailed, Attempts: 5, LastError: "400 bad request"},
			fsm.Delivery{Channel: "b", State: fsm.DeliveryFailed, Attempts: 5, LastError: "400 bad request"}, off.Add(5 * time.Second)},
		{"pending after failed", fsm.DeliveryResult{Channel: "b", State: fsm.DeliveryPending, Attempts: 6},
			fsm.Delivery{Channel: "b", State: fsm.DeliveryFailed, Attempts: 5, LastError: "400 bad request"}, off.Add(5 * time.Second)},
	}
	for i, s := range steps {
		s.result.EventID = ev
		h.record(off.Add(time.Duration(i+1)*time.Second), s.result)
		d := get(s.want.Channel)
		if d.State != s.want.State || d.Attempts != s.want.Attempts || d.LastError != s.want.LastError || !d.UpdatedAt.Equal(s.at) {
			t.Fatalf("%s: delivery = %+v, want %+v updated %v", s.name, d, s.want, s.at)
		}
	}
	if h.f.Stats().PendingDeliveries != 0 || len(h.f.PendingDeliveries()) != 0 {
		t.Fatal("finished deliveries still pending")
	}
}

func TestRecordDeliveries_UnknownEventOrChannelIgnored(t *testing.T) {
	h := newHarness(t, fsm.Options{})
	h.channel("a", fsm.ChannelWebhook, nil)
	h.register("web1", nil, 0)
	ev, off := h.goOffline(t0, "web1")
	before := persist(t, h.f)
	h.record(off,
		fsm.DeliveryResult{EventID: "ev-999-0", Channel: "a", State: fsm.DeliveryDelivered},
		fsm.DeliveryResult{EventID: ev, Channel: "nope", State: fsm.DeliveryDelivered},
	)
	if string(persist(t, h.f)) != string(before) {
		t.Fatal("results for unknown events or channels changed the state")
	}
}

func TestOutbox_FullRecordsFailedAndCounts(t *testing.T) {
	h := newHarness(t, fsm.Options{MaxPendingDeliveries: 3})
	h.channel("a", fsm.ChannelWebhook, nil)
	h.channel("b", fsm.ChannelWebhook, nil)
	h.register("x", nil, 0)
	h.register("y", nil, 0)
	evX, off := h.goOffline(t0, "x") // a, b pending: 2
	evY, _ := h.goOffline(t0, "y")   // a pending (3), b over the limit
	if got := deliveryStates(h.event(evX)); got != "a=pending b=pending" {
		t.Fatalf("x = %q", got)
	}
	y := h.event(evY)
	if got := deliveryStates(y); got != "a=pending b=failed" {
		t.Fatalf("y = %q, want the over-limit delivery failed", got)
	}
	if !strings.Contains(y.Deliveries[1].LastError, "outbox full") {
		t.Fatalf("last_error = %q", y.Deliveries[1].LastError)
	}
	st := h.f.Stats()
	if st.DeliveriesDropped != 1 || st.PendingDeliveries != 3 {
		t.Fatalf("stats = %+v", st)
	}
	// Room again for one once one finishes.
	h.record(off, fsm.DeliveryResult{EventID: evX, Channel: "a", State: fsm.DeliveryDelivered})
	back := off.Add(time.Hour)
	ev := h.beat(back, back, "x").Events[0]
	if got := deliveryStates(h.event(ev)); got != "a=pending b=failed" {
		t.Fatalf("after one finished: %q", got)
	}
	if st := h.f.Stats(); st.DeliveriesDropped != 2 || st.PendingDeliveries != 3 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestEventHistory_BoundedNeverEvictsPending(t *testing.T) {
	h := newHarness(t, fsm.Options{MaxEvents: 3})
	h.channel("a", fsm.ChannelWebhook, map[string]string{"alert": "yes"})
	h.register("quiet", nil, 0)                              // its events have no deliveries
	h.register("loud", map[string]string{"alert": "yes"}, 0) // its events stay pending
	at := t0
	for range 3 {
		_, off := h.goOffline(at, "loud")
		at = off.Add(time.Minute)
	}
	// 3 offline and 2 online events, all pending, over MaxEvents 3.
	pending := h.f.Events(0)
	if len(pending) != 5 {
		t.Fatalf("%d events, want all 5 pending ones kept over MaxEvents 3", len(pending))
	}
	// Finish them, oldest first: the history shrinks back to the bound.
	for i := len(pending) - 1; i >= 0; i-- {
		h.record(at, fsm.DeliveryResult{EventID: pending[i].ID, Channel: "a", State: fsm.DeliveryDelivered})
	}
	got := h.f.Events(0)
	if len(got) != 3 || got[2].ID != pending[2].ID {
		t.Fatalf("%d events after all finished, want the newest 3", len(got))
	}
	for range 5 {
		_, off := h.goOffline(at, "quiet")
		at = off.Add(time.Minute)
	}
	if got := h.f.Stats().Events; got != 3 {
		t.Fatalf("%d events, want 3", got)
	}
}

// Options.MaxEvents bounds finished events (invariant 7: nothing unbounded).
// One event stuck pending at the head of the history (its channel's receiver
// is down, the leader keeps retrying) must not stop the finished events
// behind it from being evicted.
func TestEventHistory_FinishedBehindPendingAreEvicted(t *testing.T) {
	h := newHarness(t, fsm.Options{MaxEvents: 3})
	h.channel("a", fsm.ChannelWebhook, map[string]string{"alert": "yes"})
	h.register("loud", map[string]string{"alert": "yes"}, 0)
	h.register("quiet", nil, 0)
	stuck, at := h.goOffline(t0, "loud")
	for range 50 {
		_, off := h.goOffline(at, "quiet")
		at = off.Add(time.Minute)
	}
	if _, ok := h.f.Event(stuck); !ok {
		t.Fatal("pending event evicted")
	}
	if got := h.f.Stats().Events; got > 3 {
		t.Fatalf("%d events kept with MaxEvents 3 and one pending: history is unbounded behind a pending event", got)
	}
}

func TestEvents_LimitNewestFirst(t *testing.T) {
	h := newHarness(t, fsm.Options{})
	h.register("web1", nil, 0)
	var ids []string
	at := t0
	for range 3 {
		ev, off := h.goOffline(at, "web1")
		at = off.Add(time.Minute)
		ids = append(ids, ev, h.beat(at, at, "web1").Events[0])
	}
	check := func(limit int, want []string) {
		t.Helper()
		got := h.f.Events(limit)
		if len(got) != len(want) {
			t.Fatalf("Events(%d) returned %d, want %d", limit, len(got), len(want))
		}
		for i := range want {
			if got[i].ID != want[i] {
				t.Fatalf("Events(%d)[%d] = %s, want %s", limit, i, got[i].ID, want[i])
			}
		}
	}
	rev := []string{ids[5], ids[4], ids[3], ids[2], ids[1], ids[0]}
	check(0, rev)
	check(-1, rev)
	check(2, rev[:2])
	check(6, rev)
	check(100, rev)
	if ev := h.event(ids[0]); ev.Type != fsm.EventOffline || h.event(ids[1]).Type != fsm.EventOnline {
		t.Fatal("event types")
	}
}

func TestPendingDeliveries_OldestFirst(t *testing.T) {
	h := newHarness(t, fsm.Options{})
	h.channel("b", fsm.ChannelWebhook, nil)
	h.channel("a", fsm.ChannelWebhook, nil)
	h.register("x", nil, 0)
	h.register("y", nil, 0)
	evX, off := h.goOffline(t0, "x")
	evY, _ := h.goOffline(off, "y")
	var got []string
	for _, p := range h.f.PendingDeliveries() {
		got = append(got, p.Event.ID+"/"+p.Delivery.Channel)
	}
	want := []string{evX + "/a", evX + "/b", evY + "/a", evY + "/b"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("PendingDeliveries = %v, want %v", got, want)
	}
}
