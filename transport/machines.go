package transport

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"maps"
	"net/http"
	"time"

	"github.com/lunasentri/lunasentri/fsm"
)

type registerRequest struct {
	Name             string            `json:"name"`
	Hostname         string            `json:"hostname"`
	Description      string            `json:"description"`
	Labels           map[string]string `json:"labels"`
	OfflineThreshold flexDuration      `json:"offline_threshold"`
}

func (r *registerRequest) validate() error {
	if err := validateName("machine", r.Name); err != nil {
		return err
	}
	if err := validateText("hostname", r.Hostname, maxHostnameLen); err != nil {
		return err
	}
	if hasControl(r.Hostname, false) { // issue 11
		return errors.New("hostname must not contain control characters such as newlines")
	}
	if err := validateText("description", r.Description, maxDescriptionLen); err != nil {
		return err
	}
	if hasControl(r.Description, true) { // issue 11
		return errors.New("description must not contain control characters other than newline and tab")
	}
	if err := validateLabels("labels", r.Labels); err != nil {
		return err
	}
	return validateThreshold(r.OfflineThreshold)
}

// newMachineKey returns a fresh API key: 32 random bytes, shown once.
func newMachineKey() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "lsk_" + base64.RawURLEncoding.EncodeToString(b), nil
}

func newMachineID() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

func (a *API) handleRegisterMachine(w http.ResponseWriter, r *http.Request) {
	var req registerRequest
	if !decodeJSON(w, r, a.opts.MaxAdminBody, &req) {
		return
	}
	if err := req.validate(); err != nil {
		writeError(w, http.StatusBadRequest, "%s", err.Error())
		return
	}
	if _, err := a.opts.FSM.MachineByName(req.Name); err == nil {
		writeError(w, http.StatusConflict, "machine %q already exists", req.Name)
		return
	}
	key, err := newMachineKey()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "generate key: %s", err.Error())
		return
	}
	id, err := newMachineID()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "generate id: %s", err.Error())
		return
	}
	m := fsm.Machine{
		ID: id, Name: req.Name, Hostname: req.Hostname, Description: req.Description,
		Labels: maps.Clone(req.Labels), OfflineThreshold: req.OfflineThreshold.D,
		KeyHash: fsm.HashKey(key), CreatedAt: time.Now().UTC(),
	}
	res, err := a.propose(r.Context(), fsm.MustEncode(fsm.CmdRegisterMachine, fsm.RegisterMachine{Machine: m}))
	if err == nil {
		err = res.Err
	}
	if err != nil {
		writeApplyError(w, err)
		return
	}
	if res.Machine != nil {
		m = *res.Machine
	}
	writeJSON(w, http.StatusCreated, map[string]any{"machine": a.machineView(m), "api_key": key})
}

func (a *API) handleListMachines(w http.ResponseWriter, r *http.Request) {
	status := fsm.Status(r.URL.Query().Get("status"))
	switch status {
	case "", fsm.StatusOnline, fsm.StatusOffline, fsm.StatusUnknown, fsm.StatusPaused:
	default:
		writeError(w, http.StatusBadRequest, "status must be online, offline, unknown or paused")
		return
	}
	ms := a.opts.FSM.Machines(status)
	out := make([]machineView, len(ms))
	for i, m := range ms {
		out[i] = a.machineView(m)
	}
	writeJSON(w, http.StatusOK, map[string]any{"machines": out})
}

func (a *API) handleGetMachine(w http.ResponseWriter, r *http.Request) {
	m, err := a.opts.FSM.MachineByName(r.PathValue("name"))
	if err != nil {
		writeError(w, http.StatusNotFound, "machine %q not found", r.PathValue("name"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"machine": a.machineView(m)})
}

func (a *API) handleDeleteMachine(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, err := a.opts.FSM.MachineByName(name); err != nil {
		writeError(w, http.StatusNotFound, "machine %q not found", name)
		return
	}
	res, err := a.propose(r.Context(), fsm.MustEncode(fsm.CmdDeleteMachine, fsm.DeleteMachine{Name: name}))
	if err == nil {
		err = res.Err
	}
	if err != nil {
		writeApplyError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) handleRotateKey(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, err := a.opts.FSM.MachineByName(name); err != nil {
		writeError(w, http.StatusNotFound, "machine %q not found", name)
		return
	}
	key, err := newMachineKey()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "generate key: %s", err.Error())
		return
	}
	res, err := a.propose(r.Context(), fsm.MustEncode(fsm.CmdRotateKey, fsm.RotateKey{Name: name, KeyHash: fsm.HashKey(key)}))
	if err == nil {
		err = res.Err
	}
	if err != nil {
		writeApplyError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"api_key": key})
}

func (a *API) handleEvents(w http.ResponseWriter, r *http.Request) {
	limit, err := parseLimit(r.URL.Query().Get("limit"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "%s", err.Error())
		return
	}
	evs := a.opts.FSM.Events(limit)
	out := make([]eventView, len(evs))
	for i, ev := range evs {
		out[i] = a.eventView(ev)
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": out})
}
