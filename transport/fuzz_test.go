package transport_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Fuzz targets for the HTTP bodies the API decodes (issue 11). Their seeds
// run as ordinary tests.

// serve runs one request through the handler without a network.
func serve(n *testNode, method, path, auth, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	n.api.Handler().ServeHTTP(rec, req)
	return rec
}

// checkAnswer: no 5xx for bad input, and every 4xx is {"error": "..."}.
func checkAnswer(t *testing.T, what string, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec.Code >= 500 {
		t.Fatalf("%s: %d %s", what, rec.Code, rec.Body.Bytes())
	}
	if rec.Code >= 400 {
		var e map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e["error"] == "" || len(e) != 1 {
			t.Fatalf("%s: %d answer is not a JSON error: %q", what, rec.Code, rec.Body.Bytes())
		}
	}
}

func FuzzHeartbeatBody(f *testing.F) {
	for _, s := range []string{``, `{}`, `{"hostname":"h","agent_version":"1","info":{"os":"linux"}}`,
		`{"info":[]}`, `{"info":null}`, `{"hostname":1}`, `{`, `null`, `[]`, `{"info":{"a":{"b":[1,2,{}]}}}`,
		strings.Repeat(`{"a":`, 100), "\x00\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		n := newNode(t, true, nil)
		n.register(t, "m")
		rec := serve(n, "POST", "/v1/heartbeat", "Bearer lsk_key-m", body)
		checkAnswer(t, "heartbeat", rec)
		if rec.Code != http.StatusAccepted && rec.Code/100 != 4 {
			t.Fatalf("heartbeat answered %d", rec.Code)
		}
	})
}

// FuzzAdminBodies sends one body to every admin JSON endpoint; a refused
// body changes nothing.
func FuzzAdminBodies(f *testing.F) {
	for _, s := range []string{``, `{}`, `{"name":"web-1"}`, `{"name":"web-1","labels":{"env":"prod"},"offline_threshold":"30s"}`,
		`{"name":"x","labels":{"a\nb":"c"}}`, `{"name":"x","offline_threshold":-1}`,
		`{"type":"webhook","name":"hook","url":"https://example.com/h","secret":"0123456789abcdef"}`,
		`{"type":"telegram","name":"tg","chat_id":"12"}`, `{"name":"tok","role":"read","expires_in":"1h"}`,
		`{"name":"tok","role":"admin","expires_in":3600}`, `{"id":"node9"}`, `{"name":"x"}{"name":"y"}`, `[{}]`, `"str"`, `1e999`} {
		f.Add(s)
	}
	paths := []string{"/v1/machines", "/v1/channels", "/v1/tokens", "/v1/cluster/raft/remove-peer"}
	f.Fuzz(func(t *testing.T, body string) {
		n := newNode(t, true, nil)
		for _, p := range paths {
			before := len(n.fsm.Machines("")) + len(n.fsm.Channels()) + len(n.fsm.Tokens())
			rec := serve(n, "POST", p, bearerAdmin, body)
			if rec.Code == http.StatusNotImplemented && p == "/v1/cluster/raft/remove-peer" {
				continue // no operator in this node
			}
			checkAnswer(t, p, rec)
			after := len(n.fsm.Machines("")) + len(n.fsm.Channels()) + len(n.fsm.Tokens())
			if rec.Code/100 == 4 && after != before {
				t.Fatalf("%s answered %d but changed state", p, rec.Code)
			}
			if rec.Code/100 == 2 && strings.Contains(rec.Body.String(), "0123456789abcdef") {
				t.Fatalf("%s echoed a secret", p)
			}
		}
	})
}

// FuzzInternalBeats sends arbitrary heartbeat batches to the leader's
// internal endpoint (with the cluster secret: a compromised or newer peer):
// no 5xx but 503, no panic, and the FSM keeps its invariants.
func FuzzInternalBeats(f *testing.F) {
	for _, s := range []string{`{"node":"n2","beats":[{"i":"id-m","a":1000}]}`, `{"beats":[{"i":"nope","a":-5}]}`,
		`{"beats":[{"i":"id-m","a":9223372036854775807}]}`, `{"beats":null}`, `{}`, `[]`, `{"beats":[{}]}`, `{"node":1}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		n := newNode(t, true, nil)
		n.register(t, "m")
		req := httptest.NewRequest("POST", "/internal/v1/heartbeats", strings.NewReader(body))
		req.Header.Set("X-LunaSentri-Cluster-Secret", clusterSecret)
		rec := httptest.NewRecorder()
		n.api.Handler().ServeHTTP(rec, req)
		if rec.Code >= 500 && rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("internal beats: %d %s", rec.Code, rec.Body.Bytes())
		}
		if err := n.fsm.CheckInvariants(); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzInternalLookup: the leader's credential lookup answers 200, 400 or
// 404 for any body, never a 5xx, and never finds a key it does not hold.
func FuzzInternalLookup(f *testing.F) {
	for _, s := range []string{`{"kind":"machine","hash":"` + strings.Repeat("ab", 32) + `"}`, `{"kind":"token","hash":""}`,
		`{"kind":"x"}`, `{"kind":"machine","hash":[1,2]}`, `{}`, `null`, `{"kind":"machine","hash":"zz"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		n := newNode(t, true, nil)
		req := httptest.NewRequest("POST", "/internal/v1/lookup", strings.NewReader(body))
		req.Header.Set("X-LunaSentri-Cluster-Secret", clusterSecret)
		rec := httptest.NewRecorder()
		n.api.Handler().ServeHTTP(rec, req)
		checkAnswer(t, "lookup", rec)
		if rec.Code == http.StatusOK {
			t.Fatalf("an empty leader found %q: %s", body, rec.Body.Bytes())
		}
	})
}
