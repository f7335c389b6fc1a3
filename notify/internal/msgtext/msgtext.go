// Package msgtext is the wording people read in the chat, push and mail
// channel types (slack, ntfy, email, pagerduty summaries): one title and a
// few labelled fields per event, and the lines of a digest. It returns
// plain, unescaped text; each channel escapes it for its own format. It must
// never format for one channel (no markup) nor cut text without marking the
// cut.
package msgtext

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/lunasentri/lunasentri/notify"
	"github.com/lunasentri/lunasentri/notify/telegram"
)

// Caps, in characters, for free text from machines and agents.
const (
	MaxName        = 200
	MaxDescription = 500
	MaxMessage     = 1000
	// DigestNames is how many machines a digest names (as Telegram's).
	DigestNames = 20
)

// Name is the machine's display name.
func Name(m notify.Machine) string {
	for _, s := range []string{m.Name, m.Hostname, m.ID} {
		if strings.TrimSpace(s) != "" {
			return Truncate(s, MaxName)
		}
	}
	return "unknown machine"
}

// Title says what happened in one line: "db-1 is offline".
func Title(ev notify.Event) string {
	name := Name(ev.Machine)
	switch ev.Type {
	case notify.EventOffline:
		if ev.Reminder > 0 {
			return fmt.Sprintf("%s is still offline (reminder %d)", name, ev.Reminder)
		}
		return name + " is offline"
	case notify.EventOnline:
		return name + " is back online"
	case notify.EventFlapping:
		return name + " is flapping"
	case notify.EventTest:
		return "LunaSentri test message"
	}
	return name + ": " + ev.Type
}

// Field is one labelled line of a message.
type Field struct{ Name, Value string }

// Fields are the details of ev, in reading order.
func Fields(ev notify.Event) []Field {
	m := ev.Machine
	var out []Field
	if ev.Type == notify.EventTest {
		out = append(out, Field{"About", "This channel is connected to LunaSentri; no machine changed state."})
		if m.Hostname != "" {
			out = append(out, Field{"Sent by", Truncate(m.Hostname, MaxName)})
		}
		return out
	}
	if ev.Type == notify.EventFlapping {
		out = append(out, Field{"About", "It keeps going offline and online. Its changes are recorded but not sent until it has been stable for a while; then you get its state once."})
	}
	host := m.Hostname
	if host == "" {
		host = "unknown"
	}
	out = append(out, Field{"Hostname", Truncate(host, MaxName)}, Field{"Last seen", LastSeen(m.LastSeen)})
	if ev.Type == notify.EventOffline {
		out = append(out, Field{"Reason", Reason(ev)})
		if ev.Reminder > 0 {
			if d := OfflineFor(ev); d > 0 {
				out = append(out, Field{"Offline for", telegram.HumanDuration(d)})
			}
		}
	}
	if ev.Type == notify.EventOnline && ev.DownFor > 0 {
		out = append(out, Field{"Down for", telegram.HumanDuration(ev.DownFor)})
	}
	if m.Description != "" {
		out = append(out, Field{"Description", Truncate(m.Description, MaxDescription)})
	}
	return out
}

// Reason says in words why a machine went offline.
func Reason(ev notify.Event) string {
	if ev.Reason == notify.ReasonReported || ev.Message != "" {
		if msg := strings.TrimSpace(ev.Message); msg != "" {
			return "reported: " + Truncate(msg, MaxMessage)
		}
		return "reported by the machine"
	}
	return "no heartbeat within the threshold"
}

// OfflineFor is the outage so far at a reminder.
func OfflineFor(ev notify.Event) time.Duration {
	if ev.DownFor > 0 {
		return ev.DownFor
	}
	if ev.Machine.LastSeen != nil && !ev.Machine.LastSeen.IsZero() && !ev.OccurredAt.IsZero() {
		return ev.OccurredAt.Sub(*ev.Machine.LastSeen)
	}
	return 0
}

// LastSeen renders a last-seen time: UTC to the second, or "never".
func LastSeen(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04:05") + " UTC"
}

// Counts is "4 offline, 1 online".
func Counts(offline, online int) string {
	return strconv.Itoa(offline) + " offline, " + strconv.Itoa(online) + " online"
}

// DigestTitle is the one-line summary of a digest.
func DigestTitle(d notify.Digest) string {
	off, on := d.Counts()
	return "LunaSentri digest: " + Counts(off, on)
}

// DigestGroups are the group_by rows: "env=prod, team=core: 3 offline, 0 online".
func DigestGroups(d notify.Digest, max int) (lines []string, more int) {
	groups := d.Groups()
	for i, g := range groups {
		if i == max {
			return lines, len(groups) - max
		}
		parts := make([]string, 0, len(d.GroupBy))
		for _, k := range d.GroupBy {
			v := g.Labels[k]
			if v == "" {
				v = "(none)"
			}
			parts = append(parts, Truncate(k, 40)+"="+Truncate(v, 40))
		}
		lines = append(lines, strings.Join(parts, ", ")+": "+Counts(g.Offline, g.Online))
	}
	return lines, 0
}

// DigestEntry is one named machine of a digest.
type DigestEntry struct {
	Type string // the event type
	Text string // "db-1", "db-2 (reported)"
}

// DigestNamesOf lists up to max events of d and how many more there are.
func DigestNamesOf(d notify.Digest, max int) (entries []DigestEntry, more int) {
	for i, ev := range d.Events {
		if i == max {
			return entries, len(d.Events) - max
		}
		text := Truncate(Name(ev.Machine), 64)
		switch {
		case ev.Type == notify.EventOffline && ev.Reminder > 0:
			text += fmt.Sprintf(" (still offline, reminder %d)", ev.Reminder)
		case ev.Type == notify.EventOffline && ev.Reason == notify.ReasonReported:
			text += " (reported)"
		case ev.Type == notify.EventFlapping:
			text += " (flapping)"
		}
		entries = append(entries, DigestEntry{Type: ev.Type, Text: text})
	}
	return entries, 0
}

// Verb is the state word of an event type: "offline", "online", "flapping".
func Verb(typ string) string {
	switch typ {
	case notify.EventOffline:
		return "offline"
	case notify.EventOnline:
		return "online"
	case notify.EventFlapping:
		return "flapping"
	}
	return typ
}

// Truncate cuts s to at most n characters, marking the cut.
func Truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
