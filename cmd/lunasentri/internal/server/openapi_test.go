package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// The OpenAPI document (docs/openapi.yaml, served at /v1/openapi.json) is
// checked against real answers of an in-process three-node cluster with
// kin-openapi: every request below must match an operation of the document,
// and its answer (status, headers, body) must match that operation's
// responses, including the status codes. Operations the document lists but
// this build does not serve yet are reported; ones it serves but this test
// does not exercise fail the test, so code and document cannot drift apart
// unnoticed.

// specReceiver is a webhook receiver that checks every delivery with the
// official Standard Webhooks verifier and keeps the bodies.
type specReceiver struct {
	srv *httptest.Server
	wh  *standardwebhooks.Webhook

	mu     sync.Mutex
	bodies [][]byte
	errs   []string
}

func newSpecReceiver(t *testing.T, secret string) *specReceiver {
	wh, err := standardwebhooks.NewWebhookRaw([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	r := &specReceiver{wh: wh}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.bodies = append(r.bodies, body)
		if err := wh.Verify(body, req.Header); err != nil {
			r.errs = append(r.errs, err.Error())
		}
		if req.Header.Get("webhook-id") != req.Header.Get("X-LunaSentri-Delivery") {
			r.errs = append(r.errs, "webhook-id differs from X-LunaSentri-Delivery")
		}
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *specReceiver) got() ([][]byte, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.bodies...), append([]string(nil), r.errs...)
}

// specCheck sends requests and validates them and their answers.
type specCheck struct {
	t       *testing.T
	doc     *openapi3.T
	router  routers.Router
	covered map[string]bool // "METHOD /path/template"
}

type specReq struct {
	method, url, token string
	body               string
	contentType        string
	want               int
	// badRequest: the request breaks the document on purpose (a 4xx test);
	// only the answer is validated.
	badRequest bool
}

func (s *specCheck) do(r specReq) []byte {
	s.t.Helper()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	req, err := http.NewRequest(r.method, r.url, body)
	if err != nil {
		s.t.Fatal(err)
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	if r.body != "" {
		ct := r.contentType
		if ct == "" {
			ct = "application/json"
		}
		req.Header.Set("Content-Type", ct)
	}
	route, params, err := s.router.FindRoute(req)
	if err != nil {
		s.t.Errorf("%s %s: not in the document: %v", r.method, req.URL.Path, err)
		return nil
	}
	s.covered[r.method+" "+route.Path] = true
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	if !r.badRequest {
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			s.t.Errorf("%s %s: request does not match the document: %v", r.method, route.Path, err)
		}
		// ValidateRequest read the body; send it again.
		if r.body != "" {
			req.Body = io.NopCloser(strings.NewReader(r.body))
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", r.method, r.url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if r.want != 0 && resp.StatusCode != r.want {
		s.t.Errorf("%s %s = %d %s, want %d", r.method, route.Path, resp.StatusCode, data, r.want)
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode,
		Header: resp.Header, Body: io.NopCloser(bytes.NewReader(data)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true}}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		s.t.Errorf("%s %s → %d: answer does not match the document: %v\nbody: %.400s", r.method, route.Path, resp.StatusCode, err, data)
	}
	return data
}

func TestOpenAPI_LiveAnswersMatchTheDocument(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	tc.leader()
	f := tc.follower()
	base := tc.url(f)

	// The document comes from the node itself.
	var raw json.RawMessage
	if code := call(t, "GET", base+"/v1/openapi.json", "", nil, &raw); code != http.StatusOK {
		t.Fatalf("GET /v1/openapi.json = %d", code)
	}
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		t.Fatalf("load the served document: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("served document is invalid: %v", err)
	}
	// The document's first server is "/": it routes requests to any node
	// as they are, the way an outside validator loads it.
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	s := &specCheck{t: t, doc: doc, router: router, covered: map[string]bool{}}
	const admin = testToken
	hook := newSpecReceiver(t, secretAll)

	// Open endpoints.
	s.do(specReq{method: "GET", url: base + "/healthz", want: 200})
	// A node is ready once it has applied up to the leader's commit index
	// (issue 11: readiness that tells the truth); wait for that first.
	waitFor(t, 10*time.Second, "node ready", func() bool { return call(t, "GET", base+"/readyz", "", nil, nil) == http.StatusOK })
	s.do(specReq{method: "GET", url: base + "/readyz", want: 200})
	s.do(specReq{method: "GET", url: base + "/metrics", want: 200})
	s.do(specReq{method: "GET", url: base + "/v1/status", want: 200})
	s.do(specReq{method: "GET", url: base + "/v1/openapi.json", want: 200})

	// Machines.
	var reg struct {
		APIKey string `json:"api_key"`
	}
	data := s.do(specReq{method: "POST", url: base + "/v1/machines", token: admin, want: 201,
		body: `{"name":"web-1","description":"front","labels":{"env":"prod"},"offline_threshold":"1s"}`})
	_ = json.Unmarshal(data, &reg)
	s.do(specReq{method: "POST", url: base + "/v1/machines", token: admin, want: 409, body: `{"name":"web-1"}`})
	s.do(specReq{method: "POST", url: base + "/v1/machines", token: admin, want: 400, body: `name=web-2`, badRequest: true})
	s.do(specReq{method: "GET", url: base + "/v1/machines", token: "wrong", want: 401})
	s.do(specReq{method: "GET", url: base + "/v1/machines?status=unknown", token: admin, want: 200})
	s.do(specReq{method: "GET", url: base + "/v1/machines/nope", token: admin, want: 404})

	// Channels: a webhook receiver, and a telegram channel refused without
	// a bot token.
	s.do(specReq{method: "POST", url: base + "/v1/channels", token: admin, want: 201,
		body: fmt.Sprintf(`{"type":"webhook","name":"hook","url":%q,"secret":%q}`, hook.srv.URL+"/hook", secretAll)})
	data = s.do(specReq{method: "POST", url: base + "/v1/channels", token: admin, want: 400,
		body: `{"type":"telegram","name":"tg","chat_id":"-1001234567890"}`})
	if !strings.Contains(string(data), "bot token") {
		t.Errorf("telegram without a bot token: %s", data)
	}
	s.do(specReq{method: "GET", url: base + "/v1/channels", token: admin, want: 200})
	s.do(specReq{method: "POST", url: base + "/v1/channels/hook/test", token: admin, want: 200})

	// Heartbeats in every form; the agent's facts are stored.
	s.do(specReq{method: "POST", url: base + "/v1/heartbeat", token: reg.APIKey, want: 202,
		body: `{"hostname":"web-1.example","agent_version":"1.0.0","info":{"os":"linux","kernel":"6.1.0"}}`})
	s.do(specReq{method: "GET", url: base + "/v1/heartbeat", token: reg.APIKey, want: 202})
	s.do(specReq{method: "POST", url: base + "/v1/heartbeat", token: "lsk_wrong", want: 401, body: `{}`})
	s.do(specReq{method: "GET", url: base + "/ping/" + reg.APIKey, want: 200})
	s.do(specReq{method: "HEAD", url: base + "/ping/" + reg.APIKey, want: 200})
	s.do(specReq{method: "POST", url: base + "/ping/" + reg.APIKey, want: 200, body: "done", contentType: "text/plain"})
	s.do(specReq{method: "GET", url: base + "/ping/lsk_wrong", want: 401})
	waitFor(t, 10*time.Second, "agent facts replicated", func() bool {
		var out struct {
			Machine struct {
				Agent *struct {
					AgentVersion string `json:"agent_version"`
				} `json:"agent"`
			} `json:"machine"`
		}
		call(t, "GET", tc.url(0)+"/v1/machines/web-1", admin, nil, &out)
		return out.Machine.Agent != nil && out.Machine.Agent.AgentVersion == "1.0.0"
	})
	s.do(specReq{method: "GET", url: base + "/v1/machines/web-1", token: admin, want: 200})

	// It goes quiet: an offline event, delivered to the webhook.
	waitFor(t, 15*time.Second, "offline event delivered", func() bool {
		var out struct {
			Events []struct {
				Type       string                   `json:"type"`
				Deliveries []struct{ State string } `json:"deliveries"`
			} `json:"events"`
		}
		call(t, "GET", base+"/v1/events", admin, nil, &out)
		return len(out.Events) > 0 && out.Events[0].Type == "machine.offline" &&
			len(out.Events[0].Deliveries) == 1 && out.Events[0].Deliveries[0].State == "delivered"
	})
	s.do(specReq{method: "GET", url: base + "/v1/events?limit=10", token: admin, want: 200})
	s.do(specReq{method: "GET", url: base + "/v1/machines", token: admin, want: 200})

	// Issue 11: role tokens.
	var tok struct {
		Token struct {
			ID string `json:"id"`
		} `json:"token"`
	}
	data = s.do(specReq{method: "POST", url: base + "/v1/tokens", token: admin, want: 201, body: `{"name":"grafana","role":"read","expires_in":"720h"}`})
	_ = json.Unmarshal(data, &tok)
	s.do(specReq{method: "POST", url: base + "/v1/tokens", token: admin, want: 400, body: `{"name":"x","role":"root"}`, badRequest: true})
	s.do(specReq{method: "GET", url: base + "/v1/tokens", token: admin, want: 200})
	s.do(specReq{method: "DELETE", url: base + "/v1/tokens/" + tok.Token.ID, token: admin, want: 204})

	// Issue 10: edits, silences, pause, uptime and reported failures.
	s.do(specReq{method: "PATCH", url: base + "/v1/machines/web-1", token: admin, want: 200,
		body: `{"description":"front end","offline_threshold":"2s","labels":{"env":"prod","tier":"web"}}`})
	s.do(specReq{method: "PATCH", url: base + "/v1/machines/web-1", token: admin, want: 400, body: `{}`})
	s.do(specReq{method: "PATCH", url: base + "/v1/channels/hook", token: admin, want: 200,
		body: `{"repeat_interval":"1h","group_after":10,"group_window":"10s","group_by":["env"]}`})
	s.do(specReq{method: "PATCH", url: base + "/v1/channels/hook", token: admin, want: 400, body: `{"group_after":0}`})
	var sil struct {
		Silence struct {
			ID string `json:"id"`
		} `json:"silence"`
	}
	data = s.do(specReq{method: "POST", url: base + "/v1/silences", token: admin, want: 201,
		body: `{"machines":["web-1"],"duration":"1h","comment":"spec check"}`})
	_ = json.Unmarshal(data, &sil)
	s.do(specReq{method: "POST", url: base + "/v1/silences", token: admin, want: 201,
		body: `{"matchers":{"env":"prod"},"schedule":"0 3 * * 6","duration":"2h","timezone":"Europe/Berlin","comment":"weekly"}`})
	s.do(specReq{method: "POST", url: base + "/v1/silences", token: admin, want: 400, body: `{"duration":"1h","comment":"no matcher"}`})
	s.do(specReq{method: "GET", url: base + "/v1/silences", token: admin, want: 200})
	s.do(specReq{method: "DELETE", url: base + "/v1/silences/" + sil.Silence.ID, token: admin, want: 204})
	s.do(specReq{method: "DELETE", url: base + "/v1/silences/nope", token: admin, want: 404})
	s.do(specReq{method: "GET", url: base + "/v1/machines/web-1/uptime?window=24h", token: admin, want: 200})
	s.do(specReq{method: "POST", url: base + "/v1/heartbeat/fail", token: reg.APIKey, want: 202, body: `{"message":"disk full"}`})
	s.do(specReq{method: "GET", url: base + "/ping/" + reg.APIKey + "/fail", want: 200})
	s.do(specReq{method: "POST", url: base + "/ping/" + reg.APIKey + "/fail", want: 200, body: "backup failed", contentType: "text/plain"})
	s.do(specReq{method: "POST", url: base + "/v1/machines/web-1/pause", token: admin, want: 200})
	s.do(specReq{method: "POST", url: base + "/v1/machines/web-1/resume", token: admin, want: 200})
	s.do(specReq{method: "GET", url: base + "/v1/events", token: admin, want: 200})

	// Webhook bodies match the document's WebhookDelivery schema, and the
	// Standard Webhooks verifier accepted every one.
	bodies, errs := hook.got()
	if len(errs) > 0 {
		t.Errorf("Standard Webhooks verifier: %v", errs)
	}
	if len(bodies) < 2 {
		t.Errorf("receiver got %d deliveries, want the test message and the offline event", len(bodies))
	}
	schema := doc.Components.Schemas["WebhookDelivery"].Value
	for _, b := range bodies {
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("webhook body %s: %v", b, err)
		}
		if err := schema.VisitJSON(v); err != nil {
			t.Errorf("webhook body does not match WebhookDelivery: %v\n%s", err, b)
		}
	}

	// Cluster operations (but leave: it stops a node) and snapshots.
	s.do(specReq{method: "GET", url: base + "/v1/cluster/members", token: admin, want: 200})
	s.do(specReq{method: "GET", url: base + "/v1/cluster/raft", token: admin, want: 200})
	s.do(specReq{method: "POST", url: base + "/v1/cluster/raft/remove-peer", token: admin, want: 400, body: `{"id":""}`})
	s.do(specReq{method: "GET", url: base + "/v1/snapshot", token: admin, want: 200})
	s.do(specReq{method: "POST", url: base + "/v1/snapshot", token: admin, want: 400, body: "not an archive",
		contentType: "application/octet-stream"})

	// Clean up through the API.
	s.do(specReq{method: "POST", url: base + "/v1/machines/web-1/rotate-key", token: admin, want: 200})
	s.do(specReq{method: "DELETE", url: base + "/v1/channels/hook", token: admin, want: 204})
	s.do(specReq{method: "DELETE", url: base + "/v1/machines/web-1", token: admin, want: 204})

	// Every documented operation this build serves was exercised above.
	notServed := map[string]bool{"POST /v1/cluster/leave": true} // served, but it would stop a node
	var missing []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			op := method + " " + path
			if s.covered[op] || notServed[op] {
				continue
			}
			if served(t, base, method, path) {
				t.Errorf("%s is in the document and served by this build, but this test does not exercise it", op)
			} else {
				missing = append(missing, op)
			}
		}
	}
	t.Logf("documented, not served by this build (other second-wave work): %d operations", len(missing))
}

// served asks the node whether it routes method on a documented path: our
// mux answers an unknown method on a known path with 405 and an Allow
// header, and an unknown path with 404 "no such endpoint".
func served(t *testing.T, base, method, path string) bool {
	p := strings.NewReplacer("{name}", "x", "{id}", "x", "{key}", "x", "{machine}", "x", "{value}", "x").Replace(path)
	req, _ := http.NewRequest("TRACE", base+p, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		return false
	}
	for _, m := range strings.Split(resp.Header.Get("Allow"), ",") {
		if strings.EqualFold(strings.TrimSpace(m), method) {
			return true
		}
	}
	return false
}
