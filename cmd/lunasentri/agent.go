package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
)

const defaultAgentInterval = 10 * time.Second

// agentConfig configures the heartbeat loop.
type agentConfig struct {
	Servers  []string // base URLs, tried in order, starting with the last one that worked
	Key      string
	Interval time.Duration
	Hostname string
	// Timeout bounds one request; 0 means the interval, between 1s and 5s.
	Timeout time.Duration
	// BackoffBase is the first retry delay after every server failed; it
	// doubles up to the interval. 0 means 1s.
	BackoffBase time.Duration
	Client      *http.Client // nil: a plain client
	Logger      hclog.Logger // nil: no logs
	// Once sends one beat (each server tried once) and returns; an error
	// when no server accepted it.
	Once bool
}

// beatResult is how one heartbeat attempt, or one whole beat, went.
type beatResult int

const (
	beatOK        beatResult = iota
	beatRefused              // a 4xx other than 401/403/408/429: retrying soon will not help
	beatRejected             // 401/403: the key was not accepted
	beatRetryable            // network error, timeout, 408, 429, 5xx
)

// agent sends heartbeats to a list of servers.
type agent struct {
	cfg     agentConfig
	body    []byte
	current int // index of the server to try first
}

func newAgent(cfg agentConfig) (*agent, error) {
	if len(cfg.Servers) == 0 {
		return nil, errors.New("no server")
	}
	if cfg.Interval <= 0 {
		return nil, errors.New("interval must be positive")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = min(max(cfg.Interval, time.Second), 5*time.Second)
	}
	if cfg.BackoffBase <= 0 {
		cfg.BackoffBase = time.Second
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{}
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	body, err := json.Marshal(map[string]any{
		"hostname":      cfg.Hostname,
		"agent_version": version,
		"info":          hostInfo(cfg.Servers[0]),
	})
	if err != nil {
		return nil, err
	}
	return &agent{cfg: cfg, body: body}, nil
}

// runAgent sends a heartbeat every interval until ctx is cancelled, then
// returns nil.
//
// A beat tries each server once, starting with the one that worked last, and
// moves on at once on a network error, a timeout or a 5xx. When every server
// failed it retries with exponential backoff and jitter, starting at
// BackoffBase and capped at the interval: after a failure the next try never
// comes later than a regular beat would have, so an outage of the servers
// never makes the machine look silent for longer than the outage itself.
// Waits are measured from the start of a beat, so slow answers do not
// stretch the cadence either. A rejected key (401) is logged as such and
// retried at the interval.
func runAgent(ctx context.Context, cfg agentConfig) error {
	a, err := newAgent(cfg)
	if err != nil {
		return err
	}
	log := a.cfg.Logger
	if a.cfg.Once {
		return a.once(ctx)
	}
	log.Info("agent started", "servers", strings.Join(a.cfg.Servers, ","), "interval", a.cfg.Interval, "hostname", a.cfg.Hostname)
	failures := 0
	for {
		start := time.Now()
		res := a.beat(ctx)
		if ctx.Err() != nil {
			log.Info("agent stopped")
			return nil
		}
		var wait time.Duration
		switch res {
		case beatOK:
			if failures > 0 {
				log.Info("heartbeats delivered again", "failed_beats", failures, "server", a.cfg.Servers[a.current])
			}
			failures = 0
			wait = a.regularWait()
		case beatRetryable:
			failures++
			wait = a.backoff(failures)
			log.Error("heartbeat not delivered to any server", "failed_beats", failures, "retry_in", wait.Round(time.Millisecond))
		default:
			failures++
			wait = a.cfg.Interval
			log.Error("heartbeat not accepted by any server", "failed_beats", failures, "retry_in", wait)
		}
		wait -= time.Since(start)
		if wait <= 0 {
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			log.Info("agent stopped")
			return nil
		case <-t.C:
		}
	}
}

// once sends a single beat for -once (cron jobs, systemd timers): nil when
// a server accepted it.
func (a *agent) once(ctx context.Context) error {
	switch a.beat(ctx) {
	case beatOK:
		return nil
	case beatRejected:
		return errors.New("heartbeat not accepted: the key was rejected by every server")
	case beatRefused:
		return errors.New("heartbeat refused by every server")
	default:
		return errors.New("heartbeat not delivered: no server answered")
	}
}

// regularWait is the interval less up to 10% jitter, so that agents started
// together spread out, and never later than the interval.
func (a *agent) regularWait() time.Duration {
	i := a.cfg.Interval
	if j := int64(i / 10); j > 0 {
		i -= time.Duration(rand.Int64N(j))
	}
	return i
}

// backoff is the wait after the n-th beat in a row that reached no server:
// BackoffBase·2^(n-1) capped at the interval, with "equal jitter" (between
// half and all of it).
func (a *agent) backoff(n int) time.Duration {
	d := a.cfg.BackoffBase
	for i := 1; i < n && d < a.cfg.Interval; i++ {
		d *= 2
	}
	d = min(d, a.cfg.Interval)
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + time.Duration(rand.Int64N(int64(d-half)+1))
}

// beat tries each server once. On success the server that answered is
// tried first next time; otherwise the next beat starts one server on.
func (a *agent) beat(ctx context.Context) beatResult {
	n := len(a.cfg.Servers)
	worst := beatOK
	for i := 0; i < n; i++ {
		idx := (a.current + i) % n
		res := a.send(ctx, a.cfg.Servers[idx])
		if res == beatOK {
			a.current = idx
			return beatOK
		}
		if ctx.Err() != nil {
			return beatRetryable
		}
		worst = max(worst, res)
	}
	a.current = (a.current + 1) % n
	return worst
}

// send posts one heartbeat to one server.
func (a *agent) send(ctx context.Context, server string) beatResult {
	log := a.cfg.Logger
	ctx, cancel := context.WithTimeout(ctx, a.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, server+"/v1/heartbeat", bytes.NewReader(a.body))
	if err != nil {
		log.Error("heartbeat failed", "server", server, "error", err)
		return beatRefused
	}
	req.Header.Set("Authorization", "Bearer "+a.cfg.Key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "lunasentri-agent/"+version)
	resp, err := a.cfg.Client.Do(req)
	if err != nil {
		if ctx.Err() == nil || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			log.Warn("heartbeat failed", "server", server, "error", unwrapURLError(err))
		}
		return beatRetryable
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	switch code := resp.StatusCode; {
	case code >= 200 && code <= 299:
		log.Debug("heartbeat delivered", "server", server, "status", code)
		return beatOK
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		log.Error("key rejected", "server", server, "status", code, "error", errorMessage(code, data),
			"hint", "check -key or LUNASENTRI_API_KEY; the key may have been rotated or the machine deleted")
		return beatRejected
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		log.Warn("heartbeat failed", "server", server, "status", code, "error", errorMessage(code, data))
		return beatRetryable
	default:
		log.Error("heartbeat refused", "server", server, "status", code, "error", errorMessage(code, data))
		return beatRefused
	}
}

// unwrapURLError drops the "Post \"URL\":" prefix that *url.Error adds.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// cmdAgent runs the heartbeat agent until ctx is cancelled.
func (c *cli) cmdAgent(ctx context.Context, args []string) error {
	cfg, err := c.agentConfig(args)
	if err != nil {
		return err
	}
	return runAgent(ctx, cfg)
}

// agentConfig parses the agent command line (flags > environment > defaults).
func (c *cli) agentConfig(args []string) (agentConfig, error) {
	fs := newFlagSet("agent", "lunasentri agent -server URL[,URL…] -key KEY [-interval 10s] [flags]",
		"Sends a heartbeat for this machine every interval, moving to the next server when one\n"+
			"fails. Environment: LUNASENTRI_SERVER_URL, LUNASENTRI_API_KEY (better than -key, which\n"+
			"other users can see in the process list), LUNASENTRI_INTERVAL.")
	servers := fs.String("server", "", "server URLs, comma-separated (env LUNASENTRI_SERVER_URL)")
	key := fs.String("key", "", "the machine's API key (env LUNASENTRI_API_KEY)")
	interval := fs.String("interval", "", "time between heartbeats (env LUNASENTRI_INTERVAL, default 10s)")
	hostname := fs.String("hostname", "", "hostname to report (default: this machine's)")
	once := fs.Bool("once", false, "send one heartbeat and exit: status 0 when a server accepted it, 1 otherwise")
	logLevel := fs.String("log-level", "info", "trace, debug, info, warn or error")
	logJSON := fs.Bool("log-json", false, "log in JSON")
	tlsFlags := c.addTLSClientFlags(fs) // issue 11
	pos, err := c.parse(fs, args)
	if err != nil {
		return agentConfig{}, err
	}
	if err := wantArgs("agent", pos); err != nil {
		return agentConfig{}, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	pick := func(name, envName string, v string) (string, string) {
		if set[name] {
			return v, "-" + name
		}
		return c.env(envName), envName
	}

	cfg := agentConfig{Interval: defaultAgentInterval}
	srv, from := pick("server", "LUNASENTRI_SERVER_URL", *servers)
	for _, s := range splitList(srv) {
		u, err := normalizeURL(s)
		if err != nil {
			return agentConfig{}, usageErrorf("invalid server URL %q for %s", s, from)
		}
		cfg.Servers = append(cfg.Servers, u)
	}
	if len(cfg.Servers) == 0 {
		return agentConfig{}, usageErrorf("-server (or LUNASENTRI_SERVER_URL) is required")
	}
	if cfg.Key, _ = pick("key", "LUNASENTRI_API_KEY", *key); cfg.Key == "" {
		return agentConfig{}, usageErrorf("-key (or LUNASENTRI_API_KEY) is required")
	}
	if iv, from := pick("interval", "LUNASENTRI_INTERVAL", *interval); iv != "" {
		d, err := time.ParseDuration(iv)
		if err != nil {
			return agentConfig{}, usageErrorf("invalid duration %q for %s", iv, from)
		}
		if d <= 0 {
			return agentConfig{}, usageErrorf("invalid duration %q for %s: must be positive", iv, from)
		}
		cfg.Interval = d
	}
	if l := hclog.LevelFromString(*logLevel); l == hclog.NoLevel || l == hclog.Off {
		return agentConfig{}, usageErrorf("invalid log level %q for -log-level", *logLevel)
	}
	cfg.Once = *once
	cfg.Hostname = *hostname
	if cfg.Hostname == "" {
		cfg.Hostname, _ = c.hostname()
	}
	cfg.Logger = newLogger(*logLevel, *logJSON, c.stderr).Named("agent")
	if hc, ok, err := c.tlsHTTPClient(tlsFlags, nil); err != nil {
		return agentConfig{}, err
	} else if ok {
		hc.Timeout = 0 // each request has its own timeout
		cfg.Client = hc
	}
	return cfg, nil
}

// normalizeURL checks a server URL and drops a trailing slash; a bare
// HOST:PORT gets http://.
func normalizeURL(s string) (string, error) {
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("invalid URL %q", s)
	}
	return strings.TrimRight(s, "/"), nil
}
