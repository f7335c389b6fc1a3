package ntfy_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lunasentri/lunasentri/notify"
	"github.com/lunasentri/lunasentri/notify/ntfy"
)

type push struct {
	path, title, priority, tags, auth, ctype, body string
}

func server(t *testing.T, status int) (*httptest.Server, chan push) {
	ch := make(chan push, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		title, err := new(mime.WordDecoder).DecodeHeader(r.Header.Get("Title"))
		if err != nil {
			t.Errorf("title header %q: %v", r.Header.Get("Title"), err)
		}
		ch <- push{r.URL.Path, title, r.Header.Get("Priority"), r.Header.Get("Tags"), r.Header.Get("Authorization"), r.Header.Get("Content-Type"), string(raw)}
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"code":%d,"http":%d,"error":"nope"}`, status*100, status)
	}))
	t.Cleanup(srv.Close)
	return srv, ch
}

var seen = time.Date(2026, 11, 27, 8, 30, 0, 0, time.UTC)

func ev(typ string) notify.Event {
	return notify.Event{ID: "e", Type: typ, OccurredAt: seen.Add(time.Minute), DownFor: 90 * time.Second,
		Machine: notify.Machine{Name: "db-1 ☃", Hostname: "db-1.example", LastSeen: &seen}}
}

func TestNotify_HeadersAndBody(t *testing.T) {
	srv, ch := server(t, 200)
	n, err := ntfy.New(ntfy.Options{URL: srv.URL + "/", Topic: "luna_alerts-1", Token: "tk_secrettoken123"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		typ, title, priority, tags, body string
	}{
		{notify.EventOffline, "db-1 ☃ is offline", "4", "red_circle,lunasentri", "Hostname: db-1.example\nLast seen: 2026-11-27 08:30:00 UTC\nReason: no heartbeat within the threshold"},
		{notify.EventOnline, "db-1 ☃ is back online", "3", "green_circle,lunasentri", "Hostname: db-1.example\nLast seen: 2026-11-27 08:30:00 UTC\nDown for: 1m30s"},
		{notify.EventFlapping, "db-1 ☃ is flapping", "3", "warning,lunasentri", ""},
		{notify.EventTest, "LunaSentri test message", "2", "test_tube,lunasentri", ""},
	} {
		if _, err := n.Notify(context.Background(), ev(tc.typ)); err != nil {
			t.Fatal(err)
		}
		p := <-ch
		t.Logf("%s: Title=%q Priority=%s Tags=%s\n%s", tc.typ, p.title, p.priority, p.tags, p.body)
		if p.path != "/luna_alerts-1" || p.auth != "Bearer tk_secrettoken123" || !strings.HasPrefix(p.ctype, "text/plain") {
			t.Errorf("request %+v", p)
		}
		if p.title != tc.title || p.priority != tc.priority || p.tags != tc.tags || (tc.body != "" && p.body != tc.body) {
			t.Errorf("%s: got %+v", tc.typ, p)
		}
	}
}

func TestNotifyDigest_OnePush(t *testing.T) {
	srv, ch := server(t, 200)
	n, _ := ntfy.New(ntfy.Options{URL: srv.URL, Topic: "t"})
	d := notify.Digest{ID: "d"}
	for i := range 23 {
		e := ev(notify.EventOffline)
		e.Machine.Name = fmt.Sprintf("m%d", i)
		d.Events = append(d.Events, e)
	}
	if _, err := n.NotifyDigest(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	p := <-ch
	if p.title != "LunaSentri digest: 23 offline, 0 online" || p.priority != "4" || p.auth != "" ||
		!strings.Contains(p.body, "offline: m19") || strings.Contains(p.body, "m20") || !strings.Contains(p.body, "… and 3 more") {
		t.Errorf("digest push %+v", p)
	}
}

func TestNotify_ErrorsHideToken(t *testing.T) {
	for _, tc := range []struct {
		status    int
		retryable bool
	}{{401, false}, {403, false}, {429, true}, {500, true}} {
		srv, _ := server(t, tc.status)
		n, _ := ntfy.New(ntfy.Options{URL: srv.URL, Topic: "t", Token: "tk_secrettoken123"})
		retryable, err := n.Notify(context.Background(), ev(notify.EventOffline))
		if err == nil || retryable != tc.retryable || strings.Contains(err.Error(), "tk_secrettoken123") {
			t.Errorf("%d: %v %v", tc.status, retryable, err)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct{ url, topic, token, want string }{
		{"", "t", "", "url is required"},
		{"http://ntfy", "", "", "topic is required"},
		{"http://ntfy", "a/b", "", "topic must be"},
		{"http://ntfy", strings.Repeat("a", 65), "", "topic must be"},
		{"http://ntfy", "t", "has space", "token must be"},
	} {
		if err := ntfy.Validate(tc.url, tc.topic, tc.token); err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ntfy.ErrInvalidConfig) {
			t.Errorf("Validate(%q,%q) = %v, want %q", tc.url, tc.topic, err, tc.want)
		}
	}
}
