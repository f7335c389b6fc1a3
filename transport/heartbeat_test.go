package transport_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lunasentri/lunasentri/fsm"
	"github.com/lunasentri/lunasentri/transport"
)

type counter struct{ n atomic.Int64 }

func (c *counter) Inc() { c.n.Add(1) }

func TestHeartbeat_AcceptedBodiesAndHeaders(t *testing.T) {
	var received counter
	n := newNode(t, true, func(o *transport.Options) { o.HeartbeatsReceived = &received })
	_, key := n.register(t, "m1")
	callsBefore := n.cons.calls.Load()

	full := `{"hostname":"m1.example","agent_version":"1.2.3","info":{"os":"linux","cpus":4,"load":[0.1,0.2],"nested":{"a":null}}}`
	cases := []struct {
		name string
		r    func() reply
	}{
		{"empty object", func() reply { return n.beat(t, key, `{}`) }},
		{"no body", func() reply { return n.beat(t, key, "") }},
		{"json null", func() reply { return n.beat(t, key, `null`) }},
		{"full body", func() reply { return n.beat(t, key, full) }},
		{"lowercase bearer", func() reply { return call(t, "POST", n.srv.URL+"/v1/heartbeat", "bearer "+key, `{}`) }},
		{"x-api-key", func() reply { return call(t, "POST", n.srv.URL+"/v1/heartbeat", "", `{}`, "X-API-Key", key) }},
	}
	for _, tc := range cases {
		r := tc.r()
		if r.status != http.StatusAccepted {
			t.Errorf("%s: status %d, want 202 (%q)", tc.name, r.status, r.raw)
		}
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q", tc.name, ct)
		}
	}
	if got := received.n.Load(); got != int64(len(cases)) {
		t.Errorf("HeartbeatsReceived = %d, want %d", got, len(cases))
	}
	if got := n.api.PendingBeats(); got != 1 {
		t.Errorf("PendingBeats = %d, want 1 (one machine, beats coalesced)", got)
	}
	if got := n.cons.calls.Load(); got != callsBefore {
		t.Errorf("heartbeats called Consensus.Apply %d times; they must only reach the coalescer", got-callsBefore)
	}
	if m := machine(t, n.fsm, "m1"); m.Status != fsm.StatusUnknown || !m.LastSeen.IsZero() {
		t.Errorf("machine changed without a flush: %+v", m)
	}
}

func TestHeartbeat_UnknownRotatedAndDeletedKeysGet401(t *testing.T) {
	var received counter
	n := newNode(t, true, func(o *transport.Options) { o.HeartbeatsReceived = &received })
	_, oldKey := n.register(t, "m1")
	_, otherKey := n.register(t, "m2")

	for name, r := range map[string]reply{
		"unknown key":   n.beat(t, "lsk_not-a-key", `{}`),
		"no key":        call(t, "POST", n.srv.URL+"/v1/heartbeat", "", `{}`),
		"empty bearer":  call(t, "POST", n.srv.URL+"/v1/heartbeat", "Bearer ", `{}`),
		"admin token":   n.beat(t, adminToken, `{}`),
		"basic scheme":  call(t, "POST", n.srv.URL+"/v1/heartbeat", "Basic "+oldKey, `{}`),
		"unknown x-api": call(t, "POST", n.srv.URL+"/v1/heartbeat", "", `{}`, "X-API-Key", "nope"),
	} {
		t.Run(name, func(t *testing.T) { wantJSONError(t, r, http.StatusUnauthorized) })
	}

	rot := n.admin(t, "POST", "/v1/machines/m1/rotate-key", "")
	if rot.status != 200 {
		t.Fatalf("rotate: %d %s", rot.status, rot.raw)
	}
	newKey, _ := rot.body["api_key"].(string)
	if !strings.HasPrefix(newKey, "lsk_") || newKey == oldKey {
		t.Fatalf("rotate gave key %q", newKey)
	}
	wantJSONError(t, n.beat(t, oldKey, `{}`), http.StatusUnauthorized)
	wantJSONError(t, call(t, "POST", n.srv.URL+"/v1/heartbeat", "", `{}`, "X-API-Key", oldKey), http.StatusUnauthorized)
	if r := n.beat(t, newKey, `{}`); r.status != http.StatusAccepted {
		t.Errorf("new key: status %d, want 202", r.status)
	}

	if r := n.admin(t, "DELETE", "/v1/machines/m2", ""); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d", r.status)
	}
	wantJSONError(t, n.beat(t, otherKey, `{}`), http.StatusUnauthorized)
	if got := received.n.Load(); got != 1 {
		t.Errorf("HeartbeatsReceived = %d, want 1 (rejected beats are not counted)", got)
	}
}

