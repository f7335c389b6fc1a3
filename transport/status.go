package transport

import (
	"net/http"
)

func (a *API) handleHealthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (a *API) handleReadyz(w http.ResponseWriter, _ *http.Request) {
	if ok, why := a.opts.Consensus.Ready(); !ok {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "error": why})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (a *API) handleMetrics(w http.ResponseWriter, r *http.Request) {
	if a.opts.Metrics == nil {
		writeError(w, http.StatusNotFound, "metrics are not enabled")
		return
	}
	a.opts.Metrics.ServeHTTP(w, r)
}

func (a *API) handleStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, a.opts.Consensus.Status())
}

func (a *API) handleMembers(w http.ResponseWriter, _ *http.Request) {
	members, err := a.opts.Consensus.Members()
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "%s", err.Error())
		return
	}
	if members == nil {
		members = []Member{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"members": members})
}
