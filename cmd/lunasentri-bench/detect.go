package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lunasentri/lunasentri/notify/webhook"
)

// detectionResult is the detection phase: N machines go silent at once.
type detectionResult struct {
	Machines         int     `json:"machines"`
	Threshold        string  `json:"offline_threshold"`
	CheckInterval    string  `json:"check_interval"`
	FlushInterval    string  `json:"heartbeat_flush_interval"`
	RegisterSeconds  float64 `json:"register_s"`
	DeadlineSpreadMs float64 `json:"deadline_spread_ms"` // last deadline − first
	OfflineCommitted int     `json:"offline_committed"`
	OfflineBatches   int     `json:"offline_batches"` // MarkOffline entries (distinct occurred_at)
	PollIntervalMs   float64 `json:"commit_poll_interval_ms"`
	WaitedS          float64 `json:"waited_s"` // silence → all offline and all webhooks in, or the wait ran out

	// Deadline = last_seen + offline_threshold (both from the leader).
	DeadlineToProposed  dist `json:"deadline_to_proposed"`  // → occurred_at, the leader's stamp in the MarkOffline entry
	DeadlineToCommitted dist `json:"deadline_to_committed"` // → the leader's commit index reached the entry (polled /v1/status: ≤ one poll late)
	DeadlineToWebhook   dist `json:"deadline_to_webhook"`   // → the receiver had it
	TransitionToWebhook dist `json:"transition_to_webhook"` // occurred_at → the receiver had it

	Delivered        int                `json:"webhooks_delivered"` // unique offline deliveries for these machines
	Duplicates       int                `json:"webhook_duplicates"`
	BadSignatures    int                `json:"webhook_bad_signatures"`
	LateOver5s       int                `json:"webhooks_later_than_5s_after_transition"`
	MissingWebhooks  int                `json:"webhooks_missing"`
	ServerDetection  map[string]float64 `json:"server_detection_delay_histogram,omitempty"`    // le → count, this phase only
	ServerNotifDelay map[string]float64 `json:"server_notification_delay_histogram,omitempty"` // le → count, this phase only
}

// receiver is the local webhook receiver: it verifies signatures and keeps
// the first receipt per delivery id.
type receiver struct {
	secret string
	mu     sync.Mutex
	first  map[string]time.Time // delivery id → first receipt
	byMach map[string]time.Time // machine id → first offline receipt
	occ    map[string]time.Time // machine id → occurred_at from the body
	evID   map[string]string    // machine id → event id (X-LunaSentri-Delivery)
	dups   int
	bad    int
	srv    *http.Server
	url    string
}

