package webhook_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lunasentri/lunasentri/notify"
	"github.com/lunasentri/lunasentri/notify/webhook"
)

const testSecret = "test-secret-0123456789"

// received is one request as a receiver saw it.
type received struct {
	method, path string
	header       http.Header
	body         []byte
	verifyErr    error
}

// receiver starts a local webhook receiver that verifies every request with
// webhook.Verify and answers with respond (nil: 204).
func receiver(t *testing.T, respond func(w http.ResponseWriter, r *http.Request)) (*httptest.Server, chan received) {
	t.Helper()
	got := make(chan received, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- received{
			method:    r.Method,
			path:      r.URL.RequestURI(),
			header:    r.Header.Clone(),
			body:      body,
			verifyErr: webhook.Verify(testSecret, r.Header, body, time.Minute, time.Now()),
		}
		if respond == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		respond(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

func newNotifier(t *testing.T, opts webhook.Options) *webhook.Notifier {
	t.Helper()
	if opts.Secret == "" {
		opts.Secret = testSecret
	}
	n, err := webhook.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return n
}

func offlineEvent() notify.Event {
	seen := time.Date(2026, 11, 27, 8, 30, 0, 0, time.FixedZone("CET", 3600))
	return notify.Event{
		ID:         "evt-0001",
		Type:       notify.EventOffline,
		OccurredAt: time.Date(2026, 11, 27, 8, 32, 5, 0, time.UTC),
		Machine: notify.Machine{
			ID:          "m-1",
			Name:        "prod-api",
			Hostname:    "prod-01",
			Description: "Main API server",
			Status:      "offline",
			LastSeen:    &seen,
			Labels:      map[string]string{"env": "prod", "team": "core"},
		},
	}
}

func TestNotify_BodyAndHeaders(t *testing.T) {
	srv, got := receiver(t, nil)
	now := time.Unix(1795768325, 0)
	n := newNotifier(t, webhook.Options{URL: srv.URL + "/hooks/luna?x=1", Version: "1.2.3", Now: func() time.Time { return now }})

	// Now is fixed far from the receiver's clock, so verify the signature
	// against the injected time here; the receiver's own Verify is checked in
	// TestNotify_ReceiverVerifies.
	retryable, err := n.Notify(context.Background(), offlineEvent())
	if err != nil || retryable {
		t.Fatalf("Notify = %v, %v; want delivered", retryable, err)
	}
	r := <-got
	if r.method != http.MethodPost || r.path != "/hooks/luna?x=1" {
		t.Errorf("request %s %s", r.method, r.path)
	}
	wantBody := `{"event":"machine.offline","id":"evt-0001","occurred_at":"2026-11-27T08:32:05Z","reason":"silence",` +
		`"machine":{"id":"m-1","name":"prod-api","hostname":"prod-01","description":"Main API server",` +
		`"status":"offline","last_seen":"2026-11-27T07:30:00Z","labels":{"env":"prod","team":"core"}}}`
	if string(r.body) != wantBody {
		t.Errorf("body\n got %s\nwant %s", r.body, wantBody)
	}
	wantHeaders := map[string]string{
		"Content-Type":           "application/json",
		"User-Agent":             "LunaSentri-Webhook/1.2.3",
		"X-LunaSentri-Event":     "machine.offline",
		"X-LunaSentri-Delivery":  "evt-0001",
		"X-LunaSentri-Timestamp": "1795768325",
		"X-LunaSentri-Signature": webhook.Sign(testSecret, 1795768325, []byte(wantBody)),
	}
	for k, v := range wantHeaders {
		if g := r.header.Get(k); g != v {
			t.Errorf("header %s = %q, want %q", k, g, v)
		}
	}
	if err := webhook.Verify(testSecret, r.header, r.body, time.Minute, now.Add(30*time.Second)); err != nil {
		t.Errorf("Verify at injected time: %v", err)
	}
	if err := webhook.Verify("wrong-secret-0123456", r.header, r.body, time.Minute, now); !errors.Is(err, webhook.ErrSignatureMismatch) {
		t.Errorf("Verify with wrong secret = %v", err)
	}
}

func TestNotify_ReceiverVerifies(t *testing.T) {
	srv, got := receiver(t, nil)
	n := newNotifier(t, webhook.Options{URL: srv.URL})
	ev := offlineEvent()
	ev.Type, ev.Machine.Status = notify.EventOnline, "online"
	for range 2 {
		if _, err := n.Notify(context.Background(), ev); err != nil {
			t.Fatalf("Notify: %v", err)
		}
	}
	first, second := <-got, <-got
	for _, r := range []received{first, second} {
		if r.verifyErr != nil {
			t.Errorf("receiver rejected the signature: %v", r.verifyErr)
		}
		if r.header.Get("User-Agent") != "LunaSentri-Webhook/dev" {
			t.Errorf("User-Agent = %q", r.header.Get("User-Agent"))
		}
		if r.header.Get(webhook.HeaderEvent) != notify.EventOnline {
			t.Errorf("event header = %q", r.header.Get(webhook.HeaderEvent))
		}
	}
	// A retry is the same delivery: same ID, same body.
	if first.header.Get(webhook.HeaderDelivery) != second.header.Get(webhook.HeaderDelivery) ||
		string(first.body) != string(second.body) {
		t.Errorf("retry differs: %s vs %s", first.body, second.body)
	}
}

func TestNotify_NullLastSeenAndEmptyLabels(t *testing.T) {
	srv, got := receiver(t, nil)
	n := newNotifier(t, webhook.Options{URL: srv.URL})
	ev := offlineEvent()
	ev.Machine.LastSeen, ev.Machine.Labels = nil, nil
	if _, err := n.Notify(context.Background(), ev); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	body := string((<-got).body)
	for _, want := range []string{`"last_seen":null`, `"labels":{}`} {
		if !strings.Contains(body, want) {
			t.Errorf("body %s lacks %s", body, want)
		}
	}
}

func TestNotify_TestEvent(t *testing.T) {
	srv, got := receiver(t, nil)
	n := newNotifier(t, webhook.Options{URL: srv.URL})
	if _, err := n.Notify(context.Background(), notify.Event{Type: notify.EventTest, Machine: notify.Machine{Name: "probe"}}); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	r := <-got
	body := string(r.body)
	for _, want := range []string{`"event":"test"`, `"test":true`, `"name":"probe"`, `"labels":{}`, `"last_seen":null`} {
		if !strings.Contains(body, want) {
			t.Errorf("body %s lacks %s", body, want)
		}
	}
	if r.header.Get(webhook.HeaderEvent) != "test" {
		t.Errorf("event header = %q", r.header.Get(webhook.HeaderEvent))
	}
	if id := r.header.Get(webhook.HeaderDelivery); !strings.HasPrefix(id, "test-") || !strings.Contains(body, `"id":"`+id+`"`) {
		t.Errorf("delivery id %q, body %s", id, body)
	}
	if r.verifyErr != nil {
		t.Errorf("receiver rejected the signature: %v", r.verifyErr)
	}
}

func TestNotify_BadEventsArePermanent(t *testing.T) {
	srv, got := receiver(t, nil)
	n := newNotifier(t, webhook.Options{URL: srv.URL})
	tests := []struct {
		ev   notify.Event
		want error
	}{
		{notify.Event{Type: "machine.exploded", ID: "x"}, webhook.ErrUnknownEventType},
		{notify.Event{Type: notify.EventOffline}, webhook.ErrMissingEventID},
	}
	for _, tc := range tests {
		retryable, err := n.Notify(context.Background(), tc.ev)
		if retryable || !errors.Is(err, tc.want) {
			t.Errorf("Notify(%+v) = %v, %v; want permanent %v", tc.ev, retryable, err, tc.want)
		}
	}
	if len(got) != 0 {
		t.Errorf("receiver got %d requests for unusable events", len(got))
	}
}

func TestNotify_StatusClassification(t *testing.T) {
	tests := []struct {
		status    int
		delivered bool
		retryable bool
	}{
		{200, true, false},
		{201, true, false},
		{202, true, false},
		{204, true, false},
		{301, false, false},
		{302, false, false},
		{400, false, false},
		{401, false, false},
		{403, false, false},
		{404, false, false},
		{408, false, true},
		{410, false, false},
		{413, false, false},
		{422, false, false},
		{429, false, true},
		{500, false, true},
		{502, false, true},
		{503, false, true},
		{504, false, true},
	}
	for _, tc := range tests {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			srv, got := receiver(t, func(w http.ResponseWriter, r *http.Request) {
				if tc.status/100 == 3 {
					w.Header().Set("Location", "https://elsewhere.example/next?sig=leak")
				}
				w.WriteHeader(tc.status)
				fmt.Fprintf(w, "answer %d", tc.status)
			})
			n := newNotifier(t, webhook.Options{URL: srv.URL})
			retryable, err := n.Notify(context.Background(), offlineEvent())
			if tc.delivered {
				if err != nil || retryable {
					t.Fatalf("Notify = %v, %v; want delivered", retryable, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Notify delivered, want error")
			}
			if retryable != tc.retryable {
				t.Errorf("retryable = %v, want %v (err %v)", retryable, tc.retryable, err)
			}
			var se *webhook.StatusError
			if !errors.As(err, &se) || se.StatusCode != tc.status {
				t.Fatalf("error %v is not a StatusError for %d", err, tc.status)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("answer %d", tc.status)) {
				t.Errorf("error %q lacks the receiver's answer", err)
			}
			if _, ok := notify.RetryAfter(err); ok {
				t.Errorf("RetryAfter set without a Retry-After header: %v", err)
			}
			if tc.status/100 == 3 && (strings.Contains(err.Error(), "leak") || len(got) != 1) {
				t.Errorf("redirect: error %q, requests %d (want exactly one, not followed)", err, len(got))
			}
		})
	}
}

func TestNotify_RetryAfter(t *testing.T) {
	date := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	tests := []struct {
		status int
		header string
		want   time.Duration // 0: no RetryAfterError
		approx bool
	}{
		{429, "5", 5 * time.Second, false},
		{503, "120", 2 * time.Minute, false},
		{429, "86400", webhook.MaxRetryAfter, false},
		{429, date, 90 * time.Second, true},
		{429, "0", 0, false},
		{429, "-3", 0, false},
		{429, "soon", 0, false},
		{503, "", 0, false},
		{500, "5", 0, false}, // Retry-After is honoured on 429 and 503 only
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%d_%s", tc.status, tc.header), func(t *testing.T) {
			srv, _ := receiver(t, func(w http.ResponseWriter, r *http.Request) {
				if tc.header != "" {
					w.Header().Set("Retry-After", tc.header)
				}
				w.WriteHeader(tc.status)
			})
			n := newNotifier(t, webhook.Options{URL: srv.URL})
			retryable, err := n.Notify(context.Background(), offlineEvent())
			if !retryable || err == nil {
				t.Fatalf("Notify = %v, %v; want retryable error", retryable, err)
			}
			d, ok := notify.RetryAfter(err)
			if tc.want == 0 {
				if ok {
					t.Fatalf("RetryAfter = %s, want none", d)
				}
				return
			}
			if !ok {
				t.Fatalf("no RetryAfterError in %v", err)
			}
			if tc.approx {
				if d < tc.want-3*time.Second || d > tc.want {
					t.Errorf("RetryAfter = %s, want about %s", d, tc.want)
				}
			} else if d != tc.want {
				t.Errorf("RetryAfter = %s, want %s", d, tc.want)
			}
			var se *webhook.StatusError
			if !errors.As(err, &se) || se.StatusCode != tc.status {
				t.Errorf("RetryAfterError does not wrap the StatusError: %v", err)
			}
		})
	}
}

func TestNotify_NetworkErrorIsRetryable(t *testing.T) {
	// A port that was just open and is now closed: connection refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	n := newNotifier(t, webhook.Options{URL: "http://" + addr + "/hook"})
	retryable, err := n.Notify(context.Background(), offlineEvent())
	if !retryable || err == nil {
		t.Fatalf("Notify = %v, %v; want retryable error", retryable, err)
	}
	var ne net.Error
	if !errors.As(err, &ne) {
		t.Errorf("error %v does not expose the net.Error", err)
	}
}

// hangingServer accepts requests and never answers until the test ends.
func hangingServer(t *testing.T) *httptest.Server {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	return srv
}

func TestNotify_TimeoutIsRetryable(t *testing.T) {
	srv := hangingServer(t)
	n := newNotifier(t, webhook.Options{URL: srv.URL, Client: &http.Client{Timeout: 100 * time.Millisecond}})
	start := time.Now()
	retryable, err := n.Notify(context.Background(), offlineEvent())
	if !retryable || err == nil {
		t.Fatalf("Notify = %v, %v; want retryable error", retryable, err)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("Notify took %s with a 100ms client timeout", elapsed)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("error %v is not a timeout", err)
	}
}

func TestNotify_HonoursContext(t *testing.T) {
	srv := hangingServer(t)
	n := newNotifier(t, webhook.Options{URL: srv.URL})

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	retryable, err := n.Notify(ctx, offlineEvent())
	if !retryable || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Notify with deadline = %v, %v; want retryable DeadlineExceeded", retryable, err)
	}

	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	retryable, err = n.Notify(ctx, offlineEvent())
	if !retryable || !errors.Is(err, context.Canceled) {
		t.Errorf("Notify with cancelled ctx = %v, %v; want retryable Canceled", retryable, err)
	}
}