func TestHeartbeat_MalformedJSONGets400(t *testing.T) {
	n := newNode(t, true, nil)
	_, key := n.register(t, "m1")
	for _, body := range []string{`{`, `[]`, `"beat"`, `{"hostname":5}`, `{"info":"x"}`, `not json`, `{"hostname":"a",}`} {
		r := n.beat(t, key, body)
		wantJSONError(t, r, http.StatusBadRequest)
	}
	if got := n.api.PendingBeats(); got != 0 {
		t.Errorf("PendingBeats = %d after only malformed beats, want 0", got)
	}
}

// TestHeartbeat_RepeatedBodyIsCheckedOnceButEveryChangeIs: issue 14 skips
// decoding a body that is byte for byte the last one this node accepted
// from the machine. A different body, even right after an accepted one,
// is checked again, and a body accepted from one machine does not vouch
// for the same bytes from another.
func TestHeartbeat_RepeatedBodyIsCheckedOnceButEveryChangeIs(t *testing.T) {
	n := newNode(t, true, nil)
	_, key1 := n.register(t, "m1")
	_, key2 := n.register(t, "m2")
	good := `{"hostname":"m1.example","agent_version":"1.0.0"}`
	for i := 0; i < 3; i++ {
		if r := n.beat(t, key1, good); r.status != http.StatusAccepted {
			t.Fatalf("beat %d: %d %s", i, r.status, r.raw)
		}
	}
	for _, body := range []string{`{"hostname":5}`, `{"info":"x"}`, fmt.Sprintf(`{"hostname":%q}`, strings.Repeat("h", 256)), `{`} {
		wantJSONError(t, n.beat(t, key1, body), http.StatusBadRequest)
		if r := n.beat(t, key1, good); r.status != http.StatusAccepted {
			t.Fatalf("good body after %q: %d %s", body, r.status, r.raw)
		}
	}
	bad := `{"hostname":"m2.example","agent_version":7}`
	wantJSONError(t, n.beat(t, key2, bad), http.StatusBadRequest)
	wantJSONError(t, n.beat(t, key2, bad), http.StatusBadRequest)
	if r := n.beat(t, key2, good); r.status != http.StatusAccepted {
		t.Fatalf("m1's body from m2: %d %s", r.status, r.raw)
	}
}

// TestHeartbeat_ShortBodyAnsweredAsBefore: a client that announces more
// body than it sends gets what a streaming decoder gave it: a complete
// object is a beat, a cut one is "not JSON".
func TestHeartbeat_ShortBodyAnsweredAsBefore(t *testing.T) {
	n := newNode(t, true, nil)
	_, key := n.register(t, "m1")
	for body, want := range map[string]int{`{}`: http.StatusAccepted, `{"hostname":"m1.ex`: http.StatusBadRequest} {
		c, err := net.Dial("tcp", strings.TrimPrefix(n.srv.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "POST /v1/heartbeat HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s", key, len(body)+10, body)
		_ = c.(*net.TCPConn).CloseWrite()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%q: %v", body, err)
		}
		if resp.StatusCode != want {
			t.Errorf("%q: status %d, want %d", body, resp.StatusCode, want)
		}
		c.Close()
	}
}

