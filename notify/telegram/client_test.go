package telegram_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/lunasentri/lunasentri/notify"
	"github.com/lunasentri/lunasentri/notify/telegram"
)

const (
	testToken  = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
	tokenHalf  = "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
	testChatID = "-1001234567890"
)

// botRequest is one sendMessage call as the stand-in saw it.
type botRequest struct {
	path, method, contentType string
	fields                    map[string]any
	at                        time.Time
}

// botAPI is a local stand-in for the Telegram Bot API.
type botAPI struct {
	srv     *httptest.Server
	mu      sync.Mutex
	reqs    []botRequest
	respond func(w http.ResponseWriter, r *http.Request) // nil: {"ok":true}
}

func newBotAPI(t *testing.T, respond func(w http.ResponseWriter, r *http.Request)) *botAPI {
	t.Helper()
	b := &botAPI{respond: respond}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at := time.Now()
		raw, _ := io.ReadAll(r.Body)
		var fields map[string]any
		_ = json.Unmarshal(raw, &fields)
		b.mu.Lock()
		b.reqs = append(b.reqs, botRequest{path: r.URL.Path, method: r.Method, contentType: r.Header.Get("Content-Type"), fields: fields, at: at})
		b.mu.Unlock()
		if b.respond != nil {
			b.respond(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true,"result":{"message_id":1}}`)
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *botAPI) requests() []botRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]botRequest(nil), b.reqs...)
}

func answer(status int, body string) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

func newClient(t *testing.T, opts telegram.Options) *telegram.Client {
	t.Helper()
	c, err := telegram.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func offlineEvent() notify.Event {
	seen := time.Date(2026, 11, 27, 8, 30, 0, 0, time.UTC)
	return notify.Event{
		ID: "evt-1", Type: notify.EventOffline, OccurredAt: seen.Add(2 * time.Minute),
		Machine: notify.Machine{
			Name: "db_1.prod (eu-west)", Hostname: "db-1.example.com", Description: "primary *main* DB!",
			Status: "offline", LastSeen: &seen,
		},
	}
}

func TestNotify_RequestShape(t *testing.T) {
	api := newBotAPI(t, nil)
	c := newClient(t, telegram.Options{Token: testToken, APIURL: api.srv.URL + "/"})
	retryable, err := c.Chat(testChatID).Notify(context.Background(), offlineEvent())
	if err != nil || retryable {
		t.Fatalf("Notify = %v, %v; want delivered", retryable, err)
	}
	reqs := api.requests()
	if len(reqs) != 1 {
		t.Fatalf("stand-in got %d requests", len(reqs))
	}
	r := reqs[0]
	if r.method != http.MethodPost || r.path != "/bot"+testToken+"/sendMessage" {
		t.Errorf("request %s %s", r.method, r.path)
	}
	if !strings.HasPrefix(r.contentType, "application/json") {
		t.Errorf("Content-Type %q", r.contentType)
	}
	want := map[string]any{
		"chat_id":    testChatID,
		"parse_mode": "MarkdownV2",
		"text": "🔴 *db\\_1\\.prod \\(eu\\-west\\) is offline*\n\n" +
			"*Hostname:* db\\-1\\.example\\.com\n" +
			"*Last seen:* 2026\\-11\\-27 08:30:00 UTC\n" +
			"*Description:* primary \\*main\\* DB\\!",
	}
	if len(r.fields) != len(want) {
		t.Errorf("fields %v, want exactly %v", r.fields, want)
	}
	for k, v := range want {
		if r.fields[k] != v {
			t.Errorf("%s = %#v, want %#v", k, r.fields[k], v)
		}
	}
}

func TestNotify_OnlineAndTestMessages(t *testing.T) {
	api := newBotAPI(t, nil)
	c := newClient(t, telegram.Options{Token: testToken, APIURL: api.srv.URL, PerChatInterval: -1, GlobalRate: -1})
	ev := offlineEvent()
	ev.Type, ev.DownFor = notify.EventOnline, 3*time.Minute+12*time.Second
	if _, err := c.Chat(testChatID).Notify(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Chat("@luna_alerts").Notify(context.Background(), notify.Event{Type: notify.EventTest}); err != nil {
		t.Fatal(err)
	}
	reqs := api.requests()
	online, test := reqs[0].fields["text"].(string), reqs[1].fields["text"].(string)
	if !strings.HasPrefix(online, "🟢 *db\\_1\\.prod \\(eu\\-west\\) is back online*") || !strings.Contains(online, "*Down for:* 3m12s") {
		t.Errorf("online text %q", online)
	}
	if !strings.HasPrefix(test, "🧪 *LunaSentri test message*") || reqs[1].fields["chat_id"] != "@luna_alerts" {
		t.Errorf("test message %v", reqs[1].fields)
	}
}

func TestNotify_Classification(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		body      string
		retryable bool
		mention   string
	}{
		{"400 chat not found", 400, `{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}`, false, "Bad Request: chat not found"},
		{"400 bad markup", 400, `{"ok":false,"error_code":400,"description":"Bad Request: can't parse entities"}`, false, "can't parse entities"},
		{"400 migrated", 400, `{"ok":false,"error_code":400,"description":"Bad Request: group chat was upgraded to a supergroup chat","parameters":{"migrate_to_chat_id":-1009876543210}}`, false, "-1009876543210"},
		{"401", 401, `{"ok":false,"error_code":401,"description":"Unauthorized"}`, false, "Unauthorized"},
		{"403", 403, `{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}`, false, "bot was blocked"},
		{"404", 404, `{"ok":false,"error_code":404,"description":"Not Found"}`, false, "Not Found"},
		{"408", 408, `{"ok":false,"error_code":408,"description":"Request Timeout"}`, true, "Request Timeout"},
		{"429 without retry_after", 429, `{"ok":false,"error_code":429,"description":"Too Many Requests"}`, true, "Too Many Requests"},
		{"500", 500, `{"ok":false,"error_code":500,"description":"Internal Server Error"}`, true, "Internal Server Error"},
		{"502 from a proxy", 502, "<html>\n<body>Bad Gateway</body>\n</html>", true, "<html> <body>Bad Gateway</body> </html>"},
		{"200 ok false", 200, `{"ok":false,"error_code":400,"description":"Bad Request: message text is empty"}`, false, "message text is empty"},
		{"200 not json", 200, `<html>captive portal</html>`, true, "captive portal"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			api := newBotAPI(t, answer(tc.status, tc.body))
			c := newClient(t, telegram.Options{Token: testToken, APIURL: api.srv.URL})
			retryable, err := c.Chat(testChatID).Notify(context.Background(), offlineEvent())
			if err == nil {
				t.Fatal("delivered, want error")
			}
			if retryable != tc.retryable {
				t.Errorf("retryable = %v, want %v (%v)", retryable, tc.retryable, err)
			}
			var apiErr *telegram.APIError
			if !errors.As(err, &apiErr) || apiErr.StatusCode != tc.status {
				t.Errorf("error %v is not an APIError with status %d", err, tc.status)
			}
			if !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("error %q does not mention %q", err, tc.mention)
			}
			if _, ok := notify.RetryAfter(err); ok {
				t.Errorf("unexpected RetryAfter in %v", err)
			}
		})
	}
}

// fakeClock is an injectable clock the test moves by hand. Not
// testing/synctest (issue 13): these tests talk to an httptest server over
// real sockets, which a bubble cannot hold; ratelimit_test.go uses a bubble
// with an in-bubble API stand-in.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t = f.t.Add(d)
}

func TestNotify_429RetryAfter(t *testing.T) {
	// The first request is refused with a 429; later ones succeed.
	var mu sync.Mutex
	refused := false
	api := newBotAPI(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if !refused {
			refused = true
			answer(429, `{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}`)(w, r)
			return
		}
		answer(200, `{"ok":true}`)(w, r)
	})
	clock := &fakeClock{t: time.Date(2026, 11, 27, 8, 30, 0, 0, time.UTC)}
	var logs bytes.Buffer
	logger := hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Trace})
	c := newClient(t, telegram.Options{Token: testToken, APIURL: api.srv.URL, Now: clock.Now, GlobalRate: -1, Logger: logger})
	ch := c.Chat(testChatID)

	retryable, err := ch.Notify(context.Background(), offlineEvent())
	if !retryable || err == nil {
		t.Fatalf("Notify = %v, %v; want retryable error", retryable, err)
	}
	if d, ok := notify.RetryAfter(err); !ok || d != 7*time.Second {
		t.Fatalf("RetryAfter = %s, %v; want 7s", d, ok)
	}
	var apiErr *telegram.APIError
	if !errors.As(err, &apiErr) || apiErr.RetryAfter != 7*time.Second || !strings.Contains(err.Error(), "Too Many Requests") {
		t.Errorf("error %v", err)
	}

	// Within the back-off the chat is not bothered: no request is made.
	clock.Advance(3 * time.Second)
	retryable, err = ch.Notify(context.Background(), offlineEvent())
	if d, ok := notify.RetryAfter(err); !retryable || !ok || d != 4*time.Second || !errors.Is(err, telegram.ErrChatBackingOff) {
		t.Fatalf("Notify during back-off = %v, %v (after %s)", retryable, err, d)
	}
	if n := len(api.requests()); n != 1 {
		t.Fatalf("stand-in got %d requests during back-off, want 1", n)
	}
	// Other chats are not held back.
	if _, err := c.Chat("42").Notify(context.Background(), offlineEvent()); err != nil {
		t.Fatalf("other chat: %v", err)
	}
	// Once the wait is over, the chat gets its message.
	clock.Advance(4 * time.Second)
	if retryable, err := ch.Notify(context.Background(), offlineEvent()); err != nil {
		t.Fatalf("Notify after back-off = %v, %v", retryable, err)
	}
	if !strings.Contains(logs.String(), "retry_after=7s") {
		t.Errorf("the 429 was not logged: %q", logs.String())
	}
}

func TestNotify_MissingToken(t *testing.T) {
	api := newBotAPI(t, nil)
	c := newClient(t, telegram.Options{APIURL: api.srv.URL})
	retryable, err := c.Chat(testChatID).Notify(context.Background(), offlineEvent())
	if retryable || !errors.Is(err, telegram.ErrTokenNotConfigured) || err.Error() != "telegram bot token not configured" {
		t.Errorf("Notify = %v, %v; want permanent ErrTokenNotConfigured", retryable, err)
	}
	if n := len(api.requests()); n != 0 {
		t.Errorf("stand-in got %d requests without a token", n)
	}
}

func TestNotify_PermanentInputErrors(t *testing.T) {
	api := newBotAPI(t, nil)
	c := newClient(t, telegram.Options{Token: testToken, APIURL: api.srv.URL})
	if retryable, err := c.Chat("not a chat").Notify(context.Background(), offlineEvent()); retryable || !errors.Is(err, telegram.ErrInvalidChatID) {
		t.Errorf("bad chat id: %v, %v", retryable, err)
	}
	if retryable, err := c.Chat(testChatID).Notify(context.Background(), notify.Event{Type: "machine.exploded"}); retryable || !errors.Is(err, telegram.ErrUnknownEventType) {
		t.Errorf("bad event type: %v, %v", retryable, err)
	}
	if n := len(api.requests()); n != 0 {
		t.Errorf("stand-in got %d requests", n)
	}
}

func TestNew_InvalidAPIURL(t *testing.T) {
	for _, u := range []string{"ftp://api.example", "api.telegram.org", "http://", "://x"} {
		if _, err := telegram.New(telegram.Options{Token: testToken, APIURL: u}); !errors.Is(err, telegram.ErrInvalidAPIURL) {
			t.Errorf("New(APIURL %q) = %v, want ErrInvalidAPIURL", u, err)
		}
	}
}

func TestValidateChatID_Table(t *testing.T) {
	tests := []struct {
		id string
		ok bool
	}{
		{"-1001234567890", true},
		{"123456789", true},
		{"-42", true},
		{"@luna_alerts", true},
		{"@Abcd", true},
		{"", false},
		{"0", false},
		{"-", false},
		{"+123", false},
		{"12a", false},
		{" 123", false},
		{"99999999999999999999", false},
		{"@", false},
		{"@abc", false},
		{"@1channel", false},
		{"@_channel", false},
		{"@chan-nel", false},
		{"@" + strings.Repeat("a", 33), false},
		{"luna_alerts", false},
	}
	for _, tc := range tests {
		err := telegram.ValidateChatID(tc.id)
		if tc.ok != (err == nil) {
			t.Errorf("ValidateChatID(%q) = %v, want ok=%v", tc.id, err, tc.ok)
		}
		if err != nil && !errors.Is(err, telegram.ErrInvalidChatID) {
			t.Errorf("ValidateChatID(%q) = %v, not ErrInvalidChatID", tc.id, err)
		}
	}
}

func TestNotify_TokenNeverInErrorsOrLogs(t *testing.T) {
	echo := func(status int) func(w http.ResponseWriter, r *http.Request) {
		// A hostile or broken server that repeats the URL and token back.
		return func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"ok":false,"error_code":%d,"description":"no such bot %s at %s","parameters":{"retry_after":1}}`, status, testToken, r.URL.Path)
		}
	}
	closedURL := func(t *testing.T) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		return "http://" + addr
	}
	hanging := func(t *testing.T) string {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		t.Cleanup(func() { close(release); srv.Close() })
		return srv.URL
	}
	tests := []struct {
		name string
		url  func(t *testing.T) string
		opts telegram.Options
		ctx  func() (context.Context, context.CancelFunc)
	}{
		{name: "connection refused", url: closedURL},
		{name: "client timeout", url: hanging, opts: telegram.Options{HTTPClient: &http.Client{Timeout: 50 * time.Millisecond}}},
		{name: "context deadline", url: hanging, ctx: func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 50*time.Millisecond)
		}},
		{name: "401 echoing token", url: func(t *testing.T) string { return newBotAPI(t, echo(401)).srv.URL }},
		{name: "429 echoing token", url: func(t *testing.T) string { return newBotAPI(t, echo(429)).srv.URL }},
		{name: "502 plain text echoing token", url: func(t *testing.T) string {
			return newBotAPI(t, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(502)
				fmt.Fprintf(w, "upstream failed for %s", r.URL.String())
			}).srv.URL
		}},
		{name: "token breaks the url", url: func(t *testing.T) string { return newBotAPI(t, nil).srv.URL },
			opts: telegram.Options{Token: testToken + "%zz bad"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			opts := tc.opts
			if opts.Token == "" {
				opts.Token = testToken
			}
			opts.APIURL = tc.url(t)
			opts.Logger = hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Trace})
			c := newClient(t, opts)
			ctx, cancel := context.Background(), context.CancelFunc(func() {})
			if tc.ctx != nil {
				ctx, cancel = tc.ctx()
			}
			defer cancel()
			_, err := c.Chat(testChatID).Notify(ctx, offlineEvent())
			if err == nil {
				t.Fatal("want an error")
			}
			for _, secret := range []string{testToken, tokenHalf} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q contains the token", err)
				}
				if strings.Contains(logs.String(), secret) {
					t.Errorf("logs %q contain the token", logs.String())
				}
			}
			t.Logf("error: %v", err)
		})
	}
}
