package server

import (
	"net/http"
	"testing"
	"time"
)

func TestCluster_FormsAndServesWritesThroughFollowers(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	leader := tc.leader()
	f := tc.follower()

	key := tc.register(f, "web-1", map[string]any{"labels": map[string]string{"env": "prod"}})
	if key == "" {
		t.Fatal("no api key returned")
	}
	// The write forwarded through a follower is visible there at once, and
	// everywhere soon after.
	if m := tc.machine(f, "web-1"); m.Status != "unknown" || m.LastSeen != nil {
		t.Fatalf("fresh machine on follower = %+v", m)
	}
	for i := range tc.nodes {
		waitFor(t, 5*time.Second, "machine replicated", func() bool { return tc.machine(i, "web-1").ID != "" })
	}
	if code := call(t, "POST", tc.url(leader)+"/v1/machines", testToken, map[string]any{"name": "web-1"}, nil); code != http.StatusConflict {
		t.Fatalf("duplicate register = %d, want 409", code)
	}

	// Heartbeats to followers only: online on every node, no event.
	for i := range tc.nodes {
		if i == leader {
			continue
		}
		waitFor(t, 5*time.Second, "heartbeat accepted", func() bool { return tc.beat(i, key) == http.StatusAccepted })
	}
	for i := range tc.nodes {
		waitFor(t, 5*time.Second, "online everywhere", func() bool { return tc.machine(i, "web-1").Status == "online" })
	}
	if evs := tc.events(leader); len(evs) != 0 {
		t.Fatalf("unknown → online made events: %+v", evs)
	}
}

// TestCluster_DetectsOfflineOnceAndRecovers: offline is marked once, no
// sooner than the threshold after the last beat and no later than the
// detection bound after it. The failover grace is set small: with the
// default (5s) the deadline of a machine registered right after the
// election is the grace's, and the test would measure the grace instead.
func TestCluster_DetectsOfflineOnceAndRecovers(t *testing.T) {
	tc := newTestCluster(t, 3, func(_ int, o *Options) { o.FailoverGrace = 200 * time.Millisecond })
	tc.leader()
	key := tc.register(tc.follower(), "db-1", nil)
	// The server stamps the beat between sent and answered.
	var sent, answered time.Time
	waitFor(t, 5*time.Second, "first beat", func() bool {
		sent = time.Now()
		ok := tc.beat(tc.follower(), key) == http.StatusAccepted
		answered = time.Now()
		return ok
	})
	waitFor(t, 5*time.Second, "online", func() bool { return tc.machine(0, "db-1").Status == "online" })

	threshold, bound := tc.opts[0].OfflineThreshold, tc.detectionBound(0)
	var offlineAt time.Time
	waitFor(t, threshold+bound+5*time.Second, "offline", func() bool {
		if tc.machine(0, "db-1").Status == "offline" {
			offlineAt = time.Now()
			return true
		}
		return false
	})
	if early := sent.Add(threshold).Sub(offlineAt); early > 0 {
		t.Fatalf("offline %s before the threshold passed", early)
	}
	if late := offlineAt.Sub(answered.Add(threshold)); late > bound {
		t.Fatalf("offline %s after the threshold, want at most %s (check interval %s + flush %s + slack %s)",
			late, bound, tc.opts[0].CheckInterval, tc.opts[0].HeartbeatFlushInterval, detectionSlack)
	}
	t.Logf("offline %s after the threshold (bound %s)", offlineAt.Sub(answered.Add(threshold)).Round(time.Millisecond), bound)
	for i := range tc.nodes {
		waitFor(t, 5*time.Second, "offline everywhere", func() bool { return tc.machine(i, "db-1").Status == "offline" })
	}

	// Back: one online event; the pair is offline then online.
	waitFor(t, 5*time.Second, "beat", func() bool { return tc.beat(1, key) == http.StatusAccepted })
	waitFor(t, 5*time.Second, "online again", func() bool { return tc.machine(2, "db-1").Status == "online" })
	evs := tc.events(2)
	if len(evs) != 2 || evs[0].Type != "machine.online" || evs[1].Type != "machine.offline" {
		t.Fatalf("events = %+v, want online then offline (newest first)", evs)
	}
	if evs[0].ID == evs[1].ID {
		t.Fatalf("events share an id: %s", evs[0].ID)
	}
}

func TestCluster_LeaderLossCausesNoFalseOrRepeatedAlert(t *testing.T) {
	tc := newTestCluster(t, 3, func(_ int, o *Options) { o.OfflineThreshold = 4 * time.Second })
	tc.leader()
	f := tc.follower()
	beating := tc.register(f, "alive-1", nil)
	dead := tc.register(f, "dead-1", nil)

	stopBeating := tc.beater(beating, 300*time.Millisecond)
	defer stopBeating()
	waitFor(t, 5*time.Second, "dead-1 first beat", func() bool { return tc.beat(f, dead) == http.StatusAccepted })
	waitFor(t, 5*time.Second, "both online", func() bool {
		return tc.machine(f, "alive-1").Status == "online" && tc.machine(f, "dead-1").Status == "online"
	})
	waitFor(t, 10*time.Second, "dead-1 offline", func() bool { return tc.machine(f, "dead-1").Status == "offline" })

	// Take the leader away twice; each new leader must neither mark the
	// beating machine offline nor repeat dead-1's offline event.
	for round := 0; round < 2; round++ {
		old := tc.leader()
		tc.stop(old)
		nl := tc.leader()
		if nl == old {
			t.Fatal("stopped node still leads")
		}
		// Watch past the new leader's grace and a whole threshold, and
		// the detection bound: an alert due to the election would have
		// come by then.
		deadline := time.Now().Add(tc.failoverGrace(nl) + tc.opts[nl].OfflineThreshold + tc.detectionBound(nl))
		for time.Now().Before(deadline) {
			if s := tc.machine(nl, "alive-1").Status; s != "online" {
				t.Fatalf("round %d: beating machine is %s after leader change", round, s)
			}
			time.Sleep(100 * time.Millisecond)
		}
		tc.start(old)
		waitFor(t, 10*time.Second, "restarted node catches up", func() bool {
			return tc.machine(old, "dead-1").Status == "offline"
		})
	}
	var offline, online int
	for _, ev := range tc.events(tc.leader()) {
		switch {
		case ev.Machine.Name == "dead-1" && ev.Type == "machine.offline":
			offline++
		case ev.Machine.Name == "alive-1":
			t.Fatalf("event for the beating machine: %+v", ev)
		case ev.Type == "machine.online":
			online++
		}
	}
	if offline != 1 || online != 0 {
		t.Fatalf("dead-1 offline events = %d, online = %d; want 1 and 0", offline, online)
	}
}
