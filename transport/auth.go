package transport

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/lunasentri/lunasentri/fsm"
)

// Issue 11: tokens with roles, an audit line per write, and lag-safe
// authentication (a node that does not know a key or token yet asks the
// leader before it answers 401).

// principal is who a request acts as.
type principal struct {
	Name string // token name; "bootstrap" for -admin-token
	Role string
}

// bootstrapName is the audit name of the -admin-token.
const bootstrapName = "bootstrap"

// requiredRole is the role a request on an authenticated route needs
// (API.md "Tokens"): read for every GET except snapshots and tokens; admin
// for cluster operations, snapshots and tokens; write for the rest.
func requiredRole(r *http.Request) string {
	p := r.URL.Path
	if hasPathPrefix(p, "/v1/snapshot") || hasPathPrefix(p, "/v1/tokens") {
		return fsm.RoleAdmin
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return fsm.RoleRead
	}
	if hasPathPrefix(p, "/v1/cluster") {
		return fsm.RoleAdmin
	}
	return fsm.RoleWrite
}

func hasPathPrefix(p, prefix string) bool {
	return p == prefix || strings.HasPrefix(p, prefix+"/")
}

// authStatus is the outcome of checking a credential.
type authStatus int

const (
	authOK          authStatus = iota
	authUnknown                // 401: unknown, revoked or expired
	authUnavailable            // 503: cannot tell yet; try another server
)

// authenticate resolves a bearer token to a principal: the bootstrap admin
// token, else a replicated token (asking the leader when this node does not
// know it yet).
func (a *API) authenticate(ctx context.Context, tok string) (principal, authStatus, string) {
	if tok == "" {
		return principal{}, authUnknown, "a token is required (Authorization: Bearer TOKEN)"
	}
	if secretEqual(tok, a.opts.AdminToken) {
		return principal{Name: bootstrapName, Role: fsm.RoleAdmin}, authOK, ""
	}
	h := fsm.HashKey(tok)
	t, ok := a.opts.FSM.TokenByHash(h)
	if !ok {
		var st authStatus
		var msg string
		t, st, msg = a.lookup.token(ctx, a, h)
		if st != authOK {
			return principal{}, st, msg
		}
	}
	if !t.ExpiresAt.IsZero() && !time.Now().Before(t.ExpiresAt) {
		return principal{}, authUnknown, "token expired"
	}
	return principal{Name: t.Name, Role: t.Role}, authOK, ""
}

// TokenRole reports the role of a token ("read", "write" or "admin") if it
// is valid now: the bootstrap admin token, or an unexpired replicated token
// (looked up at the leader when this node has not applied it yet). For
// other packages (the web UI) that authenticate people with API tokens.
func (a *API) TokenRole(token string) (role string, ok bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	p, st, _ := a.authenticate(ctx, token)
	return p.Role, st == authOK
}

// RoleAllows reports whether a role includes the needed one
// (read ⊂ write ⊂ admin).
func RoleAllows(role, needed string) bool {
	return fsm.RoleRank(role) > 0 && fsm.RoleRank(role) >= fsm.RoleRank(needed)
}

// authorize checks the request's token against the role the route needs
// and answers 401/403/503 itself.
func (a *API) authorize(w http.ResponseWriter, r *http.Request, needed string) (principal, bool) {
	p, st, msg := a.authenticate(r.Context(), bearer(r))
	switch st {
	case authUnavailable:
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "%s", msg)
		return p, false
	case authUnknown:
		writeError(w, http.StatusUnauthorized, "%s", msg)
		return p, false
	}
	if !RoleAllows(p.Role, needed) {
		writeError(w, http.StatusForbidden, "token %q has role %s; this request needs %s", p.Name, p.Role, needed)
		return p, false
	}
	return p, true
}

// statusRecorder remembers the status a handler answered, for the audit.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the real writer (deadlines).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// audited runs a write and logs one audit line: who (the token's name, never
// its secret), what and the outcome; hclog stamps when.
func (a *API) audited(p principal, w http.ResponseWriter, r *http.Request, h http.HandlerFunc) {
	rec := &statusRecorder{ResponseWriter: w}
	start := time.Now()
	h(rec, r)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	a.audit.Info("write", "token", p.Name, "role", p.Role, "method", r.Method, "path", r.URL.Path,
		"status", rec.status, "remote", r.RemoteAddr, "took", time.Since(start).Round(time.Millisecond))
}

// Lag-safe lookups at the leader.

const internalLookupPath = "/internal/v1/lookup"

// Defaults for leader lookups: a flood of unknown keys costs the leader at
// most this many lookups a second from each node; the rest get 503.
const (
	DefaultLeaderLookupRate  = 50
	DefaultLeaderLookupBurst = 100
	lookupCacheTTL           = 5 * time.Second
	lookupCacheMax           = 4096
	lookupTimeout            = time.Second
)

type lookupRequest struct {
	Kind string      `json:"kind"` // "machine" or "token"
	Hash fsm.KeyHash `json:"hash"`
}

type lookupAnswer struct {
	ID    string     `json:"id,omitempty"`
	Token *fsm.Token `json:"token,omitempty"`
}

type cachedLookup struct {
	ans   lookupAnswer
	until time.Time
}

// leaderLookup asks the leader about keys and tokens this node does not
// know, rate-limited, and remembers positive answers for a few seconds
// (until the node has applied them itself).
type leaderLookup struct {
	limiter *rate.Limiter
	mu      sync.Mutex
	cache   map[lookupRequest]cachedLookup
}

