package slack_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lunasentri/lunasentri/notify"
	"github.com/lunasentri/lunasentri/notify/slack"
)

type got struct {
	path, ctype string
	raw         []byte
	msg         map[string]any
}

func receiver(t *testing.T, status int) (*httptest.Server, chan got) {
	ch := make(chan got, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Errorf("not JSON: %s", raw)
		}
		ch <- got{r.URL.Path, r.Header.Get("Content-Type"), raw, m}
		w.WriteHeader(status)
		if status == 200 {
			io.WriteString(w, "ok")
		} else {
			fmt.Fprintf(w, "invalid_payload for %s", r.URL.Path)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, ch
}

var seen = time.Date(2026, 11, 27, 8, 30, 0, 0, time.UTC)

func event(typ string) notify.Event {
	return notify.Event{ID: "e1", Type: typ, OccurredAt: seen.Add(2 * time.Minute), Reason: notify.ReasonReported, Message: "disk <full> & sad",
		Machine: notify.Machine{Name: "db-1 <!channel>", Hostname: "db-1.example", LastSeen: &seen}, DownFor: 192 * time.Second}
}

func TestNotify_PayloadFieldByField(t *testing.T) {
	srv, ch := receiver(t, 200)
	n, err := slack.New(slack.Options{URL: srv.URL + "/services/T000/B000/XXXXSECRET"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		typ, color, text string
		fields           []string
	}{
		{notify.EventOffline, "#d62728", "🔴 db-1 &lt;!channel&gt; is offline", []string{"Hostname=db-1.example", "Last seen=2026-11-27 08:30:00 UTC", "Reason=reported: disk &lt;full&gt; &amp; sad"}},
		{notify.EventOnline, "#2ca02c", "🟢 db-1 &lt;!channel&gt; is back online", []string{"Hostname=db-1.example", "Last seen=2026-11-27 08:30:00 UTC", "Down for=3m12s"}},
		{notify.EventFlapping, "#ff7f0e", "🟠 db-1 &lt;!channel&gt; is flapping", nil},
		{notify.EventTest, "#1f77b4", "🧪 LunaSentri test message", nil},
	} {
		if retryable, err := n.Notify(context.Background(), event(tc.typ)); err != nil || retryable {
			t.Fatalf("%s: %v %v", tc.typ, retryable, err)
		}
		g := <-ch
		t.Logf("%s: %s", tc.typ, g.raw)
		if g.path != "/services/T000/B000/XXXXSECRET" || g.ctype != "application/json" {
			t.Errorf("request %s %s", g.path, g.ctype)
		}
		if g.msg["text"] != tc.text {
			t.Errorf("text %q, want %q", g.msg["text"], tc.text)
		}
		atts := g.msg["attachments"].([]any)
		a := atts[0].(map[string]any)
		if len(atts) != 1 || a["color"] != tc.color || a["footer"] != "LunaSentri" || a["title"] == "" || a["fallback"] == "" {
			t.Errorf("attachment %v", a)
		}
		if a["ts"].(float64) != float64(seen.Add(2*time.Minute).Unix()) && tc.typ != notify.EventTest {
			t.Errorf("ts %v", a["ts"])
		}
		fields := map[string]string{}
		for _, f := range a["fields"].([]any) {
			fm := f.(map[string]any)
			fields[fm["title"].(string)] = fm["value"].(string)
		}
		for _, want := range tc.fields {
			k, v, _ := strings.Cut(want, "=")
			if fields[k] != v {
				t.Errorf("%s: field %s = %q, want %q", tc.typ, k, fields[k], v)
			}
		}
	}
}

func TestNotifyDigest_OneMessage(t *testing.T) {
	srv, ch := receiver(t, 200)
	n, _ := slack.New(slack.Options{URL: srv.URL})
	d := notify.Digest{ID: "d1", GroupBy: []string{"env"}}
	for i := range 25 {
		ev := event(notify.EventOffline)
		ev.Reason = ""
		ev.Machine.Name = fmt.Sprintf("web-%02d", i)
		ev.Machine.Labels = map[string]string{"env": "prod"}
		if i%5 == 0 {
			ev.Type = notify.EventOnline
		}
		d.Events = append(d.Events, ev)
	}
	if _, err := n.NotifyDigest(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	g := <-ch
	a := g.msg["attachments"].([]any)[0].(map[string]any)
	text := a["text"].(string)
	t.Logf("digest:\n%s\n%s", g.msg["text"], text)
	if g.msg["text"] != "📋 LunaSentri digest: 20 offline, 5 online" || a["color"] != "#d62728" {
		t.Errorf("head %v color %v", g.msg["text"], a["color"])
	}
	for _, want := range []string{"*By env:*", "• env=prod: 20 offline, 5 online", "🟢 web-00", "🔴 web-19", "… and 5 more"} {
		if !strings.Contains(text, want) {
			t.Errorf("digest text lacks %q", want)
		}
	}
	if strings.Contains(text, "web-20") {
		t.Errorf("more than 20 names")
	}
	if _, err := n.NotifyDigest(context.Background(), notify.Digest{}); !errors.Is(err, slack.ErrEmptyDigest) {
		t.Errorf("empty: %v", err)
	}
}

func TestNotify_ErrorsHideTheWebhookPath(t *testing.T) {
	for _, tc := range []struct {
		status    int
		retryable bool
	}{{404, false}, {410, false}, {500, true}, {429, true}} {
		srv, _ := receiver(t, tc.status)
		n, _ := slack.New(slack.Options{URL: srv.URL + "/hooks/abcdefSECRET123"})
		retryable, err := n.Notify(context.Background(), event(notify.EventOffline))
		if err == nil || retryable != tc.retryable {
			t.Errorf("%d: %v %v", tc.status, retryable, err)
			continue
		}
		if strings.Contains(err.Error(), "abcdefSECRET123") {
			t.Errorf("%d: error shows the secret path: %v", tc.status, err)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, bad := range []string{"", "hooks.slack.com/x", "ftp://x/y", "http://"} {
		if err := slack.Validate(bad); !errors.Is(err, slack.ErrInvalidConfig) {
			t.Errorf("Validate(%q) = %v", bad, err)
		}
	}
	if _, err := slack.New(slack.Options{URL: "https://hooks.slack.com/services/T/B/X"}); err != nil {
		t.Error(err)
	}
}
