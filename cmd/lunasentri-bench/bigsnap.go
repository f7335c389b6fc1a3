package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The bigsnap phase (issue 14): a real three-node cluster holding a million
// machines takes snapshots while heartbeats for those machines keep coming
// through every node, and must not change leader. The state goes in the way
// an operator's backup would (POST /v1/snapshot of a generated archive), so
// a million registrations through Raft are not needed.

type bigSnapRound struct {
	TookMs float64 `json:"took_ms"` // GET /v1/snapshot: take, persist and stream it
	Bytes  int64   `json:"bytes"`
}

type bigSnapResult struct {
	Machines      int              `json:"machines"`
	LoadS         float64          `json:"load_restore_s"` // upload until every node holds them
	Snapshots     []bigSnapRound   `json:"snapshots"`
	WindowS       float64          `json:"window_s"`
	BeatsAccepted int64            `json:"beats_accepted"`
	BeatsPerSec   float64          `json:"beats_per_s"`
	BeatErrors    map[string]int64 `json:"beat_errors,omitempty"`
	TermBefore    uint64           `json:"term_before"`
	TermAfter     uint64           `json:"term_after"`
	Elections     int              `json:"elections"` // terms any node reported after TermBefore, during the window
	LeaderChanges int              `json:"leader_changes"`
	FollowerRSSMB float64          `json:"follower_rss_mb"` // the larger follower's, at the end
	LeaderRSSMB   float64          `json:"leader_rss_mb"`
}

