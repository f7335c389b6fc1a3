package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/lunasentri/lunasentri/cluster"
)

// failoverRound is one kill -9 of the leader.
type failoverRound struct {
	Round          int     `json:"round"`
	Killed         string  `json:"killed"`
	NewLeader      string  `json:"new_leader"`
	ElectedMs      float64 `json:"new_leader_known_ms"` // a survivor's /v1/status names a new leader
	WriteMs        float64 `json:"write_accepted_ms"`   // POST /v1/machines answered 201 by a survivor
	WriteAttempts  int     `json:"write_attempts"`
	RejoinMs       float64 `json:"rejoin_ms"` // restart → ready member again
	Error          string  `json:"error,omitempty"`
	TermBefore     uint64  `json:"term_before"`
	TermAfter      uint64  `json:"term_after"`
	KilledPID      int     `json:"killed_pid"`
	RestartedAfter float64 `json:"restarted_after_ms"`
}

type failoverResult struct {
	Rounds  []failoverRound `json:"rounds"`
	Write   dist            `json:"write_accepted"`
	Elected dist            `json:"new_leader_known"`
	Raft    string          `json:"raft_timeouts"`
}

// runFailover kills the leader with SIGKILL cfg.FailoverRounds times and
// times how long until a surviving node accepts a write. The killed node is
// restarted (same flags and data dir) and must be a ready voter again before
// the next round.
func runFailover(ctx context.Context, cfg *config, pc *procCluster) (*failoverResult, error) {
	timing, _ := cluster.RaftTimingFor(1)
	res := &failoverResult{Raft: timing.String() + " (-raft-multiplier 1)"}
	var writes, elected []time.Duration
	client := &http.Client{Timeout: 15 * time.Second}
	for r := 1; r <= cfg.FailoverRounds; r++ {
		li, err := pc.waitHealthy(ctx, 90*time.Second)
		if err != nil {
			return res, fmt.Errorf("round %d: %w", r, err)
		}
		sleepCtx(ctx, time.Second) // let the term settle: every follower in contact
		lst, err := pc.status(ctx, li)
		if err != nil {
			return res, fmt.Errorf("round %d: %w", r, err)
		}
		round := failoverRound{Round: r, Killed: pc.nodes[li].name, TermBefore: lst.Term, KilledPID: pc.pid(li)}
		var survivors []int
		for i := range pc.nodes {
			if i != li {
				survivors = append(survivors, i)
			}
		}

		// Watch the survivors for the new leader while writing.
		wctx, stopWatch := context.WithCancel(ctx)
		var wg sync.WaitGroup
		var electedAt time.Time
		var newLeader string
		var term uint64
		var mu sync.Mutex
		killedName := pc.nodes[li].name
		t0 := time.Now()
		pc.kill(li)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for wctx.Err() == nil {
				for _, s := range survivors {
					st, err := pc.status(wctx, s)
					if err == nil && st.LeaderID != "" && st.LeaderID != killedName {
						mu.Lock()
						if electedAt.IsZero() {
							electedAt, newLeader, term = time.Now(), st.LeaderID, st.Term
						}
						mu.Unlock()
						return
					}
				}
				sleepCtx(wctx, 10*time.Millisecond)
			}
		}()
		var acceptedAt time.Time
		for attempt := 0; ctx.Err() == nil; attempt++ {
			if time.Since(t0) > 60*time.Second {
				round.Error = "no write accepted within 60s"
				break
			}
			s := survivors[attempt%len(survivors)]
			round.WriteAttempts++
			body := map[string]any{"name": fmt.Sprintf("failover-%02d-%04d", r, attempt)}
			code, err := pc.call(ctx, client, s, http.MethodPost, "/v1/machines", body, nil)
			if err == nil && code == http.StatusCreated {
				acceptedAt = time.Now()
				break
			}
			sleepCtx(ctx, 10*time.Millisecond)
		}
		wg.Wait()
		stopWatch()
		if !acceptedAt.IsZero() {
			round.WriteMs = ms(acceptedAt.Sub(t0))
			writes = append(writes, acceptedAt.Sub(t0))
		}
		if !electedAt.IsZero() {
			round.ElectedMs = ms(electedAt.Sub(t0))
			round.NewLeader, round.TermAfter = newLeader, term
			elected = append(elected, electedAt.Sub(t0))
		}
		// Bring the killed node back.
		round.RestartedAfter = ms(time.Since(t0))
		t1 := time.Now()
		if err := pc.start(li); err != nil {
			res.Rounds = append(res.Rounds, round)
			return res, fmt.Errorf("round %d: restart %s: %w", r, killedName, err)
		}
		if _, err := pc.waitHealthy(ctx, 120*time.Second); err != nil {
			round.Error = "rejoin: " + err.Error()
			res.Rounds = append(res.Rounds, round)
			return res, fmt.Errorf("round %d: %w", r, err)
		}
		round.RejoinMs = ms(time.Since(t1))
		res.Rounds = append(res.Rounds, round)
		logf("failover %d/%d: killed %s; new leader %s known after %.0fms; write accepted after %.0fms (%d attempts); rejoined in %.1fs",
			r, cfg.FailoverRounds, killedName, round.NewLeader, round.ElectedMs, round.WriteMs, round.WriteAttempts, round.RejoinMs/1000)
	}
	res.Write = summarize(writes)
	res.Elected = summarize(elected)
	return res, ctx.Err()
}

func ms(d time.Duration) float64 { return round1(float64(d) / float64(time.Millisecond)) }