// Invariant 3: many beats from many machines reach Raft as one entry per
// flush, never one entry per beat.
func TestFlusher_OneRaftEntryPerFlushForManyBeats(t *testing.T) {
	const machines, beats, workers = 100, 1000, 8
	var mu sync.Mutex
	var flushes, flushedBeats, failed int
	n := newNode(t, true, func(o *transport.Options) {
		o.FlushInterval = transport.DefaultFlushInterval
		o.ObserveFlush = func(b int, _ time.Duration, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
				return
			}
			flushes++
			flushedBeats += b
		}
	})
	keys := make([]string, machines)
	for i := range keys {
		_, keys[i] = n.register(t, fmt.Sprintf("m%03d", i))
	}
	stopFlusher := n.runFlusher(t)

	start := time.Now()
	var wg sync.WaitGroup
	var bad atomic.Int64
	for w := range workers {
		wg.Go(func() {
			for i := w; i < beats; i += workers {
				if r := n.beat(t, keys[i%machines], `{}`); r.status != http.StatusAccepted {
					bad.Add(1)
				}
			}
		})
	}
	wg.Wait()
	sent := time.Since(start)
	if bad.Load() != 0 {
		t.Fatalf("%d heartbeats were not accepted", bad.Load())
	}
	eventually(t, 5*time.Second, "every machine online", func() bool {
		return len(n.fsm.Machines(fsm.StatusOnline)) == machines
	})
	// Stopping the flusher waits for any flush in progress and the last one,
	// so the counts below are final.
	stopFlusher()

	applies := n.cons.applied(fsm.CmdHeartbeatBatch)
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d beats for %d machines in %s: %d Raft entries, %d beats carried", beats, machines, sent, applies, flushedBeats)
	if failed != 0 {
		t.Errorf("%d flushes failed", failed)
	}
	if maxApplies := int(sent/transport.DefaultFlushInterval) + 3; applies > maxApplies {
		t.Errorf("%d heartbeat Raft entries for %s of beats, want at most one per flush interval (%d)", applies, sent, maxApplies)
	}
	if applies*10 > beats {
		t.Errorf("%d Raft entries for %d heartbeats: beats are not coalesced", applies, beats)
	}
	if got := n.cons.beats(); got != flushedBeats || got < machines || got > beats {
		t.Errorf("Raft carried %d beats (flushes reported %d); want between %d and %d", got, flushedBeats, machines, beats)
	}
	if other := n.cons.calls.Load() - int64(machines) - int64(applies); other != 0 {
		t.Errorf("%d unexpected Apply calls", other)
	}
}

// Beats that cannot reach Raft stay pending and arrive with a later flush;
// a node that cannot deliver for IntakeUnhealthyAfter turns agents away.
func TestFlusher_ApplyFailureKeepsBeatsAndTurnsIntakeUnhealthy(t *testing.T) {
	created := time.Now() // no flush succeeds after this
	n := newNode(t, true, func(o *transport.Options) {
		o.FlushInterval = 20 * time.Millisecond
		o.IntakeUnhealthyAfter = 300 * time.Millisecond
	})
	_, key1 := n.register(t, "m1")
	_, key2 := n.register(t, "m2")
	n.cons.setApplyErr(fmt.Errorf("fake: no quorum"))
	n.runFlusher(t)

	before := time.Now()
	if r := n.beat(t, key1, `{}`); r.status != http.StatusAccepted {
		t.Fatalf("first beat: %d %s", r.status, r.raw)
	}
	after := time.Now()
	calls := n.cons.calls.Load()
	eventually(t, 5*time.Second, "two failed flushes", func() bool { return n.cons.calls.Load() >= calls+2 })

	var turnedAway reply
	eventually(t, 5*time.Second, "heartbeats to get 503", func() bool {
		turnedAway = n.beat(t, key2, `{}`)
		return turnedAway.status == http.StatusServiceUnavailable
	})
	wantJSONError(t, turnedAway, http.StatusServiceUnavailable)
	turnedAwayAt := time.Now()
	if since := time.Since(created); since < 300*time.Millisecond {
		t.Errorf("intake turned unhealthy after %s, before IntakeUnhealthyAfter", since)
	}
	if m := machine(t, n.fsm, "m1"); m.Status != fsm.StatusUnknown {
		t.Fatalf("m1 is %s although no flush succeeded", m.Status)
	}

	n.cons.setApplyErr(nil)
	eventually(t, 5*time.Second, "kept beat to be delivered", func() bool {
		return machine(t, n.fsm, "m1").Status == fsm.StatusOnline
	})
	// The beat kept through failed flushes still carries its receive time.
	m := machine(t, n.fsm, "m1")
	wantSeenBetween(t, m.LastSeen, before, after)
	// It was kept at least until the node turned agents away (how long
	// after the beat that was depends on how long registering took).
	if m.StatusChangedAt.Before(turnedAwayAt) {
		t.Errorf("delivered at %s, before the node turned agents away at %s: the test did not exercise a delay",
			m.StatusChangedAt.Format(time.StampMicro), turnedAwayAt.Format(time.StampMicro))
	}
	eventually(t, 5*time.Second, "intake healthy again", func() bool {
		return n.beat(t, key2, `{}`).status == http.StatusAccepted
	})
}

