package telegram

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/lunasentri/lunasentri/notify"
)

// markdownV2Special is every character MarkdownV2 treats as markup outside
// entities (https://core.telegram.org/bots/api#markdownv2-style), plus the
// backslash itself. Telegram rejects the whole message (400 "can't parse
// entities") if one of them appears unescaped, so a machine called
// "db-1.prod" would otherwise never alert.
const markdownV2Special = "_*[]()~`>#+-=|{}.!\\"

// Length caps for free-text fields, in characters. Telegram's limit is 4096
// characters per message; these keep us far below it after escaping.
const (
	maxNameChars        = 200
	maxDescriptionChars = 500
)

// EscapeMarkdownV2 escapes s for use as plain text in a MarkdownV2 message.
func EscapeMarkdownV2(s string) string {
	var b strings.Builder
	b.Grow(len(s) + len(s)/4)
	for _, r := range s {
		if strings.ContainsRune(markdownV2Special, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// formatMessage renders ev as MarkdownV2. Only escaped text goes between
// the markup this function writes itself.
func formatMessage(ev notify.Event) (string, error) {
	m := ev.Machine
	name := truncate(firstNonEmpty(m.Name, m.Hostname, m.ID, "unknown machine"), maxNameChars)

	var b strings.Builder
	switch ev.Type {
	case notify.EventOffline:
		if ev.Reminder > 0 {
			b.WriteString("🔴 *" + EscapeMarkdownV2(name+" is still offline") + "* " +
				EscapeMarkdownV2("(reminder "+strconv.Itoa(ev.Reminder)+")") + "\n")
		} else {
			b.WriteString("🔴 *" + EscapeMarkdownV2(name+" is offline") + "*\n")
		}
	case notify.EventFlapping:
		b.WriteString("🟠 *" + EscapeMarkdownV2(name+" is flapping") + "*\n")
		b.WriteString(EscapeMarkdownV2("It keeps going offline and online. Its changes are recorded but not sent until it has been stable for a while; then you get its state once.") + "\n")
	case notify.EventOnline:
		b.WriteString("🟢 *" + EscapeMarkdownV2(name+" is back online") + "*\n")
	case notify.EventTest:
		b.WriteString("🧪 *LunaSentri test message*\n")
		b.WriteString(EscapeMarkdownV2("This chat is connected to LunaSentri; no machine changed state.") + "\n")
		if m.Name != "" {
			field(&b, "Machine", truncate(m.Name, maxNameChars))
		}
		if m.Hostname != "" {
			field(&b, "Hostname", truncate(m.Hostname, maxNameChars))
		}
		if m.LastSeen != nil && !m.LastSeen.IsZero() {
			field(&b, "Last seen", formatLastSeen(m.LastSeen))
		}
		return strings.TrimRight(b.String(), "\n"), nil
	default:
		return "", fmt.Errorf("%w %q", ErrUnknownEventType, ev.Type)
	}
	b.WriteString("\n")
	field(&b, "Hostname", truncate(firstNonEmpty(m.Hostname, "unknown"), maxNameChars))
	field(&b, "Last seen", formatLastSeen(m.LastSeen))
	if ev.Type == notify.EventOffline {
		if ev.Reason != "" || ev.Message != "" {
			field(&b, "Reason", reasonText(ev))
		}
		if ev.Reminder > 0 {
			if d := offlineFor(ev); d > 0 {
				field(&b, "Offline for", HumanDuration(d))
			}
		}
	}
	if ev.Type == notify.EventOnline && ev.DownFor > 0 {
		field(&b, "Down for", HumanDuration(ev.DownFor))
	}
	if m.Description != "" {
		field(&b, "Description", truncate(m.Description, maxDescriptionChars))
	}
	return strings.TrimRight(b.String(), "\n"), nil
}

// maxReportedChars caps a reported failure message in a Telegram text; the
// webhook body carries it whole (up to the 10 KiB the API accepts).
const maxReportedChars = 500

// reasonText says in words why a machine went offline.
func reasonText(ev notify.Event) string {
	switch {
	case ev.Reason == notify.ReasonReported || ev.Message != "":
		if msg := strings.TrimSpace(ev.Message); msg != "" {
			return "reported: " + truncate(msg, maxReportedChars)
		}
		return "reported by the machine"
	default:
		return "no heartbeat within the threshold"
	}
}

// offlineFor is how long a machine has been offline at a reminder: the
// outage so far if the event carries it, else since the last beat.
func offlineFor(ev notify.Event) time.Duration {
	if ev.DownFor > 0 {
		return ev.DownFor
	}
	if ev.Machine.LastSeen != nil && !ev.Machine.LastSeen.IsZero() && !ev.OccurredAt.IsZero() {
		return ev.OccurredAt.Sub(*ev.Machine.LastSeen)
	}
	return 0
}

// field writes one "*Label:* value" line, both parts escaped.
func field(b *strings.Builder, label, value string) {
	b.WriteString("*" + EscapeMarkdownV2(label+":") + "* " + EscapeMarkdownV2(value) + "\n")
}

// formatLastSeen renders a last-seen time for people: UTC, to the second,
// e.g. "2026-11-27 08:30:00 UTC".
func formatLastSeen(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04:05") + " UTC"
}

// HumanDuration renders an outage length for people: "3m12s", "1h5m",
// "2d3h4m". Seconds are dropped from outages of a day or more, where they
// are noise; a sub-second outage is "<1s".
func HumanDuration(d time.Duration) string {
	if d < time.Second {
		return "<1s"
	}
	d = d.Round(time.Second)
	if d >= 24*time.Hour {
		d = d.Round(time.Minute)
	}
	units := []struct {
		suffix string
		size   time.Duration
	}{{"d", 24 * time.Hour}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}}
	var b strings.Builder
	for _, u := range units {
		if n := d / u.size; n > 0 {
			b.WriteString(strconv.FormatInt(int64(n), 10) + u.suffix)
			d -= n * u.size
		}
	}
	return b.String()
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if strings.TrimSpace(v) != "" {
			return v
		}
	}
	return ""
}

// truncate cuts s to at most n characters, marking the cut.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
