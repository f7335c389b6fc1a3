package transport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"

	"github.com/lunasentri/lunasentri/internal/clusterinfo"
)

// Operator is what the cluster-operations endpoints need. All but Leave
// act on the leader; the API forwards them there.
type Operator interface {
	RaftInfo() (RaftInfo, error)
	// RemoveServer drops a server from the Raft configuration (leader only).
	RemoveServer(id string) error
	// SaveSnapshot writes a consistent backup archive (leader only).
	SaveSnapshot(w io.Writer) error
	// RestoreSnapshot replaces the cluster's state with an archive (leader
	// only). A bad archive changes nothing and returns ErrBadSnapshot.
	RestoreSnapshot(r io.Reader) error
	// Leave takes this node out of the cluster; the node stops afterwards.
	Leave(ctx context.Context) error
}

// ErrBadSnapshot marks an upload that is not a valid archive (400).
var ErrBadSnapshot = errors.New("invalid snapshot archive")

// RaftInfo is GET /v1/cluster/raft; RaftServer one server in it (defined
// once in internal/clusterinfo).
type (
	RaftInfo   = clusterinfo.RaftInfo
	RaftServer = clusterinfo.RaftServer
)

const (
	internalRemovePeerPath = "/internal/v1/raft/remove-peer"
	// forwardedHeader marks a request one node proxied to the leader, so a
	// stale view of the leader cannot bounce it around.
	forwardedHeader = "X-LunaSentri-Forwarded"
)

func (a *API) operatorRoutes() {
	a.route("/v1/cluster/raft", map[string]http.HandlerFunc{"GET": a.admin(a.handleRaftInfo)})
	a.route("/v1/cluster/raft/remove-peer", map[string]http.HandlerFunc{"POST": a.admin(a.handleRemovePeer)})
	a.route("/v1/cluster/leave", map[string]http.HandlerFunc{"POST": a.admin(a.handleLeave)})
	a.route("/v1/snapshot", map[string]http.HandlerFunc{
		"GET": a.admin(a.handleSnapshotSave), "POST": a.admin(a.handleSnapshotRestore)})
	a.route(internalRemovePeerPath, map[string]http.HandlerFunc{"POST": a.internal(a.handleInternalRemovePeer)})
}

func (a *API) operator(w http.ResponseWriter) (Operator, bool) {
	if a.opts.Operator == nil {
		writeError(w, http.StatusNotImplemented, "cluster operations are not available on this node")
		return nil, false
	}
	return a.opts.Operator, true
}

func (a *API) handleRaftInfo(w http.ResponseWriter, _ *http.Request) {
	op, ok := a.operator(w)
	if !ok {
		return
	}
	info, err := op.RaftInfo()
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "%s", err.Error())
		return
	}
	if info.Servers == nil {
		info.Servers = []RaftServer{}
	}
	writeJSON(w, http.StatusOK, info)
}

type removePeerRequest struct {
	ID string `json:"id"`
}

// Errors an Operator's RemoveServer wraps so the API can answer in kind.
var (
	// ErrUnknownPeer: no server with that id (404).
	ErrUnknownPeer = errors.New("no such server")
	// ErrPeerQuorum: removing that voter would lose quorum (409).
	ErrPeerQuorum = errors.New("the cluster would lose quorum")
)

// removePeerStatus is the HTTP status of a RemoveServer error.
func removePeerStatus(err error) int {
	switch {
	case errors.Is(err, ErrUnknownPeer):
		return http.StatusNotFound
	case errors.Is(err, ErrPeerQuorum):
		return http.StatusConflict
	}
	return http.StatusServiceUnavailable
}

func (a *API) handleRemovePeer(w http.ResponseWriter, r *http.Request) {
	if _, ok := a.operator(w); !ok {
		return
	}
	var req removePeerRequest
	if !decodeJSON(w, r, a.opts.MaxAdminBody, &req) {
		return
	}
	if req.ID == "" {
		writeError(w, http.StatusBadRequest, "id is required")
		return
	}
	if err := a.RemovePeer(r.Context(), req.ID); err != nil {
		var le *leaderError
		// A 401 from the leader means the servers' cluster secrets differ;
		// passing it on would tell the admin their own token is wrong.
		if errors.As(err, &le) && le.status != http.StatusUnauthorized {
			writeError(w, le.status, "%s", le.msg)
			return
		}
		writeError(w, removePeerStatus(err), "%s", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"removed": req.ID})
}

