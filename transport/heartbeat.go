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
	// Info is validated as JSON but never built into a map (that cost a
	// third of the handler's time): facts are compared by fingerprint and
	// stored as the agent sent them (facts.go).
	Info json.RawMessage `json:"info"`
}

// handleHeartbeat is the hot path: authenticate against the local key index,
// note the beat in the coalescer and answer 202 without waiting for Raft.
// GET (and so HEAD) are accepted too, with no body, for tools that cannot
// POST.
func (a *API) handleHeartbeat(w http.ResponseWriter, r *http.Request) {
	if tooLarge(w, r, a.opts.MaxHeartbeatBody) {
		return
	}
	id, ok := a.authenticateKey(w, r, bearer(r))
	if !ok {
		return
	}
	if r.ContentLength != 0 && r.Method == http.MethodPost {
		var body heartbeatBody
		err := json.NewDecoder(http.MaxBytesReader(w, r.Body, a.opts.MaxHeartbeatBody)).Decode(&body)
		var mbe *http.MaxBytesError
		if err == nil && len(body.Info) > 0 && body.Info[0] != '{' && string(body.Info) != "null" {
			writeError(w, http.StatusBadRequest, "body is not valid: field \"info\" must be a JSON object")
			return
		}
		switch {
		case err == nil:
			if msg := body.check(); msg != "" {
				writeError(w, http.StatusBadRequest, "body is not valid: %s", msg)
				return
			}
			a.facts.observe(id, &body)
		case errors.Is(err, io.EOF):
		case errors.As(err, &mbe):
			writeError(w, http.StatusRequestEntityTooLarge, "request body larger than %d bytes", a.opts.MaxHeartbeatBody)
			return
		default:
			writeError(w, http.StatusBadRequest, "%s", jsonErrorMessage(err))
			return
		}
	}
	if !a.acceptBeat(w, id) {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write(acceptedBody)
}

// authenticateKey maps a machine key to its machine id, answering 401 (or 503
// while the key cannot be checked) itself; a key this node does not know
// yet is checked with the leader (issue 11, lag-safe). The key never
// appears in the answer.
func (a *API) authenticateKey(w http.ResponseWriter, r *http.Request, key string) (string, bool) {
	id, st, msg := a.authenticateMachine(r.Context(), key)
	if st != authOK {
		writeMachineAuthError(w, st, msg)
		return "", false
	}
	return id, true
}

// acceptBeat notes a heartbeat of machine id, unless this node cannot pass
// it on in time; then it answers 503 itself and reports false.
func (a *API) acceptBeat(w http.ResponseWriter, id string) bool {
	// A node that cannot reach the leader sends agents elsewhere rather than
	// swallowing beats the leader would never see in time.
	if a.freeze.suspect() {
		writeError(w, http.StatusServiceUnavailable, "this node was paused; heartbeats read right after a pause may be stale, try another server")
		return false
	}
	if !a.flusher.healthy() {
		writeError(w, http.StatusServiceUnavailable, "this node cannot reach the cluster leader; try another server")
		return false
	}
	a.coalescer.Record(id, time.Now())
	if c := a.opts.HeartbeatsReceived; c != nil {
		c.Inc()
	}
	return true
}

var acceptedBody = []byte(`{"status":"accepted"}` + "\n")
