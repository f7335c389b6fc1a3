package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/lunasentri/lunasentri/fsm"
)

// Node-to-node endpoints. They are authenticated with the cluster secret and
// are not part of the public contract.
const (
	internalApplyPath   = "/internal/v1/apply"
	internalBeatsPath   = "/internal/v1/heartbeats"
	internalTestPath    = "/internal/v1/channels/{name}/test"
	clusterSecretHeader = "X-LunaSentri-Cluster-Secret"
)

// errNoLeader: there is no leader to forward to right now.
var errNoLeader = errors.New("no cluster leader; try again shortly")

// applyAnswer carries a forwarded write's outcome back to the follower.
type applyAnswer struct {
	Index   uint64       `json:"index"`
	Code    string       `json:"code,omitempty"`
	Error   string       `json:"error,omitempty"`
	Machine *fsm.Machine `json:"machine,omitempty"`
	Channel *fsm.Channel `json:"channel,omitempty"`
	Silence *fsm.Silence `json:"silence,omitempty"`
	Events  []string     `json:"events,omitempty"`
	Token   *fsm.Token   `json:"token,omitempty"` // issue 11
}

// leaderWait bounds how long a write waits for a leader during an election
// before it answers 503.
const leaderWait = 5 * time.Second

// propose writes a command through the leader, from any node, and waits
// until this node's replica has applied it so the caller reads its write.
// While no leader is known (an election), it retries for up to leaderWait;
// it retries only when the command certainly was not applied.
func (a *API) propose(ctx context.Context, cmd []byte) (*fsm.ApplyResult, error) {
	ctx, cancel := context.WithTimeout(ctx, leaderWait+2*time.Second)
	defer cancel()
	deadline := time.Now().Add(leaderWait)
	for {
		res, err := a.proposeOnce(ctx, cmd)
		if err == nil || !notApplied(err) || time.Now().After(deadline) {
			return res, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// notApplied: the leader was unknown, or the node we called was not the
// leader, so the command never reached a Raft log.
func notApplied(err error) bool {
	var le *leaderError
	return errors.Is(err, errNoLeader) ||
		(errors.As(err, &le) && le.status == http.StatusServiceUnavailable && le.msg == msgNotLeader)
}

// msgNotLeader is the internal endpoints' answer when called on a follower.
const msgNotLeader = "not the leader"

func (a *API) proposeOnce(ctx context.Context, cmd []byte) (*fsm.ApplyResult, error) {
	if a.opts.Consensus.IsLeader() {
		res, _, err := a.opts.Consensus.Apply(ctx, cmd)
		if err != nil {
			return nil, err
		}
		return asApplyResult(res), nil
	}
	var ans applyAnswer
	if err := a.callLeader(ctx, internalApplyPath, "application/octet-stream", cmd, &ans); err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := a.opts.Consensus.WaitForIndex(wctx, ans.Index); err != nil {
		a.logger.Warn("forwarded write not yet applied locally", "index", ans.Index, "error", err)
	}
	res := &fsm.ApplyResult{Err: fsm.ErrorFromCode(ans.Code, ans.Error), Machine: ans.Machine, Channel: ans.Channel, Events: ans.Events, Token: ans.Token}
	if ans.Silence != nil {
		// The local replica has it compiled (schedule parsed) once applied.
		if s, err := a.opts.FSM.Silence(ans.Silence.ID); err == nil {
			res.Silence = &s
		} else if fsm.CompileSilence(ans.Silence) == nil {
			res.Silence = ans.Silence
		}
	}
	return res, nil
}

func asApplyResult(v any) *fsm.ApplyResult {
	if r, ok := v.(*fsm.ApplyResult); ok && r != nil {
		return r
	}
	return &fsm.ApplyResult{}
}

// callLeader POSTs to the leader's internal endpoint and decodes its answer.
func (a *API) callLeader(ctx context.Context, path, contentType string, body []byte, out any) error {
	return a.callLeaderWith(ctx, a.opts.HTTPClient, path, contentType, body, out)
}

// callLeaderWith is callLeader with a chosen client (and so timeout).
func (a *API) callLeaderWith(ctx context.Context, client *http.Client, path, contentType string, body []byte, out any) error {
	_, addr, ok := a.opts.Consensus.Leader()
	if !ok || addr == "" {
		return errNoLeader
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.opts.LeaderScheme+"://"+addr+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set(clusterSecretHeader, a.opts.ClusterSecret)
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("reach leader: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, a.opts.MaxInternalBody))
	if err != nil {
		return fmt.Errorf("read leader answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var eb errorBody
		_ = json.Unmarshal(data, &eb)
		return &leaderError{status: resp.StatusCode, msg: eb.Error}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode leader answer: %w", err)
	}
	return nil
}

// leaderError is a non-2xx answer from the leader, passed on as it came.
type leaderError struct {
	status int
	msg    string
}

func (e *leaderError) Error() string {
	return fmt.Sprintf("leader answered %d: %s", e.status, e.msg)
}

func (a *API) handleInternalApply(w http.ResponseWriter, r *http.Request) {
	if tooLarge(w, r, a.opts.MaxAdminBody) {
		return
	}
	cmd, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.opts.MaxAdminBody))
	if err != nil || len(cmd) == 0 {
		writeError(w, http.StatusBadRequest, "invalid command body")
		return
	}
	if !forwardableCommand(fsm.CommandType(cmd[0])) {
		writeError(w, http.StatusBadRequest, "command type %d may not be forwarded", cmd[0])
		return
	}
	if !a.opts.Consensus.IsLeader() {
		writeError(w, http.StatusServiceUnavailable, msgNotLeader)
		return
	}
	res, index, err := a.opts.Consensus.Apply(r.Context(), cmd)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "%s", err.Error())
		return
	}
	ar := asApplyResult(res)
	ans := applyAnswer{Index: index, Machine: ar.Machine, Channel: ar.Channel, Silence: ar.Silence, Events: ar.Events, Token: ar.Token}
	if ar.Err != nil {
		ans.Code, ans.Error = fsm.ErrorCode(ar.Err), ar.Err.Error()
	}
	writeJSON(w, http.StatusOK, ans)
}

// forwardableCommand: followers forward admin writes only. Heartbeats go
// through the batch endpoint (the leader stamps their times), and offline
// marks and delivery results are the leader's own business.
func forwardableCommand(t fsm.CommandType) bool {
	switch t {
	case fsm.CmdRegisterMachine, fsm.CmdDeleteMachine, fsm.CmdRotateKey, fsm.CmdCreateChannel, fsm.CmdDeleteChannel,
		fsm.CmdUpdateMachine, fsm.CmdPauseMachine, fsm.CmdResumeMachine, fsm.CmdReportFailure,
		fsm.CmdUpdateChannel, fsm.CmdCreateSilence, fsm.CmdExpireSilence:
		return true
	case fsm.CmdSetAgentFacts: // issue 13: a node reports facts that changed
		return true
	case fsm.CmdCreateToken, fsm.CmdDeleteToken: // issue 11
		return true
	}
	return false
}

// forwardBeats sends a batch of aged beats to the leader.
func (a *API) forwardBeats(ctx context.Context, batch []agedBeat) error {
	body, err := encodeBeatBatch(a.opts.Consensus.Status().NodeID, batch)
	if err != nil {
		return err
	}
	// A frozen or cut-off leader must not hold the flusher for the HTTP
	// client's 10s: beats are kept and go to the next leader, and a stalled
	// flush would turn this node's intake unhealthy meanwhile.
	ctx, cancel := context.WithTimeout(ctx, max(time.Second, 4*a.opts.FlushInterval))
	defer cancel()
	return a.callLeader(ctx, internalBeatsPath, "application/json", body, nil)
}

func (a *API) handleInternalBeats(w http.ResponseWriter, r *http.Request) {
	received := time.Now()
	var batch beatBatch
	// Unknown fields are tolerated here (unlike the public API): during a
	// rolling upgrade a newer node may send more than this leader knows.
	if tooLarge(w, r, a.opts.MaxInternalBody) {
		return
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.opts.MaxInternalBody))
	if err == nil {
		err = decodeBeatBatch(data, &batch)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid heartbeat batch: %s", jsonErrorText(err))
		return
	}
	if len(batch.Beats) > a.opts.MaxBatchBeats {
		writeError(w, http.StatusRequestEntityTooLarge, "batch of %d beats exceeds %d", len(batch.Beats), a.opts.MaxBatchBeats)
		return
	}
	if !a.opts.Consensus.IsLeader() {
		writeError(w, http.StatusServiceUnavailable, msgNotLeader)
		return
	}
	// Count the time spent decoding as part of each beat's age.
	extra := time.Since(received).Microseconds()
	for i := range batch.Beats {
		if batch.Beats[i].AgeUS < 0 {
			batch.Beats[i].AgeUS = 0
		}
		batch.Beats[i].AgeUS += extra
	}
	if err := a.applyBeats(r.Context(), batch.Beats); err != nil {
		writeError(w, http.StatusServiceUnavailable, "%s", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"applied": len(batch.Beats)})
}
