package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

const defaultAddress = "http://127.0.0.1:8080"

// maxResponseBody bounds what the CLI reads from a node.
const maxResponseBody = 16 << 20

// apiFlags are the flags every operator command takes.
type apiFlags struct {
	address string
	token   string
	json    bool
	tls     *tlsClientFlags // issue 11
}

// addAPIFlags adds the flags of every API command. Their defaults are the
// same flags given before the command ("lunasentri -address … machines list").
func (c *cli) addAPIFlags(fs *flag.FlagSet) *apiFlags {
	f := &apiFlags{}
	fs.StringVar(&f.address, "address", c.global.address,
		"node HTTP API URLs, comma-separated, tried in order (env LUNASENTRI_ADDR, default "+defaultAddress+")")
	fs.StringVar(&f.token, "token", c.global.token, "admin token (env LUNASENTRI_ADMIN_TOKEN)")
	fs.BoolVar(&f.json, "json", c.global.json, "print the raw JSON answer")
	f.tls = c.addTLSClientFlags(fs) // issue 11
	return f
}

// apiClient is a small client for the LunaSentri HTTP API (docs/api.md).
// It knows several nodes and moves to the next when one cannot be reached.
type apiClient struct {
	bases   []string // scheme://host[:port][/prefix], no trailing slash
	current int      // the node that answered last; tried first
	token   string
	http    *http.Client
}

// apiError is a non-2xx answer: "404: machine not found".
type apiError struct {
	Status  int
	Message string
}

func (e *apiError) Error() string { return fmt.Sprintf("%d: %s", e.Status, e.Message) }

// client builds an apiClient from the flags and the environment. An admin
// command needs a token; the open endpoints (status) do not.
func (c *cli) client(f *apiFlags, needToken bool) (*apiClient, error) {
	var bases []string
	for _, addr := range splitList(firstNonEmpty(f.address, c.env("LUNASENTRI_ADDR"), defaultAddress)) {
		if !strings.Contains(addr, "://") {
			addr = "http://" + addr
		}
		u, err := url.Parse(addr)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, usageErrorf("invalid address %q (want http://HOST:PORT)", addr)
		}
		bases = append(bases, strings.TrimRight(addr, "/"))
	}
	if len(bases) == 0 {
		return nil, usageErrorf("-address (or LUNASENTRI_ADDR) is empty")
	}
	token := firstNonEmpty(f.token, c.env("LUNASENTRI_ADMIN_TOKEN"))
	if needToken && token == "" {
		return nil, usageErrorf("-token (or LUNASENTRI_ADMIN_TOKEN) is required")
	}
	hc, _, err := c.tlsHTTPClient(f.tls, c.httpClient) // issue 11
	if err != nil {
		return nil, err
	}
	return &apiClient{bases: bases, token: token, http: hc}, nil
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// do sends one request and returns the body of a 2xx answer. in, if not
// nil, is sent as JSON. Other answers become an *apiError.
func (a *apiClient) do(ctx context.Context, method, path string, query url.Values, in any) ([]byte, error) {
	if len(query) > 0 {
		path += "?" + query.Encode()
	}
	var body io.Reader
	contentType := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body, contentType = bytes.NewReader(b), "application/json"
	}
	resp, err := a.send(ctx, method, path, contentType, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	return data, nil
}

// send sends one request and returns a 2xx response for the caller to read
// and close. Other answers become an *apiError. With several nodes it
// starts with the one that answered last and moves on while a node cannot
// be reached (connection refused, no route, timeout before an answer) —
// and, for reads, while a node answers 502/503/504 (it lost its leader);
// any other answer is final. A body is sent again only if it can be rewound.
func (a *apiClient) send(ctx context.Context, method, path, contentType string, body io.Reader) (*http.Response, error) {
	var errs []string
	n := len(a.bases)
	for i := 0; i < n; i++ {
		idx := (a.current + i) % n
		if i > 0 && body != nil {
			s, ok := body.(io.Seeker)
			if !ok {
				break
			}
			if _, err := s.Seek(0, io.SeekStart); err != nil {
				break
			}
		}
		resp, err := a.sendTo(ctx, a.bases[idx], method, path, contentType, body)
		if err == nil {
			a.current = idx
			return resp, nil
		}
		if n == 1 || ctx.Err() != nil || !a.moveOn(method, err) {
			return nil, err
		}
		errs = append(errs, a.bases[idx]+": "+err.Error())
	}
	return nil, fmt.Errorf("no node answered: %s", strings.Join(errs, "; "))
}

// moveOn: is err worth trying the next node?
func (a *apiClient) moveOn(method string, err error) bool {
	var ae *apiError
	if errors.As(err, &ae) {
		idempotent := method == http.MethodGet || method == http.MethodHead
		return idempotent && (ae.Status == http.StatusBadGateway || ae.Status == http.StatusServiceUnavailable ||
			ae.Status == http.StatusGatewayTimeout)
	}
	return true // the node could not be reached or did not answer
}

func (a *apiClient) sendTo(ctx context.Context, base, method, path, contentType string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, base+path, body)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "lunasentri-cli/"+version)
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return nil, unwrapURLError(err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return nil, &apiError{Status: resp.StatusCode, Message: errorMessage(resp.StatusCode, data)}
	}
	return resp, nil
}