// wantSeenBetween: a last_seen must be the node's receive time, which lies
// between the moments the test sent the request and got its answer.
func wantSeenBetween(t testing.TB, seen, before, after time.Time) {
	t.Helper()
	const slack = 20 * time.Millisecond // microsecond ages, wall vs monotonic clock
	if seen.Before(before.Add(-slack)) || seen.After(after.Add(slack)) {
		t.Errorf("last_seen %s is outside the request window [%s, %s] (off by %s after)",
			seen.Format(time.RFC3339Nano), before.Format(time.RFC3339Nano), after.Format(time.RFC3339Nano), seen.Sub(after))
	}
}

func TestFlusher_LastSeenIsReceiveTimeNotFlushTime(t *testing.T) {
	n := newNode(t, true, func(o *transport.Options) { o.FlushInterval = 10 * time.Millisecond })
	_, key := n.register(t, "m1")
	before := time.Now()
	if r := n.beat(t, key, `{}`); r.status != http.StatusAccepted {
		t.Fatalf("beat: %d", r.status)
	}
	after := time.Now()
	// The beat waits in the coalescer: this delay is what the test measures,
	// not a synchronisation.
	time.Sleep(400 * time.Millisecond)
	n.runFlusher(t)
	eventually(t, 5*time.Second, "machine online", func() bool {
		return machine(t, n.fsm, "m1").Status == fsm.StatusOnline
	})
	m := machine(t, n.fsm, "m1")
	wantSeenBetween(t, m.LastSeen, before, after)
	if !m.StatusChangedAt.After(m.LastSeen.Add(300 * time.Millisecond)) {
		t.Errorf("status_changed_at %s (the flush) should be ~400ms after last_seen %s", m.StatusChangedAt, m.LastSeen)
	}
}

// When a flush is split into several Raft entries, each beat's age must be
// taken when its chunk is shipped; otherwise later chunks carry ages that
// are too small and last_seen lands in the future of the real beat, which
// delays offline detection.
func TestFlusher_AgesStayExactAcrossChunks(t *testing.T) {
	n := newNode(t, true, func(o *transport.Options) {
		o.FlushInterval = 10 * time.Millisecond
		o.MaxBatchBeats = 1
	})
	names := []string{"m1", "m2", "m3", "m4"}
	keys := make([]string, len(names))
	for i, name := range names {
		_, keys[i] = n.register(t, name)
	}
	n.cons.setApplyDelay(100 * time.Millisecond)
	before := time.Now()
	for _, k := range keys {
		if r := n.beat(t, k, `{}`); r.status != http.StatusAccepted {
			t.Fatalf("beat: %d", r.status)
		}
	}
	after := time.Now()
	n.runFlusher(t)
	eventually(t, 10*time.Second, "all machines online", func() bool {
		return len(n.fsm.Machines(fsm.StatusOnline)) == len(names)
	})
	if got := n.cons.applied(fsm.CmdHeartbeatBatch); got < len(names) {
		t.Fatalf("%d Raft entries, want one per chunk (%d)", got, len(names))
	}
	for _, name := range names {
		wantSeenBetween(t, machine(t, n.fsm, name).LastSeen, before, after)
	}
}

// On shutdown the flusher makes one last attempt, so beats taken just
// before a restart are not lost.
func TestFlusher_FinalFlushOnShutdown(t *testing.T) {
	n := newNode(t, true, func(o *transport.Options) { o.FlushInterval = time.Hour })
	_, key := n.register(t, "m1")
	if r := n.beat(t, key, `{}`); r.status != http.StatusAccepted {
		t.Fatalf("beat: %d", r.status)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.api.RunFlusher(ctx)
	}()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("RunFlusher did not return after its context ended")
	}
	if m := machine(t, n.fsm, "m1"); m.Status != fsm.StatusOnline {
		t.Errorf("after shutdown flush m1 is %s, want online", m.Status)
	}
}

// PendingBeats (exported as a gauge) must count beats that a failed flush
// kept, not only those still in the coalescer: during a leader outage the
// gauge is the operator's view of what is stuck.
func TestFlusher_PendingBeatsCountsBeatsKeptAfterFailedFlush(t *testing.T) {
	n := newNode(t, true, func(o *transport.Options) { o.FlushInterval = 10 * time.Millisecond })
	_, key := n.register(t, "m1")
	n.cons.setApplyErr(fmt.Errorf("fake: no quorum"))
	n.runFlusher(t)
	if r := n.beat(t, key, `{}`); r.status != http.StatusAccepted {
		t.Fatalf("beat: %d", r.status)
	}
	calls := n.cons.calls.Load()
	eventually(t, 5*time.Second, "a failed flush", func() bool { return n.cons.calls.Load() >= calls+1 })
	if got := n.api.PendingBeats(); got != 1 {
		t.Errorf("PendingBeats = %d while m1's beat awaits the leader, want 1", got)
	}
}

