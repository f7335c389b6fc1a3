package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"time"

	"github.com/lunasentri/lunasentri/fsm"
	"github.com/lunasentri/lunasentri/transport"
	"github.com/lunasentri/lunasentri/transport/ui"
)

// The dashboard, status page and badges (issue 12): package transport/ui,
// wired here to this node's replica, its tokens and its write paths.

// mountUI builds the UI and returns the node's HTTP handler: the UI's paths
// go to the UI, everything else to the API.
func (n *Node) mountUI(api http.Handler) (http.Handler, error) {
	match, err := ParseStatusPageMatch(n.opts.StatusPageMatch)
	if err != nil {
		return nil, err
	}
	u, err := ui.New(ui.Options{
		Logger:          n.opts.Logger,
		Read:            uiModel{n},
		Auth:            uiAuth{tokens: n.API},
		Actions:         uiActions{api: api, admin: n.opts.AdminToken},
		SessionSecret:   n.opts.ClusterSecret,
		StatusPageMatch: match,
	})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	for _, p := range ui.Paths() {
		mux.Handle(p, u.Handler())
	}
	mux.Handle("/", api)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Heartbeats, the hot path, skip this router: no UI path is theirs
		// (issue 14).
		if r.URL.Path == transport.HeartbeatPath {
			api.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	}), nil
}

// ParseStatusPageMatch reads -status-page-match k=v[,k=v].
func ParseStatusPageMatch(s string) (map[string]string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	out := map[string]string{}
	for _, pair := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" {
			return nil, fmt.Errorf("invalid -status-page-match %q: want label=value[,label=value]", s)
		}
		out[k] = v
	}
	return out, nil
}

// uiModel reads this node's replica and cluster view.
type uiModel struct{ n *Node }

func (m uiModel) Machines() []fsm.Machine { return m.n.FSM.Machines("") }

func (m uiModel) Machine(name string, now time.Time) (ui.MachineDetail, error) {
	mm, segs, err := m.n.FSM.MachineHistory(name, now)
	return ui.MachineDetail{Machine: mm, Segments: segs, Agent: agentReport(mm.Agent)}, err
}

// agentReport is what the agent reported (issue 13), for the machine page;
// info values that are not strings show as their JSON text.
func agentReport(f *fsm.AgentFacts) *ui.AgentReport {
	if f == nil {
		return nil
	}
	r := &ui.AgentReport{Hostname: f.Hostname, AgentVersion: f.AgentVersion, ReportedAt: f.ReportedAt, Info: map[string]string{}}
	var raw map[string]json.RawMessage
	if json.Unmarshal(f.Info, &raw) == nil {
		for k, v := range raw {
			var s string
			if json.Unmarshal(v, &s) != nil {
				s = string(v)
			}
			r.Info[k] = s
		}
	}
	return r
}

func (m uiModel) Events(limit int) []fsm.Event { return m.n.FSM.Events(limit) }

// Silences lists silences and maintenance windows with their state now.
func (m uiModel) Silences() []ui.Silence {
	now := time.Now()
	var out []ui.Silence
	for _, s := range m.n.FSM.Silences() {
		v := ui.Silence{ID: s.ID, Matchers: s.Matchers, Machines: s.Machines, StartsAt: s.StartsAt, EndsAt: s.EndsAt,
			Schedule: s.Schedule, Timezone: s.Timezone, Duration: s.Duration, Comment: s.Comment, CreatedBy: s.CreatedBy,
			State: s.StateAt(now)}
		if !s.ExpiredAt.IsZero() && (v.EndsAt.IsZero() || s.ExpiredAt.Before(v.EndsAt)) {
			v.EndsAt = s.ExpiredAt
		}
		out = append(out, v)
	}
	return out
}
func (m uiModel) Channels() []fsm.Channel         { return m.n.FSM.Channels() }
func (m uiModel) DefaultThreshold() time.Duration { return m.n.opts.OfflineThreshold }

func (m uiModel) Version() string {
	s := m.n.FSM.Stats()
	lid, _, _ := m.n.Cluster.Leader()
	return fmt.Sprintf("%d.%d.%d.%d.%d.%d.%d.%d.%s", s.TransitionsOffline, s.TransitionsOnline, s.Events,
		s.PendingDeliveries, s.Channels, s.Machines[fsm.StatusOnline], s.Machines[fsm.StatusUnknown], s.Machines[fsm.StatusOffline], lid)
}

func (m uiModel) Cluster() ui.ClusterView {
	c := consensus{m.n.Cluster}
	st := c.Status()
	ready, why := c.Ready()
	v := ui.ClusterView{
		NodeID: st.NodeID, RaftState: st.RaftState, LeaderID: st.LeaderID, LeaderHTTPAddr: st.LeaderHTTPAddr,
		Term: st.Term, CommitIndex: st.CommitIndex, AppliedIndex: st.AppliedIndex, Ready: ready, ReadyReason: why,
	}
	ms, err := c.Members()
	if err != nil {
		v.MembersErr = err.Error()
	}
	v.Members = ms
	return v
}

// uiAuth signs people in with any API token (issue 11's roles): the
// bootstrap admin token, or a stored read, write or admin token, checked
// with the leader when this node has not applied it yet.
type uiAuth struct {
	tokens interface {
		TokenRole(token string) (role string, ok bool)
	}
}

func (a uiAuth) Role(tok string) (string, bool) {
	if tok == "" {
		return "", false
	}
	return a.tokens.TokenRole(tok)
}

// uiActions do what the API does, by calling this node's own API handler in
// process, so forwarding to the leader and validation stay in one place.
type uiActions struct {
	api   http.Handler
	admin string
}

func (a uiActions) Available(action string) bool {
	switch action {
	case ui.ActionTestChannel, ui.ActionPause, ui.ActionSilence:
		return true
	}
	return false
}

func (a uiActions) Pause(ctx context.Context, machine string) error {
	return a.call(ctx, http.MethodPost, "/v1/machines/"+url.PathEscape(machine)+"/pause")
}

func (a uiActions) Resume(ctx context.Context, machine string) error {
	return a.call(ctx, http.MethodPost, "/v1/machines/"+url.PathEscape(machine)+"/resume")
}

// Silence mutes one machine for d from now (the machine page's "silence 1h").
func (a uiActions) Silence(ctx context.Context, machine string, d time.Duration, comment string) error {
	return a.callJSON(ctx, http.MethodPost, "/v1/silences", map[string]any{
		"machines": []string{machine}, "duration": d.String(), "comment": comment, "created_by": "dashboard",
	})
}

// ExpireSilence ends a silence now (the silences page's Expire button).
func (a uiActions) ExpireSilence(ctx context.Context, id string) error {
	return a.call(ctx, http.MethodDelete, "/v1/silences/"+url.PathEscape(id))
}

func (a uiActions) TestChannel(ctx context.Context, name string) error {
	return a.call(ctx, http.MethodPost, "/v1/channels/"+url.PathEscape(name)+"/test")
}

func (a uiActions) call(ctx context.Context, method, path string) error {
	return a.callJSON(ctx, method, path, nil)
}

func (a uiActions) callJSON(ctx context.Context, method, path string, in any) error {
	var rd io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req := httptest.NewRequestWithContext(ctx, method, path, rd)
	req.Header.Set("Authorization", "Bearer "+a.admin)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	a.api.ServeHTTP(rec, req)
	if rec.Code/100 == 2 {
		return nil
	}
	var body struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(rec.Body.Bytes(), &body) == nil && body.Error != "" {
		return errors.New(body.Error)
	}
	return fmt.Errorf("%s %s: %d", method, path, rec.Code)
}
