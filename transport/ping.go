package transport

import (
	"net/http"
	"strings"
)

// Heartbeat signals with the key in the URL (docs/api.md "Heartbeat
// signals"): for cron jobs, wget, busybox and devices that cannot set a
// header. A key in a path is a secret in a place that tends to be logged,
// so every text this package writes about such a path goes through
// redactPath first.

// pingPrefix is the path prefix of every key-in-URL signal.
const pingPrefix = "/ping/"

// pingMethods answer /ping/{key}: a GET for wget and browsers, HEAD for
// uptime checkers, POST for curl -d and webhooks of other tools.
var pingMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost}

// pingRoutes registers the heartbeat signals. Further signals on the same
// key (…/fail) are one a.signal line each.
func (a *API) pingRoutes() {
	a.signal("/ping/{key}", a.handlePing)
	a.signal("/ping/{key}/fail", a.handlePingFail) // issue 10
}

// signal registers h for GET, HEAD and POST on a /ping/… pattern.
func (a *API) signal(pattern string, h http.HandlerFunc) {
	handlers := make(map[string]http.HandlerFunc, len(pingMethods))
	for _, m := range pingMethods {
		handlers[m] = h
	}
	a.route(pattern, handlers)
}

// pingOK is the body of a successful ping, as Healthchecks answers.
var pingOK = []byte("OK")

// handlePing is a heartbeat authenticated by the key in the path. It takes
// the same path through the coalescer as POST /v1/heartbeat; any request
// body (a cron job's output) is ignored and not read.
func (a *API) handlePing(w http.ResponseWriter, r *http.Request) {
	id, ok := a.authenticateKey(w, r, r.PathValue("key"))
	if !ok {
		return
	}
	if !a.acceptBeat(w, id) {
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Length", "2")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(pingOK)
	}
}

// redactedKey replaces a key wherever a path is shown.
const redactedKey = "REDACTED"

// redactPath hides the key in a /ping/{key}[/…] path so that error answers
// and logs never carry it. Other paths are returned unchanged (and cost
// nothing).
func redactPath(p string) string {
	rest, ok := strings.CutPrefix(p, pingPrefix)
	if !ok || rest == "" {
		return p
	}
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		return pingPrefix + redactedKey + rest[i:]
	}
	return pingPrefix + redactedKey
}
