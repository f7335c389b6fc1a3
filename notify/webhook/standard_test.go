package webhook_test

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/lunasentri/lunasentri/notify"
	"github.com/lunasentri/lunasentri/notify/webhook"
)

// The official Standard Webhooks verifier is the judge here: if it accepts
// our deliveries, so does every receiver built on the libraries for other
// languages (they share one test vector suite).

// whsecSecret is a secret in the form Standard Webhooks libraries generate:
// "whsec_" + base64 of the key bytes.
var whsecSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("a 24-byte signing key!!!"))

func TestSignStandard_MatchesOfficialLibrary(t *testing.T) {
	ts := time.Unix(kaTS, 0)
	for _, tc := range []struct {
		name   string
		secret string
		wh     func() (*standardwebhooks.Webhook, error)
	}{
		{"raw secret bytes", testSecret, func() (*standardwebhooks.Webhook, error) {
			return standardwebhooks.NewWebhookRaw([]byte(testSecret))
		}},
		{"whsec_ base64 secret", whsecSecret, func() (*standardwebhooks.Webhook, error) {
			return standardwebhooks.NewWebhook(whsecSecret)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wh, err := tc.wh()
			if err != nil {
				t.Fatal(err)
			}
			want, err := wh.Sign("evt-1", ts, []byte(kaBody))
			if err != nil {
				t.Fatal(err)
			}
			if got := webhook.SignStandard(tc.secret, "evt-1", kaTS, []byte(kaBody)); got != want {
				t.Fatalf("SignStandard = %s, library says %s", got, want)
			}
		})
	}
}

func TestStandardKey_NotBase64IsRaw(t *testing.T) {
	// "whsec_" followed by text that is not base64 is an ordinary secret.
	s := "whsec_not*base64*at*all"
	if got := string(webhook.StandardKey(s)); got != s {
		t.Fatalf("StandardKey(%q) = %q, want the secret itself", s, got)
	}
}

// standardReceiver is a real HTTP receiver that verifies each request with
// the official library (timestamp tolerance included) and records the
// verdict beside the headers.
func standardReceiver(t *testing.T, wh *standardwebhooks.Webhook) (*httptest.Server, chan received) {
	t.Helper()
	got := make(chan received, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- received{method: r.Method, path: r.URL.RequestURI(), header: r.Header.Clone(), body: body,
			verifyErr: wh.Verify(body, r.Header)}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

func TestNotify_StandardWebhooksVerifierAccepts(t *testing.T) {
	rawWH, err := standardwebhooks.NewWebhookRaw([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	whsecWH, err := standardwebhooks.NewWebhook(whsecSecret)
	if err != nil {
		t.Fatal(err)
	}
	testEvent := notify.Event{Type: notify.EventTest, Machine: notify.Machine{Name: "test"}}
	for _, tc := range []struct {
		name   string
		secret string
		wh     *standardwebhooks.Webhook
		ev     notify.Event
	}{
		{"raw secret, offline", testSecret, rawWH, offlineEvent()},
		{"whsec_ secret, offline", whsecSecret, whsecWH, offlineEvent()},
		{"raw secret, test message without id", testSecret, rawWH, testEvent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, got := standardReceiver(t, tc.wh)
			n := newNotifier(t, webhook.Options{URL: srv.URL, Secret: tc.secret})
			if retryable, err := n.Notify(context.Background(), tc.ev); err != nil || retryable {
				t.Fatalf("Notify = %v, %v", retryable, err)
			}
			r := <-got
			if r.verifyErr != nil {
				t.Fatalf("official verifier: %v", r.verifyErr)
			}
			id := r.header.Get(webhook.HeaderWebhookID)
			if id == "" || id != r.header.Get(webhook.HeaderDelivery) {
				t.Errorf("webhook-id %q, X-LunaSentri-Delivery %q: want equal and set", id, r.header.Get(webhook.HeaderDelivery))
			}
			if ts := r.header.Get(webhook.HeaderWebhookTimestamp); ts != r.header.Get(webhook.HeaderTimestamp) {
				t.Errorf("webhook-timestamp %q, X-LunaSentri-Timestamp %q: want equal", ts, r.header.Get(webhook.HeaderTimestamp))
			}
			// The LunaSentri signature stays, keyed with the secret as written.
			if err := webhook.Verify(tc.secret, r.header, r.body, time.Minute, time.Now()); err != nil {
				t.Errorf("X-LunaSentri-Signature: %v", err)
			}
			// A tampered body or a swapped id is refused by the verifier.
			if err := tc.wh.Verify(append(r.body, ' '), r.header); err == nil {
				t.Error("verifier accepted a tampered body")
			}
			h := r.header.Clone()
			h.Set(webhook.HeaderWebhookID, id+"x")
			if err := tc.wh.Verify(r.body, h); err == nil {
				t.Error("verifier accepted another delivery id")
			}
		})
	}
}

func TestNotify_StandardWebhooksStaleRefused(t *testing.T) {
	wh, err := standardwebhooks.NewWebhookRaw([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	srv, got := standardReceiver(t, wh)
	old := time.Now().Add(-time.Hour)
	n := newNotifier(t, webhook.Options{URL: srv.URL, Now: func() time.Time { return old }})
	if _, err := n.Notify(context.Background(), offlineEvent()); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	r := <-got
	if r.verifyErr == nil {
		t.Fatal("verifier accepted a delivery stamped an hour ago")
	}
	if ts := r.header.Get(webhook.HeaderWebhookTimestamp); ts != strconv.FormatInt(old.Unix(), 10) {
		t.Fatalf("webhook-timestamp %q, want %d", ts, old.Unix())
	}
}
