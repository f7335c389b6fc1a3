package server

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// Issue 10 in-process: silences, pause, reported failures and reminders
// over a real three-node cluster, driven through a follower.

type alertingEvent struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	Reason     string          `json:"reason"`
	Message    string          `json:"message"`
	Machine    machineJSON     `json:"machine"`
	Deliveries []notifDelivery `json:"deliveries"`
}

func (tc *testCluster) eventsOf(i int, machine string) []alertingEvent {
	tc.t.Helper()
	var out struct {
		Events []alertingEvent `json:"events"`
	}
	if code := call(tc.t, "GET", tc.url(i)+"/v1/events?limit=1000", testToken, nil, &out); code != http.StatusOK {
		tc.t.Fatalf("GET /v1/events via node%d: %d", i+1, code)
	}
	var mine []alertingEvent
	for _, ev := range out.Events {
		if ev.Machine.Name == machine {
			mine = append(mine, ev)
		}
	}
	return mine
}

// acceptedFor counts accepted webhooks per delivery id whose id starts with
// prefix, for one machine.
func (h *hookReceiver) acceptedFor(machine, prefix string) map[string]int {
	n := map[string]int{}
	for _, r := range h.requests() {
		if r.Status/100 == 2 && r.Machine == machine && strings.HasPrefix(r.DeliveryID, prefix) {
			n[r.DeliveryID]++
		}
	}
	return n
}

func TestAlerting_SilenceHoldsThenExpiringSendsOnce(t *testing.T) {
	hook := newHookReceiver(t, secretAll)
	tc := newTestCluster(t, 3, nil)
	tc.leader()
	f := tc.follower()
	tc.addChannel(f, map[string]any{"type": "webhook", "name": "hook", "url": hook.url(), "secret": hook.secret, "group_after": 100})
	key := tc.register(f, "db-1", map[string]any{"labels": map[string]string{"role": "db"}})
	var sil struct {
		Silence struct {
			ID    string `json:"id"`
			State string `json:"state"`
		} `json:"silence"`
	}
	if code := call(t, "POST", tc.url(f)+"/v1/silences", testToken,
		map[string]any{"matchers": map[string]string{"role": "db"}, "duration": "1h", "comment": "db maintenance"}, &sil); code != http.StatusCreated {
		t.Fatalf("create silence: %d", code)
	}
	if sil.Silence.State != "active" {
		t.Fatalf("new silence state %q, want active", sil.Silence.State)
	}
	stop := tc.beater(key, 200*time.Millisecond)
	waitFor(t, 15*time.Second, "db-1 online", func() bool { return tc.machine(f, "db-1").Status == "online" })
	stop()
	waitFor(t, 20*time.Second, "db-1 offline", func() bool { return tc.machine(f, "db-1").Status == "offline" })
	waitFor(t, 5*time.Second, "the offline recorded as silenced", func() bool {
		evs := tc.eventsOf(f, "db-1")
		return len(evs) == 1 && len(evs[0].Deliveries) == 1 && evs[0].Deliveries[0].State == "silenced"
	})
	if n := len(hook.acceptedFor("db-1", "")); n != 0 {
		t.Fatalf("%d webhooks under an active silence", n)
	}
	offline := tc.eventsOf(f, "db-1")[0]
	if code := call(t, "DELETE", tc.url(f)+"/v1/silences/"+sil.Silence.ID, testToken, nil, nil); code != http.StatusNoContent {
		t.Fatalf("expire silence: %d", code)
	}
	// The outage is still going: the channel hears of it once, with the
	// transition's own delivery id.
	waitFor(t, 10*time.Second, "the held offline delivered", func() bool {
		return hook.acceptedFor("db-1", "")[offline.ID] == 1
	})
	// Another node's replica shows it expired too, once it applied the entry.
	other := tc.follower(f)
	waitFor(t, 5*time.Second, "the silence expired on node "+tc.opts[other].NodeID, func() bool {
		var list struct {
			Silences []struct {
				ID, State string
			} `json:"silences"`
		}
		call(t, "GET", tc.url(other)+"/v1/silences", testToken, nil, &list)
		return len(list.Silences) == 1 && list.Silences[0].State == "expired"
	})
	// Recovery is told as usual, and nothing is sent twice.
	stop = tc.beater(key, 200*time.Millisecond)
	defer stop()
	waitFor(t, 15*time.Second, "db-1 back online", func() bool { return tc.machine(f, "db-1").Status == "online" })
	tc.settledEvents(f, 2, 15*time.Second)
	for id, n := range hook.acceptedFor("db-1", "") {
		if n != 1 {
			t.Errorf("delivery %s accepted %d times", id, n)
		}
	}
	if n := len(hook.acceptedFor("db-1", "")); n != 2 {
		t.Fatalf("%d deliveries for db-1, want the late offline and the online", n)
	}
}