// RemovePeer removes a server from the Raft configuration through the
// leader, from any node.
func (a *API) RemovePeer(ctx context.Context, id string) error {
	if a.opts.Consensus.IsLeader() {
		op, ok := a.opts.Operator, a.opts.Operator != nil
		if !ok {
			return errors.New("cluster operations are not available")
		}
		return op.RemoveServer(id)
	}
	body, _ := json.Marshal(removePeerRequest{ID: id})
	return a.callLeader(ctx, internalRemovePeerPath, "application/json", body, nil)
}

func (a *API) handleInternalRemovePeer(w http.ResponseWriter, r *http.Request) {
	var req removePeerRequest
	if !decodeJSON(w, r, a.opts.MaxAdminBody, &req) {
		return
	}
	op, ok := a.operator(w)
	if !ok {
		return
	}
	if !a.opts.Consensus.IsLeader() {
		writeError(w, http.StatusServiceUnavailable, msgNotLeader)
		return
	}
	if err := op.RemoveServer(req.ID); err != nil {
		writeError(w, removePeerStatus(err), "%s", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"removed": req.ID})
}

func (a *API) handleLeave(w http.ResponseWriter, r *http.Request) {
	op, ok := a.operator(w)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	if err := op.Leave(ctx); err != nil {
		writeError(w, http.StatusServiceUnavailable, "leave failed: %s", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"left": true, "node_id": a.opts.Consensus.Status().NodeID})
}

// proxyToLeader hands a leader-only request to the leader's same public
// endpoint, streaming both ways. It reports false if it could not.
func (a *API) proxyToLeader(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get(forwardedHeader) != "" {
		writeError(w, http.StatusServiceUnavailable, "not the leader; try again shortly")
		return
	}
	_, addr, ok := a.opts.Consensus.Leader()
	if !ok || addr == "" {
		writeError(w, http.StatusServiceUnavailable, "%s", errNoLeader.Error())
		return
	}
	target := &url.URL{Scheme: a.opts.LeaderScheme, Host: addr}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Header.Set(forwardedHeader, "1")
		},
		Transport: a.opts.HTTPClient.Transport,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			writeError(w, http.StatusBadGateway, "reach leader: %s", err.Error())
		},
	}
	proxy.ServeHTTP(w, r)
}

func (a *API) handleSnapshotSave(w http.ResponseWriter, r *http.Request) {
	op, ok := a.operator(w)
	if !ok {
		return
	}
	if !a.opts.Consensus.IsLeader() {
		a.proxyToLeader(w, r)
		return
	}
	// Large archives take longer than the server's write timeout.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
	// The archive is spooled before the first byte goes out, so an error
	// still gets a proper status.
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		err := op.SaveSnapshot(pw)
		pw.CloseWithError(err)
		errc <- err
	}()
	// Issue 11: when the client goes away, close the reading end so the
	// writer fails at once and cleans up its temp file; before, each
	// interrupted download left two goroutines and the spooled archive.
	stop := context.AfterFunc(r.Context(), func() { pr.CloseWithError(r.Context().Err()) })
	defer stop()
	buf := make([]byte, 64<<10)
	n, rerr := io.ReadFull(pr, buf)
	if rerr != nil && !errors.Is(rerr, io.ErrUnexpectedEOF) && !errors.Is(rerr, io.EOF) {
		pr.CloseWithError(rerr)
		<-errc
		writeError(w, http.StatusServiceUnavailable, "snapshot failed: %s", rerr.Error())
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="lunasentri-%s.snap"`, time.Now().UTC().Format("20060102T150405Z")))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf[:n])
	if _, err := io.Copy(w, pr); err != nil {
		a.logger.Warn("snapshot download interrupted", "error", err)
		pr.CloseWithError(err)
	}
	<-errc
}

func (a *API) handleSnapshotRestore(w http.ResponseWriter, r *http.Request) {
	op, ok := a.operator(w)
	if !ok {
		return
	}
	if !a.opts.Consensus.IsLeader() {
		a.proxyToLeader(w, r)
		return
	}
	_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
	body := http.MaxBytesReader(w, r.Body, a.opts.MaxSnapshotBody)
	if err := op.RestoreSnapshot(body); err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			writeError(w, http.StatusRequestEntityTooLarge, "snapshot larger than %d bytes", a.opts.MaxSnapshotBody)
		case errors.Is(err, ErrBadSnapshot):
			writeError(w, http.StatusBadRequest, "%s", err.Error())
		default:
			writeError(w, http.StatusServiceUnavailable, "restore failed: %s", err.Error())
		}
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"restored": true})
}