// An idle node that knows a leader stays healthy; one without a leader
// turns agents away once IntakeUnhealthyAfter passed.
//
// IntakeUnhealthyAfter is 500ms, fifty flushes: a healthy node would have
// to miss all of them (a scheduling stall of half a second) to turn a beat
// away, so a loaded machine does not fail the test; it watches three such
// windows.
func TestFlusher_IdleHealthFollowsLeaderKnowledge(t *testing.T) {
	const flush, unhealthy = 10 * time.Millisecond, 500 * time.Millisecond
	leader := newNode(t, true, func(o *transport.Options) {
		o.FlushInterval = flush
		o.IntakeUnhealthyAfter = unhealthy
	})
	_, key := leader.register(t, "m1")
	leader.runFlusher(t)
	for end := time.Now().Add(3 * unhealthy); time.Now().Before(end); {
		if r := leader.beat(t, key, ""); r.status != http.StatusAccepted {
			t.Fatalf("leader turned a beat away while healthy: %d %s", r.status, r.raw)
		}
		time.Sleep(20 * time.Millisecond) // pacing only
	}

	created := time.Now() // the orphan last reached a leader no sooner
	orphan := newNode(t, false, func(o *transport.Options) {
		o.FlushInterval = flush
		o.IntakeUnhealthyAfter = unhealthy
	})
	orphan.cons.leader.Store(true)
	_, okey := orphan.register(t, "m1")
	orphan.cons.leader.Store(false)
	orphan.runFlusher(t)
	eventually(t, 10*unhealthy, "leaderless node to answer 503", func() bool {
		return orphan.beat(t, okey, "").status == http.StatusServiceUnavailable
	})
	if d := time.Since(created); d < unhealthy {
		t.Errorf("the leaderless node turned agents away after %s, before IntakeUnhealthyAfter (%s)", d, unhealthy)
	}
}

// A node that reaches the leader on every flush must never turn agents away,
// even when the flush interval is longer than IntakeUnhealthyAfter (an
// operator may set -heartbeat-flush-interval 5s while the intake default
// stays 3s).
func TestFlusher_ConnectedNodeNeverFlapsUnhealthy(t *testing.T) {
	const flush = 300 * time.Millisecond
	n := newNode(t, true, func(o *transport.Options) {
		o.FlushInterval = flush
		o.IntakeUnhealthyAfter = flush / 3 // shorter than a flush; the node raises it
	})
	_, key := n.register(t, "m1")
	n.runFlusher(t)
	rejected, total := 0, 0
	for end := time.Now().Add(4 * flush); time.Now().Before(end); total++ {
		if r := n.beat(t, key, ""); r.status != http.StatusAccepted {
			rejected++
		}
		time.Sleep(20 * time.Millisecond) // pacing only
	}
	if rejected > 0 {
		t.Errorf("%d of %d heartbeats rejected although every flush reached the leader", rejected, total)
	}
}

// The heartbeat path never waits for Raft: a slow commit does not slow
// agents down.
//
// A commit takes 2s here; a beat that waited for it would take at least
// the rest of it, so the bound is half of it, far from any HTTP round trip.
func TestHeartbeat_DoesNotWaitForRaft(t *testing.T) {
	const applyDelay = 2 * time.Second
	n := newNode(t, true, func(o *transport.Options) { o.FlushInterval = 10 * time.Millisecond })
	_, key := n.register(t, "m1")
	n.cons.setApplyDelay(applyDelay)
	n.runFlusher(t)
	if r := n.beat(t, key, ""); r.status != http.StatusAccepted {
		t.Fatalf("beat: %d", r.status)
	}
	calls := n.cons.calls.Load()
	eventually(t, 5*time.Second, "a flush stuck in Apply", func() bool { return n.cons.calls.Load() > calls })
	start := time.Now()
	if r := n.beat(t, key, ""); r.status != http.StatusAccepted {
		t.Fatalf("beat during a slow commit: %d", r.status)
	}
	if d := time.Since(start); d > applyDelay/2 {
		t.Errorf("heartbeat took %s while a Raft commit of %s was in progress", d, applyDelay)
	}
}