func runBigSnap(ctx context.Context, cfg *config, bin, workDir string, serverEnv []string) (*bigSnapResult, error) {
	n := cfg.BigSnapMachines
	res := &bigSnapResult{Machines: n, BeatErrors: map[string]int64{}}
	extra := []string{"-offline-threshold", "1h", "-log-level", "info"}
	logf("bigsnap: starting a three-node cluster")
	pc, li, err := startCluster(ctx, bin, filepath.Join(workDir, "bigsnap"), extra, serverEnv)
	if err != nil {
		return nil, err
	}
	defer pc.stopAll()

	// The archive: the generated FSM snapshot behind its header line.
	logf("bigsnap: generating a %d-machine archive", n)
	arch := filepath.Join(workDir, "bigsnap.fsm")
	f, err := os.Create(arch)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	size, err := io.Copy(io.MultiWriter(f, h), bufio.NewReaderSize(&genStream{n: n, labels: true, now: time.Now()}, 1<<20))
	if err != nil {
		f.Close()
		return nil, err
	}
	hdr, _ := json.Marshal(map[string]any{"format": "lunasentri-snapshot", "version": 1, "node": "bench", "index": 1, "term": 1,
		"size": size, "sha256": hex.EncodeToString(h.Sum(nil))})
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	logf("bigsnap: restoring it into the cluster (%.0f MB)", float64(size)/1e6)
	t0 := time.Now()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, pc.nodes[li].url()+"/v1/snapshot",
		io.MultiReader(strings.NewReader(string(hdr)+"\n"), f))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := (&http.Client{Timeout: 10 * time.Minute}).Do(req)
	f.Close()
	os.Remove(arch)
	if err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		return res, fmt.Errorf("restore: %d %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	// Every node holds them once its /metrics counts them.
	for i := range pc.nodes {
		for {
			m, err := pc.scrape(ctx, nil, i, "lunasentri_machines")
			total := 0.0
			for k, v := range m {
				if strings.HasPrefix(k, "lunasentri_machines{") {
					total += v
				}
			}
			if err == nil && int(total) == n {
				break
			}
			if time.Since(t0) > 10*time.Minute || ctx.Err() != nil {
				return res, fmt.Errorf("%s holds %.0f machines, want %d", pc.nodes[i].name, total, n)
			}
			pause(ctx, time.Second)
		}
	}
	res.LoadS = round1(time.Since(t0).Seconds())
	logf("bigsnap: every node holds %d machines after %.1fs", n, res.LoadS)
	if li, err = pc.waitHealthy(ctx, 2*time.Minute); err != nil {
		return res, err
	}
	st, err := pc.status(ctx, li)
	if err != nil {
		return res, err
	}
	res.TermBefore = st.Term

	// Heartbeats through every node, random machines, closed loop, while
	// a watcher notes every term any node reports.
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var accepted atomic.Int64
	var errMu sync.Mutex
	for w := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := &rawPoster{addr: pc.nodes[w%3].httpAddr}
			defer p.close()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for wctx.Err() == nil {
				i := rng.IntN(n)
				r := newBeatRequest(scaleName(i), scaleKey(i))
				code, err := p.post(wctx, &r)
				if err == nil && code == http.StatusAccepted {
					accepted.Add(1)
					continue
				}
				if wctx.Err() != nil {
					return
				}
				errMu.Lock()
				if err != nil {
					res.BeatErrors["error: "+shortErr(err)]++
				} else {
					res.BeatErrors[fmt.Sprint(code)]++
				}
				errMu.Unlock()
			}
		}()
	}
	terms := map[uint64]string{st.Term: st.LeaderID}
	var termMu sync.Mutex
	wg.Add(1)
	go func() {
		defer wg.Done()
		for wctx.Err() == nil {
			for i := range pc.nodes {
				if s, err := pc.status(wctx, i); err == nil {
					termMu.Lock()
					if _, ok := terms[s.Term]; !ok || (terms[s.Term] == "" && s.LeaderID != "") {
						terms[s.Term] = s.LeaderID
					}
					termMu.Unlock()
				}
			}
			pause(wctx, 50*time.Millisecond)
		}
	}()

	w0 := time.Now()
	pause(ctx, 5*time.Second) // load before the first snapshot
	client := &http.Client{Timeout: 5 * time.Minute}
	for k := range cfg.BigSnapRounds {
		li, _, err := pc.leader(ctx)
		if err != nil {
			break
		}
		t := time.Now()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, pc.nodes[li].url()+"/v1/snapshot", nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := client.Do(req)
		if err != nil {
			stop()
			wg.Wait()
			return res, fmt.Errorf("snapshot %d: %w", k+1, err)
		}
		nb, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		round := bigSnapRound{TookMs: ms(time.Since(t)), Bytes: nb}
		res.Snapshots = append(res.Snapshots, round)
		logf("bigsnap: snapshot %d/%d on %s: %d, %.0f MB in %.1fs", k+1, cfg.BigSnapRounds, pc.nodes[li].name, resp.StatusCode, float64(nb)/1e6, round.TookMs/1000)
		pause(ctx, 5*time.Second)
	}
	res.WindowS = round1(time.Since(w0).Seconds())
	stop()
	wg.Wait()
	res.BeatsAccepted = accepted.Load()
	res.BeatsPerSec = round1(float64(res.BeatsAccepted) / res.WindowS)
	li, st2, err := pc.leader(ctx)
	if err == nil {
		res.TermAfter = st2.Term
	}
	leaders := map[string]bool{}
	for term, l := range terms {
		if term > res.TermBefore {
			res.Elections++
		}
		if l != "" {
			leaders[l] = true
		}
	}
	res.LeaderChanges = len(leaders) - 1
	for i := range pc.nodes {
		if rss := pidRSS(pc.pid(i)); rss > 0 {
			if i == li {
				res.LeaderRSSMB = round1(float64(rss) / (1 << 20))
			} else {
				res.FollowerRSSMB = max(res.FollowerRSSMB, round1(float64(rss)/(1<<20)))
			}
		}
	}
	logf("bigsnap: %d snapshots of %d machines under %.0f beats/s: %d elections, %d leader changes (term %d → %d)",
		len(res.Snapshots), n, res.BeatsPerSec, res.Elections, res.LeaderChanges, res.TermBefore, res.TermAfter)
	return res, nil
}
