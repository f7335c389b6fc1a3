package transport

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/lunasentri/lunasentri/fsm"
)

// maxSilenceComment bounds a silence's comment and created_by.
const maxSilenceComment = 1024

// silenceRequest is POST /v1/silences (docs/api.md "Silences and maintenance
// windows").
type silenceRequest struct {
	Matchers  map[string]string `json:"matchers"`
	Machines  []string          `json:"machines"`
	StartsAt  *time.Time        `json:"starts_at"`
	EndsAt    *time.Time        `json:"ends_at"`
	Duration  flexDuration      `json:"duration"`
	Schedule  string            `json:"schedule"`
	Timezone  string            `json:"timezone"`
	Comment   string            `json:"comment"`
	CreatedBy string            `json:"created_by"`
}

// silenceView is a silence as the API shows it, with its state now.
type silenceView struct {
	ID        string            `json:"id"`
	Matchers  map[string]string `json:"matchers"`
	Machines  []string          `json:"machines"`
	StartsAt  time.Time         `json:"starts_at"`
	EndsAt    *time.Time        `json:"ends_at"`
	Schedule  string            `json:"schedule"`
	Timezone  string            `json:"timezone"`
	Duration  string            `json:"duration"`
	Comment   string            `json:"comment"`
	CreatedBy string            `json:"created_by"`
	CreatedAt *time.Time        `json:"created_at,omitempty"`
	State     string            `json:"state"`
}

func silenceViewOf(s fsm.Silence, now time.Time) silenceView {
	v := silenceView{
		ID: s.ID, Matchers: s.Matchers, Machines: s.Machines, StartsAt: s.StartsAt.UTC(), EndsAt: timePtr(s.EndsAt),
		Schedule: s.Schedule, Timezone: s.Timezone, Comment: s.Comment, CreatedBy: s.CreatedBy,
		CreatedAt: timePtr(s.CreatedAt), State: s.StateAt(now),
	}
	if !s.ExpiredAt.IsZero() && (s.EndsAt.IsZero() || s.ExpiredAt.Before(s.EndsAt)) {
		v.EndsAt = timePtr(s.ExpiredAt)
	}
	if v.Matchers == nil {
		v.Matchers = map[string]string{}
	}
	if v.Machines == nil {
		v.Machines = []string{}
	}
	if s.Duration > 0 {
		v.Duration = s.Duration.String()
	} else if !s.EndsAt.IsZero() {
		v.Duration = s.EndsAt.Sub(s.StartsAt).String()
	}
	if s.Schedule != "" && v.Timezone == "" {
		v.Timezone = "UTC"
	}
	return v
}

// buildSilence validates a request into a silence, with a clear message
// for each kind of bad input.
func (a *API) buildSilence(req silenceRequest, now time.Time) (fsm.Silence, error) {
	s := fsm.Silence{
		Matchers: maps.Clone(req.Matchers), Machines: slices.Clone(req.Machines),
		Schedule: req.Schedule, Timezone: req.Timezone, Comment: req.Comment, CreatedBy: req.CreatedBy,
		CreatedAt: now,
	}
	if err := validateLabels("matchers", req.Matchers); err != nil {
		return s, err
	}
	for _, n := range req.Machines {
		if _, err := a.opts.FSM.MachineByName(n); err != nil {
			return s, fmt.Errorf("machines: no machine named %q", n)
		}
	}
	if req.Comment == "" {
		return s, fmt.Errorf("comment is required: say why notifications are muted")
	}
	if err := validateText("comment", req.Comment, maxSilenceComment); err != nil {
		return s, err
	}
	if err := validateText("created_by", req.CreatedBy, maxSilenceComment); err != nil {
		return s, err
	}
	if req.Duration.Set && req.Duration.D < time.Second {
		return s, fmt.Errorf("duration must be at least 1s")
	}
	s.StartsAt = now
	if req.StartsAt != nil {
		s.StartsAt = req.StartsAt.UTC()
	}
	if req.EndsAt != nil {
		s.EndsAt = req.EndsAt.UTC()
	}
	if req.Schedule == "" {
		if req.EndsAt != nil && req.Duration.Set {
			return s, fmt.Errorf("give ends_at or duration, not both")
		}
		if req.Duration.Set {
			s.EndsAt = s.StartsAt.Add(req.Duration.D)
		}
		if !s.EndsAt.IsZero() && !s.EndsAt.After(now) {
			return s, fmt.Errorf("ends_at is in the past")
		}
	} else {
		if !req.Duration.Set {
			return s, fmt.Errorf("a maintenance window (schedule) needs a duration")
		}
		s.Duration = req.Duration.D
	}
	if err := fsm.CompileSilence(&s); err != nil {
		return s, err
	}
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return s, err
	}
	s.ID = "sil-" + hex.EncodeToString(b)
	return s, nil
}

func (a *API) handleCreateSilence(w http.ResponseWriter, r *http.Request) {
	var req silenceRequest
	if !decodeJSON(w, r, a.opts.MaxAdminBody, &req) {
		return
	}
	now := time.Now().UTC()
	s, err := a.buildSilence(req, now)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%s", err.Error())
		return
	}
	res, err := a.propose(r.Context(), fsm.MustEncode(fsm.CmdCreateSilence, fsm.CreateSilence{Silence: s, At: now}))
	if err == nil {
		err = res.Err
	}
	if err != nil {
		writeApplyError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"silence": silenceViewOf(*res.Silence, time.Now())})
}

func (a *API) handleListSilences(w http.ResponseWriter, r *http.Request) {
	state := r.URL.Query().Get("state")
	switch state {
	case "", fsm.SilencePending, fsm.SilenceActive, fsm.SilenceExpired:
	default:
		writeError(w, http.StatusBadRequest, "state must be pending, active or expired")
		return
	}
	now := time.Now()
	out := []silenceView{}
	for _, s := range a.opts.FSM.Silences() {
		v := silenceViewOf(s, now)
		if state == "" || v.State == state {
			out = append(out, v)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"silences": out})
}

func (a *API) handleGetSilence(w http.ResponseWriter, r *http.Request) {
	s, err := a.opts.FSM.Silence(r.PathValue("id"))
	if err != nil {
		writeError(w, http.StatusNotFound, "silence %q not found", r.PathValue("id"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"silence": silenceViewOf(s, time.Now())})
}

// handleExpireSilence: DELETE /v1/silences/{id} expires it now; what it
// held back is reconciled in the same entry.
func (a *API) handleExpireSilence(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := a.opts.FSM.Silence(id); err != nil {
		writeError(w, http.StatusNotFound, "silence %q not found", id)
		return
	}
	res, err := a.propose(r.Context(), fsm.MustEncode(fsm.CmdExpireSilence, fsm.ExpireSilence{ID: id, At: time.Now().UTC(), Alerting: a.opts.Alerting}))
	if err == nil {
		err = res.Err
	}
	if err != nil {
		writeApplyError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
