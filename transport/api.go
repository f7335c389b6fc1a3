package transport

import (
	"context"
	"net/http"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// API is one node's HTTP surface.
type API struct {
	opts      Options
	logger    hclog.Logger
	coalescer *Coalescer
	flusher   *flusher
	freeze    *freezeGuard
	// beatBodies holds buffers of maxPooledBody bytes for heartbeat bodies.
	beatBodies sync.Pool
	facts      *factsTracker // issue 13: agent facts, replicated on change
	mux        *http.ServeMux
	handler    http.Handler // mux, with a debug access log when enabled

	runOnce sync.Once

	// Issue 11: audit log of writes; lag-safe credential lookups.
	audit  hclog.Logger
	lookup *leaderLookup
}

// New builds the API. Call Run to start shipping heartbeats to the leader.
func New(opts Options) (*API, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	a := &API{opts: opts, logger: opts.Logger.Named("http"), coalescer: NewCoalescer(), freeze: newFreezeGuard()}
	a.beatBodies.New = func() any { b := make([]byte, maxPooledBody); return &b }
	a.flusher = newFlusher(a)
	a.facts = newFactsTracker(a)
	a.audit = opts.Logger.Named("audit")
	a.lookup = newLeaderLookup(opts.LeaderLookupRate, opts.LeaderLookupBurst)
	a.mux = http.NewServeMux()
	a.routes()
	a.handler = a.accessLog(http.HandlerFunc(a.serve))
	return a, nil
}

// serve sends the heartbeat, the hot path, straight to its handler (the
// router's pattern match was a tenth of the heartbeat's handler time,
// issue 14) and everything else through the router. The router would
// pick the same handler: the path is clean and matches exactly.
func (a *API) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && r.URL.Path == HeartbeatPath {
		a.handleHeartbeat(w, r)
		return
	}
	a.mux.ServeHTTP(w, r)
}

// HeartbeatPath is where agents POST their heartbeats.
const HeartbeatPath = "/v1/heartbeat"

// Handler serves every route.
func (a *API) Handler() http.Handler { return a.handler }

// Coalescer exposes the heartbeat coalescer (for metrics and benchmarks).
func (a *API) Coalescer() *Coalescer { return a.coalescer }

// PendingBeats is the number of machines whose beats await the leader:
// those in the coalescer and those a failed flush kept.
func (a *API) PendingBeats() int { return a.coalescer.Len() + int(a.flusher.pendingN.Load()) }

// RunFlusher ships coalesced heartbeats to the leader until ctx ends, then
// makes one last attempt.
func (a *API) RunFlusher(ctx context.Context) {
	a.runOnce.Do(func() {
		go a.freeze.run(ctx)
		go a.facts.run(ctx)
		a.flusher.run(ctx)
	})
}

// route registers handlers per method for a path, and a fallback that
// answers other methods with a JSON 405.
func (a *API) route(path string, handlers map[string]http.HandlerFunc) {
	allow := ""
	for method, h := range handlers {
		a.mux.HandleFunc(method+" "+path, h)
		if allow != "" {
			allow += ", "
		}
		allow += method
	}
	a.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, "method %s not allowed on %s", r.Method, redactPath(r.URL.Path))
	})
}

func (a *API) routes() {
	a.route("/healthz", map[string]http.HandlerFunc{"GET": a.handleHealthz})
	a.route("/readyz", map[string]http.HandlerFunc{"GET": a.handleReadyz})
	a.route("/metrics", map[string]http.HandlerFunc{"GET": a.handleMetrics})
	a.route("/v1/status", map[string]http.HandlerFunc{"GET": a.handleStatus})
	a.docRoutes() // GET /v1/openapi.json (issue 13)

	a.route(HeartbeatPath, map[string]http.HandlerFunc{"POST": a.handleHeartbeat, "GET": a.handleHeartbeat})
	a.route("/v1/heartbeat/fail", map[string]http.HandlerFunc{"POST": a.handleHeartbeatFail})
	a.pingRoutes()

	a.route("/v1/machines", map[string]http.HandlerFunc{
		"GET": a.admin(a.handleListMachines), "POST": a.admin(a.handleRegisterMachine)})
	a.route("/v1/machines/{name}", map[string]http.HandlerFunc{
		"GET": a.admin(a.handleGetMachine), "DELETE": a.admin(a.handleDeleteMachine), "PATCH": a.admin(a.handlePatchMachine)})
	a.route("/v1/machines/{name}/pause", map[string]http.HandlerFunc{"POST": a.admin(a.handlePauseMachine)})
	a.route("/v1/machines/{name}/resume", map[string]http.HandlerFunc{"POST": a.admin(a.handleResumeMachine)})
	a.route("/v1/silences", map[string]http.HandlerFunc{
		"GET": a.admin(a.handleListSilences), "POST": a.admin(a.handleCreateSilence)})
	a.route("/v1/silences/{id}", map[string]http.HandlerFunc{
		"GET": a.admin(a.handleGetSilence), "DELETE": a.admin(a.handleExpireSilence)})
	a.route("/v1/machines/{name}/rotate-key", map[string]http.HandlerFunc{"POST": a.admin(a.handleRotateKey)})
	a.route("/v1/machines/{name}/uptime", map[string]http.HandlerFunc{"GET": a.admin(a.handleUptime)}) // issue 12
	a.route("/v1/events", map[string]http.HandlerFunc{"GET": a.admin(a.handleEvents)})
	a.route("/v1/cluster/members", map[string]http.HandlerFunc{"GET": a.admin(a.handleMembers)})
	a.route("/v1/channels", map[string]http.HandlerFunc{
		"GET": a.admin(a.handleListChannels), "POST": a.admin(a.handleCreateChannel)})
	a.route("/v1/channels/{name}", map[string]http.HandlerFunc{
		"DELETE": a.admin(a.handleDeleteChannel), "PATCH": a.admin(a.handlePatchChannel)})
	a.route("/v1/channels/{name}/test", map[string]http.HandlerFunc{"POST": a.admin(a.handleTestChannel)})

	a.operatorRoutes()
	a.tokenRoutes() // issue 11
	a.route(internalLookupPath, map[string]http.HandlerFunc{"POST": a.internal(a.handleInternalLookup)})
	a.route(internalApplyPath, map[string]http.HandlerFunc{"POST": a.internal(a.handleInternalApply)})
	a.route(internalBeatsPath, map[string]http.HandlerFunc{"POST": a.internal(a.handleInternalBeats)})
	a.route(internalTestPath, map[string]http.HandlerFunc{"POST": a.internal(a.handleInternalTest)})

	a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: %s %s", r.Method, redactPath(r.URL.Path))
	})
}

// admin requires a token whose role allows the request (issue 11): read
// for GETs, write for changes, admin for cluster operations, snapshots and
// tokens (requiredRole). The -admin-token is the bootstrap admin token.
// Every write is logged as one audit line with the token's name.
func (a *API) admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := a.authorize(w, r, requiredRole(r))
		if !ok {
			return
		}
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			h(w, r)
			return
		}
		a.audited(p, w, r, h)
	}
}

// internal requires the cluster secret: only servers call these.
func (a *API) internal(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !secretEqual(r.Header.Get(clusterSecretHeader), a.opts.ClusterSecret) {
			writeError(w, http.StatusUnauthorized, "cluster secret required")
			return
		}
		if a.opts.RequirePeerCert && !peerCertificate(r) { // issue 11
			writeError(w, http.StatusUnauthorized, "a server certificate is required")
			return
		}
		h(w, r)
	}
}
