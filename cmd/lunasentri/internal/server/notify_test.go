package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lunasentri/lunasentri/notify/webhook"
)

// Issue 4 in-process: every transition reaches each matching channel once,
// with valid signatures and a stable delivery id, and every outcome is
// recorded in GET /v1/events. Channels are managed through a follower.

const (
	tgToken   = "123456:TEST-token-abcdefgh"
	tgChat    = "-1001234567890"
	secretAll = "all-secret-0123456789"
)

// hookReq is one request a hookReceiver saw.
type hookReq struct {
	DeliveryID, Event, Machine string
	SigValid                   bool
	Problem                    string // "" when body and headers are as docs/api.md says
	Status                     int    // our answer; 0 while held
}

// hookReceiver is a webhook receiver on loopback that checks signatures and
// the documented body and headers, records every request and can be told
// to fail, hang or reject.
type hookReceiver struct {
	secret string
	srv    *httptest.Server

	mu       sync.Mutex
	reqs     []*hookReq
	failNext int           // answer 500 to this many more requests
	hang     bool          // hold requests until release
	released chan struct{} // closed by release
	reject   bool          // answer 400
}

func newHookReceiver(t *testing.T, secret string) *hookReceiver {
	h := &hookReceiver{secret: secret, released: make(chan struct{})}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(func() { h.release(); h.srv.Close() })
	return h
}

func (h *hookReceiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rq := &hookReq{DeliveryID: r.Header.Get(webhook.HeaderDelivery)}
	rq.SigValid = webhook.Verify(h.secret, r.Header, body, 0, time.Now()) == nil
	rq.Event, rq.Machine, rq.Problem = checkHook(r, body)
	h.mu.Lock()
	h.reqs = append(h.reqs, rq)
	status := http.StatusOK
	switch {
	case h.reject:
		status = http.StatusBadRequest
	case h.failNext > 0:
		h.failNext--
		status = http.StatusInternalServerError
	case h.hang:
		status = http.StatusServiceUnavailable // once released
	}
	hang, released := h.hang, h.released
	h.mu.Unlock()
	if hang {
		<-released
	}
	h.set(func(*hookReceiver) { rq.Status = status })
	w.WriteHeader(status)
	if status == http.StatusBadRequest {
		fmt.Fprint(w, `{"error":"payload rejected by receiver"}`)
	}
}

