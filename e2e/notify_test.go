package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Issue 4 over real processes: every transition reaches Telegram and
// signed webhooks once, survives failover, and a deposed leader sends
// nothing. Receivers are the outside ones in receiver_test.go.

const notifyThreshold = 4 * time.Second

// notifyChannel creates a channel through node i, riding out elections.
func (pc *procCluster) notifyChannel(i int, body map[string]any) {
	pc.t.Helper()
	var code int
	waitFor(pc.t, 10*time.Second, fmt.Sprintf("create channel %v", body["name"]), func() bool {
		code = api("POST", pc.url(i)+"/v1/channels", adminToken, body, nil)
		return code == http.StatusCreated || code == http.StatusConflict
	})
	if code != http.StatusCreated {
		pc.t.Fatalf("create channel %v: %d", body["name"], code)
	}
}

// eventsWhere waits until node i lists events that satisfy ok and returns
// them.
func (pc *procCluster) eventsWhere(i int, timeout time.Duration, what string, ok func([]event) bool) []event {
	pc.t.Helper()
	var evs []event
	waitFor(pc.t, timeout, what, func() bool {
		var got bool
		evs, got = pc.events(i)
		return got && ok(evs)
	})
	return evs
}

// settled: n events, none with a pending delivery.
func settled(n int) func([]event) bool {
	return func(evs []event) bool {
		if len(evs) != n {
			return false
		}
		for _, ev := range evs {
			for _, d := range ev.Deliveries {
				if d.State == "pending" {
					return false
				}
			}
		}
		return true
	}
}

func (pc *procCluster) waitMachineOn(i int, name, want string, timeout time.Duration) {
	pc.t.Helper()
	waitFor(pc.t, timeout, name+" "+want+" on node"+fmt.Sprint(i+1), func() bool {
		m, _ := pc.machine(i, name)
		return m.Status == want
	})
}

// leaderAmong waits until one of nodes leads and the others agree; unlike
// leader it never asks a node outside the list (a frozen one would hang).
func (pc *procCluster) leaderAmong(nodes []int, timeout time.Duration) int {
	pc.t.Helper()
	idx := -1
	waitFor(pc.t, timeout, fmt.Sprintf("a leader among %v", nodes), func() bool {
		idx = -1
		agreed := ""
		for _, i := range nodes {
			s, ok := pc.status(i)
			if !ok || s.LeaderID == "" || (agreed != "" && s.LeaderID != agreed) {
				return false
			}
			agreed = s.LeaderID
			if s.RaftState == "Leader" {
				idx = i
			}
		}
		return idx >= 0
	})
	return idx
}

