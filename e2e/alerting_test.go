package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Issue 10 with the real binary: silences from the CLI, pause and resume,
// reported failures (HTTP and the cron form), reminders, flap damping and
// PATCH of a threshold, all in one three-node cluster.

const (
	alertThreshold = 3 * time.Second
	alertFlapWin   = 6 * time.Second
	// alertSlack covers a check interval, a flush interval and scheduling.
	alertSlack = 2 * time.Second
)

type alertEvent struct {
	ID         string     `json:"id"`
	Type       string     `json:"type"`
	Reason     string     `json:"reason"`
	Message    string     `json:"message"`
	Machine    machine    `json:"machine"`
	Deliveries []delivery `json:"deliveries"`
}

func (pc *procCluster) alertEvents(i int, name string) []alertEvent {
	pc.t.Helper()
	var out struct {
		Events []alertEvent `json:"events"`
	}
	if code := api("GET", pc.url(i)+"/v1/events?limit=10000", adminToken, nil, &out); code != http.StatusOK {
		pc.t.Fatalf("GET /v1/events: %d", code)
	}
	var mine []alertEvent
	for _, ev := range out.Events {
		if ev.Machine.Name == name {
			mine = append(mine, ev)
		}
	}
	return mine
}

// deliveriesFor counts accepted webhooks for a machine by delivery id
// prefix (ev- transitions, rm- reminders, fl- flapping notices, rc- late).
func (w *webhookReceiver) deliveriesFor(machine, prefix string) map[string]int {
	n := map[string]int{}
	for _, s := range w.requests() {
		if s.Status/100 == 2 && (machine == "" || s.Machine == machine) && strings.HasPrefix(s.DeliveryID, prefix) {
			n[s.DeliveryID]++
		}
	}
	return n
}

