package transport

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"
)

// heartbeatBody is what agents may send. Everything is optional; `{}` or an
// empty body is a valid heartbeat.
type heartbeatBody struct {
	Hostname     string `json:"hostname"`
	AgentVersion string `json:"agent_version"`
	// Info is validated as JSON but not built into a map: nothing reads it
	// yet, and building it cost a third of the handler's time.
	Info json.RawMessage `json:"info"`
}

// handleHeartbeat is the hot path: authenticate against the local key index,
// note the beat in the coalescer and answer 202 without waiting for Raft.
func (a *API) handleHeartbeat(w http.ResponseWriter, r *http.Request) {
	if tooLarge(w, r, a.opts.MaxHeartbeatBody) {
		return
	}
	id, st, msg := a.authenticateMachine(r.Context(), bearer(r))
	if st != authOK {
		writeMachineAuthError(w, st, msg)
		return
	}
	if r.ContentLength != 0 {
		var body heartbeatBody
		err := json.NewDecoder(http.MaxBytesReader(w, r.Body, a.opts.MaxHeartbeatBody)).Decode(&body)
		var mbe *http.MaxBytesError
		if err == nil && len(body.Info) > 0 && body.Info[0] != '{' && string(body.Info) != "null" {
			writeError(w, http.StatusBadRequest, "invalid JSON body: field \"info\" must be an object")
			return
		}
		switch {
		case err == nil, errors.Is(err, io.EOF):
		case errors.As(err, &mbe):
			writeError(w, http.StatusRequestEntityTooLarge, "request body larger than %d bytes", a.opts.MaxHeartbeatBody)
			return
		default:
			writeError(w, http.StatusBadRequest, "invalid JSON body: %s", jsonErrorText(err))
			return
		}
	}
	// A node that cannot reach the leader sends agents elsewhere rather than
	// swallowing beats the leader would never see in time.
	if a.freeze.suspect() {
		writeError(w, http.StatusServiceUnavailable, "this node was paused; heartbeats read right after a pause may be stale, try another server")
		return
	}
	if !a.flusher.healthy() {
		writeError(w, http.StatusServiceUnavailable, "this node cannot reach the cluster leader; try another server")
		return
	}
	a.coalescer.Record(id, time.Now())
	if c := a.opts.HeartbeatsReceived; c != nil {
		c.Inc()
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write(acceptedBody)
}

var acceptedBody = []byte(`{"status":"accepted"}` + "\n")
