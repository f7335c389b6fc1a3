package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The storm phase (issue 10): N machines go silent at once with one
// Telegram channel (a local Bot API stand-in that keeps Telegram's rate
// limits) and one webhook channel, both in digest mode; an isolated outage
// before the storm; and a second storm with kill -9 of the leader in the
// middle. It runs its own three-node cluster, started with the stand-in's
// URL.

const (
	stormTgToken = "424242:bench-storm-token"
	stormChat    = "-100424242"
	stormSecret  = "lunasentri-bench-storm-secret-0123456789"
	// stormHookWindow: the webhook channel's group_window. A digest is sent
	// when it is full (1000 events) or its window ends; 5s keeps the last,
	// partial digest of a storm within the 10s target. Telegram keeps the
	// default 30s window.
	stormHookWindow = 5 * time.Second
	// stormSpread: how far apart the storm machines' last beats are.
	stormSpread = 2 * time.Second
)

type stormResult struct {
	Machines        int      `json:"machines"`
	Threshold       string   `json:"threshold"`
	IsolatedDelayMs float64  `json:"isolated_deadline_to_webhook_ms"`
	IsolatedSingle  bool     `json:"isolated_sent_alone"`
	Storm           stormRun `json:"storm"`
	KillStorm       stormRun `json:"storm_with_leader_kill"`
}

type stormRun struct {
	Transitions        int     `json:"transitions"`
	HookReceived       int     `json:"webhook_transitions_received"`
	HookInDigests      int     `json:"webhook_transitions_in_digests"`
	HookDigests        int     `json:"webhook_digests"`
	HookDupEvents      int     `json:"webhook_duplicate_events"`
	HookDupDigestIDs   int     `json:"webhook_duplicate_digest_ids"`
	HookMissing        int     `json:"webhook_missing"`
	HookMaxLagMs       float64 `json:"webhook_transition_to_received_max_ms"`
	HookAllWithinS     float64 `json:"webhook_all_received_after_first_transition_s"`
	TgMessages         int     `json:"telegram_messages"`
	TgOfflineCounted   int     `json:"telegram_offline_counted"`
	TgCompleteAfterS   float64 `json:"telegram_complete_after_first_transition_s"`
	TgRateLimited      int     `json:"telegram_429s"`
	KilledAfterFirstS  float64 `json:"killed_after_first_transition_s,omitempty"`
	SecondsToTransited float64 `json:"all_transitions_committed_after_silence_s"`
}

// tgStandin is the Bot API stand-in: sendMessage with Telegram's limits
// (one message a second per chat, 30 a second in all; 429 with
// retry_after beyond them).
type tgStandin struct {
	srv      *http.Server
	url      string
	mu       sync.Mutex
	msgs     []tgMessage
	lastChat map[string]time.Time
	limited  int
}

type tgMessage struct {
	At   time.Time
	Text string
}

func startTgStandin() (*tgStandin, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &tgStandin{lastChat: map[string]time.Time{}, url: "http://" + ln.Addr().String()}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

func (s *tgStandin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body struct {
		ChatID json.RawMessage `json:"chat_id"`
		Text   string          `json:"text"`
	}
	if !strings.HasSuffix(r.URL.Path, "/sendMessage") || json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body) != nil {
		http.Error(w, `{"ok":false,"error_code":400,"description":"Bad Request"}`, http.StatusBadRequest)
		return
	}
	chat := strings.Trim(string(body.ChatID), `"`)
	now := time.Now()
	s.mu.Lock()
	if last, ok := s.lastChat[chat]; ok && now.Sub(last) < time.Second {
		s.limited++
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = io.WriteString(w, `{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 1","parameters":{"retry_after":1}}`)
		return
	}
	s.lastChat[chat] = now
	s.msgs = append(s.msgs, tgMessage{At: now, Text: body.Text})
	n := len(s.msgs)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = fmt.Fprintf(w, `{"ok":true,"result":{"message_id":%d,"date":%d,"chat":{"id":%s},"text":""}}`, n, now.Unix(), chat)
}

