package transport_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lunasentri/lunasentri/fsm"
)

// snapshot is everything a bad request must leave alone.
type snapshot struct {
	stats    fsm.Stats
	machines []fsm.Machine
	channels []fsm.Channel
}

func snap(f *fsm.FSM) snapshot {
	return snapshot{stats: f.Stats(), machines: f.Machines(""), channels: f.Channels()}
}

func TestAPI_BadInputIsRejectedWithJSONAndChangesNothing(t *testing.T) {
	n := newNode(t, true, nil)
	_, agentKey := n.register(t, "existing")
	if r := n.admin(t, "POST", "/v1/channels", `{"type":"telegram","name":"dup","chat_id":"12345"}`); r.status != 201 {
		t.Fatalf("setup channel: %d %s", r.status, r.raw)
	}

	manyLabels := make([]string, 33)
	for i := range manyLabels {
		manyLabels[i] = fmt.Sprintf(`"k%d":"v"`, i)
	}
	cases := []struct {
		name, method, path, body string
		auth                     string // "" means the admin token
		want                     int
	}{
		{name: "register empty body", method: "POST", path: "/v1/machines", body: "", want: 400},
		{name: "register empty object", method: "POST", path: "/v1/machines", body: `{}`, want: 400},
		{name: "register json null", method: "POST", path: "/v1/machines", body: `null`, want: 400},
		{name: "register json array", method: "POST", path: "/v1/machines", body: `[]`, want: 400},
		{name: "register empty name", method: "POST", path: "/v1/machines", body: `{"name":""}`, want: 400},
		{name: "register name with space", method: "POST", path: "/v1/machines", body: `{"name":"a b"}`, want: 400},
		{name: "register name with slash", method: "POST", path: "/v1/machines", body: `{"name":"a/b"}`, want: 400},
		{name: "register unicode name", method: "POST", path: "/v1/machines", body: `{"name":"mäschine"}`, want: 400},
		{name: "register leading dot", method: "POST", path: "/v1/machines", body: `{"name":".hidden"}`, want: 400},
		{name: "register name 65 chars", method: "POST", path: "/v1/machines", body: `{"name":"` + strings.Repeat("a", 65) + `"}`, want: 400},
		{name: "register unknown field", method: "POST", path: "/v1/machines", body: `{"name":"ok","colour":"red"}`, want: 400},
		{name: "register name is a number", method: "POST", path: "/v1/machines", body: `{"name":5}`, want: 400},
		{name: "register labels is an array", method: "POST", path: "/v1/machines", body: `{"name":"ok","labels":[]}`, want: 400},
		{name: "register label value not a string", method: "POST", path: "/v1/machines", body: `{"name":"ok","labels":{"a":1}}`, want: 400},
		{name: "register threshold abc", method: "POST", path: "/v1/machines", body: `{"name":"ok","offline_threshold":"abc"}`, want: 400},
		{name: "register threshold 0.1s", method: "POST", path: "/v1/machines", body: `{"name":"ok","offline_threshold":0.1}`, want: 400},
		{name: "register threshold zero", method: "POST", path: "/v1/machines", body: `{"name":"ok","offline_threshold":0}`, want: 400},
		{name: "register threshold negative", method: "POST", path: "/v1/machines", body: `{"name":"ok","offline_threshold":"-5s"}`, want: 400},
		{name: "register threshold a year", method: "POST", path: "/v1/machines", body: `{"name":"ok","offline_threshold":"8760h"}`, want: 400},
		{name: "register threshold huge number", method: "POST", path: "/v1/machines", body: `{"name":"ok","offline_threshold":1e300}`, want: 400},
		{name: "register threshold bool", method: "POST", path: "/v1/machines", body: `{"name":"ok","offline_threshold":true}`, want: 400},
		{name: "register too many labels", method: "POST", path: "/v1/machines", body: `{"name":"ok","labels":{` + strings.Join(manyLabels, ",") + `}}`, want: 400},
		{name: "register bad label key", method: "POST", path: "/v1/machines", body: `{"name":"ok","labels":{"has space":"v"}}`, want: 400},
		{name: "register label key starts with digit", method: "POST", path: "/v1/machines", body: `{"name":"ok","labels":{"1a":"v"}}`, want: 400},
		{name: "register empty label key", method: "POST", path: "/v1/machines", body: `{"name":"ok","labels":{"":"v"}}`, want: 400},
		{name: "register label value too long", method: "POST", path: "/v1/machines", body: `{"name":"ok","labels":{"a":"` + strings.Repeat("v", 257) + `"}}`, want: 400},
		{name: "register hostname with NUL", method: "POST", path: "/v1/machines", body: `{"name":"ok","hostname":"a\u0000b"}`, want: 400},
		{name: "register description too long", method: "POST", path: "/v1/machines", body: `{"name":"ok","description":"` + strings.Repeat("d", 1025) + `"}`, want: 400},
		{name: "register trailing garbage", method: "POST", path: "/v1/machines", body: `{"name":"tb3"} xyz`, want: 400},
		{name: "register second object", method: "POST", path: "/v1/machines", body: `{"name":"tb4"}{"name":"ok2"}`, want: 400},
		{name: "register trailing brace", method: "POST", path: "/v1/machines", body: `{"name":"tb1"}}`, want: 400},
		{name: "register trailing bracket", method: "POST", path: "/v1/machines", body: `{"name":"tb2"}]`, want: 400},
		{name: "register truncated", method: "POST", path: "/v1/machines", body: `{"name":"ok"`, want: 400},
		{name: "register existing name", method: "POST", path: "/v1/machines", body: `{"name":"existing"}`, want: 409},
		{name: "register missing token", method: "POST", path: "/v1/machines", body: `{"name":"ok"}`, auth: "-", want: 401},
		{name: "register wrong token", method: "POST", path: "/v1/machines", body: `{"name":"ok"}`, auth: "Bearer nope", want: 401},
		{name: "register basic auth", method: "POST", path: "/v1/machines", body: `{"name":"ok"}`, auth: "Basic " + adminToken, want: 401},
		{name: "register agent key as admin", method: "POST", path: "/v1/machines", body: `{"name":"ok"}`, auth: "Bearer " + agentKey, want: 401},
		{name: "list bogus status", method: "GET", path: "/v1/machines?status=bogus", want: 400},
		{name: "list missing token", method: "GET", path: "/v1/machines", auth: "-", want: 401},
		{name: "events limit 0", method: "GET", path: "/v1/events?limit=0", want: 400},
		{name: "events limit -1", method: "GET", path: "/v1/events?limit=-1", want: 400},
		{name: "events limit abc", method: "GET", path: "/v1/events?limit=abc", want: 400},
		{name: "events limit 100000", method: "GET", path: "/v1/events?limit=100000", want: 400},
		{name: "channel unknown type", method: "POST", path: "/v1/channels", body: `{"type":"carrier-pigeon","name":"c1"}`, want: 400},
		{name: "channel missing type", method: "POST", path: "/v1/channels", body: `{"name":"c1","url":"https://example.com/h","secret":"0123456789abcdef"}`, want: 400},
		{name: "channel missing name", method: "POST", path: "/v1/channels", body: `{"type":"telegram","chat_id":"12345"}`, want: 400},
		{name: "webhook without url", method: "POST", path: "/v1/channels", body: `{"type":"webhook","name":"c1","secret":"0123456789abcdef"}`, want: 400},
		{name: "webhook ftp url", method: "POST", path: "/v1/channels", body: `{"type":"webhook","name":"c1","url":"ftp://example.com/h","secret":"0123456789abcdef"}`, want: 400},
		{name: "webhook short secret", method: "POST", path: "/v1/channels", body: `{"type":"webhook","name":"c1","url":"https://example.com/h","secret":"0123456789abcde"}`, want: 400},
		{name: "webhook without secret", method: "POST", path: "/v1/channels", body: `{"type":"webhook","name":"c1","url":"https://example.com/h"}`, want: 400},
		{name: "webhook with chat_id", method: "POST", path: "/v1/channels", body: `{"type":"webhook","name":"c1","url":"https://example.com/h","secret":"0123456789abcdef","chat_id":"1"}`, want: 400},
		{name: "telegram without chat_id", method: "POST", path: "/v1/channels", body: `{"type":"telegram","name":"c1"}`, want: 400},
		{name: "channel group_after 0", method: "POST", path: "/v1/channels", body: `{"type":"telegram","name":"c1","chat_id":"1","group_after":0}`, want: 400},
		{name: "channel group_by too many", method: "POST", path: "/v1/channels", body: `{"type":"telegram","name":"c1","chat_id":"1","group_by":["a","b","c","d","e","f","g","h","i"]}`, want: 400},
		{name: "channel negative repeat", method: "POST", path: "/v1/channels", body: `{"type":"telegram","name":"c1","chat_id":"1","repeat_interval":"-1m"}`, want: 400},
		{name: "channel absurd window", method: "POST", path: "/v1/channels", body: `{"type":"telegram","name":"c1","chat_id":"1","group_window":"10000h"}`, want: 400},
		{name: "channel sub-second window", method: "POST", path: "/v1/channels", body: `{"type":"telegram","name":"c1","chat_id":"1","group_window":"500ms"}`, want: 400},
		{name: "PATCH unknown channel", method: "PATCH", path: "/v1/channels/nope", body: `{"group_after":3}`, want: 404},
		{name: "telegram with secret", method: "POST", path: "/v1/channels", body: `{"type":"telegram","name":"c1","chat_id":"1","secret":"0123456789abcdef"}`, want: 400},
		{name: "channel bad match key", method: "POST", path: "/v1/channels", body: `{"type":"telegram","name":"c1","chat_id":"1","match":{"a b":"c"}}`, want: 400},
		{name: "channel unknown field", method: "POST", path: "/v1/channels", body: `{"type":"telegram","name":"c1","chat_id":"1","token":"x"}`, want: 400},
		{name: "channel duplicate name", method: "POST", path: "/v1/channels", body: `{"type":"telegram","name":"dup","chat_id":"777"}`, want: 409},
		{name: "delete unknown channel", method: "DELETE", path: "/v1/channels/nope", want: 404},
		{name: "test unknown channel", method: "POST", path: "/v1/channels/nope/test", want: 404},
		{name: "get unknown machine", method: "GET", path: "/v1/machines/nope", want: 404},
		{name: "delete unknown machine", method: "DELETE", path: "/v1/machines/nope", want: 404},
		{name: "rotate unknown machine", method: "POST", path: "/v1/machines/nope/rotate-key", want: 404},
		{name: "PUT machines", method: "PUT", path: "/v1/machines", body: `{"name":"ok"}`, want: 405},
		{name: "PUT machine", method: "PUT", path: "/v1/machines/existing", body: `{}`, want: 405},
		{name: "PATCH machine with nothing", method: "PATCH", path: "/v1/machines/existing", body: `{}`, want: 400},
		{name: "PATCH machine bad threshold", method: "PATCH", path: "/v1/machines/existing", body: `{"offline_threshold":"-5s"}`, want: 400},
		{name: "PATCH unknown machine", method: "PATCH", path: "/v1/machines/nope", body: `{"description":"x"}`, want: 404},
		{name: "pause unknown machine", method: "POST", path: "/v1/machines/nope/pause", want: 404},
		{name: "silence without matcher", method: "POST", path: "/v1/silences", body: `{"duration":"1h","comment":"x"}`, want: 400},
		{name: "silence bad cron", method: "POST", path: "/v1/silences", body: `{"machines":["existing"],"schedule":"61 * * * *","duration":"1h","comment":"x"}`, want: 400},
		{name: "silence unknown timezone", method: "POST", path: "/v1/silences", body: `{"machines":["existing"],"schedule":"0 3 * * *","duration":"1h","timezone":"Mars/Olympus","comment":"x"}`, want: 400},
		{name: "silence ends before start", method: "POST", path: "/v1/silences", body: `{"machines":["existing"],"starts_at":"2030-01-02T00:00:00Z","ends_at":"2030-01-01T00:00:00Z","comment":"x"}`, want: 400},
		{name: "silence without end", method: "POST", path: "/v1/silences", body: `{"machines":["existing"],"comment":"x"}`, want: 400},
		{name: "silence unknown machine", method: "POST", path: "/v1/silences", body: `{"machines":["nope"],"duration":"1h","comment":"x"}`, want: 400},
		{name: "silence negative duration", method: "POST", path: "/v1/silences", body: `{"machines":["existing"],"duration":"-1h","comment":"x"}`, want: 400},
		{name: "silence absurd duration", method: "POST", path: "/v1/silences", body: `{"machines":["existing"],"duration":"100000h","comment":"x"}`, want: 400},
		{name: "silence without comment", method: "POST", path: "/v1/silences", body: `{"machines":["existing"],"duration":"1h"}`, want: 400},
		{name: "expire unknown silence", method: "DELETE", path: "/v1/silences/nope", want: 404},
		{name: "fail with unknown key", method: "POST", path: "/v1/heartbeat/fail", auth: "nope", want: 401},
		{name: "ping fail with unknown key", method: "GET", path: "/ping/nope/fail", want: 401},
		{name: "PUT heartbeat", method: "PUT", path: "/v1/heartbeat", want: 405},
		{name: "POST healthz", method: "POST", path: "/healthz", want: 405},
		{name: "unknown path", method: "GET", path: "/v2/nothing", want: 404},
		{name: "unknown nested path", method: "GET", path: "/v1/machines/a/b/c", want: 404},
		{name: "metrics not enabled", method: "GET", path: "/metrics", want: 404},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := snap(n.fsm)
			auth := bearerAdmin
			switch tc.auth {
			case "-":
				auth = ""
			case "":
			default:
				auth = tc.auth
			}
			r := call(t, tc.method, n.srv.URL+tc.path, auth, tc.body)
			wantJSONError(t, r, tc.want)
			if tc.want == http.StatusMethodNotAllowed && r.header.Get("Allow") == "" {
				t.Errorf("405 without an Allow header")
			}
			if after := snap(n.fsm); !reflect.DeepEqual(before, after) {
				t.Errorf("FSM changed: stats %+v -> %+v, %d -> %d machines, %d -> %d channels",
					before.stats, after.stats, len(before.machines), len(after.machines), len(before.channels), len(after.channels))
			}
		})
	}
}

