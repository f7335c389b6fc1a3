package e2e

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Test receivers as an outside party writes them from docs/api.md alone: a
// webhook receiver that verifies X-LunaSentri-Signature by hand, and a
// stand-in for the Telegram Bot API. Both record everything they see.

// hookSeen is one request a webhookReceiver saw.
type hookSeen struct {
	DeliveryID string // X-LunaSentri-Delivery
	Event      string // body "event"
	Machine    string // body machine.name
	Received   time.Time
	Answered   time.Time
	SigValid   bool
	Problem    string // "" when headers and body are as docs/api.md says
	Status     int    // what the receiver answered; 0 while held
	ClientGone bool   // the sender had hung up before the answer
	// Digest is the digest id when this record is one event out of a
	// machine.digest delivery (then DeliveryID is the event's own id):
	// the receiver unpacks digests, as docs/api.md lets receivers do.
	Digest string
}

// webhookReceiver is a signed-webhook receiver on loopback. It can be told
// to fail the next N requests with 500, to hold the next N requests until
// released, or to refuse everything with 400.
type webhookReceiver struct {
	secret string
	srv    *httptest.Server

	mu       sync.Mutex
	seen     []*hookSeen
	failNext int
	holdNext int
	reject   bool
	release  chan struct{}
}

func newWebhookReceiver(t testing.TB, secret string) *webhookReceiver {
	w := &webhookReceiver{secret: secret, release: make(chan struct{})}
	w.srv = httptest.NewServer(http.HandlerFunc(w.serve))
	t.Cleanup(func() { w.releaseHeld(); w.srv.Close() })
	return w
}

func (w *webhookReceiver) url() string { return w.srv.URL + "/lunasentri" }