func TestAlerting_PauseStopsDetectionResumeIsQuiet(t *testing.T) {
	hook := newHookReceiver(t, secretAll)
	tc := newTestCluster(t, 3, nil)
	tc.leader()
	f := tc.follower()
	tc.addChannel(f, map[string]any{"type": "webhook", "name": "hook", "url": hook.url(), "secret": hook.secret})
	key := tc.register(f, "web-1", nil)
	stop := tc.beater(key, 200*time.Millisecond)
	waitFor(t, 15*time.Second, "web-1 online", func() bool { return tc.machine(f, "web-1").Status == "online" })
	var out struct {
		Machine machineJSON `json:"machine"`
	}
	if code := call(t, "POST", tc.url(f)+"/v1/machines/web-1/pause", testToken, nil, &out); code != http.StatusOK || out.Machine.Status != "paused" {
		t.Fatalf("pause: %d %+v", code, out.Machine)
	}
	stop()
	// Well past threshold (3s) plus the failover grace floor (5s): still paused.
	deadline := time.Now().Add(3*time.Second + 5*time.Second + time.Second)
	for time.Now().Before(deadline) {
		if s := tc.machine(f, "web-1").Status; s != "paused" {
			t.Fatalf("paused machine became %s", s)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Beats are still accepted while paused.
	if code := tc.beat(f, key); code != http.StatusAccepted {
		t.Fatalf("beat while paused: %d", code)
	}
	if code := call(t, "POST", tc.url(f)+"/v1/machines/web-1/resume", testToken, nil, &out); code != http.StatusOK || out.Machine.Status != "unknown" {
		t.Fatalf("resume: %d %+v", code, out.Machine)
	}
	stop = tc.beater(key, 200*time.Millisecond)
	defer stop()
	waitFor(t, 15*time.Second, "web-1 online after resume", func() bool { return tc.machine(f, "web-1").Status == "online" })
	if evs := tc.eventsOf(f, "web-1"); len(evs) != 0 {
		t.Fatalf("pause and resume made events: %+v", evs)
	}
	if n := len(hook.requests()); n != 0 {
		t.Fatalf("%d webhooks for a paused machine", n)
	}
}

func TestAlerting_ReportedFailureRemindsUntilRecovery(t *testing.T) {
	hook := newHookReceiver(t, secretAll)
	tc := newTestCluster(t, 3, nil)
	tc.leader()
	f := tc.follower()
	tc.addChannel(f, map[string]any{"type": "webhook", "name": "hook", "url": hook.url(), "secret": hook.secret, "repeat_interval": "1s", "group_after": 100})
	key := tc.register(f, "backup", nil)
	if code := tc.beat(f, key); code != http.StatusAccepted {
		t.Fatalf("beat: %d", code)
	}
	waitFor(t, 15*time.Second, "backup online", func() bool { return tc.machine(f, "backup").Status == "online" })
	if code := call(t, "POST", tc.url(f)+"/v1/heartbeat/fail", key, map[string]string{"message": "pg_dump exited 1"}, nil); code != http.StatusAccepted {
		t.Fatalf("fail: %d", code)
	}
	// Offline at once (well before the 3s threshold), with reason and message.
	waitFor(t, 2*time.Second, "backup offline", func() bool { return tc.machine(f, "backup").Status == "offline" })
	evs := tc.eventsOf(f, "backup")
	if len(evs) != 1 || evs[0].Reason != "reported" || evs[0].Message != "pg_dump exited 1" {
		t.Fatalf("events %+v", evs)
	}
	waitFor(t, 10*time.Second, "two reminders", func() bool { return len(hook.acceptedFor("backup", "rm-")) >= 2 })
	for id, n := range hook.acceptedFor("backup", "rm-") {
		if n != 1 {
			t.Errorf("reminder %s accepted %d times", id, n)
		}
	}
	// The next plain beat brings it back; reminders stop.
	if code := tc.beat(f, key); code != http.StatusAccepted {
		t.Fatalf("beat: %d", code)
	}
	waitFor(t, 10*time.Second, "backup online again", func() bool { return tc.machine(f, "backup").Status == "online" })
	tc.settledEvents(f, 2, 10*time.Second)
	reminders := len(hook.acceptedFor("backup", "rm-"))
	// Watch for longer than two repeat intervals plus a flush: no more.
	time.Sleep(3 * time.Second)
	if n := len(hook.acceptedFor("backup", "rm-")); n != reminders {
		t.Fatalf("reminders went on after recovery: %d → %d", reminders, n)
	}
	// The cron-job form of a failure report.
	if code := call(t, "GET", tc.url(f)+"/ping/"+key+"/fail", "", nil, nil); code != http.StatusOK {
		t.Fatalf("GET /ping/KEY/fail: %d", code)
	}
	waitFor(t, 2*time.Second, "backup offline via ping", func() bool { return tc.machine(f, "backup").Status == "offline" })
}