func cli(t *testing.T, pc *procCluster, i int, args ...string) string {
	t.Helper()
	full := append([]string{args[0], args[1], "-address", pc.url(i), "-token", adminToken}, args[2:]...)
	out, err := runCLI(t, full...)
	if err != nil {
		t.Fatalf("lunasentri %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func TestE2E_Alerting(t *testing.T) {
	hook := newWebhookReceiver(t, "alerting-secret-0123456789")
	pc := newProcCluster(t, 3, []string{
		"-offline-threshold", alertThreshold.String(), "-check-interval", "200ms",
		"-heartbeat-flush-interval", "100ms", "-failover-grace", "2s",
		"-flap-threshold", "4", "-flap-window", alertFlapWin.String(),
	})
	l := pc.leader(30 * time.Second)
	f := pc.follower(l)
	pc.notifyChannel(f, map[string]any{"type": "webhook", "name": "hook", "url": hook.url(), "secret": hook.secret,
		"repeat_interval": "2s", "group_after": 100})
	keys := map[string]string{}
	for _, name := range []string{"maint", "paused", "cron", "flappy", "slow"} {
		body := map[string]any{"name": name}
		if name == "slow" {
			body["offline_threshold"] = "60s"
		}
		keys[name] = pc.register(f, body)
	}
	stops := map[string]func(){}
	for name, key := range keys {
		stops[name] = pc.beater(key, 300*time.Millisecond)
	}
	defer func() {
		for _, stop := range stops {
			stop()
		}
	}()
	for name := range keys {
		pc.waitMachineOn(f, name, "online", 20*time.Second)
	}

	// Silence "maint" from the CLI, then let it go quiet.
	added := cli(t, pc, f, "silence", "add", "-machine", "maint", "-duration", "1h", "-comment", "kernel upgrade", "-created-by", "e2e")
	t.Logf("silence add:\n%s", added)
	id := strings.Fields(added)[0] // the id alone on stdout's first line
	if !strings.HasPrefix(id, "sil-") {
		t.Fatalf("silence add printed %q", id)
	}
	if out := cli(t, pc, f, "silence", "list"); !strings.Contains(out, id) || !strings.Contains(out, "active") || !strings.Contains(out, "kernel upgrade") {
		t.Fatalf("silence list:\n%s", out)
	}
	t.Logf("silence list:\n%s", cli(t, pc, f, "silence", "list"))

	// Pause "paused" from the CLI.
	if out := cli(t, pc, f, "machines", "pause", "paused"); !strings.Contains(out, "paused") {
		t.Fatalf("machines pause: %s", out)
	}
	stops["maint"]()
	stops["paused"]()

	// PATCH "slow" down to a short threshold: it goes offline without
	// waiting for the old 60s.
	stops["slow"]()
	lastSlow := time.Now()
	if code := api("PATCH", pc.url(f)+"/v1/machines/slow", adminToken, map[string]any{"offline_threshold": "2s"}, nil); code != http.StatusOK {
		t.Fatalf("PATCH slow: %d", code)
	}
	pc.waitMachineOn(f, "slow", "offline", 2*time.Second+alertThreshold+alertSlack)
	t.Logf("slow went offline %s after its last beat with a threshold patched to 2s", time.Since(lastSlow).Round(100*time.Millisecond))

	// Reported failure through the cron form; reminders follow every 2s.
	stops["cron"]()
	if code := api("GET", pc.url(f)+"/ping/"+keys["cron"]+"/fail", "", nil, nil); code != http.StatusOK {
		t.Fatalf("GET /ping/KEY/fail: %d", code)
	}
	pc.waitMachineOn(f, "cron", "offline", alertSlack)
	evs := pc.alertEvents(f, "cron")
	if len(evs) != 1 || evs[0].Reason != "reported" {
		t.Fatalf("cron events %+v", evs)
	}

	// "maint" goes offline under the silence: recorded, not sent.
	pc.waitMachineOn(f, "maint", "offline", alertThreshold+alertSlack+2*time.Second)
	waitFor(t, 5*time.Second, "maint's offline recorded as silenced", func() bool {
		evs := pc.alertEvents(f, "maint")
		return len(evs) == 1 && len(evs[0].Deliveries) == 1 && evs[0].Deliveries[0].State == "silenced"
	})

	// "flappy" flaps through reported failures and beats.
	stops["flappy"]()
	for i := 0; i < 3; i++ {
		if code := api("POST", pc.url(f)+"/v1/heartbeat/fail", keys["flappy"], "flap "+fmt.Sprint(i), nil); code != http.StatusAccepted {
			t.Fatalf("fail: %d", code)
		}
		pc.waitMachineOn(f, "flappy", "offline", alertSlack)
		if !pc.beat(keys["flappy"], i) {
			t.Fatal("beat refused")
		}
		pc.waitMachineOn(f, "flappy", "online", alertSlack)
	}
	waitFor(t, 5*time.Second, "one flapping notice", func() bool { return len(hook.deliveriesFor("flappy", "fl-")) == 1 })
	var m struct {
		Machine struct {
			Flapping bool `json:"flapping"`
		} `json:"machine"`
	}
	api("GET", pc.url(f)+"/v1/machines/flappy", adminToken, nil, &m)
	if !m.Machine.Flapping {
		t.Fatal("flappy is not flagged flapping")
	}

	// PATCH the channel: reminders every 1s from now on; a bad policy is a
	// 400 and changes nothing.
	if code := api("PATCH", pc.url(f)+"/v1/channels/hook", adminToken, map[string]any{"repeat_interval": "1s"}, nil); code != http.StatusOK {
		t.Fatalf("PATCH channel: %d", code)
	}
	if code := api("PATCH", pc.url(f)+"/v1/channels/hook", adminToken, map[string]any{"group_after": 0}, nil); code != http.StatusBadRequest {
		t.Fatalf("PATCH channel with group_after 0: %d", code)
	}
	var chs struct {
		Channels []struct {
			Name           string `json:"name"`
			RepeatInterval string `json:"repeat_interval"`
			GroupAfter     int    `json:"group_after"`
		} `json:"channels"`
	}
	api("GET", pc.url(f)+"/v1/channels", adminToken, nil, &chs)
	if len(chs.Channels) != 1 || chs.Channels[0].RepeatInterval != "1s" || chs.Channels[0].GroupAfter != 100 {
		t.Fatalf("channel after PATCH: %+v", chs.Channels)
	}

	// Reminders for "cron" while it stays offline.
	waitFor(t, 10*time.Second, "two reminders for cron", func() bool { return len(hook.deliveriesFor("cron", "rm-")) >= 2 })

	// Expire the silence: maint's outage is still going, so it is sent once.
	cli(t, pc, f, "silence", "expire", id)
	maintOffline := pc.alertEvents(f, "maint")[0].ID
	waitFor(t, 10*time.Second, "maint's held offline delivered", func() bool { return hook.deliveriesFor("maint", "")[maintOffline] == 1 })

	// "paused" never went offline; resume, beat, online, no event.
	if s, _ := pc.machine(f, "paused"); s.Status != "paused" {
		t.Fatalf("paused machine is %s", s.Status)
	}
	cli(t, pc, f, "machines", "resume", "paused")
	if !pc.beat(keys["paused"], 0) {
		t.Fatal("beat refused")
	}
	pc.waitMachineOn(f, "paused", "online", alertSlack+time.Second)
	if evs := pc.alertEvents(f, "paused"); len(evs) != 0 {
		t.Fatalf("pause/resume made events: %+v", evs)
	}

	// cron recovers: reminders stop.
	stops["cron"] = pc.beater(keys["cron"], 300*time.Millisecond)
	pc.waitMachineOn(f, "cron", "online", alertSlack)
	waitFor(t, 5*time.Second, "cron's recovery delivered", func() bool {
		for _, s := range hook.requests() {
			if s.Machine == "cron" && s.Event == "machine.online" && s.Status/100 == 2 {
				return true
			}
		}
		return false
	})
	reminders := len(hook.deliveriesFor("cron", "rm-"))

	// flappy, stable for the flap window, stops flapping; the channel was
	// last told online and flappy is online, so nothing more is sent.
	waitFor(t, alertFlapWin+5*time.Second, "flappy stable", func() bool {
		api("GET", pc.url(f)+"/v1/machines/flappy", adminToken, nil, &m)
		return !m.Machine.Flapping
	})
	// Watch for longer than the repeat interval and a flush: no reminder
	// after recovery, no delivery twice.
	time.Sleep(2*time.Second + time.Second)
	if n := len(hook.deliveriesFor("cron", "rm-")); n != reminders {
		t.Fatalf("reminders after recovery: %d → %d", reminders, n)
	}
	for id, n := range hook.deliveriesFor("", "") {
		if n != 1 {
			t.Errorf("delivery %s accepted %d times", id, n)
		}
	}
	for _, s := range hook.requests() {
		if !s.SigValid {
			t.Errorf("bad signature on %s", s.DeliveryID)
		}
	}
	out, err := runCLI(t, "events", "-address", pc.url(f), "-token", adminToken)
	if err != nil {
		t.Fatalf("lunasentri events: %v\n%s", err, out)
	}
	t.Logf("lunasentri events:\n%s", out)
}