func newLeaderLookup(perSec float64, burst int) *leaderLookup {
	return &leaderLookup{limiter: rate.NewLimiter(rate.Limit(perSec), burst), cache: map[lookupRequest]cachedLookup{}}
}

const (
	msgCatchingUp  = "this node does not know this credential yet and cannot confirm it with the leader now (catching up); try another server"
	msgUnknownKey  = "unknown machine key"
	msgUnknownTok  = "unknown, revoked or expired token"
	msgLeaderSlow  = "the cluster leader did not confirm this credential in time; try another server"
	lookupMachines = "machine"
	lookupTokens   = "token"
)

// machine resolves a machine key hash that is unknown locally.
func (l *leaderLookup) machine(ctx context.Context, a *API, h fsm.KeyHash) (string, authStatus, string) {
	ans, st, msg := l.do(ctx, a, lookupRequest{Kind: lookupMachines, Hash: h}, msgUnknownKey)
	return ans.ID, st, msg
}

// token resolves a token hash that is unknown locally.
func (l *leaderLookup) token(ctx context.Context, a *API, h fsm.KeyHash) (fsm.Token, authStatus, string) {
	ans, st, msg := l.do(ctx, a, lookupRequest{Kind: lookupTokens, Hash: h}, msgUnknownTok)
	if st != authOK || ans.Token == nil {
		return fsm.Token{}, st, msg
	}
	return *ans.Token, authOK, ""
}

func (l *leaderLookup) do(ctx context.Context, a *API, req lookupRequest, unknown string) (lookupAnswer, authStatus, string) {
	if a.opts.Consensus.IsLeader() {
		// The leader's replica holds every acknowledged write once it has
		// applied its commit index.
		if ok, _ := a.opts.Consensus.Ready(); !ok {
			return lookupAnswer{}, authUnavailable, msgCatchingUp
		}
		return lookupAnswer{}, authUnknown, unknown
	}
	now := time.Now()
	l.mu.Lock()
	if c, ok := l.cache[req]; ok && now.Before(c.until) {
		l.mu.Unlock()
		return c.ans, authOK, ""
	}
	l.mu.Unlock()
	if !l.limiter.Allow() {
		return lookupAnswer{}, authUnavailable, msgCatchingUp
	}
	body, _ := json.Marshal(req)
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	var ans lookupAnswer
	err := a.callLeader(ctx, internalLookupPath, "application/json", body, &ans)
	var le *leaderError
	switch {
	case err == nil:
	case errors.As(err, &le) && le.status == http.StatusNotFound:
		return lookupAnswer{}, authUnknown, unknown
	default:
		a.logger.Debug("credential lookup at the leader failed", "kind", req.Kind, "error", err)
		return lookupAnswer{}, authUnavailable, msgLeaderSlow
	}
	l.mu.Lock()
	if len(l.cache) >= lookupCacheMax {
		clear(l.cache)
	}
	l.cache[req] = cachedLookup{ans: ans, until: now.Add(lookupCacheTTL)}
	l.mu.Unlock()
	return ans, authOK, ""
}

// handleInternalLookup answers a follower's question on the leader.
func (a *API) handleInternalLookup(w http.ResponseWriter, r *http.Request) {
	var req lookupRequest
	if !decodeJSON(w, r, 4<<10, &req) {
		return
	}
	if !a.opts.Consensus.IsLeader() {
		writeError(w, http.StatusServiceUnavailable, msgNotLeader)
		return
	}
	var ans lookupAnswer
	found := false
	switch req.Kind {
	case lookupMachines:
		ans.ID, found = a.opts.FSM.MachineIDByKeyHash(req.Hash)
	case lookupTokens:
		if t, ok := a.opts.FSM.TokenByHash(req.Hash); ok {
			ans.Token, found = &t, true
		}
	default:
		writeError(w, http.StatusBadRequest, "kind must be machine or token")
		return
	}
	if found {
		writeJSON(w, http.StatusOK, ans)
		return
	}
	if ok, _ := a.opts.Consensus.Ready(); !ok {
		writeError(w, http.StatusServiceUnavailable, "leader is catching up")
		return
	}
	writeError(w, http.StatusNotFound, "unknown")
}

// authenticateMachine resolves a machine key: the local key index first,
// then (on a follower) the leader. It never answers 401 for a key the
// leader knows: it answers 503 when it cannot ask (API.md "Heartbeat
// signals"). Every machine-key endpoint uses it.
func (a *API) authenticateMachine(ctx context.Context, key string) (string, authStatus, string) {
	if key == "" {
		return "", authUnknown, "a machine key is required"
	}
	if id, ok := a.opts.FSM.Authenticate(key); ok {
		return id, authOK, ""
	}
	return a.lookup.machine(ctx, a, fsm.HashKey(key))
}

// writeMachineAuthError answers a failed machine-key check.
func writeMachineAuthError(w http.ResponseWriter, st authStatus, msg string) {
	if st == authUnavailable {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "%s", msg)
		return
	}
	writeError(w, http.StatusUnauthorized, "%s", msg)
}

// forget drops every cached lookup (after a revocation through this node).
func (l *leaderLookup) forget() {
	l.mu.Lock()
	clear(l.cache)
	l.mu.Unlock()
}

// peerCertificate reports whether the request came over TLS with a client
// certificate the server verified and that carries the server usage (a
// node, not an agent or the CLI).
func peerCertificate(r *http.Request) bool {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return false
	}
	for _, u := range r.TLS.VerifiedChains[0][0].ExtKeyUsage {
		if u == x509.ExtKeyUsageServerAuth {
			return true
		}
	}
	return false
}
