package transport

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lunasentri/lunasentri/fsm"
)

// The machine side of alerting (docs/api.md "Machines", "Heartbeat signals"):
// pause, resume, PATCH and reported failures.

// maxFailBody is the largest reported failure body (docs/api.md: ≤ 10 KiB).
const maxFailBody = fsm.MaxFailureMessage

// writeMachineResult answers a machine command with the machine as it is now.
func (a *API) writeMachineResult(w http.ResponseWriter, res *fsm.ApplyResult, err error) {
	if err == nil {
		err = res.Err
	}
	if err != nil {
		writeApplyError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"machine": a.machineView(*res.Machine)})
}

func (a *API) handlePauseMachine(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, err := a.opts.FSM.MachineByName(name); err != nil {
		writeError(w, http.StatusNotFound, "machine %q not found", name)
		return
	}
	res, err := a.propose(r.Context(), fsm.MustEncode(fsm.CmdPauseMachine, fsm.PauseMachine{Name: name, At: time.Now().UTC()}))
	a.writeMachineResult(w, res, err)
}

func (a *API) handleResumeMachine(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, err := a.opts.FSM.MachineByName(name); err != nil {
		writeError(w, http.StatusNotFound, "machine %q not found", name)
		return
	}
	res, err := a.propose(r.Context(), fsm.MustEncode(fsm.CmdResumeMachine, fsm.ResumeMachine{Name: name, At: time.Now().UTC()}))
	a.writeMachineResult(w, res, err)
}

// patchMachineRequest: every field optional; absent fields stay.
type patchMachineRequest struct {
	Labels           *map[string]string `json:"labels"`
	Description      *string            `json:"description"`
	Hostname         *string            `json:"hostname"`
	OfflineThreshold flexDuration       `json:"offline_threshold"`
}

func (a *API) handlePatchMachine(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, err := a.opts.FSM.MachineByName(name); err != nil {
		writeError(w, http.StatusNotFound, "machine %q not found", name)
		return
	}
	var req patchMachineRequest
	if !decodeJSON(w, r, a.opts.MaxAdminBody, &req) {
		return
	}
	cmd := fsm.UpdateMachine{Name: name, DefaultThreshold: a.opts.OfflineThreshold}
	var err error
	if req.Labels != nil {
		err = validateLabels("labels", *req.Labels)
		cmd.Labels = req.Labels
	}
	if err == nil && req.Description != nil {
		err = validateText("description", *req.Description, maxDescriptionLen)
		cmd.Description = req.Description
	}
	if err == nil && req.Hostname != nil {
		err = validateText("hostname", *req.Hostname, maxHostnameLen)
		cmd.Hostname = req.Hostname
	}
	if err == nil && req.OfflineThreshold.Set {
		err = validateThreshold(req.OfflineThreshold)
		cmd.OfflineThreshold = &req.OfflineThreshold.D
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "%s", err.Error())
		return
	}
	if cmd.Labels == nil && cmd.Description == nil && cmd.Hostname == nil && cmd.OfflineThreshold == nil {
		writeError(w, http.StatusBadRequest, "nothing to change: give labels, description, hostname or offline_threshold")
		return
	}
	res, err := a.propose(r.Context(), fsm.MustEncode(fsm.CmdUpdateMachine, cmd))
	a.writeMachineResult(w, res, err)
}

// handleHeartbeatFail: POST /v1/heartbeat/fail with the machine key.
func (a *API) handleHeartbeatFail(w http.ResponseWriter, r *http.Request) {
	a.reportFailure(w, r, bearer(r), false)
}

// handlePingFail: GET or POST /ping/{key}/fail, for cron jobs and devices
// that cannot set headers. The key is never echoed.
func (a *API) handlePingFail(w http.ResponseWriter, r *http.Request) {
	a.reportFailure(w, r, r.PathValue("key"), true)
}

func (a *API) reportFailure(w http.ResponseWriter, r *http.Request, key string, plain bool) {
	if tooLarge(w, r, maxFailBody) {
		return
	}
	id, ok := a.authenticateKey(w, r, key)
	if !ok {
		return
	}
	msg, err := failureMessage(w, r)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, "request body larger than %d bytes", maxFailBody)
			return
		}
		writeError(w, http.StatusBadRequest, "%s", err.Error())
		return
	}
	cmd := fsm.ReportFailure{ID: id, Message: msg, At: time.Now().UTC(), Alerting: a.opts.Alerting}
	res, err := a.propose(r.Context(), fsm.MustEncode(fsm.CmdReportFailure, cmd))
	if err == nil {
		err = res.Err
	}
	if err != nil {
		writeApplyError(w, err)
		return
	}
	if plain {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			_, _ = w.Write(pingOK)
		}
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"status": fsm.StatusOffline, "reason": fsm.ReasonReported})
}

// failureMessage reads the optional body: JSON {"message": "..."} or plain
// text, at most maxFailBody bytes of UTF-8.
func failureMessage(w http.ResponseWriter, r *http.Request) (string, error) {
	if r.Body == nil || r.Method == http.MethodGet || r.Method == http.MethodHead {
		return "", nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxFailBody))
	if err != nil {
		return "", err
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return "", nil
	}
	msg := string(trimmed)
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") || trimmed[0] == '{' {
		var v struct {
			Message string `json:"message"`
		}
		if err := json.Unmarshal(trimmed, &v); err != nil {
			return "", errors.New(`body is not JSON; send plain text or {"message": "..."}`)
		}
		msg = v.Message
	}
	if !utf8.ValidString(msg) || strings.ContainsRune(msg, 0) {
		return "", errors.New("message must be valid UTF-8 text")
	}
	return msg, nil
}