// TestE2E_NotifyKillLeaderDuringDelivery: the leader is killed (-9) while
// its webhook send is held open by the receiver; the new leader delivers
// the same event with the same delivery id.
func TestE2E_NotifyKillLeaderDuringDelivery(t *testing.T) {
	hook := newWebhookReceiver(t, "e2e-kill-secret-0123456789")
	pc := newProcCluster(t, 3, []string{"-offline-threshold", notifyThreshold.String()})
	leader := pc.leader(30 * time.Second)
	f := pc.follower(leader)
	pc.notifyChannel(f, map[string]any{"type": "webhook", "name": "ops", "url": hook.url(), "secret": hook.secret})
	key := pc.register(f, map[string]any{"name": "web-1", "labels": map[string]string{"env": "prod"}})

	hook.holdNextN(1)
	waitFor(t, 10*time.Second, "web-1 beat", func() bool {
		return api("POST", pc.url(f)+"/v1/heartbeat", key, "{}", nil) == http.StatusAccepted
	})
	waitFor(t, notifyThreshold+20*time.Second, "the offline webhook held at the receiver", func() bool {
		return len(hook.requests()) == 1
	})
	held := hook.requests()[0]
	if held.Event != "machine.offline" || held.Status != 0 {
		t.Fatalf("held request = %+v", held)
	}
	sender := pc.leader(10 * time.Second)
	killedAt := time.Now()
	pc.kill(sender)
	hook.releaseHeld() // only after the sender is gone
	newLeader := pc.leader(20 * time.Second)
	t.Logf("killed node%d with %s in flight; node%d leads after %s", sender+1, held.DeliveryID, newLeader+1, time.Since(killedAt).Round(time.Millisecond))

	waitFor(t, 30*time.Second, "the new leader redelivers "+held.DeliveryID, func() bool {
		for _, s := range hook.requests() {
			if s.DeliveryID == held.DeliveryID && s.Received.After(killedAt) && s.Status == http.StatusOK {
				return true
			}
		}
		return false
	})
	// Back online: the next event goes out once.
	waitFor(t, 10*time.Second, "web-1 beat", func() bool { return pc.beat(key, newLeader) })
	evs := pc.eventsWhere(newLeader, 20*time.Second, "offline and online delivered", settled(2))
	time.Sleep(lateDupWindow) // observation window for late duplicates

	acc := hook.accepted()
	for _, ev := range evs {
		d := ev.Deliveries
		if len(d) != 1 || d[0].State != "delivered" {
			t.Errorf("%s %s deliveries = %+v, want delivered", ev.ID, ev.Type, d)
		}
		t.Logf("%s %-15s accepted %d time(s)", ev.ID, ev.Type, acc[ev.ID])
		switch {
		case ev.ID == held.DeliveryID && (acc[ev.ID] < 1 || acc[ev.ID] > 2):
			t.Errorf("in-flight event %s accepted %d times, want 1 or 2", ev.ID, acc[ev.ID])
		case ev.ID != held.DeliveryID && acc[ev.ID] != 1:
			t.Errorf("event %s accepted %d times, want exactly 1", ev.ID, acc[ev.ID])
		}
	}
	if len(acc) != len(evs) {
		t.Errorf("receiver accepted ids %v, events are %d", acc, len(evs))
	}
	for _, s := range hook.requests() {
		if s.DeliveryID == held.DeliveryID {
			t.Logf("  %s received %s answered %d client gone %v", s.DeliveryID,
				s.Received.Sub(killedAt).Round(time.Millisecond), s.Status, s.ClientGone)
		}
	}
	if bad := hook.badRequests(); len(bad) > 0 {
		t.Errorf("requests with a bad signature or shape: %+v", bad)
	}
}