func startReceiver(secret string) (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &receiver{secret: secret, first: map[string]time.Time{}, byMach: map[string]time.Time{}, occ: map[string]time.Time{}, evID: map[string]string{},
		url: "http://" + ln.Addr().String() + "/hook"}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	at := time.Now()
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil {
		http.Error(w, "read", http.StatusBadRequest)
		return
	}
	if err := webhook.Verify(r.secret, req.Header, body, 5*time.Minute, at); err != nil {
		r.mu.Lock()
		r.bad++
		r.mu.Unlock()
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var p struct {
		Event      string    `json:"event"`
		ID         string    `json:"id"`
		OccurredAt time.Time `json:"occurred_at"`
		Machine    struct {
			ID string `json:"id"`
		} `json:"machine"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}
	id := req.Header.Get("X-LunaSentri-Delivery")
	r.mu.Lock()
	if _, seen := r.first[id]; seen {
		r.dups++
	} else {
		r.first[id] = at
		if p.Event == "machine.offline" {
			if _, ok := r.byMach[p.Machine.ID]; !ok {
				r.byMach[p.Machine.ID] = at
				r.occ[p.Machine.ID] = p.OccurredAt
				r.evID[p.Machine.ID] = id
			}
		}
	}
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) offlineCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.byMach)
}

func (r *receiver) close() { _ = r.srv.Close() }

const offlineSeries = `lunasentri_machine_transitions_total{to="offline"}`

// detectWait is how long after the threshold the detection phase waits for
// every offline and every webhook; the target is 5s, so a longer wait only
// says by how much it was missed.
const detectWait = 60 * time.Second

// commitPoller polls the leader's /v1/status, which reads Raft's indexes
// without touching the FSM (a /metrics scrape waits for the FSM lock and
// would lag behind a busy leader), and keeps every change of the commit
// index with the time it was first seen.
type commitPoller struct {
	mu      sync.Mutex
	samples []commitSample
}

type commitSample struct {
	at     time.Time
	commit uint64
}

func (p *commitPoller) run(ctx context.Context, pc *procCluster, li int, every time.Duration) {
	client := &http.Client{Timeout: 2 * time.Second}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		var st nodeStatus
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := pc.call(cctx, client, li, http.MethodGet, "/v1/status", nil, &st)
		cancel()
		at := time.Now()
		if err == nil {
			p.mu.Lock()
			if n := len(p.samples); n == 0 || p.samples[n-1].commit != st.CommitIndex {
				p.samples = append(p.samples, commitSample{at: at, commit: st.CommitIndex})
			}
			p.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// reached is when the commit index was first seen at or above idx.
func (p *commitPoller) reached(idx uint64) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := sort.Search(len(p.samples), func(i int) bool { return p.samples[i].commit >= idx })
	if i == len(p.samples) {
		return time.Time{}, false
	}
	return p.samples[i].at, true
}

// eventIndex is the Raft index in a deterministic event id ("ev-INDEX-SEQ").
func eventIndex(id string) (uint64, bool) {
	rest, ok := strings.CutPrefix(id, "ev-")
	if !ok {
		return 0, false
	}
	num, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseUint(num, 10, 64)
	return v, err == nil
}

type apiMachine struct {
	ID               string     `json:"id"`
	Name             string     `json:"name"`
	Status           string     `json:"status"`
	LastSeen         *time.Time `json:"last_seen"`
	StatusChangedAt  *time.Time `json:"status_changed_at"`
	OfflineThreshold string     `json:"offline_threshold"`
}

func histogramDelta(before, after map[string]float64, prefix string) map[string]float64 {
	out := map[string]float64{}
	for k, v := range after {
		if !strings.HasPrefix(k, prefix+"_bucket{") {
			continue
		}
		le := strings.TrimSuffix(strings.TrimPrefix(k, prefix+`_bucket{le="`), `"}`)
		out[le] = v - before[k]
	}
	return out
}

// runDetection registers cfg.DetectMachines machines with a short threshold
// and a webhook channel, beats each twice, stops, and times the offline
// commits and the webhooks.
func runDetection(ctx context.Context, cfg *config, pc *procCluster, li int) (*detectionResult, error) {
	const pollEvery = 10 * time.Millisecond
	res := &detectionResult{Machines: cfg.DetectMachines, Threshold: cfg.DetectThreshold.String(),
		CheckInterval: cfg.CheckInterval.String(), FlushInterval: cfg.FlushInterval.String(),
		PollIntervalMs: float64(pollEvery) / float64(time.Millisecond)}
	secret := "lunasentri-bench-webhook-secret-0123456789"
	recv, err := startReceiver(secret)
	if err != nil {
		return nil, err
	}
	defer recv.close()
	// This phase measures single deliveries: group_after at its maximum
	// keeps the channel out of digest mode (the storm phase measures those).
	ch := map[string]any{"type": "webhook", "name": "bench-detect", "url": recv.url, "secret": secret,
		"match": map[string]string{"bench": "detect"}, "group_after": 10000}
	if _, err := pc.call(ctx, nil, li, http.MethodPost, "/v1/channels", ch, nil); err != nil {
		return nil, fmt.Errorf("create webhook channel: %w", err)
	}

	specs := make([]machineSpec, cfg.DetectMachines)
	for i := range specs {
		specs[i] = machineSpec{Name: fmt.Sprintf("det-%06d", i), Labels: map[string]string{"bench": "detect"}, Threshold: cfg.DetectThreshold}
	}
	logf("detect: registering %d machines (offline_threshold %s, label bench=detect)", len(specs), cfg.DetectThreshold)
	t0 := time.Now()
	keys, err := registerMachines(ctx, pc, li, specs, 32)
	if err != nil {
		return nil, fmt.Errorf("register: %w", err)
	}
	res.RegisterSeconds = round3(time.Since(t0).Seconds())
	reqs := make([]beatRequest, len(keys))
	for i, k := range keys {
		reqs[i] = newBeatRequest(specs[i].Name, k)
	}
	var targets []string
	for _, n := range pc.nodes {
		targets = append(targets, n.httpAddr)
	}

	scrapeHist := func() map[string]float64 {
		m, _ := pc.scrape(ctx, nil, li, "lunasentri_detection_delay_seconds_bucket", "lunasentri_notification_delay_seconds_bucket")
		return m
	}
	histBefore := scrapeHist()

	// Two rounds of heartbeats (unknown → online, then a regular beat),
	// then silence for all of them at once.
	for round := 1; round <= 2; round++ {
		if acc, other := beatAll(ctx, targets, reqs, cfg.Workers); acc != int64(len(reqs)) {
			return nil, fmt.Errorf("heartbeat round %d: %d of %d accepted (%v)", round, acc, len(reqs), other)
		}
		if round == 1 {
			sleepCtx(ctx, 2*cfg.FlushInterval)
		}
	}
	silent := time.Now()
	logf("detect: %d machines silent; waiting for offline (threshold %s) and webhooks", len(reqs), cfg.DetectThreshold)

	offlineNow := func() float64 {
		m, err := pc.scrape(ctx, nil, li, offlineSeries)
		if err != nil {
			return -1
		}
		return m[offlineSeries]
	}
	// The offline counter before any of them can be due (round 2's beats
	// are at most a flush old, the threshold is at least 1s).
	base := offlineNow()
	if base < 0 {
		return nil, fmt.Errorf("cannot read %s on the leader", offlineSeries)
	}
	poller := &commitPoller{}
	pctx, stopPoll := context.WithCancel(ctx)
	var pwg sync.WaitGroup
	pwg.Add(1)
	go func() { defer pwg.Done(); poller.run(pctx, pc, li, pollEvery) }()
	want := float64(len(reqs))
	timeout := silent.Add(cfg.DetectThreshold + detectWait)
	lastScrape := time.Time{}
	allOffline := false
	for ctx.Err() == nil && time.Now().Before(timeout) {
		if !allOffline && time.Since(lastScrape) >= 500*time.Millisecond {
			allOffline = offlineNow()-base >= want
			lastScrape = time.Now()
		}
		if allOffline && recv.offlineCount() >= len(reqs) {
			break
		}
		sleepCtx(ctx, 50*time.Millisecond)
	}
	stopPoll()
	pwg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res.WaitedS = round1(time.Since(silent).Seconds())
	histAfter := scrapeHist()
	res.ServerDetection = histogramDelta(histBefore, histAfter, "lunasentri_detection_delay_seconds")
	res.ServerNotifDelay = histogramDelta(histBefore, histAfter, "lunasentri_notification_delay_seconds")
	// Later phases should not share the machine with deliveries still
	// going on: deleting the channel drops its pending deliveries.
	defer func() {
		if _, err := pc.call(ctx, nil, li, http.MethodDelete, "/v1/channels/bench-detect", nil, nil); err != nil {
			logf("detect: deleting the webhook channel: %v", err)
		}
	}()

	var list struct {
		Machines []apiMachine `json:"machines"`
	}
	if _, err := pc.call(ctx, nil, li, http.MethodGet, "/v1/machines?status=offline", nil, &list); err != nil {
		return nil, fmt.Errorf("list offline machines: %w", err)
	}
	var evs struct {
		Events []struct {
			ID      string `json:"id"`
			Type    string `json:"type"`
			Machine struct {
				ID string `json:"id"`
			} `json:"machine"`
		} `json:"events"`
	}
	if _, err := pc.call(ctx, nil, li, http.MethodGet, "/v1/events?limit=10000", nil, &evs); err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	eventOf := map[string]string{}
	for _, ev := range evs.Events { // newest first
		if _, ok := eventOf[ev.Machine.ID]; !ok && ev.Type == "machine.offline" {
			eventOf[ev.Machine.ID] = ev.ID
		}
	}
	recv.mu.Lock()
	defer recv.mu.Unlock()
	for mid, id := range recv.evID {
		if _, ok := eventOf[mid]; !ok {
			eventOf[mid] = id
		}
	}

	type det struct {
		id                 string
		deadline, proposed time.Time
	}
	var dets []det
	for _, m := range list.Machines {
		if !strings.HasPrefix(m.Name, "det-") || m.LastSeen == nil || m.StatusChangedAt == nil {
			continue
		}
		th, err := time.ParseDuration(m.OfflineThreshold)
		if err != nil {
			return nil, fmt.Errorf("machine %s: threshold %q", m.Name, m.OfflineThreshold)
		}
		dets = append(dets, det{id: m.ID, deadline: m.LastSeen.Add(th), proposed: *m.StatusChangedAt})
	}
	res.OfflineCommitted = len(dets)
	if len(dets) == 0 {
		return res, fmt.Errorf("no machine went offline within %s", cfg.DetectThreshold+detectWait)
	}
	minD, maxD := dets[0].deadline, dets[0].deadline
	batches := map[int64]bool{}
	var toProp, toCommit, toHook, transHook []time.Duration
	for _, d := range dets {
		if d.deadline.Before(minD) {
			minD = d.deadline
		}
		if d.deadline.After(maxD) {
			maxD = d.deadline
		}
		batches[d.proposed.UnixNano()] = true
		toProp = append(toProp, d.proposed.Sub(d.deadline))
		if idx, ok := eventIndex(eventOf[d.id]); ok {
			if at, ok := poller.reached(idx); ok {
				toCommit = append(toCommit, at.Sub(d.deadline))
			}
		}
		if at, ok := recv.byMach[d.id]; ok {
			toHook = append(toHook, at.Sub(d.deadline))
			tr := at.Sub(recv.occ[d.id])
			transHook = append(transHook, tr)
			if tr > 5*time.Second {
				res.LateOver5s++
			}
		} else {
			res.MissingWebhooks++
		}
	}
	res.OfflineBatches = len(batches)
	res.DeadlineSpreadMs = round1(float64(maxD.Sub(minD)) / float64(time.Millisecond))
	res.DeadlineToProposed = summarize(toProp)
	res.DeadlineToCommitted = summarize(toCommit)
	res.DeadlineToWebhook = summarize(toHook)
	res.TransitionToWebhook = summarize(transHook)
	res.Delivered = len(recv.byMach)
	res.Duplicates = recv.dups
	res.BadSignatures = recv.bad
	res.MissingWebhooks += len(reqs) - len(dets)
	logf("detect: %d offline in %d entries; deadline→committed p99 %.0fms; webhooks %d/%d, transition→webhook max %.0fms",
		res.OfflineCommitted, res.OfflineBatches, res.DeadlineToCommitted.P99Ms, res.Delivered, len(reqs), res.TransitionToWebhook.MaxMs)
	return res, nil
}