// verifySignature is the README's receiver check, written from docs/api.md.
func verifySignature(secret string, h http.Header, body []byte) bool {
	ts := h.Get("X-LunaSentri-Timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "." + string(body)))
	want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	return hmac.Equal([]byte(want), []byte(h.Get("X-LunaSentri-Signature")))
}

// checkShape returns the event type, the machine name and what is not as
// docs/api.md's "Webhook delivery" says.
func checkShape(r *http.Request, body []byte) (event, machine, problem string) {
	var p struct {
		Event      string                     `json:"event"`
		ID         string                     `json:"id"`
		OccurredAt string                     `json:"occurred_at"`
		Machine    map[string]json.RawMessage `json:"machine"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return "", "", "body is not JSON: " + err.Error()
	}
	_ = json.Unmarshal(p.Machine["name"], &machine)
	var problems []string
	if _, err := time.Parse(time.RFC3339, p.OccurredAt); err != nil {
		problems = append(problems, "occurred_at is not RFC 3339")
	}
	for _, k := range []string{"id", "name", "hostname", "description", "status", "last_seen", "labels"} {
		if _, ok := p.Machine[k]; !ok {
			problems = append(problems, "machine."+k+" missing")
		}
	}
	headers := [][2]string{
		{"Content-Type", "application/json"}, {"X-LunaSentri-Event", p.Event}, {"X-LunaSentri-Delivery", p.ID},
	}
	for _, kv := range headers {
		if got := r.Header.Get(kv[0]); got != kv[1] || kv[1] == "" {
			problems = append(problems, fmt.Sprintf("%s=%q, want %q", kv[0], got, kv[1]))
		}
	}
	if !strings.HasPrefix(r.Header.Get("User-Agent"), "LunaSentri-Webhook/") {
		problems = append(problems, "User-Agent "+r.Header.Get("User-Agent"))
	}
	return p.Event, machine, strings.Join(problems, "; ")
}

// digestBody is a machine.digest delivery: every event exactly as a single
// delivery's body.
type digestBody struct {
	Event  string            `json:"event"`
	ID     string            `json:"id"`
	Events []json.RawMessage `json:"events"`
}

// unpack returns the records of one request: itself, or one per event of a
// digest, each checked like a single delivery's body.
func unpack(r *http.Request, body []byte, base hookSeen) []*hookSeen {
	var d digestBody
	if json.Unmarshal(body, &d) != nil || d.Event != "machine.digest" {
		s := base
		s.Event, s.Machine, s.Problem = checkShape(r, body)
		return []*hookSeen{&s}
	}
	var problems []string
	if r.Header.Get("X-LunaSentri-Event") != "machine.digest" || r.Header.Get("X-LunaSentri-Delivery") != d.ID || d.ID == "" {
		problems = append(problems, "digest headers do not name the digest")
	}
	if len(d.Events) == 0 || len(d.Events) > 1000 {
		problems = append(problems, fmt.Sprintf("digest with %d events", len(d.Events)))
	}
	var out []*hookSeen
	for _, raw := range d.Events {
		var ev struct {
			Event string `json:"event"`
			ID    string `json:"id"`
		}
		_ = json.Unmarshal(raw, &ev)
		s := base
		s.DeliveryID, s.Digest = ev.ID, d.ID
		// The inner body is checked as a single delivery would be, with
		// the headers it would have had.
		h := r.Clone(r.Context())
		h.Header = r.Header.Clone()
		h.Header.Set("X-LunaSentri-Event", ev.Event)
		h.Header.Set("X-LunaSentri-Delivery", ev.ID)
		s.Event, s.Machine, s.Problem = checkShape(h, raw)
		if len(problems) > 0 {
			s.Problem = strings.TrimPrefix(s.Problem+"; "+strings.Join(problems, "; "), "; ")
		}
		out = append(out, &s)
	}
	if len(out) == 0 {
		s := base
		s.Event, s.Problem = d.Event, strings.Join(problems, "; ")
		out = append(out, &s)
	}
	return out
}

func (w *webhookReceiver) serve(rw http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	base := hookSeen{Received: time.Now(), DeliveryID: r.Header.Get("X-LunaSentri-Delivery")}
	base.SigValid = verifySignature(w.secret, r.Header, body)
	recs := unpack(r, body, base)
	w.mu.Lock()
	w.seen = append(w.seen, recs...)
	status, hold := http.StatusOK, false
	switch {
	case w.reject:
		status = http.StatusBadRequest
	case w.failNext > 0:
		w.failNext--
		status = http.StatusInternalServerError
	case w.holdNext > 0:
		w.holdNext--
		hold = true
	}
	release := w.release
	w.mu.Unlock()
	if hold {
		<-release
	}
	w.mu.Lock()
	for _, s := range recs {
		s.Status, s.Answered, s.ClientGone = status, time.Now(), r.Context().Err() != nil
	}
	w.mu.Unlock()
	rw.WriteHeader(status)
}

func (w *webhookReceiver) holdNextN(n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.holdNext = n
}

// releaseHeld lets every held request answer (200).
func (w *webhookReceiver) releaseHeld() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.holdNext = 0
	select {
	case <-w.release:
	default:
		close(w.release)
	}
}

func (w *webhookReceiver) requests() []hookSeen {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]hookSeen, len(w.seen))
	for i, s := range w.seen {
		out[i] = *s
	}
	return out
}

// accepted counts 2xx answers per delivery id.
func (w *webhookReceiver) accepted() map[string]int {
	n := map[string]int{}
	for _, s := range w.requests() {
		if s.Status/100 == 2 {
			n[s.DeliveryID]++
		}
	}
	return n
}

// badRequests lists requests with an invalid signature or shape.
func (w *webhookReceiver) badRequests() []hookSeen {
	var out []hookSeen
	for _, s := range w.requests() {
		if !s.SigValid || s.Problem != "" {
			out = append(out, s)
		}
	}
	return out
}

// tgSeen is one sendMessage call the Telegram stand-in saw.
type tgSeen struct {
	ChatID, Text, ParseMode string
	Received                time.Time
	Status                  int
}

// telegramStandin serves POST /bot<TOKEN>/sendMessage as the Bot API does.
// It can answer the next N messages with 429 and parameters.retry_after.
type telegramStandin struct {
	token      string
	srv        *httptest.Server
	mu         sync.Mutex
	seen       []tgSeen
	limitNext  int
	retryAfter int
}

func newTelegramStandin(t testing.TB, token string) *telegramStandin {
	s := &telegramStandin{token: token, retryAfter: 1}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// env is what a server needs to use this stand-in.
func (s *telegramStandin) env() []string {
	return []string{"TELEGRAM_BOT_TOKEN=" + s.token, "TELEGRAM_API_URL=" + s.srv.URL}
}

func (s *telegramStandin) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if r.Method != http.MethodPost || r.URL.Path != "/bot"+s.token+"/sendMessage" {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"ok":false,"error_code":404,"description":"Not Found"}`)
		return
	}
	var m struct {
		ChatID    string `json:"chat_id"`
		Text      string `json:"text"`
		ParseMode string `json:"parse_mode"`
	}
	if err := json.NewDecoder(r.Body).Decode(&m); err != nil || m.Text == "" {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"ok":false,"error_code":400,"description":"Bad Request: message text is empty"}`)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := tgSeen{ChatID: m.ChatID, Text: m.Text, ParseMode: m.ParseMode, Received: time.Now(), Status: http.StatusOK}
	if s.limitNext > 0 {
		s.limitNext--
		seen.Status = http.StatusTooManyRequests
	}
	s.seen = append(s.seen, seen)
	w.WriteHeader(seen.Status)
	if seen.Status == http.StatusTooManyRequests {
		fmt.Fprintf(w, `{"ok":false,"error_code":429,"description":"Too Many Requests: retry after %d","parameters":{"retry_after":%d}}`, s.retryAfter, s.retryAfter)
		return
	}
	fmt.Fprintf(w, `{"ok":true,"result":{"message_id":%d}}`, len(s.seen))
}

func (s *telegramStandin) messages() []tgSeen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]tgSeen(nil), s.seen...)
}

// summarize renders accepted-per-id counts as "id×n" sorted, for logs.
func summarize(acc map[string]int) string {
	var parts []string
	for id, n := range acc {
		parts = append(parts, fmt.Sprintf("%s×%d", id, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}
