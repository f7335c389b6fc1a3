package transport_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/lunasentri/lunasentri/transport"
)

// rawCall sends one request and returns status, headers and the body as
// text (ping answers are plain text, not JSON).
func rawCall(t *testing.T, method, url, auth, body string) (int, http.Header, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestPing_GetHeadPostAnswerOK(t *testing.T) {
	var received counter
	n := newNode(t, true, func(o *transport.Options) { o.HeartbeatsReceived = &received })
	_, key := n.register(t, "cron-1")
	for _, tc := range []struct{ method, body, want string }{
		{http.MethodGet, "", "OK"},
		{http.MethodHead, "", ""},
		{http.MethodPost, "", "OK"},
		{http.MethodPost, "backup finished: 12 GB\n", "OK"}, // a cron job's output is ignored
	} {
		status, h, body := rawCall(t, tc.method, n.srv.URL+"/ping/"+key, "", tc.body)
		if status != http.StatusOK || body != tc.want {
			t.Errorf("%s /ping/KEY = %d %q, want 200 %q", tc.method, status, body, tc.want)
		}
		if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
			t.Errorf("%s: Content-Type %q", tc.method, ct)
		}
	}
	if got := received.n.Load(); got != 4 {
		t.Errorf("HeartbeatsReceived = %d, want 4", got)
	}
	if got := n.api.PendingBeats(); got != 1 {
		t.Errorf("PendingBeats = %d, want 1", got)
	}
}

func TestHeartbeat_GetWithHeaderIsABeat(t *testing.T) {
	n := newNode(t, true, nil)
	_, key := n.register(t, "m1")
	r := call(t, http.MethodGet, n.srv.URL+"/v1/heartbeat", "Bearer "+key, "")
	if r.status != http.StatusAccepted {
		t.Fatalf("GET /v1/heartbeat = %d %s, want 202", r.status, r.raw)
	}
	if got := n.api.PendingBeats(); got != 1 {
		t.Errorf("PendingBeats = %d, want 1", got)
	}
}

// TestPing_KeyNeverEchoed: wrong keys, wrong methods and unknown sub-paths
// all answer with a JSON error that does not contain the key, and the debug
// access log shows the path with the key redacted.
func TestPing_KeyNeverEchoed(t *testing.T) {
	var logBuf syncBuffer
	logger := hclog.New(&hclog.LoggerOptions{Level: hclog.Debug, Output: &logBuf})
	n := newNode(t, true, func(o *transport.Options) { o.Logger = logger })
	_, key := n.register(t, "cron-1")
	const wrong = "lsk_this-is-not-a-key-0123456789"
	for _, tc := range []struct {
		method, path string
		status       int
		secret       string
	}{
		{http.MethodGet, "/ping/" + wrong, http.StatusUnauthorized, wrong},
		{http.MethodPost, "/ping/" + wrong, http.StatusUnauthorized, wrong},
		{http.MethodPut, "/ping/" + key, http.StatusMethodNotAllowed, key},
		{http.MethodDelete, "/ping/" + key, http.StatusMethodNotAllowed, key},
		{http.MethodGet, "/ping/" + key + "/nothing/here", http.StatusNotFound, key},
		{http.MethodGet, "/ping/" + key + "/", http.StatusNotFound, key},
	} {
		status, _, body := rawCall(t, tc.method, n.srv.URL+tc.path, "", "")
		if status != tc.status {
			t.Errorf("%s %s = %d, want %d (%s)", tc.method, strings.ReplaceAll(tc.path, tc.secret, "KEY"), status, tc.status, body)
		}
		if !strings.HasPrefix(body, `{"error":`) {
			t.Errorf("%s: answer is not a JSON error: %q", tc.method, body)
		}
		if strings.Contains(body, tc.secret) {
			t.Errorf("%s: answer echoes the key: %q", tc.method, body)
		}
	}
	// One good ping, so the access log has a 200 line too.
	if status, _, _ := rawCall(t, http.MethodGet, n.srv.URL+"/ping/"+key, "", ""); status != http.StatusOK {
		t.Fatalf("good ping = %d", status)
	}
	logs := logBuf.String()
	if strings.Contains(logs, key) || strings.Contains(logs, wrong) {
		t.Fatalf("log carries a key:\n%s", logs)
	}
	if !strings.Contains(logs, "path=/ping/REDACTED") || !strings.Contains(logs, "status=200") {
		t.Fatalf("access log lacks the redacted ping line:\n%s", logs)
	}
}

func TestHeartbeat_ErrorsInUserTerms(t *testing.T) {
	n := newNode(t, true, nil)
	_, key := n.register(t, "m1")
	for _, tc := range []struct {
		name string
		r    reply
		want string
	}{
		{"not json", n.beat(t, key, `all good`), "body is not JSON"},
		{"unknown key", n.beat(t, "lsk_nope", `{}`), "unknown machine key"},
		{"hostname not a string", n.beat(t, key, `{"hostname":5}`), `body is not valid: field "hostname" must be a string`},
		{"admin: not json", n.admin(t, http.MethodPost, "/v1/machines", `name=x`), "body is not JSON"},
		{"admin: unknown token", call(t, http.MethodGet, n.srv.URL+"/v1/machines", "Bearer wrong", ""), "unknown, revoked or expired token"},
		{"admin: unknown field", n.admin(t, http.MethodPost, "/v1/machines", `{"name":"x","colour":"red"}`), `body has an unknown field "colour"`},
	} {
		if got, _ := tc.r.body["error"].(string); got != tc.want {
			t.Errorf("%s: error %q, want %q", tc.name, got, tc.want)
		}
	}
}
