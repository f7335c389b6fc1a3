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

func addAPIFlags(fs *flag.FlagSet) *apiFlags {
	f := &apiFlags{}
	fs.StringVar(&f.address, "address", "", "node HTTP API URL (env LUNASENTRI_ADDR, default "+defaultAddress+")")
	fs.StringVar(&f.token, "token", "", "admin token (env LUNASENTRI_ADMIN_TOKEN)")
	fs.BoolVar(&f.json, "json", false, "print the raw JSON answer")
	f.tls = addTLSClientFlags(fs) // issue 11
	return f
}

// apiClient is a small client for the LunaSentri HTTP API (API.md).
type apiClient struct {
	base  string // scheme://host[:port][/prefix], no trailing slash
	token string
	http  *http.Client
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
	addr := firstNonEmpty(f.address, c.env("LUNASENTRI_ADDR"), defaultAddress)
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageErrorf("invalid address %q (want http://HOST:PORT)", addr)
	}
	token := firstNonEmpty(f.token, c.env("LUNASENTRI_ADMIN_TOKEN"))
	if needToken && token == "" {
		return nil, usageErrorf("-token (or LUNASENTRI_ADMIN_TOKEN) is required")
	}
	hc, _, err := c.tlsHTTPClient(f.tls, c.httpClient) // issue 11
	if err != nil {
		return nil, err
	}
	return &apiClient{base: strings.TrimRight(addr, "/"), token: token, http: hc}, nil
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
// and close. Other answers become an *apiError.
func (a *apiClient) send(ctx context.Context, method, path, contentType string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, body)
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
		return nil, err
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

// Answer shapes (API.md). Fields the CLI does not print are left out;
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
}

type delivery struct {
	Channel   string `json:"channel"`
	State     string `json:"state"`
	Attempts  int    `json:"attempts"`
	LastError string `json:"last_error"`
}

type event struct {
	ID         string     `json:"id"`
	Type       string     `json:"type"`
	OccurredAt string     `json:"occurred_at"`
	Machine    machine    `json:"machine"`
	Deliveries []delivery `json:"deliveries"`
}

type channel struct {
	Type   string            `json:"type"`
	Name   string            `json:"name"`
	URL    string            `json:"url,omitempty"`
	ChatID flexString        `json:"chat_id,omitempty"`
	Match  map[string]string `json:"match,omitempty"`
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