func TestNotify_ErrorsNeverCarryURLSecrets(t *testing.T) {
	const password, token = "hunter2-pa55word", "tok3n-value-42"
	secretURL := func(hostport string) string {
		return "http://alice:" + password + "@" + hostport + "/hook?token=" + token + "&plain=abc"
	}
	assertClean := func(t *testing.T, err error) {
		t.Helper()
		if err == nil {
			t.Fatal("want an error")
		}
		msg := err.Error()
		for _, s := range []string{password, token} {
			if strings.Contains(msg, s) {
				t.Errorf("error %q contains %q", msg, s)
			}
		}
	}

	t.Run("connection refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		_, err = newNotifier(t, webhook.Options{URL: secretURL(addr)}).Notify(context.Background(), offlineEvent())
		assertClean(t, err)
		if !strings.Contains(err.Error(), "alice:xxxxx@") || !strings.Contains(err.Error(), "token=xxxxx") {
			t.Errorf("error %q should show the redacted URL", err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		srv := hangingServer(t)
		n := newNotifier(t, webhook.Options{URL: secretURL(srv.Listener.Addr().String()), Client: &http.Client{Timeout: 50 * time.Millisecond}})
		_, err := n.Notify(context.Background(), offlineEvent())
		assertClean(t, err)
	})
	t.Run("receiver echoes its url", func(t *testing.T) {
		srv, got := receiver(t, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprintf(w, "bad request to %s token %s", r.URL.String(), r.URL.Query().Get("token"))
		})
		_, err := newNotifier(t, webhook.Options{URL: secretURL(srv.Listener.Addr().String())}).Notify(context.Background(), offlineEvent())
		assertClean(t, err)
		if r := <-got; r.header.Get("Authorization") == "" {
			t.Errorf("userinfo credentials were not sent as basic auth")
		}
	})
}