func TestRouting_MethodNotAllowedNamesAllowedMethods(t *testing.T) {
	n := newNode(t, true, nil)
	r := call(t, "PUT", n.srv.URL+"/v1/machines", bearerAdmin, `{}`)
	wantJSONError(t, r, 405)
	allow := r.header.Get("Allow")
	for _, m := range []string{"GET", "POST"} {
		if !strings.Contains(allow, m) {
			t.Errorf("Allow = %q, want it to list %s", allow, m)
		}
	}
}

// rawPost writes a request declaring a Content-Length of declared bytes but
// sends only the first few, then reads the answer. A server that tried to
// read the body would never answer (the read deadline fails the test).
func rawPost(t *testing.T, addr, path string, declared int, headers ...string) *http.Response {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", path, addr, declared)
	for i := 0; i+1 < len(headers); i += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", headers[i], headers[i+1])
	}
	b.WriteString("\r\n{\"name\":\"")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a declared %d-byte body (the server is reading it?): %v", declared, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestLimits_DeclaredHugeBodyGets413WithoutBeingRead(t *testing.T) {
	n := newNode(t, true, nil)
	_, key := n.register(t, "m1")
	const fourMiB = 4 << 20
	cases := []struct {
		name, path string
		headers    []string
	}{
		{"register", "/v1/machines", []string{"Authorization", bearerAdmin}},
		{"channel", "/v1/channels", []string{"Authorization", bearerAdmin}},
		{"heartbeat bearer", "/v1/heartbeat", []string{"Authorization", "Bearer " + key}},
		{"heartbeat x-api-key", "/v1/heartbeat", []string{"X-API-Key", key}},
		{"heartbeat unknown key", "/v1/heartbeat", []string{"X-API-Key", "nope"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := snap(n.fsm)
			pending := n.api.PendingBeats()
			resp := rawPost(t, n.addr, tc.path, fourMiB, tc.headers...)
			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Errorf("status = %d, want 413", resp.StatusCode)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			body, _ := io.ReadAll(resp.Body)
			if !strings.Contains(string(body), `"error"`) {
				t.Errorf("body %q is not a JSON error", body)
			}
			if !reflect.DeepEqual(before, snap(n.fsm)) || n.api.PendingBeats() != pending {
				t.Errorf("state changed by a rejected body")
			}
		})
	}
}

// A body without a Content-Length (chunked) is cut off at the limit.
func TestLimits_ChunkedHugeBodyGets413(t *testing.T) {
	n := newNode(t, true, nil)
	_, key := n.register(t, "m1")
	big := `{"name":"` + strings.Repeat("a", 4<<20) + `"}`
	for _, tc := range []struct{ path, auth string }{
		{"/v1/machines", bearerAdmin},
		{"/v1/channels", bearerAdmin},
		{"/v1/heartbeat", "Bearer " + key},
	} {
		before := snap(n.fsm)
		req, _ := http.NewRequest("POST", n.srv.URL+tc.path, io.MultiReader(strings.NewReader(big)))
		req.Header.Set("Authorization", tc.auth)
		if req.ContentLength != 0 {
			t.Fatalf("want an unknown length, got %d", req.ContentLength)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("%s: status = %d, want 413", tc.path, resp.StatusCode)
		}
		if !reflect.DeepEqual(before, snap(n.fsm)) || n.api.PendingBeats() != 0 {
			t.Errorf("%s: state changed by a rejected body", tc.path)
		}
	}
}
