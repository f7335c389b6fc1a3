package telegram

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/lunasentri/lunasentri/notify"
)

func TestFormatMessage_ReasonReminderFlapping(t *testing.T) {
	seen := time.Date(2026, 11, 27, 8, 30, 0, 0, time.UTC)
	m := notify.Machine{Name: "db_1.prod", Hostname: "db-1", LastSeen: &seen}
	tests := []struct {
		name string
		ev   notify.Event
		want string
	}{
		{"reported", notify.Event{Type: notify.EventOffline, Machine: m, Reason: notify.ReasonReported, Message: "disk /var is 100% full!"},
			"🔴 *db\\_1\\.prod is offline*\n\n*Hostname:* db\\-1\n*Last seen:* 2026\\-11\\-27 08:30:00 UTC\n*Reason:* reported: disk /var is 100% full\\!"},
		{"reported without message", notify.Event{Type: notify.EventOffline, Machine: m, Reason: notify.ReasonReported},
			"🔴 *db\\_1\\.prod is offline*\n\n*Hostname:* db\\-1\n*Last seen:* 2026\\-11\\-27 08:30:00 UTC\n*Reason:* reported by the machine"},
		{"silence", notify.Event{Type: notify.EventOffline, Machine: m, Reason: notify.ReasonSilence},
			"🔴 *db\\_1\\.prod is offline*\n\n*Hostname:* db\\-1\n*Last seen:* 2026\\-11\\-27 08:30:00 UTC\n*Reason:* no heartbeat within the threshold"},
		{"reminder", notify.Event{Type: notify.EventOffline, Machine: m, Reason: notify.ReasonSilence, Reminder: 2, OccurredAt: seen.Add(3*time.Hour + 2*time.Minute)},
			"🔴 *db\\_1\\.prod is still offline* \\(reminder 2\\)\n\n*Hostname:* db\\-1\n*Last seen:* 2026\\-11\\-27 08:30:00 UTC\n*Reason:* no heartbeat within the threshold\n*Offline for:* 3h2m"},
		{"flapping", notify.Event{Type: notify.EventFlapping, Machine: m},
			"🟠 *db\\_1\\.prod is flapping*\nIt keeps going offline and online\\. Its changes are recorded but not sent until it has been stable for a while; then you get its state once\\.\n\n*Hostname:* db\\-1\n*Last seen:* 2026\\-11\\-27 08:30:00 UTC"},
	}
	for _, tc := range tests {
		got, err := formatMessage(tc.ev)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		t.Logf("%s:\n%s\n", tc.name, got)
		if got != tc.want {
			t.Errorf("%s\n got %q\nwant %q", tc.name, got, tc.want)
		}
		checkMarkdownV2(t, got)
	}
}

func TestFormatMessage_HostileReportedMessage(t *testing.T) {
	ev := notify.Event{Type: notify.EventOffline, Reason: notify.ReasonReported,
		Message: strings.Repeat("_*[]()~`>#+-=|{}.!\\", 600), Machine: notify.Machine{Name: "x"}}
	text, err := formatMessage(ev)
	if err != nil {
		t.Fatal(err)
	}
	checkMarkdownV2(t, text)
	if n := len(utf16.Encode([]rune(text))); n > MaxMessageChars {
		t.Errorf("%d characters", n)
	}
}

func digestEvents(n int, hostile bool) notify.Digest {
	d := notify.Digest{ID: "dig-1", GroupBy: []string{"env", "team"}}
	for i := range n {
		name := fmt.Sprintf("web-%04d", i)
		labels := map[string]string{"env": []string{"prod", "staging"}[i%2], "team": "core"}
		if hostile {
			name = fmt.Sprintf("%d_*[]()~`>#+-=|{}.!\\%s", i, strings.Repeat("🚀*_", 40))
			labels = map[string]string{"env": fmt.Sprintf("e%d%s", i, strings.Repeat("`*_[", 30)), "team": strings.Repeat("\\", 70)}
		}
		typ := notify.EventOffline
		if i%4 == 3 {
			typ = notify.EventOnline
		}
		d.Events = append(d.Events, notify.Event{ID: fmt.Sprint(i), Type: typ, Machine: notify.Machine{Name: name, Labels: labels}})
	}
	return d
}

func TestFormatDigest_Small(t *testing.T) {
	d := digestEvents(5, false)
	d.Events[1].Reason = notify.ReasonReported
	d.Events[2].Reminder = 1
	text := formatDigest(d)
	t.Logf("digest:\n%s", text)
	want := "📋 *LunaSentri digest: 4 offline, 1 online*\n\n*By env, team:*\n" +
		"• env\\=prod, team\\=core: 3 offline, 0 online\n• env\\=staging, team\\=core: 1 offline, 1 online\n\n" +
		"*Machines:*\n🔴 web\\-0000\n🔴 web\\-0001 \\(reported\\)\n🔴 web\\-0002 \\(still offline, reminder 1\\)\n🟢 web\\-0003\n🔴 web\\-0004"
	if text != want {
		t.Errorf("\n got %q\nwant %q", text, want)
	}
	checkMarkdownV2(t, text)
}

func TestFormatDigest_TenThousandHostileEventsFit(t *testing.T) {
	for _, hostile := range []bool{false, true} {
		d := digestEvents(10000, hostile)
		text := formatDigest(d)
		if n := len(utf16.Encode([]rune(text))); n > MaxMessageChars {
			t.Errorf("hostile=%v: %d UTF-16 units, limit %d", hostile, n, MaxMessageChars)
		}
		plain := checkMarkdownV2(t, text)
		if !strings.HasPrefix(plain, "📋 LunaSentri digest: 7500 offline, 2500 online") {
			t.Errorf("head: %.100q", plain)
		}
		names := strings.Count(text, "\n🔴 ") + strings.Count(text, "\n🟢 ")
		if names == 0 || names > 20 {
			t.Errorf("hostile=%v: %d names", hostile, names)
		}
		if want := fmt.Sprintf("… and %d more", 10000-names); !strings.Contains(plain, want) {
			t.Errorf("hostile=%v: lacks %q", hostile, want)
		}
		if !strings.Contains(plain, "more groups") && hostile {
			t.Errorf("hostile: 5000 groups shown without a 'more groups' line")
		}
		t.Logf("hostile=%v: %d UTF-16 units, %d names\n%s", hostile, len(utf16.Encode([]rune(text))), names, text)
	}
}

func TestNotifyDigest_OneMessage(t *testing.T) {
	var got []map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var f map[string]any
		_ = json.Unmarshal(raw, &f)
		got = append(got, f)
		io.WriteString(w, `{"ok":true}`)
	}))
	defer srv.Close()
	c, err := New(Options{Token: "1:abcdefghijkl", APIURL: srv.URL, PerChatInterval: -1, GlobalRate: -1})
	if err != nil {
		t.Fatal(err)
	}
	n := c.Chat("-100123").(notify.DigestNotifier)
	if retryable, err := n.NotifyDigest(context.Background(), digestEvents(30, false)); err != nil || retryable {
		t.Fatalf("NotifyDigest = %v, %v", retryable, err)
	}
	if len(got) != 1 || got[0]["parse_mode"] != "MarkdownV2" || !strings.Contains(got[0]["text"].(string), "… and 10 more") {
		t.Errorf("requests %v", got)
	}
	if _, err := n.NotifyDigest(context.Background(), notify.Digest{ID: "x"}); err != ErrEmptyDigest {
		t.Errorf("empty digest: %v", err)
	}
}
