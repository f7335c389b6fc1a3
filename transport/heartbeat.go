package transport

import (
	"bytes"
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
	if r.ContentLength != 0 && r.Method == http.MethodPost && !a.readBeatBody(w, r, id) {
		return
	}
	if !a.acceptBeat(w, id) {
		return
	}
	// A shared value slice instead of Header.Set: one allocation less per
	// beat (net/http copies the header when the status is written).
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write(acceptedBody)
}

// readBeatBody reads and checks a heartbeat's body and notes its facts,
// answering 4xx itself and reporting false when the body is refused.
//
// Issue 14: an agent sends the same bytes with every beat, so the body is
// read whole into a pooled buffer and, when it is byte for byte the one
// this node last accepted from this machine (a seeded hash, kept with the
// facts' fingerprint), neither decoded nor checked again: the outcome
// would be the same. Only a new or changed body (or one of unknown
// length) goes through the JSON decoder.
func (a *API) readBeatBody(w http.ResponseWriter, r *http.Request, id string) bool {
	n := r.ContentLength
	if n < 0 || n > maxPooledBody {
		return a.decodeBeatBody(w, id, http.MaxBytesReader(w, r.Body, a.opts.MaxHeartbeatBody), 0)
	}
	bp := a.beatBodies.Get().(*[]byte)
	defer a.beatBodies.Put(bp)
	buf := (*bp)[:n]
	got, err := io.ReadFull(r.Body, buf)
	if err != nil {
		// A short body: decode what came, then the error, as a streaming
		// read would have seen it.
		return a.decodeBeatBody(w, id, io.MultiReader(bytes.NewReader(buf[:got]), errReader{err}), 0)
	}
	raw := a.facts.bodyHash(buf)
	if a.facts.sameBody(id, raw) {
		return true
	}
	return a.decodeBeatBody(w, id, bytes.NewReader(buf), raw)
}

// decodeBeatBody decodes one heartbeat body from rd; raw is the body's
// hash when it was read whole (0: not known).
func (a *API) decodeBeatBody(w http.ResponseWriter, id string, rd io.Reader, raw uint64) bool {
	var body heartbeatBody
	err := json.NewDecoder(rd).Decode(&body)
	var mbe *http.MaxBytesError
	if err == nil && len(body.Info) > 0 && body.Info[0] != '{' && string(body.Info) != "null" {
		writeError(w, http.StatusBadRequest, "body is not valid: field \"info\" must be a JSON object")
		return false
	}
	switch {
	case err == nil:
		if msg := body.check(); msg != "" {
			writeError(w, http.StatusBadRequest, "body is not valid: %s", msg)
			return false
		}
		a.facts.observe(id, &body, raw)
	case errors.Is(err, io.EOF):
		a.facts.observe(id, &body, raw) // an empty or blank body: a plain beat
	case errors.As(err, &mbe):
		writeError(w, http.StatusRequestEntityTooLarge, "request body larger than %d bytes", a.opts.MaxHeartbeatBody)
		return false
	default:
		writeError(w, http.StatusBadRequest, "%s", jsonErrorMessage(err))
		return false
	}
	return true
}

// maxPooledBody: bodies up to this size (every agent's) are read whole
// into a pooled buffer; larger ones are streamed to the decoder.
const maxPooledBody = 4 << 10

// errReader returns err on every read.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

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
	now := time.Now() // one clock read for the checks and the beat
	// A node that cannot reach the leader sends agents elsewhere rather than
	// swallowing beats the leader would never see in time.
	if a.freeze.suspectAt(now) {
		writeError(w, http.StatusServiceUnavailable, "this node was paused; heartbeats read right after a pause may be stale, try another server")
		return false
	}
	if !a.flusher.healthyAt(now) {
		writeError(w, http.StatusServiceUnavailable, "this node cannot reach the cluster leader; try another server")
		return false
	}
	a.coalescer.Record(id, now)
	if c := a.opts.HeartbeatsReceived; c != nil {
		c.Inc()
	}
	return true
}

var (
	acceptedBody    = []byte(`{"status":"accepted"}` + "\n")
	jsonContentType = []string{"application/json"}
)
