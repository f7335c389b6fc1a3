package telegram

import (
	"strings"
	"testing"
	"time"

	"github.com/lunasentri/lunasentri/notify"
)

func TestEscapeMarkdownV2_Table(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"plain name 42", "plain name 42"},
		{"db_1", `db\_1`},
		{"*bold*", `\*bold\*`},
		{"db-1.prod", `db\-1\.prod`},
		{"web (eu-west)", `web \(eu\-west\)`},
		{"[link](http://x)", `\[link\]\(http://x\)`},
		{"~strike~", `\~strike\~`},
		{"`code`", "\\`code\\`"},
		{"> quote", `\> quote`},
		{"#tag +1 =2 |3| {4}", `\#tag \+1 \=2 \|3\| \{4\}`},
		{"wow!", `wow\!`},
		{`back\slash`, `back\\slash`},
		{`\_already`, `\\\_already`},
		{"_*[]()~`>#+-=|{}.!\\", "\\_\\*\\[\\]\\(\\)\\~\\`\\>\\#\\+\\-\\=\\|\\{\\}\\.\\!\\\\"},
		{"ünïcødé 🚀 :;,'\"<&/@$%^?", "ünïcødé 🚀 :;,'\"<&/@$%^?"},
	}
	for _, tc := range tests {
		if got := EscapeMarkdownV2(tc.in); got != tc.want {
			t.Errorf("EscapeMarkdownV2(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestHumanDuration_Table(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "<1s"},
		{400 * time.Millisecond, "<1s"},
		{time.Second, "1s"},
		{1500 * time.Millisecond, "2s"},
		{45 * time.Second, "45s"},
		{3*time.Minute + 12*time.Second, "3m12s"},
		{3*time.Minute + 12*time.Second + 300*time.Millisecond, "3m12s"},
		{time.Hour, "1h"},
		{time.Hour + 5*time.Minute, "1h5m"},
		{2*time.Hour + 7*time.Second, "2h7s"},
		{26*time.Hour + 4*time.Minute + 40*time.Second, "1d2h5m"},
		{72 * time.Hour, "3d"},
	}
	for _, tc := range tests {
		if got := HumanDuration(tc.d); got != tc.want {
			t.Errorf("HumanDuration(%s) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

// checkMarkdownV2 fails if text is not well-formed MarkdownV2 as we write
// it: every special character is escaped except the '*' pairs of bold.
// It returns the text with markup and escapes removed.
func checkMarkdownV2(t *testing.T, text string) string {
	t.Helper()
	var plain strings.Builder
	bold := false
	for i := 0; i < len(text); i++ {
		ch := text[i]
		switch {
		case ch == '\\':
			if i+1 >= len(text) || !strings.ContainsRune(markdownV2Special, rune(text[i+1])) {
				t.Fatalf("dangling or needless backslash at %d in %q", i, text)
			}
			i++
			plain.WriteByte(text[i])
		case ch == '*':
			bold = !bold
		case strings.ContainsRune(markdownV2Special, rune(ch)):
			t.Fatalf("unescaped %q at %d in %q", ch, i, text)
		default:
			plain.WriteByte(ch)
		}
	}
	if bold {
		t.Fatalf("unbalanced bold in %q", text)
	}
	return plain.String()
}

func TestFormatMessage_EscapesEveryVariablePart(t *testing.T) {
	nasty := "_*[]()~`>#+-=|{}.!\\ x"
	seen := time.Date(2026, 11, 27, 9, 30, 0, 0, time.FixedZone("CET", 3600))
	for _, typ := range []string{notify.EventOffline, notify.EventOnline, notify.EventTest} {
		ev := notify.Event{
			Type: typ,
			Machine: notify.Machine{
				Name: "name" + nasty, Hostname: "host" + nasty, Description: "desc" + nasty,
				LastSeen: &seen,
			},
			DownFor: 3*time.Minute + 12*time.Second,
		}
		text, err := formatMessage(ev)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		plain := checkMarkdownV2(t, text)
		for _, want := range []string{"name" + nasty, "host" + nasty, "2026-11-27 08:30:00 UTC"} {
			if !strings.Contains(plain, want) {
				t.Errorf("%s: plain text %q lacks %q", typ, plain, want)
			}
		}
	}
}

func TestFormatMessage_Shapes(t *testing.T) {
	seen := time.Date(2026, 11, 27, 8, 30, 0, 0, time.UTC)
	m := notify.Machine{Name: "db_1.prod", Hostname: "db-1", LastSeen: &seen}
	tests := []struct {
		ev   notify.Event
		want string
	}{
		{notify.Event{Type: notify.EventOffline, Machine: m},
			"🔴 *db\\_1\\.prod is offline*\n\n*Hostname:* db\\-1\n*Last seen:* 2026\\-11\\-27 08:30:00 UTC"},
		{notify.Event{Type: notify.EventOnline, Machine: m, DownFor: 192 * time.Second},
			"🟢 *db\\_1\\.prod is back online*\n\n*Hostname:* db\\-1\n*Last seen:* 2026\\-11\\-27 08:30:00 UTC\n*Down for:* 3m12s"},
		{notify.Event{Type: notify.EventOffline, Machine: notify.Machine{Name: "fresh"}},
			"🔴 *fresh is offline*\n\n*Hostname:* unknown\n*Last seen:* never"},
		{notify.Event{Type: notify.EventTest},
			"🧪 *LunaSentri test message*\nThis chat is connected to LunaSentri; no machine changed state\\."},
		{notify.Event{Type: notify.EventTest, Machine: notify.Machine{Name: "probe-1"}},
			"🧪 *LunaSentri test message*\nThis chat is connected to LunaSentri; no machine changed state\\.\n*Machine:* probe\\-1"},
	}
	for _, tc := range tests {
		got, err := formatMessage(tc.ev)
		if err != nil {
			t.Fatalf("formatMessage(%s): %v", tc.ev.Type, err)
		}
		if got != tc.want {
			t.Errorf("formatMessage(%s)\n got %q\nwant %q", tc.ev.Type, got, tc.want)
		}
		checkMarkdownV2(t, got)
	}
	if _, err := formatMessage(notify.Event{Type: "machine.exploded"}); err == nil {
		t.Error("unknown event type formatted")
	}
}

func TestFormatMessage_LongFieldsAreCut(t *testing.T) {
	ev := notify.Event{Type: notify.EventOffline, Machine: notify.Machine{
		Name: strings.Repeat(".", 5000), Hostname: strings.Repeat("-", 5000), Description: strings.Repeat("!", 5000),
	}}
	text, err := formatMessage(ev)
	if err != nil {
		t.Fatal(err)
	}
	// Telegram's limit is 4096 characters after entity parsing.
	if n := len([]rune(checkMarkdownV2(t, text))); n > 4096 {
		t.Errorf("message has %d characters", n)
	}
}
