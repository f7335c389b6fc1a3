package e2e

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The fleet's own HTTP client against a real net/http server: statuses,
// reused connections, a server that closes them, and a refused dial.
func TestBeatClient(t *testing.T) {
	t.Parallel()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method != http.MethodPost || r.URL.Path != "/v1/heartbeat" || r.Header.Get("Content-Type") != "application/json":
			http.Error(w, "bad request line", http.StatusBadRequest)
		case r.Header.Get("Authorization") == "Bearer busy":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"error":"the leader is unreachable"}`))
		case r.Header.Get("Authorization") == "Bearer bye":
			w.Header().Set("Connection", "close")
			w.WriteHeader(http.StatusAccepted)
		default:
			w.WriteHeader(http.StatusAccepted)
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	// A port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	l.Close()

	bc, err := newBeatClient([]string{srv.URL, dead}, time.Second, 4)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 10 {
		if code, err := bc.beat(ctx, 0, "k"); code != http.StatusAccepted || err != nil {
			t.Fatalf("beat %d: %d, %v", i, code, err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("10 beats in a row used %d connections, want 1 kept alive", n)
	}
	if code, err := bc.beat(ctx, 0, "busy"); code != http.StatusServiceUnavailable || err != nil {
		t.Errorf("503 with a body: %d, %v", code, err)
	}
	if code, err := bc.beat(ctx, 0, "k"); code != http.StatusAccepted || err != nil || conns.Load() != 1 {
		t.Errorf("after a 503 the connection is reused: %d, %v, %d connections", code, err, conns.Load())
	}
	if code, err := bc.beat(ctx, 0, "bye"); code != http.StatusAccepted || err != nil {
		t.Errorf("Connection: close: %d, %v", code, err)
	}
	if code, err := bc.beat(ctx, 0, "k"); code != http.StatusAccepted || err != nil || conns.Load() != 2 {
		t.Errorf("after Connection: close a new connection: %d, %v, %d connections", code, err, conns.Load())
	}
	// The server drops its idle connection (as a restarted node has): the
	// next beat on it fails as unanswered, never as refused, and the one
	// after dials again.
	srv.CloseClientConnections()
	code, err := bc.beat(ctx, 0, "k")
	if err == nil {
		if code != http.StatusAccepted {
			t.Errorf("after the server closed connections: %d", code)
		}
	} else if strings.Contains(err.Error(), "connection refused") {
		t.Errorf("a closed keep-alive connection is not a refused dial: %v", err)
	}
	if code, err := bc.beat(ctx, 0, "k"); code != http.StatusAccepted || err != nil {
		t.Errorf("the beat after: %d, %v", code, err)
	}
	if _, err := bc.beat(ctx, 1, "k"); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("a port nothing listens on: %v, want connection refused", err)
	}
}