// checkHook checks a delivery against docs/api.md and returns its event type,
// machine name and the first problem found.
func checkHook(r *http.Request, body []byte) (event, machine, problem string) {
	var p struct {
		Event      string                     `json:"event"`
		ID         string                     `json:"id"`
		OccurredAt string                     `json:"occurred_at"`
		Machine    map[string]json.RawMessage `json:"machine"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return "", "", "body: " + err.Error()
	}
	var name string
	_ = json.Unmarshal(p.Machine["name"], &name)
	var problems []string
	if p.Event != "machine.offline" && p.Event != "machine.online" && p.Event != "test" {
		problems = append(problems, "event "+p.Event)
	}
	if _, err := time.Parse(time.RFC3339, p.OccurredAt); err != nil {
		problems = append(problems, "occurred_at "+p.OccurredAt)
	}
	for _, k := range []string{"id", "name", "hostname", "description", "status", "last_seen", "labels"} {
		if _, ok := p.Machine[k]; !ok {
			problems = append(problems, "machine."+k+" missing")
		}
	}
	want := map[string]string{
		"Content-Type": "application/json", webhook.HeaderEvent: p.Event, webhook.HeaderDelivery: p.ID,
	}
	for k, v := range want {
		if got := r.Header.Get(k); got != v || v == "" {
			problems = append(problems, fmt.Sprintf("header %s=%q, want %q", k, got, v))
		}
	}
	if !strings.HasPrefix(r.Header.Get("User-Agent"), "LunaSentri-Webhook/") {
		problems = append(problems, "user agent "+r.Header.Get("User-Agent"))
	}
	return p.Event, name, strings.Join(problems, "; ")
}

func (h *hookReceiver) url() string { return h.srv.URL + "/hook" }

func (h *hookReceiver) set(f func(h *hookReceiver)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f(h)
}

func (h *hookReceiver) release() {
	h.set(func(h *hookReceiver) {
		h.hang = false
		select {
		case <-h.released:
		default:
			close(h.released)
		}
	})
}

func (h *hookReceiver) requests() []hookReq {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]hookReq, len(h.reqs))
	for i, r := range h.reqs {
		out[i] = *r
	}
	return out
}

// accepted counts 2xx answers per delivery id, test messages excluded.
func (h *hookReceiver) accepted() map[string]int {
	n := map[string]int{}
	for _, r := range h.requests() {
		if r.Status/100 == 2 && r.Event != "test" {
			n[r.DeliveryID]++
		}
	}
	return n
}

// tgMsg is one sendMessage call the Telegram stand-in saw.
type tgMsg struct {
	ChatID    string    `json:"chat_id"`
	Text      string    `json:"text"`
	ParseMode string    `json:"parse_mode"`
	Status    int       `json:"-"`
	At        time.Time `json:"-"` // when the stand-in got it
}

// tgRetryAfter is the parameters.retry_after the stand-in's 429 asks for.
const tgRetryAfter = time.Second

// tgStandin serves POST /bot<TOKEN>/sendMessage like the Bot API and can
// answer 429 with parameters.retry_after.
type tgStandin struct {
	srv       *httptest.Server
	mu        sync.Mutex
	msgs      []tgMsg
	limitNext int // answer 429 to this many more messages
}

func newTgStandin(t *testing.T) *tgStandin {
	s := &tgStandin{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method != http.MethodPost || r.URL.Path != "/bot"+tgToken+"/sendMessage" {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"ok":false,"error_code":404,"description":"Not Found"}`)
			return
		}
		msg := tgMsg{Status: http.StatusOK, At: time.Now()}
		_ = json.NewDecoder(r.Body).Decode(&msg)
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.limitNext > 0 {
			s.limitNext--
			msg.Status = http.StatusTooManyRequests
		}
		s.msgs = append(s.msgs, msg)
		w.WriteHeader(msg.Status)
		if msg.Status == http.StatusTooManyRequests {
			secs := int(tgRetryAfter / time.Second)
			fmt.Fprintf(w, `{"ok":false,"error_code":429,"description":"Too Many Requests: retry after %d","parameters":{"retry_after":%d}}`, secs, secs)
			return
		}
		fmt.Fprintf(w, `{"ok":true,"result":{"message_id":%d}}`, len(s.msgs))
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *tgStandin) messages() []tgMsg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]tgMsg(nil), s.msgs...)
}

type notifDelivery struct {
	Channel   string `json:"channel"`
	State     string `json:"state"`
	Attempts  int    `json:"attempts"`
	LastError string `json:"last_error"`
}

type notifEvent struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	Machine    machineJSON     `json:"machine"`
	Deliveries []notifDelivery `json:"deliveries"`
}

func (ev notifEvent) delivery(channel string) (notifDelivery, bool) {
	for _, d := range ev.Deliveries {
		if d.Channel == channel {
			return d, true
		}
	}
	return notifDelivery{}, false
}

// settledEvents waits until node i holds n events and none of them has a
// pending delivery, and returns them (newest first).
func (tc *testCluster) settledEvents(i, n int, timeout time.Duration) []notifEvent {
	tc.t.Helper()
	var evs []notifEvent
	waitFor(tc.t, timeout, fmt.Sprintf("%d events with every delivery finished", n), func() bool {
		var out struct {
			Events []notifEvent `json:"events"`
		}
		getJSON(tc.t, tc.url(i)+"/v1/events?limit=1000", &out)
		evs = out.Events
		if len(evs) != n {
			return false
		}
		for _, ev := range evs {
			for _, d := range ev.Deliveries {
				if d.State == "pending" {
					return false
				}
			}
		}
		return true
	})
	return evs
}

