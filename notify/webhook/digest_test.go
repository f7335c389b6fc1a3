package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lunasentri/lunasentri/notify"
	"github.com/lunasentri/lunasentri/notify/webhook"
)

func TestNotify_ReasonMessageReminder(t *testing.T) {
	srv, got := receiver(t, nil)
	n := newNotifier(t, webhook.Options{URL: srv.URL})

	ev := offlineEvent()
	ev.Reason, ev.Message, ev.Reminder = notify.ReasonReported, "disk /var is full", 3
	if _, err := n.Notify(context.Background(), ev); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	var body map[string]any
	r := <-got
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatal(err)
	}
	if body["reason"] != "reported" || body["message"] != "disk /var is full" || body["reminder"] != 3.0 {
		t.Errorf("top-level fields: %s", r.body)
	}
	if _, ok := body["machine"].(map[string]any)["reason"]; ok {
		t.Errorf("reason belongs at the top level: %s", r.body)
	}
	if !strings.HasPrefix(string(r.body), `{"event":"machine.offline","id":"evt-0001","occurred_at":"2026-11-27T08:32:05Z","reason":"reported","message":"disk /var is full","reminder":3,"machine":{`) {
		t.Errorf("field order: %s", r.body)
	}

	// Online: no reason, no message, no reminder.
	on := offlineEvent()
	on.Type, on.Machine.Status, on.Reason, on.Message = notify.EventOnline, "online", notify.ReasonReported, "ignored"
	if _, err := n.Notify(context.Background(), on); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	r = <-got
	for _, k := range []string{`"reason"`, `"message"`, `"reminder"`} {
		if strings.Contains(string(r.body), k) {
			t.Errorf("online body has %s: %s", k, r.body)
		}
	}

	// Silence without a message: reason only.
	ev = offlineEvent()
	ev.Reason = notify.ReasonSilence
	if _, err := n.Notify(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	r = <-got
	if !strings.Contains(string(r.body), `"reason":"silence","machine"`) {
		t.Errorf("silence body: %s", r.body)
	}
}

func TestNotify_Flapping(t *testing.T) {
	srv, got := receiver(t, nil)
	n := newNotifier(t, webhook.Options{URL: srv.URL})
	ev := offlineEvent()
	ev.ID, ev.Type = "flap-1", notify.EventFlapping
	if _, err := n.Notify(context.Background(), ev); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	r := <-got
	if r.header.Get(webhook.HeaderEvent) != "machine.flapping" || r.header.Get(webhook.HeaderDelivery) != "flap-1" {
		t.Errorf("headers %v", r.header)
	}
	if !strings.HasPrefix(string(r.body), `{"event":"machine.flapping","id":"flap-1",`) || r.verifyErr != nil {
		t.Errorf("body %s, verify %v", r.body, r.verifyErr)
	}
}

func digestOf(n int) notify.Digest {
	d := notify.Digest{ID: "dig-7", OccurredAt: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC), GroupBy: []string{"env"}}
	for i := range n {
		ev := offlineEvent()
		ev.ID = fmt.Sprintf("evt-%d", i)
		ev.Machine.Name = fmt.Sprintf("m-%02d", i)
		if i%3 == 0 {
			ev.Type, ev.Machine.Status = notify.EventOnline, "online"
		}
		if i%2 == 0 {
			ev.Machine.Labels = map[string]string{"env": "staging"}
		}
		d.Events = append(d.Events, ev)
	}
	return d
}