// TestE2E_NotifyFrozenLeaderSendsNothing: the leader is frozen (SIGSTOP)
// about a second before db-1's deadline, while it also holds a retry of
// flaky-1's offline notification in its backoff heap (that receiver fails
// until the freeze). The other two elect, deliver flaky-1's notification,
// detect db-1 and alert once. Thawed, the old leader sends nothing: not the
// retry it had scheduled, and no second db-1 offline event.
func TestE2E_NotifyFrozenLeaderSendsNothing(t *testing.T) {
	hook := newWebhookReceiver(t, "e2e-frozen-secret-0123456789")
	flaky := newWebhookReceiver(t, "e2e-flaky-secret-0123456789")
	flaky.mu.Lock()
	flaky.failNext = 1 << 20
	flaky.mu.Unlock()
	pc := newProcCluster(t, 3, []string{"-offline-threshold", notifyThreshold.String()})
	leader := pc.leader(30 * time.Second)
	var followers []int
	for i := range pc.procs {
		if i != leader {
			followers = append(followers, i)
		}
	}
	f := followers[0]
	pc.notifyChannel(f, map[string]any{"type": "webhook", "name": "ops", "url": hook.url(), "secret": hook.secret, "match": map[string]string{"role": "db"}})
	pc.notifyChannel(f, map[string]any{"type": "webhook", "name": "flaky", "url": flaky.url(), "secret": flaky.secret, "match": map[string]string{"role": "flaky"}})
	key := pc.register(f, map[string]any{"name": "db-1", "labels": map[string]string{"role": "db"}})
	flakyKey := pc.register(f, map[string]any{"name": "flaky-1", "labels": map[string]string{"role": "flaky"}})

	// Everything beats through the followers only.
	beat := func(key string, n int) bool {
		return api("POST", pc.url(followers[n%2])+"/v1/heartbeat", key, "{}", nil) == http.StatusAccepted
	}
	waitFor(t, 10*time.Second, "flaky-1 beat", func() bool { return beat(flakyKey, 0) })
	n := 0
	waitFor(t, notifyThreshold+20*time.Second, "the leader retrying flaky-1's notification", func() bool {
		n++
		beat(key, n) // db-1 stays alive meanwhile
		return len(flaky.requests()) >= 2
	})
	pc.waitMachineOn(leader, "db-1", "online", 10*time.Second)
	lastSent := time.Now()
	if !beat(key, n+1) {
		t.Fatal("last beat refused")
	}
	// The leader's deadline is at least lastSent+threshold; freeze it
	// before, leaving the checks below processSlack to run.
	time.Sleep(time.Until(lastSent.Add(notifyThreshold - processSlack)))
	if m, _ := pc.machine(leader, "db-1"); m.Status != "online" {
		t.Fatalf("db-1 is %s on the leader before its deadline", m.Status)
	}
	if s, _ := pc.status(leader); s.RaftState != "Leader" {
		t.Fatalf("node%d no longer leads (%s) before the freeze", leader+1, s.RaftState)
	}
	pc.signal(leader, syscall.SIGSTOP)
	frozenAt := time.Now()
	t.Cleanup(func() { pc.signal(leader, syscall.SIGCONT) })
	flaky.mu.Lock()
	flaky.failNext = 0
	failedBefore := len(flaky.seen)
	flaky.mu.Unlock()

	newLeader := pc.leaderAmong(followers, 20*time.Second)
	t.Logf("froze node%d %s before db-1's deadline, after %d failed sends to flaky; node%d leads after %s", leader+1,
		lastSent.Add(notifyThreshold).Sub(frozenAt).Round(time.Millisecond), failedBefore, newLeader+1,
		time.Since(frozenAt).Round(time.Millisecond))
	waitFor(t, 30*time.Second, "db-1's offline delivery from the new leader", func() bool { return len(hook.accepted()) == 1 })
	evs := pc.eventsWhere(newLeader, 20*time.Second, "both events delivered", settled(2))
	if evs[0].Machine.Name != "db-1" || evs[0].Type != "machine.offline" || !evs[0].OccurredAt.After(frozenAt) {
		t.Fatalf("event %+v, want db-1 offline after the freeze at %s", evs[0], frozenAt.UTC())
	}
	flakyBefore := len(flaky.requests())

	pc.signal(leader, syscall.SIGCONT)
	thawedAt := time.Now()
	leaderID := pc.procs[newLeader].name
	waitFor(t, 20*time.Second, "the thawed node follows", func() bool {
		s, ok := pc.status(leader)
		return ok && s.RaftState == "Follower" && s.LeaderID == leaderID
	})
	pc.eventsWhere(leader, 10*time.Second, "the thawed node has the events", settled(2))
	// Observation window: nothing more may reach either receiver.
	for time.Since(thawedAt) < 6*time.Second {
		if n, m := len(hook.requests()), len(flaky.requests()); n != 1 || m != flakyBefore {
			t.Fatalf("after the old leader thawed: ops got %d requests (want 1), flaky %d (want %d)", n, m, flakyBefore)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i := range pc.procs {
		evs := pc.eventsWhere(i, 10*time.Second, "two events", settled(2))
		for _, ev := range evs {
			if len(ev.Deliveries) != 1 || ev.Deliveries[0].State != "delivered" {
				t.Errorf("node%d: %s %s deliveries %+v", i+1, ev.Machine.Name, ev.Type, ev.Deliveries)
			}
		}
		if evs[0].ID != hook.requests()[0].DeliveryID || evs[0].Deliveries[0].Attempts != 1 {
			t.Errorf("node%d: %+v", i+1, evs[0])
		}
	}
	for _, h := range []*webhookReceiver{hook, flaky} {
		if bad := h.badRequests(); len(bad) > 0 {
			t.Errorf("requests with a bad signature or shape: %+v", bad)
		}
	}
	if acc := flaky.accepted(); len(acc) != 1 || acc[evs[1].ID] != 1 {
		t.Errorf("flaky accepted %v, want %s once", acc, evs[1].ID)
	}
	t.Logf("ops accepted %s; flaky accepted %s after %d requests (event records %d attempts)",
		summarize(hook.accepted()), summarize(flaky.accepted()), len(flaky.requests()), evs[1].Deliveries[0].Attempts)
}

// escapeMD escapes text for Telegram MarkdownV2, as the Bot API documents.
func escapeMD(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune("_*[]()~`>#+-=|{}.!\\", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// TestE2E_NotifyDeliveriesMatchGroundTruth runs five machines, some
// labelled, through offline/online cycles with a kill -9 of the leader in
// the middle, and compares what the receivers got with what happened: one
// accepted delivery per transition per matching channel, valid signatures,
// nothing for machines a channel does not match. A duplicate is allowed
// only across the kill (one copy before it, one after, same id).
func TestE2E_NotifyDeliveriesMatchGroundTruth(t *testing.T) {
	const tgToken, tgChat = "654321:E2E-token-abcdefgh", "-1009876543210"
	tg := newTelegramStandin(t, tgToken)
	tg.limitNext = 1 // the first message gets a 429 with retry_after
	hooks := map[string]*webhookReceiver{
		"hook-prod": newWebhookReceiver(t, "e2e-prod-secret-0123456789"),
		"hook-all":  newWebhookReceiver(t, "e2e-all-secret-0123456789"),
		"hook-db":   newWebhookReceiver(t, "e2e-db-secret-0123456789"),
	}
	match := map[string]map[string]string{
		"hook-prod": {"env": "prod"}, "hook-all": {}, "hook-db": {"role": "db"}, "tg-prod": {"env": "prod"},
	}
	labels := map[string]map[string]string{
		"db-1": {"env": "prod", "role": "db"}, "api-1": {"env": "prod"}, "dev-db-1": {"env": "dev", "role": "db"},
		"batch-1": {}, "web-1": {"env": "prod", "role": "web"},
	}
	// This test is about single deliveries: flap damping and digests (which
	// the alerting tests cover) are kept out of the way.
	pc := newProcCluster(t, 3, []string{"-offline-threshold", notifyThreshold.String(), "-flap-threshold", "1000"}, tg.env()...)
	q := pc.leader(30 * time.Second) // the node we read from
	f := pc.follower(q)
	for name, h := range hooks {
		pc.notifyChannel(f, map[string]any{"type": "webhook", "name": name, "url": h.url(), "secret": h.secret, "match": match[name], "group_after": 10000})
	}
	pc.notifyChannel(f, map[string]any{"type": "telegram", "name": "tg-prod", "chat_id": tgChat, "match": match["tg-prod"], "group_after": 10000})
	keys, stops := map[string]string{}, map[string]func(){}
	for name, l := range labels {
		keys[name] = pc.register(f, map[string]any{"name": name, "labels": l})
		stops[name] = pc.beater(keys[name], 500*time.Millisecond)
	}
	defer func() {
		for _, stop := range stops {
			stop()
		}
	}()
	for name := range labels {
		pc.waitMachineOn(q, name, "online", 15*time.Second)
	}

	want := map[string]int{} // "machine type" → transitions
	var killedAt time.Time
	cycle := func(names []string, kill bool) {
		for _, n := range names {
			stops[n]()
		}
		if kill {
			waitFor(t, notifyThreshold+10*time.Second, "the first offline on the leader", func() bool {
				m, _ := pc.machine(q, names[0])
				return m.Status == "offline"
			})
			old := q
			killedAt = time.Now()
			pc.kill(old)
			q = pc.leader(20 * time.Second)
			t.Logf("killed leader node%d as %s went offline; node%d leads after %s", old+1, names[0], q+1, time.Since(killedAt).Round(time.Millisecond))
			pc.restart(old)
		}
		for _, n := range names {
			pc.waitMachineOn(q, n, "offline", notifyThreshold+15*time.Second)
			want[n+" machine.offline"]++
		}
		for _, n := range names {
			stops[n] = pc.beater(keys[n], 500*time.Millisecond)
		}
		for _, n := range names {
			pc.waitMachineOn(q, n, "online", 15*time.Second)
			want[n+" machine.online"]++
		}
	}
	cycle([]string{"db-1", "dev-db-1", "batch-1"}, false)
	cycle([]string{"api-1", "web-1"}, true)
	cycle([]string{"db-1", "web-1"}, false)

	transitions := 0
	for _, n := range want {
		transitions += n
	}
	evs := pc.eventsWhere(q, 30*time.Second, fmt.Sprintf("%d events settled", transitions), settled(transitions))
	time.Sleep(lateDupWindow) // observation window for late duplicates

	// Ground truth: the events are exactly the transitions we caused.
	got := map[string]int{}
	for _, ev := range evs {
		got[ev.Machine.Name+" "+ev.Type]++
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	matches := func(ch, machine string) bool {
		for k, v := range match[ch] {
			if labels[machine][k] != v {
				return false
			}
		}
		return true
	}
	// acrossKill: two copies of one delivery, the first sent by the killed
	// leader, the second by its successor. The successor cannot send before
	// it is elected, a Raft heartbeat timeout after the kill at the
	// earliest, so the split sits halfway: a copy the old leader wrote just
	// before dying may be read by the receiver a little after the kill.
	acrossKill := func(times []time.Time) bool {
		split := killedAt.Add(raftHeartbeatTimeout / 2)
		return len(times) == 2 && times[0].Before(split) && times[1].After(split)
	}
	t.Logf("%-9s %11s %9s %8s %10s %7s", "channel", "transitions", "accepted", "distinct", "duplicates", "refused")
	// check compares what one channel's receiver accepted (times per event
	// id) with the events that match the channel.
	check := func(ch string, acceptedAt map[string][]time.Time, total, refused int) {
		expected, dups := 0, 0
		for _, ev := range evs {
			n := len(acceptedAt[ev.ID])
			if !matches(ch, ev.Machine.Name) {
				if n != 0 {
					t.Errorf("%s got %s (%s %s), which it does not match", ch, ev.ID, ev.Type, ev.Machine.Name)
				}
				continue
			}
			expected++
			if d, ok := deliveryFor(ev, ch); !ok || d.State != "delivered" {
				t.Errorf("%s %s %s: delivery %+v, want delivered", ch, ev.Type, ev.Machine.Name, d)
			}
			switch {
			case n == 0:
				t.Errorf("%s never accepted %s (%s %s)", ch, ev.ID, ev.Type, ev.Machine.Name)
			case n > 1 && acrossKill(acceptedAt[ev.ID]):
				dups++
				t.Logf("%s: %s (%s %s) accepted twice across the kill (the documented duplicate)", ch, ev.ID, ev.Type, ev.Machine.Name)
			case n > 1:
				t.Errorf("%s accepted %s (%s %s) %d times, not across the kill: %v", ch, ev.ID, ev.Type, ev.Machine.Name, n, acceptedAt[ev.ID])
			}
		}
		distinct := 0
		for _, at := range acceptedAt {
			distinct += min(len(at), 1)
		}
		if distinct != expected {
			t.Errorf("%s accepted %d distinct events, want %d", ch, distinct, expected)
		}
		t.Logf("%-9s %11d %9d %8d %10d %7d", ch, expected, total, distinct, dups, refused)
	}
	for _, ch := range []string{"hook-all", "hook-db", "hook-prod"} {
		acceptedAt, total, refused := map[string][]time.Time{}, 0, 0
		for _, s := range hooks[ch].requests() {
			if s.Status/100 != 2 {
				refused++
				continue
			}
			total++
			acceptedAt[s.DeliveryID] = append(acceptedAt[s.DeliveryID], s.Received)
		}
		if bad := hooks[ch].badRequests(); len(bad) > 0 {
			t.Errorf("%s: requests with a bad signature or shape: %+v", ch, bad)
		}
		check(ch, acceptedAt, total, refused)
	}

	// Telegram carries no id, but its text names the machine, the
	// direction and the last-seen second, which identify the event.
	acceptedAt, total, refused := map[string][]time.Time{}, 0, 0
	for _, m := range tg.messages() {
		if m.ChatID != tgChat || m.ParseMode != "MarkdownV2" {
			t.Errorf("telegram message %+v", m)
		}
		if m.Status != http.StatusOK {
			refused++
			continue
		}
		total++
		id := tgEventOf(m.Text, evs)
		if id == "" {
			t.Errorf("telegram message matches no event: %q", m.Text)
		}
		acceptedAt[id] = append(acceptedAt[id], m.Received)
	}
	check("tg-prod", acceptedAt, total, refused)
}

// tgEventOf returns the id of the event a Telegram message announces.
func tgEventOf(text string, evs []event) string {
	for _, ev := range evs {
		head := "🔴 *" + escapeMD(ev.Machine.Name+" is offline") + "*\n"
		if ev.Type == "machine.online" {
			head = "🟢 *" + escapeMD(ev.Machine.Name+" is back online") + "*\n"
		}
		if ev.Machine.LastSeen == nil || !strings.HasPrefix(text, head) {
			continue
		}
		seen := escapeMD(ev.Machine.LastSeen.UTC().Format("2006-01-02 15:04:05") + " UTC")
		if strings.Contains(text, "*Last seen:* "+seen+"\n") || strings.HasSuffix(text, "*Last seen:* "+seen) {
			return ev.ID
		}
	}
	return ""
}

func deliveryFor(ev event, channel string) (delivery, bool) {
	for _, d := range ev.Deliveries {
		if d.Channel == channel {
			return d, true
		}
	}
	return delivery{}, false
}
