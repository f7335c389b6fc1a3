package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// beatServer is an httptest server that answers heartbeats with a status
// and records when and what it received.
type beatServer struct {
	*httptest.Server
	mu     sync.Mutex
	status int
	times  []time.Time
	last   *http.Request
	body   []byte
}

func newBeatServer(t *testing.T, status int) *beatServer {
	b := &beatServer{status: status}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.times = append(b.times, time.Now())
		b.last, b.body = r, body
		status := b.status
		b.mu.Unlock()
		w.WriteHeader(status)
		if status >= 400 {
			io.WriteString(w, `{"error":"nope"}`)
		}
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *beatServer) hits() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.times)
}

func (b *beatServer) setStatus(s int) {
	b.mu.Lock()
	b.status = s
	b.mu.Unlock()
}

func (b *beatServer) gaps() []time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []time.Duration
	for i := 1; i < len(b.times); i++ {
		out = append(out, b.times[i].Sub(b.times[i-1]))
	}
	return out
}

// startAgent runs the agent loop until the test ends; the returned
// function cancels it and waits for it to return.
func startAgent(t *testing.T, cfg agentConfig) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runAgent(ctx, cfg) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("agent did not stop within 5s of cancel")
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

// logBuffer captures an hclog logger's output.
func logBuffer() (hclog.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	return hclog.New(&hclog.LoggerOptions{Output: buf, Level: hclog.Debug}), buf
}

func TestAgent_SendsHeartbeat(t *testing.T) {
	srv := newBeatServer(t, http.StatusAccepted)
	startAgent(t, agentConfig{Servers: []string{srv.URL}, Key: "k1", Interval: 20 * time.Millisecond, Hostname: "web-1"})
	waitFor(t, "two heartbeats", 5*time.Second, func() bool { return srv.hits() >= 2 })

	srv.mu.Lock()
	defer srv.mu.Unlock()
	r := srv.last
	if r.Method != http.MethodPost || r.URL.Path != "/v1/heartbeat" {
		t.Errorf("got %s %s", r.Method, r.URL.Path)
	}
	if got := r.Header.Get("Authorization"); got != "Bearer k1" {
		t.Errorf("Authorization %q", got)
	}
	if got := r.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type %q", got)
	}
	var body struct {
		Hostname     string            `json:"hostname"`
		AgentVersion string            `json:"agent_version"`
		Info         map[string]string `json:"info"`
	}
	if err := json.Unmarshal(srv.body, &body); err != nil {
		t.Fatal(err)
	}
	if body.Hostname != "web-1" || body.AgentVersion != version ||
		body.Info["os"] != runtime.GOOS || body.Info["arch"] != runtime.GOARCH {
		t.Errorf("body %s", srv.body)
	}
	// The facts the agent finds by itself (Linux CI): kernel, boot time and
	// the address it reaches the server from.
	if runtime.GOOS == "linux" {
		if body.Info["kernel"] == "" || body.Info["ip"] != "127.0.0.1" {
			t.Errorf("info %v: want kernel and ip 127.0.0.1", body.Info)
		}
		if _, err := time.Parse(time.RFC3339, body.Info["boot_time"]); err != nil {
			t.Errorf("boot_time %q: %v", body.Info["boot_time"], err)
		}
	}
	// They do not change from beat to beat (the cluster stores changes only).
	if !reflect.DeepEqual(hostInfo(srv.URL), hostInfo(srv.URL)) {
		t.Error("hostInfo differs between two calls")
	}
}

func TestAgent_OnceExitsWithTheOutcome(t *testing.T) {
	down := newBeatServer(t, http.StatusServiceUnavailable)
	up := newBeatServer(t, http.StatusAccepted)
	ctx := context.Background()
	if err := runAgent(ctx, agentConfig{Servers: []string{down.URL, up.URL}, Key: "k", Interval: time.Second, Once: true}); err != nil {
		t.Fatalf("once with one good server: %v", err)
	}
	if up.hits() != 1 || down.hits() != 1 {
		t.Fatalf("hits: down %d, up %d; want 1 and 1", down.hits(), up.hits())
	}
	if err := runAgent(ctx, agentConfig{Servers: []string{down.URL}, Key: "k", Interval: time.Second, Once: true}); err == nil {
		t.Fatal("once with no good server returned nil")
	}
	rejected := newBeatServer(t, http.StatusUnauthorized)
	if err := runAgent(ctx, agentConfig{Servers: []string{rejected.URL}, Key: "k", Interval: time.Second, Once: true}); err == nil ||
		!strings.Contains(err.Error(), "key was rejected") {
		t.Fatalf("once with a rejected key: %v", err)
	}
}