func TestNotify_ResponseBodyIsCapped(t *testing.T) {
	const size = 10 << 20
	srv, _ := receiver(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		w.WriteHeader(http.StatusBadGateway)
		chunk := []byte(strings.Repeat("x", 64<<10))
		for written := 0; written < size; written += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return // the client hung up after its 64 KiB, as it should
			}
		}
	})
	n := newNotifier(t, webhook.Options{URL: srv.URL})
	retryable, err := n.Notify(context.Background(), offlineEvent())
	if !retryable || err == nil {
		t.Fatalf("Notify = %v, %v; want retryable error", retryable, err)
	}
	var se *webhook.StatusError
	if !errors.As(err, &se) {
		t.Fatalf("error %v is not a StatusError", err)
	}
	if len(se.Body) > 256+len("…") || !strings.HasSuffix(se.Body, "…") {
		t.Errorf("StatusError.Body has %d bytes, want at most 256 and a truncation mark", len(se.Body))
	}
	if len(err.Error()) > 400 {
		t.Errorf("error text has %d bytes", len(err.Error()))
	}
}

func TestNotify_ErrorBodyIsOneLine(t *testing.T) {
	srv, _ := receiver(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, "<html>\n\t<body>bad\x00 \xff request</body>\r\n</html>")
	})
	_, err := newNotifier(t, webhook.Options{URL: srv.URL}).Notify(context.Background(), offlineEvent())
	want := "webhook: receiver answered 400 Bad Request: <html> <body>bad request</body> </html>"
	if err == nil || err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
}
