package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRawPoster_ReadsEveryAnswerShapeOnOneConnection(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
		switch r.Header.Get("Authorization") {
		case "Bearer empty":
			w.WriteHeader(http.StatusAccepted)
		case "Bearer json":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusAccepted)
			_, _ = w.Write([]byte(`{"status":"accepted"}` + "\n"))
		case "Bearer chunked":
			w.WriteHeader(http.StatusUnauthorized)
			for range 3 {
				_, _ = w.Write([]byte(strings.Repeat("x", 3000)))
				w.(http.Flusher).Flush()
			}
		case "Bearer close":
			w.Header().Set("Connection", "close")
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	p := &rawPoster{addr: strings.TrimPrefix(srv.URL, "http://")}
	defer p.close()
	for _, tc := range []struct {
		key  string
		want int
	}{
		{"empty", 202}, {"json", 202}, {"chunked", 401}, {"empty", 202}, {"close", 503}, {"json", 202},
	} {
		r := newBeatRequest("m1", tc.key)
		code, err := p.post(context.Background(), &r)
		if err != nil || code != tc.want {
			t.Fatalf("key %s: got %d, %v; want %d", tc.key, code, err, tc.want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 6 || bodies[0] != string(heartbeatBody("m1")) {
		t.Fatalf("server saw bodies %q", bodies)
	}
}

func TestRunLoad_CountsAcceptedAndOtherAnswers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "Bearer bad" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	reqs := []beatRequest{newBeatRequest("a", "good"), newBeatRequest("b", "bad")}
	for _, client := range []string{"raw", "nethttp"} {
		res, err := runLoad(context.Background(), loadSpec{
			Targets: []string{strings.TrimPrefix(srv.URL, "http://")}, Reqs: reqs,
			Workers: 2, Client: client, Warmup: 20 * time.Millisecond, Window: 200 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.Accepted == 0 || res.Other["401"] == 0 {
			t.Fatalf("%s: accepted %d, other %v", client, res.Accepted, res.Other)
		}
	}
}

func TestEventIndex_ParsesDeterministicIDs(t *testing.T) {
	for id, want := range map[string]uint64{"ev-12345-0": 12345, "ev-7-9999": 7} {
		if got, ok := eventIndex(id); !ok || got != want {
			t.Errorf("eventIndex(%q) = %d, %v", id, got, ok)
		}
	}
	for _, id := range []string{"", "ev-", "ev-x-1", "12-3", "ev-12"} {
		if _, ok := eventIndex(id); ok {
			t.Errorf("eventIndex(%q) accepted", id)
		}
	}
}

func TestSummarize_NearestRank(t *testing.T) {
	var ds []time.Duration
	for i := 10; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	d := summarize(ds)
	if d.N != 10 || d.MinMs != 1 || d.P50Ms != 5 || d.P90Ms != 9 || d.P99Ms != 10 || d.MaxMs != 10 {
		t.Fatalf("summarize = %+v", d)
	}
	if (summarize(nil) != dist{}) {
		t.Fatal("empty input")
	}
}

func TestParseFlags_QuickKeepsExplicitFlags(t *testing.T) {
	c, err := parseFlags([]string{"-quick", "-machines", "500"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Machines != 500 || c.DetectMachines != 500 || c.Duration != 3*time.Second || c.FailoverRounds != 3 || c.Scale1M || c.BigSnapMachines != 20000 {
		t.Fatalf("quick config %+v", c)
	}
	c, err = parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Machines != 10000 || !c.Scale1M || len(c.Phases) != 6 || c.Client != "raw" || c.StormMachines != 10000 || c.BigSnapMachines != 1_000_000 {
		t.Fatalf("default config %+v", c)
	}
	for _, bad := range [][]string{{"-phases", "intake,bogus"}, {"-client", "curl"}, {"-detect-threshold", "500ms"}, {"extra"}} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("parseFlags(%v) accepted", bad)
		}
	}
}

func TestScaleChild_MeasuresAGeneratedFleet(t *testing.T) {
	// The generated snapshot must be one the real FSM accepts, with keys
	// that authenticate: the scale numbers depend on it.
	res, err := scaleChild(50, true, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if res.Machines != 50 || res.BytesPerMachine <= 0 || res.SnapshotBytes <= 0 || res.RestoreMs <= 0 {
		t.Fatalf("implausible result %+v", res)
	}
}