func TestNotifyDigest_BodyHeadersSignature(t *testing.T) {
	srv, got := receiver(t, nil)
	n := newNotifier(t, webhook.Options{URL: srv.URL})
	d := digestOf(6) // 0..5: online at 0,3; staging at 0,2,4
	retryable, err := n.NotifyDigest(context.Background(), d)
	if err != nil || retryable {
		t.Fatalf("NotifyDigest = %v, %v", retryable, err)
	}
	r := <-got
	if r.verifyErr != nil {
		t.Errorf("digest signature: %v", r.verifyErr)
	}
	if r.header.Get(webhook.HeaderEvent) != "machine.digest" || r.header.Get(webhook.HeaderDelivery) != "dig-7" {
		t.Errorf("headers: event %q delivery %q", r.header.Get(webhook.HeaderEvent), r.header.Get(webhook.HeaderDelivery))
	}
	var body struct {
		Event      string `json:"event"`
		ID         string `json:"id"`
		OccurredAt string `json:"occurred_at"`
		Counts     struct {
			Offline int `json:"offline"`
			Online  int `json:"online"`
		} `json:"counts"`
		Groups []struct {
			Labels  map[string]string `json:"labels"`
			Offline int               `json:"offline"`
			Online  int               `json:"online"`
		} `json:"groups"`
		Events []json.RawMessage `json:"events"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatal(err)
	}
	if body.Event != "machine.digest" || body.ID != "dig-7" || body.OccurredAt != "2026-11-27T09:00:00Z" {
		t.Errorf("head: %s", r.body)
	}
	if body.Counts.Offline != 4 || body.Counts.Online != 2 {
		t.Errorf("counts %+v", body.Counts)
	}
	wantGroups := []struct {
		env      string
		off, onl int
	}{{"staging", 2, 1}, {"prod", 2, 1}}
	if len(body.Groups) != 2 {
		t.Fatalf("groups %+v", body.Groups)
	}
	for i, g := range wantGroups {
		if body.Groups[i].Labels["env"] != g.env || body.Groups[i].Offline != g.off || body.Groups[i].Online != g.onl {
			t.Errorf("group %d = %+v, want %+v", i, body.Groups[i], g)
		}
	}
	// Each event exactly as its single delivery's body.
	single, singles := receiver(t, nil)
	sn := newNotifier(t, webhook.Options{URL: single.URL})
	for i, ev := range d.Events {
		if _, err := sn.Notify(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
		if s := (<-singles).body; string(s) != string(body.Events[i]) {
			t.Errorf("event %d in digest\n%s\nalone\n%s", i, body.Events[i], s)
		}
	}
	// Key order as documented.
	if !strings.HasPrefix(string(r.body), `{"event":"machine.digest","id":"dig-7","occurred_at":"2026-11-27T09:00:00Z","counts":{"offline":4,"online":2},"groups":[`) {
		t.Errorf("order: %.200s", r.body)
	}
}

func TestNotifyDigest_NoGroupByIsEmptyList(t *testing.T) {
	srv, got := receiver(t, nil)
	n := newNotifier(t, webhook.Options{URL: srv.URL})
	d := digestOf(2)
	d.GroupBy = nil
	if _, err := n.NotifyDigest(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	if err := json.Unmarshal((<-got).body, &body); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(body["groups"], []any{}) {
		t.Errorf("groups = %#v, want []", body["groups"])
	}
}

func TestNotifyDigest_BadDigestsArePermanent(t *testing.T) {
	srv, got := receiver(t, nil)
	n := newNotifier(t, webhook.Options{URL: srv.URL})
	noID := digestOf(2)
	noID.ID = ""
	tests := []struct {
		name string
		d    notify.Digest
		want error
	}{
		{"no id", noID, webhook.ErrMissingEventID},
		{"empty", notify.Digest{ID: "d"}, webhook.ErrEmptyDigest},
		{"too large", digestOf(webhook.MaxDigestEvents + 1), webhook.ErrDigestTooLarge},
	}
	for _, tc := range tests {
		retryable, err := n.NotifyDigest(context.Background(), tc.d)
		if retryable || !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, %v; want permanent %v", tc.name, retryable, err, tc.want)
		}
	}
	// A hand-made EventDigest through Notify is refused too.
	if _, err := n.Notify(context.Background(), notify.Event{Type: notify.EventDigest, ID: "x", Message: "hi"}); !errors.Is(err, webhook.ErrUnknownEventType) {
		t.Errorf("Notify(EventDigest) = %v", err)
	}
	if len(got) != 0 {
		t.Errorf("receiver got %d requests", len(got))
	}
	// 1000 events is fine.
	if _, err := n.NotifyDigest(context.Background(), digestOf(webhook.MaxDigestEvents)); err != nil {
		t.Errorf("1000 events: %v", err)
	}
}

func TestNotifyDigest_RetryableLikeAnyDelivery(t *testing.T) {
	srv, _ := receiver(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) })
	n := newNotifier(t, webhook.Options{URL: srv.URL})
	retryable, err := n.NotifyDigest(context.Background(), digestOf(3))
	if !retryable || err == nil {
		t.Errorf("503: %v, %v", retryable, err)
	}
}