func (tc *testCluster) addChannel(i int, ch map[string]any) {
	tc.t.Helper()
	if code := call(tc.t, "POST", tc.url(i)+"/v1/channels", testToken, ch, nil); code != http.StatusCreated {
		tc.t.Fatalf("create channel %v via node%d: %d", ch["name"], i+1, code)
	}
}

func withTelegram(tg *tgStandin) func(int, *Options) {
	return func(_ int, o *Options) { o.TelegramBotToken, o.TelegramAPIURL = tgToken, tg.srv.URL }
}

func TestChannels_CreateThroughFollowerValidatesAndNeverShowsSecrets(t *testing.T) {
	hook, tg := newHookReceiver(t, secretAll), newTgStandin(t)
	tc := newTestCluster(t, 3, withTelegram(tg))
	tc.leader()
	f := tc.follower()
	const secretProd = "prod-secret-0123456789"
	good := []map[string]any{
		{"type": "webhook", "name": "hook-prod", "url": hook.url(), "secret": secretProd, "match": map[string]string{"env": "prod"}},
		{"type": "webhook", "name": "hook-all", "url": hook.url(), "secret": secretAll},
		{"type": "telegram", "name": "tg-prod", "chat_id": tgChat, "match": map[string]string{"env": "prod"}},
	}
	for _, ch := range good {
		var raw json.RawMessage
		if code := call(t, "POST", tc.url(f)+"/v1/channels", testToken, ch, &raw); code != http.StatusCreated {
			t.Fatalf("create %v: %d %s", ch["name"], code, raw)
		}
		if bytes.Contains(raw, []byte(secretProd)) || bytes.Contains(raw, []byte(secretAll)) {
			t.Fatalf("create answer echoes the secret: %s", raw)
		}
	}
	bad := []struct {
		body map[string]any
		want int
	}{
		{map[string]any{"type": "webhook", "name": "bad-nourl", "secret": secretAll}, 400},
		{map[string]any{"type": "webhook", "name": "bad-ftp", "url": "ftp://127.0.0.1/x", "secret": secretAll}, 400},
		{map[string]any{"type": "webhook", "name": "bad-secret", "url": hook.url(), "secret": "8charsxx"}, 400},
		{map[string]any{"type": "sms", "name": "bad-type", "url": hook.url(), "secret": secretAll}, 400},
		{map[string]any{"type": "webhook", "name": "hook-all", "url": hook.url(), "secret": secretAll}, 409},
	}
	for _, b := range bad {
		var e struct {
			Error string `json:"error"`
		}
		if code := call(t, "POST", tc.url(f)+"/v1/channels", testToken, b.body, &e); code != b.want || e.Error == "" {
			t.Errorf("create %v = %d %q, want %d with a JSON error", b.body, code, e.Error, b.want)
		}
	}
	for i := range tc.nodes {
		waitFor(t, 5*time.Second, "channels replicated", func() bool {
			var raw json.RawMessage
			call(t, "GET", tc.url(i)+"/v1/channels", testToken, nil, &raw)
			if bytes.Contains(raw, []byte(secretProd)) || bytes.Contains(raw, []byte(secretAll)) || bytes.Contains(raw, []byte(`"secret"`)) {
				t.Fatalf("node%d GET /v1/channels shows a secret: %s", i+1, raw)
			}
			var out struct {
				Channels []struct{ Name string } `json:"channels"`
			}
			_ = json.Unmarshal(raw, &out)
			var names []string
			for _, c := range out.Channels {
				names = append(names, c.Name)
			}
			return strings.Join(names, ",") == "hook-all,hook-prod,tg-prod"
		})
	}

	// The test endpoint, through a follower: 200 once delivered, 502 with
	// the receiver's error when it refuses.
	var ok map[string]any
	if code := call(t, "POST", tc.url(f)+"/v1/channels/hook-all/test", testToken, nil, &ok); code != http.StatusOK {
		t.Fatalf("test hook-all = %d %v", code, ok)
	}
	if code := call(t, "POST", tc.url(f)+"/v1/channels/tg-prod/test", testToken, nil, &ok); code != http.StatusOK {
		t.Fatalf("test tg-prod = %d %v", code, ok)
	}
	hook.set(func(h *hookReceiver) { h.reject = true })
	var e struct {
		Error string `json:"error"`
	}
	if code := call(t, "POST", tc.url(f)+"/v1/channels/hook-all/test", testToken, nil, &e); code != http.StatusBadGateway ||
		!strings.Contains(e.Error, "400") || !strings.Contains(e.Error, "payload rejected by receiver") {
		t.Fatalf("test against a refusing receiver = %d %q, want 502 with its error", code, e.Error)
	}
	if code := call(t, "POST", tc.url(f)+"/v1/channels/nope/test", testToken, nil, nil); code != http.StatusNotFound {
		t.Fatalf("test of an unknown channel = %d, want 404", code)
	}
	reqs := hook.requests()
	if len(reqs) != 2 || !reqs[0].SigValid || reqs[0].Event != "test" || reqs[0].Problem != "" || reqs[0].Status != 200 {
		t.Fatalf("receiver saw %+v, want two signed test messages", reqs)
	}
	if msgs := tg.messages(); len(msgs) != 1 || msgs[0].ChatID != tgChat || msgs[0].ParseMode != "MarkdownV2" {
		t.Fatalf("telegram saw %+v, want one test message", msgs)
	}
	// A receiver that never answers fails the test too: the leader gives
	// up after the webhook timeout and the follower must pass on its 502.
	hook.set(func(h *hookReceiver) { h.reject, h.hang = false, true })
	start := time.Now()
	code := call(t, "POST", tc.url(f)+"/v1/channels/hook-all/test", testToken, nil, &e)
	hook.release()
	if code != http.StatusBadGateway {
		t.Errorf("test against a receiver that never answers, through a follower = %d %q after %s; want 502 with the receiver's error",
			code, e.Error, time.Since(start).Round(time.Millisecond))
	}
}