// errorMessage extracts {"error": "..."} or falls back to the status text.
func errorMessage(status int, data []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(data, &e) == nil && e.Error != "" {
		return oneLine(e.Error)
	}
	if s := oneLine(string(data)); s != "" && len(s) <= 200 {
		return s
	}
	if t := http.StatusText(status); t != "" {
		return strings.ToLower(t)
	}
	return "unexpected status"
}

// getJSON GETs path and decodes the answer into out; raw is the body.
func (a *apiClient) getJSON(ctx context.Context, path string, query url.Values, out any) ([]byte, error) {
	raw, err := a.do(ctx, http.MethodGet, path, query, nil)
	if err != nil {
		return nil, err
	}
	return raw, decode(raw, out)
}

func decode(raw []byte, out any) error {
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("unexpected answer from the server: %v", err)
	}
	return nil
}

// printJSON writes a body indented (or as is, if it is not JSON).
func printJSON(w io.Writer, raw []byte) {
	var buf bytes.Buffer
	if len(bytes.TrimSpace(raw)) == 0 {
		return
	}
	if json.Indent(&buf, raw, "", "  ") != nil {
		w.Write(raw)
		return
	}
	buf.WriteByte('\n')
	w.Write(buf.Bytes())
}

// pathName escapes a name for use as one path segment.
func pathName(name string) string { return url.PathEscape(name) }

// Answer shapes (docs/api.md). Fields the CLI does not print are left out;
// -json shows everything.

type machine struct {
	ID               string            `json:"id"`
	Name             string            `json:"name"`
	Hostname         string            `json:"hostname"`
	Description      string            `json:"description"`
	Labels           map[string]string `json:"labels"`
	Status           string            `json:"status"`
	LastSeen         string            `json:"last_seen"`
	StatusChangedAt  string            `json:"status_changed_at"`
	OfflineThreshold flexDuration      `json:"offline_threshold"`
	Flapping         bool              `json:"flapping"`
	Reason           string            `json:"reason"`
	Message          string            `json:"message"`
	Agent            *agentFacts       `json:"agent"`
}

// agentFacts is a machine's "agent" object. Info values that are not
// strings are shown as their JSON text.
type agentFacts struct {
	Hostname     string                     `json:"hostname"`
	AgentVersion string                     `json:"agent_version"`
	RawInfo      map[string]json.RawMessage `json:"info"`
	ReportedAt   string                     `json:"reported_at"`
	Info         map[string]string          `json:"-"`
}

func (a *agentFacts) UnmarshalJSON(b []byte) error {
	type plain agentFacts
	if err := json.Unmarshal(b, (*plain)(a)); err != nil {
		return err
	}
	a.Info = make(map[string]string, len(a.RawInfo))
	for k, v := range a.RawInfo {
		var s string
		if json.Unmarshal(v, &s) != nil {
			s = string(v)
		}
		a.Info[k] = s
	}
	return nil
}

// version is "agent 1.2.3", "" without facts.
func (a *agentFacts) version() string {
	if a == nil || a.AgentVersion == "" {
		return ""
	}
	return "agent " + a.AgentVersion
}

// infoKeys are the info keys, the usual ones first.
func (a *agentFacts) infoKeys() []string {
	order := map[string]int{"os": 1, "arch": 2, "kernel": 3, "boot_time": 4, "ip": 5}
	keys := make([]string, 0, len(a.Info))
	for k := range a.Info {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		oi, oj := order[keys[i]], order[keys[j]]
		if oi == 0 {
			oi = 100
		}
		if oj == 0 {
			oj = 100
		}
		if oi != oj {
			return oi < oj
		}
		return keys[i] < keys[j]
	})
	return keys
}

type delivery struct {
	Channel   string `json:"channel"`
	State     string `json:"state"`
	Attempts  int    `json:"attempts"`
	LastError string `json:"last_error"`
	Digest    string `json:"digest"`
}

type event struct {
	ID         string     `json:"id"`
	Type       string     `json:"type"`
	OccurredAt string     `json:"occurred_at"`
	Machine    machine    `json:"machine"`
	Deliveries []delivery `json:"deliveries"`
	Reason     string     `json:"reason"`
	Message    string     `json:"message"`
}

type channel struct {
	Type   string            `json:"type"`
	Name   string            `json:"name"`
	URL    string            `json:"url,omitempty"`
	ChatID flexString        `json:"chat_id,omitempty"`
	Match  map[string]string `json:"match,omitempty"`
	// Issue 15's channel types.
	URLs  []string `json:"urls,omitempty"`
	Topic string   `json:"topic,omitempty"`
	To    []string `json:"to,omitempty"`
}

type member struct {
	ID           string `json:"id"`
	HTTPAddr     string `json:"http_addr"`
	RaftAddr     string `json:"raft_addr"`
	GossipStatus string `json:"gossip_status"`
	Voter        bool   `json:"voter"`
	Leader       bool   `json:"leader"`
}

// flexDuration reads a duration sent either as a Go duration string
// ("2m0s") or as integer nanoseconds (time.Duration's default JSON).
type flexDuration time.Duration

func (d *flexDuration) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var s string
	if json.Unmarshal(b, &s) == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		*d = flexDuration(v)
		return nil
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return errors.New("offline_threshold: not a duration")
	}
	*d = flexDuration(n)
	return nil
}

// flexString reads a JSON string or number as text (a Telegram chat id).
type flexString string

func (s *flexString) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var str string
	if json.Unmarshal(b, &str) == nil {
		*s = flexString(str)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*s = flexString(n.String())
	return nil
}
