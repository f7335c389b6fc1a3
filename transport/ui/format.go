package ui

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/lunasentri/lunasentri/fsm"
)

// human is a duration as people read it at a glance: "45s", "12m",
// "3h 12m", "2d 4h".
func human(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 24*time.Hour:
		h := int(d.Hours())
		if m := int(d.Minutes()) % 60; m != 0 {
			return fmt.Sprintf("%dh %dm", h, m)
		}
		return fmt.Sprintf("%dh", h)
	default:
		days := int(d.Hours()) / 24
		if h := int(d.Hours()) % 24; h != 0 {
			return fmt.Sprintf("%dd %dh", days, h)
		}
		return fmt.Sprintf("%dd", days)
	}
}

// stamp is an absolute time in UTC, for titles and tables.
func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// when is "12m ago" with the exact time for the title attribute.
type when struct {
	Ago, For, Exact string
	Never           bool
}

func whenOf(t, now time.Time) when {
	if t.IsZero() {
		return when{Never: true}
	}
	return when{Ago: human(now.Sub(t)) + " ago", For: human(now.Sub(t)), Exact: stamp(t)}
}

func percent(r float64) string {
	switch {
	case r >= 1:
		return "100%"
	case r >= 0.9999:
		return "99.99%"
	}
	return fmt.Sprintf("%.2f%%", r*100)
}

type kv struct {
	Key, Value string
	// Bidi: the text holds invisible direction controls (U+202A–U+202E,
	// U+2066–U+2069, U+200E/F): it is shown as stored, with a warning,
	// because what it looks like is not what it says.
	Bidi bool
}

func sortedKV(m map[string]string) []kv {
	out := make([]kv, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, kv{Key: k, Value: m[k], Bidi: hasBidiControl(k) || hasBidiControl(m[k])})
	}
	return out
}

func hasBidiControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool {
		return (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069) || r == 0x200E || r == 0x200F
	})
}

// statusClass maps a status to a CSS class; statuses this build does not
// know (a newer leader's) look neutral.
func statusClass(s fsm.Status) string {
	switch s {
	case fsm.StatusOnline, fsm.StatusOffline, fsm.StatusUnknown, "paused":
		return string(s)
	}
	return "other"
}

// statusRank orders the fleet: what needs a person first.
func statusRank(s fsm.Status) int {
	switch s {
	case fsm.StatusOffline:
		return 0
	case fsm.StatusUnknown:
		return 1
	case fsm.StatusOnline:
		return 3
	}
	return 2 // paused and anything newer
}