func TestNotify_TransitionsReachMatchingChannelsOnceWithStableDeliveryID(t *testing.T) {
	prod, all, tg := newHookReceiver(t, "prod-secret-0123456789"), newHookReceiver(t, secretAll), newTgStandin(t)
	tc := newTestCluster(t, 3, withTelegram(tg))
	tc.leader()
	f := tc.follower()
	tc.addChannel(f, map[string]any{"type": "webhook", "name": "hook-prod", "url": prod.url(), "secret": prod.secret, "match": map[string]string{"env": "prod"}})
	tc.addChannel(f, map[string]any{"type": "webhook", "name": "hook-all", "url": all.url(), "secret": all.secret})
	tc.addChannel(f, map[string]any{"type": "telegram", "name": "tg-prod", "chat_id": tgChat, "match": map[string]string{"env": "prod"}})
	const db, dev = "db_1.prod-eu", "dev-1"
	keys := map[string]string{
		db:  tc.register(f, db, map[string]any{"hostname": "db_1.prod-(eu)", "labels": map[string]string{"env": "prod", "role": "db"}}),
		dev: tc.register(f, dev, map[string]any{"labels": map[string]string{"env": "dev"}}),
	}
	// The first two webhook attempts fail with 500 and the first Telegram
	// message gets a 429 with retry_after: retries must keep the id.
	all.set(func(h *hookReceiver) { h.failNext = 2 })
	tg.mu.Lock()
	tg.limitNext = 1 // answered 429 with retry_after 1
	tg.mu.Unlock()

	beatBoth := func() (stop func()) {
		s1, s2 := tc.beater(keys[db], 200*time.Millisecond), tc.beater(keys[dev], 200*time.Millisecond)
		return func() { s1(); s2() }
	}
	waitBoth := func(want string) {
		for name := range keys {
			waitFor(t, 15*time.Second, name+" "+want, func() bool { return tc.machine(f, name).Status == want })
		}
	}
	stop := beatBoth()
	waitBoth("online")
	stop()
	waitBoth("offline")
	tc.settledEvents(f, 2, 20*time.Second)
	stop = beatBoth()
	waitBoth("online")
	stop()
	evs := tc.settledEvents(f, 4, 20*time.Second)

	matching := map[string][]string{db: {"hook-all", "hook-prod", "tg-prod"}, dev: {"hook-all"}}
	receivers := map[string]*hookReceiver{"hook-prod": prod, "hook-all": all}
	tgAttempts, delivered := 0, map[string]int{}
	for _, ev := range evs {
		var chans []string
		for _, d := range ev.Deliveries {
			chans = append(chans, d.Channel)
			if d.State != "delivered" || d.Attempts < 1 {
				t.Errorf("%s %s → %s: %+v, want delivered", ev.Type, ev.Machine.Name, d.Channel, d)
			}
			if d.Channel == "tg-prod" {
				tgAttempts += d.Attempts
				continue
			}
			// Every attempt carried the event id; exactly one was accepted.
			seen := 0
			for _, r := range receivers[d.Channel].requests() {
				if r.DeliveryID == ev.ID {
					seen++
				}
			}
			delivered[d.Channel]++
			if acc := receivers[d.Channel].accepted()[ev.ID]; seen != d.Attempts || acc != 1 {
				t.Errorf("%s → %s: %d requests with delivery id %s, %d accepted; event records %d attempts",
					ev.Type, d.Channel, seen, ev.ID, acc, d.Attempts)
			}
		}
		if strings.Join(chans, ",") != strings.Join(matching[ev.Machine.Name], ",") {
			t.Errorf("%s %s went to %v, want %v", ev.Type, ev.Machine.Name, chans, matching[ev.Machine.Name])
		}
	}
	// Nothing else reached the receivers, and everything was signed.
	for name, h := range receivers {
		if acc := h.accepted(); len(acc) != delivered[name] {
			t.Errorf("%s accepted %v, want %d events", name, acc, delivered[name])
		}
		for _, r := range h.requests() {
			if !r.SigValid || r.Problem != "" {
				t.Errorf("%s got a bad delivery: %+v", name, r)
			}
		}
		t.Logf("%s: %d requests, accepted per id %v", name, len(h.requests()), h.accepted())
	}
	if retried := len(all.requests()) - len(all.accepted()); retried != 2 {
		t.Errorf("hook-all saw %d failed attempts, want the 2 it refused", retried)
	}

	// Telegram: db's offline and online, escaped MarkdownV2, after one 429.
	msgs := tg.messages()
	if len(msgs) != tgAttempts || len(msgs) != 3 || msgs[0].Status != http.StatusTooManyRequests {
		t.Fatalf("telegram saw %d messages (%+v), events record %d attempts; want a 429 then two", len(msgs), msgs, tgAttempts)
	}
	// The 429 held the chat for retry_after: nothing reached it sooner.
	if wait := msgs[1].At.Sub(msgs[0].At); wait < tgRetryAfter {
		t.Errorf("the message after the 429 came %s later, want at least the retry_after of %s", wait, tgRetryAfter)
	} else {
		t.Logf("the 429 held the chat for %s (retry_after %s)", wait.Round(time.Millisecond), tgRetryAfter)
	}
	var sent []string
	for _, m := range msgs[1:] {
		if m.ChatID != tgChat || m.ParseMode != "MarkdownV2" {
			t.Errorf("telegram message %+v", m)
		}
		if !strings.Contains(m.Text, `db\_1\.prod\-eu`) || !strings.Contains(m.Text, `db\_1\.prod\-\(eu\)`) ||
			strings.Contains(m.Text, "db_1.prod") || strings.Contains(m.Text, dev) {
			t.Errorf("telegram text not escaped or about the wrong machine: %q", m.Text)
		}
		sent = append(sent, strings.Fields(m.Text)[0])
	}
	if strings.Join(sent, " ") != "🔴 🟢" {
		t.Errorf("telegram sent %v, want offline (🔴) then online (🟢)", sent)
	}
	t.Logf("telegram text: %q", msgs[2].Text)
}