func (s *tgStandin) close() { _ = s.srv.Close() }

// digestCount reads "N offline, M online" from a digest message's head.
var digestCount = regexp.MustCompile(`digest: (\d+) offline, (\d+) online`)

// offlineTold counts offline transitions the chat was told (digests by
// their head, single messages one each) and when the count reached want.
func (s *tgStandin) offlineTold(since time.Time, want int) (n, msgs int, reached time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.msgs {
		if m.At.Before(since) {
			continue
		}
		msgs++
		if c := digestCount.FindStringSubmatch(m.Text); c != nil {
			k, _ := strconv.Atoi(c[1])
			n += k
		} else if strings.HasPrefix(m.Text, "🔴") {
			n++
		}
		if n >= want && reached.IsZero() {
			reached = m.At
		}
	}
	return n, msgs, reached
}

// stormReceiver is a webhook receiver that understands digests.
type stormReceiver struct {
	srv *http.Server
	url string
	mu  sync.Mutex
	// per event id: how many times and when it first arrived, the event's
	// occurred_at, its type and whether it came inside a digest.
	seen    map[string]*stormSeen
	digests map[string]int
}

type stormSeen struct {
	count    int
	first    time.Time
	occurred time.Time
	typ      string
	machine  string
	digest   bool
}

func startStormReceiver() (*stormReceiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &stormReceiver{url: "http://" + ln.Addr().String() + "/hook", seen: map[string]*stormSeen{}, digests: map[string]int{}}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

type hookEvent struct {
	Event      string    `json:"event"`
	ID         string    `json:"id"`
	OccurredAt time.Time `json:"occurred_at"`
	Machine    struct {
		Name string `json:"name"`
	} `json:"machine"`
}

func (r *stormReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	now := time.Now()
	var body struct {
		hookEvent
		Events []hookEvent `json:"events"`
	}
	if err := json.NewDecoder(io.LimitReader(req.Body, 64<<20)).Decode(&body); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	note := func(ev hookEvent, inDigest bool) {
		s := r.seen[ev.ID]
		if s == nil {
			s = &stormSeen{first: now, occurred: ev.OccurredAt, typ: ev.Event, machine: ev.Machine.Name, digest: inDigest}
			r.seen[ev.ID] = s
		}
		s.count++
	}
	if body.Event == "machine.digest" {
		r.digests[body.ID]++
		if r.digests[body.ID] == 1 { // a resent digest is the same events again
			for _, ev := range body.Events {
				note(ev, true)
			}
		}
	} else {
		note(body.hookEvent, false)
	}
	w.WriteHeader(http.StatusOK)
}

func (r *stormReceiver) close() { _ = r.srv.Close() }

// countType reports how many distinct events of typ for machines with
// prefix arrived, and the time the last of them first arrived.
func (r *stormReceiver) countType(typ, prefix string) (n int, last time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.seen {
		if s.typ == typ && strings.HasPrefix(s.machine, prefix) {
			n++
			if s.first.After(last) {
				last = s.first
			}
		}
	}
	return n, last
}

func runStorm(ctx context.Context, cfg *config, bin, workDir string, serverEnv []string) (*stormResult, error) {
	tg, err := startTgStandin()
	if err != nil {
		return nil, err
	}
	defer tg.close()
	hook, err := startStormReceiver()
	if err != nil {
		return nil, err
	}
	defer hook.close()
	threshold := cfg.DetectThreshold
	extra := []string{
		"-offline-threshold", "1h",
		"-check-interval", cfg.CheckInterval.String(),
		"-heartbeat-flush-interval", cfg.FlushInterval.String(),
		"-log-level", "info",
	}
	env := append([]string{"TELEGRAM_BOT_TOKEN=" + stormTgToken, "TELEGRAM_API_URL=" + tg.url}, serverEnv...)
	logf("storm: starting a three-node cluster with the Telegram stand-in")
	pc, li, err := startCluster(ctx, bin, filepath.Join(workDir, "storm"), extra, env)
	if err != nil {
		return nil, err
	}
	defer pc.stopAll()
	res := &stormResult{Machines: cfg.StormMachines, Threshold: threshold.String()}

	// The isolated machine has its own webhook channel (default policy):
	// it must be sent alone, at once.
	iso := map[string]any{"type": "webhook", "name": "iso-hook", "url": hook.url, "secret": stormSecret, "match": map[string]string{"bench": "iso"}}
	chans := []map[string]any{iso,
		{"type": "webhook", "name": "storm-hook", "url": hook.url, "secret": stormSecret, "match": map[string]string{"bench": "storm"},
			"group_window": stormHookWindow.String(), "group_by": []string{"dc"}},
		{"type": "telegram", "name": "storm-tg", "chat_id": stormChat, "match": map[string]string{"bench": "storm"}, "group_by": []string{"dc"}},
	}
	for _, ch := range chans {
		if _, err := pc.call(ctx, nil, li, http.MethodPost, "/v1/channels", ch, nil); err != nil {
			return res, fmt.Errorf("create channel %v: %w", ch["name"], err)
		}
	}
	specs := []machineSpec{{Name: "iso-0", Labels: map[string]string{"bench": "iso"}, Threshold: threshold}}
	for i := range cfg.StormMachines {
		specs = append(specs, machineSpec{Name: fmt.Sprintf("storm-%05d", i),
			Labels: map[string]string{"bench": "storm", "dc": fmt.Sprintf("dc%d", i%4)}, Threshold: threshold})
	}
	logf("storm: registering %d machines", len(specs))
	keys, err := registerMachines(ctx, pc, li, specs, 32)
	if err != nil {
		return res, err
	}
	reqs := make([]beatRequest, len(keys))
	for i, k := range keys {
		reqs[i] = newBeatRequest(specs[i].Name, k)
	}
	var targets []string
	for _, n := range pc.nodes {
		targets = append(targets, n.httpAddr)
	}
	beat := func(rs []beatRequest) error {
		if acc, other := beatAll(ctx, targets, rs, cfg.Workers); acc != int64(len(rs)) {
			return fmt.Errorf("%d of %d beats accepted (%v)", acc, len(rs), other)
		}
		return nil
	}

	// Isolated outage: one machine beats, goes silent; nothing else moves.
	if err := beat(reqs[:1]); err != nil {
		return res, err
	}
	sleepCtx(ctx, 2*cfg.FlushInterval)
	if err := beat(reqs[:1]); err != nil {
		return res, err
	}
	isoLast := time.Now()
	waitUntil(ctx, threshold+10*time.Second, func() bool { n, _ := hook.countType("machine.offline", "iso-"); return n >= 1 })
	if n, at := hook.countType("machine.offline", "iso-"); n == 1 {
		res.IsolatedDelayMs = ms(at.Sub(isoLast.Add(threshold)))
		hook.mu.Lock()
		for _, s := range hook.seen {
			if s.machine == "iso-0" {
				res.IsolatedSingle = !s.digest
			}
		}
		hook.mu.Unlock()
	}
	logf("storm: isolated outage: deadline -> webhook %.0fms", res.IsolatedDelayMs)

	storm := func(kill bool) (stormRun, error) {
		run := stormRun{Transitions: cfg.StormMachines}
		stormReqs := reqs[1:]
		if err := beat(stormReqs); err != nil {
			return run, err
		}
		// Every storm machine is online now (a first storm: unknown →
		// online sends nothing; the second: they come back).
		online := 0
		waitUntil(ctx, 60*time.Second, func() bool {
			var list struct {
				Machines []apiMachine `json:"machines"`
			}
			if _, err := pc.call(ctx, nil, li, http.MethodGet, "/v1/machines?status=online", nil, &list); err != nil {
				return false
			}
			online = len(list.Machines)
			return online >= cfg.StormMachines
		})
		if online < cfg.StormMachines {
			return run, fmt.Errorf("only %d of %d storm machines online", online, cfg.StormMachines)
		}
		// The last beats are spread over stormSpread, as agents' phases are,
		// so the deadlines (and a kill) fall across the storm, not at one
		// instant.
		const slices = 10
		for k := range slices {
			lo, hi := k*len(stormReqs)/slices, (k+1)*len(stormReqs)/slices
			if err := beat(stormReqs[lo:hi]); err != nil {
				return run, err
			}
			sleepCtx(ctx, stormSpread/slices)
		}
		offBefore, _ := hook.countType("machine.offline", "storm-")
		tgSince := time.Now()
		silent := time.Now()
		logf("storm: %d machines silent (kill=%v)", cfg.StormMachines, kill)
		if kill {
			// Kill the leader once offline transitions have begun.
			waitUntil(ctx, threshold+30*time.Second, func() bool {
				n, _ := hook.countType("machine.offline", "storm-")
				return n > offBefore
			})
			run.KilledAfterFirstS = round1(time.Since(silent.Add(threshold)).Seconds())
			killed := li
			logf("storm: kill -9 %s", pc.nodes[killed].name)
			pc.kill(killed)
			// A supervisor restarts it; the survivors elect meanwhile.
			if err := pc.start(killed); err != nil {
				return run, err
			}
			if li, err = pc.waitHealthy(ctx, 60*time.Second); err != nil {
				return run, err
			}
			logf("storm: new leader %s", pc.nodes[li].name)
		}
		want := offBefore + cfg.StormMachines
		waitUntil(ctx, threshold+90*time.Second, func() bool {
			n, _ := hook.countType("machine.offline", "storm-")
			told, _, _ := tg.offlineTold(tgSince, cfg.StormMachines)
			return n >= want && told >= cfg.StormMachines
		})
		hook.mu.Lock()
		var first time.Time
		var lastArrive time.Time
		for _, s := range hook.seen {
			if s.typ != "machine.offline" || !strings.HasPrefix(s.machine, "storm-") || s.occurred.Before(silent) {
				continue
			}
			run.HookReceived++
			if s.digest {
				run.HookInDigests++
			}
			if s.count > 1 {
				run.HookDupEvents++
			}
			if first.IsZero() || s.occurred.Before(first) {
				first = s.occurred
			}
			if s.first.After(lastArrive) {
				lastArrive = s.first
			}
			run.HookMaxLagMs = max(run.HookMaxLagMs, ms(s.first.Sub(s.occurred)))
		}
		for _, n := range hook.digests {
			run.HookDigests++
			if n > 1 {
				run.HookDupDigestIDs++
			}
		}
		hook.digests = map[string]int{}
		hook.mu.Unlock()
		run.HookMissing = cfg.StormMachines - run.HookReceived
		if !first.IsZero() {
			run.HookAllWithinS = round1(lastArrive.Sub(first).Seconds())
			run.SecondsToTransited = round1(first.Sub(silent).Seconds())
		}
		told, msgs, reached := tg.offlineTold(tgSince, cfg.StormMachines)
		run.TgOfflineCounted, run.TgMessages = told, msgs
		if !reached.IsZero() && !first.IsZero() {
			run.TgCompleteAfterS = round1(reached.Sub(first).Seconds())
		}
		tg.mu.Lock()
		run.TgRateLimited, tg.limited = tg.limited, 0
		tg.mu.Unlock()
		logf("storm: webhook %d/%d transitions (%d in %d digests, max lag %.0fms); telegram %d offline in %d messages, complete after %.1fs",
			run.HookReceived, cfg.StormMachines, run.HookInDigests, run.HookDigests, run.HookMaxLagMs, run.TgOfflineCounted, run.TgMessages, run.TgCompleteAfterS)
		return run, nil
	}
	if res.Storm, err = storm(false); err != nil {
		return res, err
	}
	// Let the telegram channel's digest window pass so the second storm
	// starts from a quiet channel.
	sleepCtx(ctx, 35*time.Second)
	if res.KillStorm, err = storm(true); err != nil {
		return res, err
	}
	return res, nil
}

// waitUntil polls cond every 100ms until it holds or d passes.
func waitUntil(ctx context.Context, d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		if cond() {
			return true
		}
		sleepCtx(ctx, 100*time.Millisecond)
	}
	return cond()
}
