package pagerduty_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lunasentri/lunasentri/notify"
	"github.com/lunasentri/lunasentri/notify/pagerduty"
)

const key = "R0UT1NGKEY0123456789abcdefABCDEF"

// enqueue is a local stand-in for events.pagerduty.com/v2/enqueue that
// checks the documented request shape.
func enqueue(t *testing.T, status int) (*httptest.Server, chan map[string]any) {
	ch := make(chan map[string]any, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil || r.URL.Path != "/v2/enqueue" || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("bad request %s %s: %s", r.URL.Path, r.Header.Get("Content-Type"), raw)
		}
		ch <- m
		w.WriteHeader(status)
		if status == 202 {
			io.WriteString(w, `{"status":"success","message":"Event processed","dedup_key":"x"}`)
		} else {
			io.WriteString(w, `{"status":"invalid event","message":"Event object is invalid","errors":["routing_key `+key+` is wrong"]}`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, ch
}

var seen = time.Date(2026, 11, 27, 8, 30, 0, 0, time.UTC)

func ev(typ string) notify.Event {
	return notify.Event{ID: "evt-1", Type: typ, OccurredAt: seen.Add(2 * time.Minute), Reason: notify.ReasonReported, Message: "oom",
		Machine: notify.Machine{ID: "m-42", Name: "db-1", Hostname: "db-1.example", LastSeen: &seen, Labels: map[string]string{"env": "prod"}}}
}

func TestNotify_TriggerResolveSameDedupKey(t *testing.T) {
	srv, ch := enqueue(t, 202)
	n, err := pagerduty.New(pagerduty.Options{RoutingKey: key, URL: srv.URL + "/v2/enqueue", ClientURL: "http://node-1:8080/ui/"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Notify(context.Background(), ev(notify.EventOffline)); err != nil {
		t.Fatal(err)
	}
	trig := <-ch
	if _, err := n.Notify(context.Background(), ev(notify.EventOnline)); err != nil {
		t.Fatal(err)
	}
	res := <-ch
	if trig["routing_key"] != key || trig["event_action"] != "trigger" || trig["dedup_key"] != "lunasentri/machine/m-42" ||
		trig["client"] != "LunaSentri" || trig["client_url"] != "http://node-1:8080/ui/" {
		t.Errorf("trigger %v", trig)
	}
	p := trig["payload"].(map[string]any)
	if p["summary"] != "db-1 is offline — reported: oom" || p["source"] != "db-1.example" || p["severity"] != "critical" ||
		p["timestamp"] != "2026-11-27T08:32:00Z" || p["component"] != "db-1" || p["class"] != "heartbeat" {
		t.Errorf("payload %v", p)
	}
	cd := p["custom_details"].(map[string]any)
	if cd["reason"] != "reported" || cd["message"] != "oom" || cd["event_id"] != "evt-1" || cd["machine"] != "db-1" ||
		cd["labels"].(map[string]any)["env"] != "prod" || cd["last_seen"] != "2026-11-27 08:30:00 UTC" {
		t.Errorf("custom_details %v", cd)
	}
	if res["event_action"] != "resolve" || res["dedup_key"] != trig["dedup_key"] || res["routing_key"] != key {
		t.Errorf("resolve %v", res)
	}
	if _, ok := res["payload"]; ok {
		t.Errorf("resolve carries a payload: %v", res)
	}
}

func TestNotify_SeverityFlappingReminderTest(t *testing.T) {
	srv, ch := enqueue(t, 202)
	n, _ := pagerduty.New(pagerduty.Options{RoutingKey: key, URL: srv.URL + "/v2/enqueue", Severity: "error"})
	rem := ev(notify.EventOffline)
	rem.Reminder = 2
	n.Notify(context.Background(), rem)
	if g := <-ch; g["payload"].(map[string]any)["severity"] != "error" || g["payload"].(map[string]any)["custom_details"].(map[string]any)["reminder"] != 2.0 {
		t.Errorf("reminder %v", g)
	}
	n.Notify(context.Background(), ev(notify.EventFlapping))
	if g := <-ch; g["event_action"] != "trigger" || g["payload"].(map[string]any)["severity"] != "warning" || g["dedup_key"] != "lunasentri/machine/m-42" {
		t.Errorf("flapping %v", g)
	}
	if _, err := n.Notify(context.Background(), notify.Event{ID: "test-1", Type: notify.EventTest}); err != nil {
		t.Fatal(err)
	}
	tr, rs := <-ch, <-ch
	if tr["event_action"] != "trigger" || rs["event_action"] != "resolve" || tr["dedup_key"] != rs["dedup_key"] || tr["dedup_key"] == "lunasentri/machine/m-42" {
		t.Errorf("test: %v then %v", tr, rs)
	}
}

func TestNotifyDigest_EventsInOrder(t *testing.T) {
	srv, ch := enqueue(t, 202)
	n, _ := pagerduty.New(pagerduty.Options{RoutingKey: key, URL: srv.URL + "/v2/enqueue"})
	d := notify.Digest{ID: "d", Events: []notify.Event{ev(notify.EventOffline), ev(notify.EventOnline)}}
	if _, err := n.NotifyDigest(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	if a, b := <-ch, <-ch; a["event_action"] != "trigger" || b["event_action"] != "resolve" {
		t.Errorf("%v then %v", a["event_action"], b["event_action"])
	}
}

func TestNotify_ErrorsClassifiedAndKeyHidden(t *testing.T) {
	for _, tc := range []struct {
		status    int
		retryable bool
	}{{400, false}, {429, true}, {500, true}, {503, true}} {
		srv, _ := enqueue(t, tc.status)
		n, _ := pagerduty.New(pagerduty.Options{RoutingKey: key, URL: srv.URL + "/v2/enqueue"})
		retryable, err := n.Notify(context.Background(), ev(notify.EventOffline))
		if err == nil || retryable != tc.retryable {
			t.Errorf("%d: %v %v", tc.status, retryable, err)
			continue
		}
		if strings.Contains(err.Error(), key) {
			t.Errorf("%d: error shows the routing key: %v", tc.status, err)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct{ key, url, sev, want string }{
		{"", "", "", "routing_key is required"},
		{"short", "", "", "20 to 64"},
		{key + " ", "", "", "without spaces"},
		{strings.Repeat("é", 20), "", "", "letters, digits"},
		{key, "ftp://x", "", "scheme"},
		{key, "", "fatal", "severity must be one of"},
	} {
		err := pagerduty.Validate(tc.key, tc.url, tc.sev)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, pagerduty.ErrInvalidConfig) {
			t.Errorf("Validate(%q,%q,%q) = %v, want %q", tc.key, tc.url, tc.sev, err, tc.want)
		}
		if err != nil && tc.key != "" && strings.Contains(err.Error(), tc.key) {
			t.Errorf("error repeats the key: %v", err)
		}
	}
}