func TestAgent_FailsOverOn503(t *testing.T) {
	bad := newBeatServer(t, http.StatusServiceUnavailable)
	good := newBeatServer(t, http.StatusAccepted)
	interval := 200 * time.Millisecond
	startAgent(t, agentConfig{Servers: []string{bad.URL, good.URL}, Key: "k", Interval: interval})

	waitFor(t, "three heartbeats on the second server", 5*time.Second, func() bool { return good.hits() >= 3 })
	// The first beat tried the failing server, then moved on at once; the
	// following beats start with the server that worked.
	if n := bad.hits(); n != 1 {
		t.Errorf("failing server got %d requests, want 1", n)
	}
	bad.mu.Lock()
	first := bad.times[0]
	bad.mu.Unlock()
	good.mu.Lock()
	moved := good.times[0].Sub(first)
	good.mu.Unlock()
	if moved >= interval {
		t.Errorf("took %s to move to the next server; want it at once", moved)
	}
}

func TestAgent_FailsOverOnClosedServer(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	good := newBeatServer(t, http.StatusAccepted)
	log, logs := logBuffer()
	startAgent(t, agentConfig{Servers: []string{closed.URL, good.URL}, Key: "k", Interval: 20 * time.Millisecond, Logger: log})
	waitFor(t, "heartbeats on the open server", 5*time.Second, func() bool { return good.hits() >= 2 })
	if !strings.Contains(logs.String(), "heartbeat failed") || !strings.Contains(logs.String(), closed.URL) {
		t.Errorf("the failure was not logged with the server:\n%s", logs)
	}
}

func TestAgent_MovesBackWhenServerFails(t *testing.T) {
	a := newBeatServer(t, http.StatusAccepted)
	b := newBeatServer(t, http.StatusAccepted)
	startAgent(t, agentConfig{Servers: []string{a.URL, b.URL}, Key: "k", Interval: 10 * time.Millisecond})
	waitFor(t, "heartbeats on the first server", 5*time.Second, func() bool { return a.hits() >= 2 })
	if b.hits() != 0 {
		t.Errorf("second server got %d heartbeats while the first worked", b.hits())
	}
	a.setStatus(http.StatusBadGateway)
	waitFor(t, "heartbeats on the second server", 5*time.Second, func() bool { return b.hits() >= 2 })
}

func TestAgent_KeyRejected(t *testing.T) {
	srv := newBeatServer(t, http.StatusUnauthorized)
	log, logs := logBuffer()
	interval := 150 * time.Millisecond
	startAgent(t, agentConfig{Servers: []string{srv.URL}, Key: "old", Interval: interval, BackoffBase: time.Millisecond, Logger: log})

	waitFor(t, "three attempts", 5*time.Second, func() bool { return srv.hits() >= 3 })
	if !strings.Contains(logs.String(), "key rejected") {
		t.Errorf("no \"key rejected\" in the log:\n%s", logs)
	}
	// A rejected key is retried at the interval, not with the fast backoff
	// (which would start at 1ms here). Beats are spaced from their starts,
	// so one slow request can make a single gap short: check the total span.
	var span time.Duration
	for _, g := range srv.gaps() {
		span += g
	}
	if n := len(srv.gaps()); span < time.Duration(n)*interval/2 {
		t.Errorf("%d retries within %s; want about one per interval %s", n, span, interval)
	}
	// Once the key is accepted again, heartbeats flow.
	srv.setStatus(http.StatusAccepted)
	n := srv.hits()
	waitFor(t, "heartbeats after the key works", 5*time.Second, func() bool { return srv.hits() >= n+2 })
}

func TestAgent_BacksOffWhenEveryServerFails(t *testing.T) {
	a := newBeatServer(t, http.StatusServiceUnavailable)
	b := newBeatServer(t, http.StatusInternalServerError)
	interval := 400 * time.Millisecond
	base := 10 * time.Millisecond
	log, logs := logBuffer()
	startAgent(t, agentConfig{Servers: []string{a.URL, b.URL}, Key: "k", Interval: interval, BackoffBase: base, Logger: log})

	// Both servers are tried once per beat, and beats come faster than the
	// interval at first.
	waitFor(t, "six attempts", 5*time.Second, func() bool { return a.hits()+b.hits() >= 6 })
	if d := a.hits() - b.hits(); d < -1 || d > 1 {
		t.Errorf("servers tried unevenly: %d and %d", a.hits(), b.hits())
	}
	gaps := a.gaps()
	if len(gaps) == 0 || gaps[0] >= interval/2 {
		t.Errorf("first retry after %v; want a fast retry well within the interval %s", gaps, interval)
	}
	if !strings.Contains(logs.String(), "heartbeat not delivered to any server") {
		t.Errorf("no error logged:\n%s", logs)
	}
	// Recovery is picked up within an interval.
	a.setStatus(http.StatusAccepted)
	n := a.hits()
	waitFor(t, "heartbeat after recovery", 5*time.Second, func() bool { return a.hits() > n })
}