// TestNotify_RefusingAndDeletedChannelsDoNotHoldUpOthers: one event, three
// channels. hook-bad answers 400: failed at once with the receiver's
// error. hook-hang holds the send and is deleted meanwhile: its pending
// delivery is dropped and nothing is sent to it again. hook-good gets its
// delivery regardless.
func TestNotify_RefusingAndDeletedChannelsDoNotHoldUpOthers(t *testing.T) {
	bad, hang, good := newHookReceiver(t, "bad-secret-0123456789"), newHookReceiver(t, "hang-secret-0123456789"),
		newHookReceiver(t, "good-secret-0123456789")
	bad.set(func(h *hookReceiver) { h.reject = true })
	hang.set(func(h *hookReceiver) { h.hang = true })
	tc := newTestCluster(t, 3, nil)
	tc.leader()
	f := tc.follower()
	for name, h := range map[string]*hookReceiver{"hook-bad": bad, "hook-hang": hang, "hook-good": good} {
		tc.addChannel(f, map[string]any{"type": "webhook", "name": name, "url": h.url(), "secret": h.secret})
	}
	key := tc.register(f, "web-1", nil)
	waitFor(t, 5*time.Second, "first beat", func() bool { return tc.beat(f, key) == http.StatusAccepted })
	waitFor(t, 15*time.Second, "offline", func() bool { return tc.machine(f, "web-1").Status == "offline" })
	waitFor(t, 10*time.Second, "the send to hook-hang in flight", func() bool { return len(hang.requests()) == 1 })

	if code := call(t, "DELETE", tc.url(f)+"/v1/channels/hook-hang", testToken, nil, nil); code != http.StatusNoContent {
		t.Fatalf("delete channel = %d", code)
	}
	var ev notifEvent
	for i := range tc.nodes {
		ev = tc.settledEvents(i, 1, 10*time.Second)[0]
		if d, ok := ev.delivery("hook-hang"); ok {
			t.Errorf("node%d still lists a delivery to the deleted channel: %+v", i+1, d)
		}
		if d, _ := ev.delivery("hook-bad"); d.State != "failed" || d.Attempts != 1 ||
			!strings.Contains(d.LastError, "400") || !strings.Contains(d.LastError, "payload rejected by receiver") {
			t.Errorf("node%d hook-bad delivery = %+v, want failed after one attempt with the receiver's error", i+1, d)
		}
		if d, _ := ev.delivery("hook-good"); d.State != "delivered" || d.Attempts != 1 {
			t.Errorf("node%d hook-good delivery = %+v, want delivered", i+1, d)
		}
	}
	// The held request now fails (retryable); nothing may be sent again.
	hang.release()
	time.Sleep(3 * time.Second) // observation window: a retry would come within ~1.5s
	if reqs := hang.requests(); len(reqs) != 1 {
		t.Errorf("deleted channel got %d requests, want only the one in flight when it was deleted: %+v", len(reqs), reqs)
	}
	if n := len(bad.requests()); n != 1 {
		t.Errorf("a 400 was retried: hook-bad saw %d requests", n)
	}
	if acc := good.accepted(); acc[ev.ID] != 1 || len(acc) != 1 {
		t.Errorf("hook-good accepted %v, want %s once", acc, ev.ID)
	}
}
