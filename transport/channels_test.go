package transport_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/lunasentri/lunasentri/fsm"
	"github.com/lunasentri/lunasentri/notify/webhook"
	"github.com/lunasentri/lunasentri/transport"
)

const (
	hookSecret   = "s3cr3t-signing-key-0123456789"
	hookPassword = "pa55w0rd-in-url"
	hookToken    = "tok3n-in-query-abcdef"
	hookURL      = "https://alice:" + hookPassword + "@hooks.example.com/notify?token=" + hookToken
)

// wantNoSecrets fails if any secret part shows in an answer.
func wantNoSecrets(t testing.TB, what string, raw []byte, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(string(raw), s) {
			t.Errorf("%s leaks %q: %s", what, s, raw)
		}
	}
}

func TestChannels_SecretsNeverAnswered(t *testing.T) {
	n := newNode(t, true, func(o *transport.Options) { o.RedactURL = webhook.RedactURL })
	r := n.admin(t, "POST", "/v1/channels",
		`{"type":"webhook","name":"hook","url":"`+hookURL+`","secret":"`+hookSecret+`","match":{"env":"prod"}}`)
	if r.status != http.StatusCreated {
		t.Fatalf("create webhook: %d %s", r.status, r.raw)
	}
	wantNoSecrets(t, "create answer", r.raw, hookSecret, hookPassword, hookToken)
	ch, _ := r.body["channel"].(map[string]any)
	if ch["name"] != "hook" || ch["type"] != "webhook" || !strings.Contains(ch["url"].(string), "hooks.example.com/notify") {
		t.Errorf("channel = %v", ch)
	}
	if m, _ := ch["match"].(map[string]any); m["env"] != "prod" {
		t.Errorf("match = %v", ch["match"])
	}
	// The FSM keeps the real values: any leader must be able to sign.
	if c, err := n.fsm.Channel("hook"); err != nil || c.Secret != hookSecret || c.URL != hookURL {
		t.Errorf("FSM channel = %+v, %v", c, err)
	}

	if r := n.admin(t, "POST", "/v1/channels", `{"type":"telegram","name":"tg","chat_id":"-1001234567890"}`); r.status != 201 {
		t.Fatalf("create telegram: %d %s", r.status, r.raw)
	} else if r.body["channel"].(map[string]any)["chat_id"] != "-1001234567890" {
		t.Errorf("telegram channel = %s", r.raw)
	}

	r = n.admin(t, "GET", "/v1/channels", "")
	if r.status != 200 {
		t.Fatalf("list: %d", r.status)
	}
	wantNoSecrets(t, "list answer", r.raw, hookSecret, hookPassword, hookToken)
	list, _ := r.body["channels"].([]any)
	if len(list) != 2 || list[0].(map[string]any)["name"] != "hook" || list[1].(map[string]any)["name"] != "tg" {
		t.Errorf("list = %s", r.raw)
	}

	// A duplicate or invalid create must not echo the secret back either.
	r = n.admin(t, "POST", "/v1/channels", `{"type":"webhook","name":"hook","url":"`+hookURL+`","secret":"`+hookSecret+`"}`)
	wantJSONError(t, r, http.StatusConflict)
	wantNoSecrets(t, "409 answer", r.raw, hookSecret, hookPassword, hookToken)
	r = n.admin(t, "POST", "/v1/channels", `{"type":"webhook","name":"bad","url":"ftp://alice:`+hookPassword+`@x/","secret":"`+hookSecret+`"}`)
	wantJSONError(t, r, http.StatusBadRequest)
	wantNoSecrets(t, "400 answer", r.raw, hookSecret, hookPassword)
	r = n.admin(t, "POST", "/v1/channels", `{"type":"webhook","name":"bad","url":"https://x/","secret":"Zq9xQw"}`)
	wantJSONError(t, r, http.StatusBadRequest)
	wantNoSecrets(t, "short secret answer", r.raw, "Zq9xQw")

	if r := n.admin(t, "DELETE", "/v1/channels/hook", ""); r.status != http.StatusNoContent {
		t.Errorf("delete: %d %s", r.status, r.raw)
	}
	wantJSONError(t, n.admin(t, "DELETE", "/v1/channels/hook", ""), http.StatusNotFound)
	if _, err := n.fsm.Channel("hook"); !errors.Is(err, fsm.ErrChannelNotFound) {
		t.Errorf("channel still in FSM after delete: %v", err)
	}
}

// Without a RedactURL option the URL is shown as given, but the secret
// still never is.
func TestChannels_SecretHiddenWithoutRedactor(t *testing.T) {
	n := newNode(t, true, nil)
	r := n.admin(t, "POST", "/v1/channels", `{"type":"webhook","name":"hook","url":"https://hooks.example.com/x","secret":"`+hookSecret+`"}`)
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	wantNoSecrets(t, "create answer", r.raw, hookSecret)
	wantNoSecrets(t, "list answer", n.admin(t, "GET", "/v1/channels", "").raw, hookSecret)
}

func TestChannels_TestEndpointReportsReceiver(t *testing.T) {
	var fail error
	var called []string
	n := newNode(t, true, func(o *transport.Options) {
		o.TestChannel = func(_ context.Context, name string) error {
			called = append(called, name)
			return fail
		}
	})
	if r := n.admin(t, "POST", "/v1/channels", `{"type":"telegram","name":"tg","chat_id":"42"}`); r.status != 201 {
		t.Fatalf("create: %d", r.status)
	}
	if r := n.admin(t, "POST", "/v1/channels/tg/test", ""); r.status != 200 {
		t.Errorf("test: %d %s", r.status, r.raw)
	}
	fail = errors.New("receiver said 500")
	r := n.admin(t, "POST", "/v1/channels/tg/test", "")
	wantJSONError(t, r, http.StatusBadGateway)
	if !strings.Contains(r.body["error"].(string), "receiver said 500") {
		t.Errorf("502 does not carry the receiver's error: %s", r.raw)
	}
	if len(called) != 2 {
		t.Errorf("TestChannel called %d times, want 2", len(called))
	}
	disabled := newNode(t, true, nil)
	if r := disabled.admin(t, "POST", "/v1/channels", `{"type":"telegram","name":"tg","chat_id":"42"}`); r.status != 201 {
		t.Fatalf("create: %d", r.status)
	}
	wantJSONError(t, disabled.admin(t, "POST", "/v1/channels/tg/test", ""), http.StatusServiceUnavailable)
}

func TestChannels_TelegramChatIDAsNumberOrString(t *testing.T) {
	for body, want := range map[string]int{
		`{"type":"telegram","name":"tg-num","chat_id":-1001234567890}`:   http.StatusCreated,
		`{"type":"telegram","name":"tg-str","chat_id":"-1001234567890"}`: http.StatusCreated,
		`{"type":"telegram","name":"tg-frac","chat_id":1.5}`:             http.StatusBadRequest,
		`{"type":"telegram","name":"tg-bool","chat_id":true}`:            http.StatusBadRequest,
	} {
		n := newNode(t, true, nil)
		if got := n.admin(t, "POST", "/v1/channels", body).status; got != want {
			t.Errorf("%s: %d, want %d", body, got, want)
		}
	}
}