func TestAgent_BackoffNeverExceedsInterval(t *testing.T) {
	for _, tc := range []struct{ base, interval time.Duration }{
		{time.Second, 10 * time.Second},
		{time.Second, 300 * time.Millisecond},
		{10 * time.Millisecond, time.Minute},
	} {
		a, err := newAgent(agentConfig{Servers: []string{"http://x"}, Interval: tc.interval, BackoffBase: tc.base})
		if err != nil {
			t.Fatal(err)
		}
		for n := 1; n <= 64; n++ {
			want := min(tc.base<<min(n-1, 30), tc.interval)
			for range 20 {
				got := a.backoff(n)
				if got > tc.interval || got < want/2 || got > want {
					t.Fatalf("base %s interval %s: backoff(%d) = %s, want in [%s, %s]", tc.base, tc.interval, n, got, want/2, want)
				}
			}
		}
		for range 20 {
			if w := a.regularWait(); w > tc.interval || w < tc.interval*9/10 {
				t.Fatalf("regular wait %s for interval %s", w, tc.interval)
			}
		}
	}
}

func TestAgent_StopsOnCancel(t *testing.T) {
	// The server holds the request until the client goes away, so the
	// agent is cancelled in the middle of a request.
	started := make(chan struct{}, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body) // the server notices a closed connection only after the body
		started <- struct{}{}
		<-r.Context().Done()
	}))
	defer srv.Close()
	stop := startAgent(t, agentConfig{Servers: []string{srv.URL}, Key: "k", Interval: time.Hour, Timeout: time.Hour})
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("no request")
	}
	if err := stop(); err != nil {
		t.Errorf("runAgent returned %v, want nil", err)
	}

	// And while waiting between beats.
	ok := newBeatServer(t, http.StatusAccepted)
	stop = startAgent(t, agentConfig{Servers: []string{ok.URL}, Key: "k", Interval: time.Hour})
	waitFor(t, "first heartbeat", 5*time.Second, func() bool { return ok.hits() == 1 })
	if err := stop(); err != nil {
		t.Errorf("runAgent returned %v, want nil", err)
	}
}

func TestAgentConfig_FlagsEnvDefaults(t *testing.T) {
	env := map[string]string{"LUNASENTRI_SERVER_URL": "http://a:8080/, b:8080", "LUNASENTRI_API_KEY": "envkey", "LUNASENTRI_INTERVAL": "3s"}
	c := testCLI(env)
	cfg, err := c.agentConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.Servers, []string{"http://a:8080", "http://b:8080"}) || cfg.Key != "envkey" || cfg.Interval != 3*time.Second || cfg.Hostname != "myhost" {
		t.Errorf("from env: %+v", cfg)
	}
	cfg, err = c.agentConfig([]string{"-server", "https://c", "-key", "flagkey", "-interval", "7s", "-hostname", "h"})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.Servers, []string{"https://c"}) || cfg.Key != "flagkey" || cfg.Interval != 7*time.Second || cfg.Hostname != "h" {
		t.Errorf("from flags: %+v", cfg)
	}
	cfg, err = testCLI(nil).agentConfig([]string{"-server", "http://c", "-key", "k"})
	if err != nil || cfg.Interval != 10*time.Second {
		t.Errorf("default interval: %v %v", cfg.Interval, err)
	}
}

func TestAgentCommand_Errors(t *testing.T) {
	tests := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"agent", "-key", "k"}, nil, "-server (or LUNASENTRI_SERVER_URL) is required"},
		{[]string{"agent", "-server", "http://a"}, nil, "-key (or LUNASENTRI_API_KEY) is required"},
		{[]string{"agent", "-server", "http://a", "-key", "k", "-interval", "soon"}, nil, `invalid duration "soon" for -interval`},
		{[]string{"agent", "-server", "http://a", "-key", "k"}, map[string]string{"LUNASENTRI_INTERVAL": "0s"}, `invalid duration "0s" for LUNASENTRI_INTERVAL: must be positive`},
		{[]string{"agent", "-server", "ftp://a", "-key", "k"}, nil, `invalid server URL "ftp://a" for -server`},
	}
	for _, tt := range tests {
		r := runWith(t, testCLI(tt.env), tt.args...)
		if r.code != exitUsage {
			t.Errorf("%q: exit %d", tt.args, r.code)
		}
		oneErrorLine(t, r, tt.want)
	}
}
