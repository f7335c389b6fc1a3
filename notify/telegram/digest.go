package telegram

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/lunasentri/lunasentri/notify"
)

// Digest text limits. Telegram refuses a message over 4096 characters
// (counted in UTF-16 code units); we stay below that after escaping, whatever
// the label values and names are, and keep a margin for Telegram's own
// counting of entities.
const (
	MaxMessageChars = 4096
	digestBudget    = 4000
	// digestNames is how many machines a digest names (docs/api.md: up to 20).
	digestNames = 20
	// digestGroups is how many group_by rows a digest shows; the rest are
	// summed into one "… and N more groups" line.
	digestGroups = 15
	// Per-item caps, in characters, before escaping.
	digestNameChars  = 64
	digestLabelChars = 40
)

var _ notify.DigestNotifier = (*chat)(nil)

// NotifyDigest sends a digest as one message: counts, the group_by
// breakdown and up to 20 names.
func (ch *chat) NotifyDigest(ctx context.Context, d notify.Digest) (bool, error) {
	c := ch.client
	if err := ctx.Err(); err != nil {
		return true, fmt.Errorf("telegram: not sent: %w", err)
	}
	if c.token == "" {
		return false, ErrTokenNotConfigured
	}
	if err := ValidateChatID(ch.id); err != nil {
		return false, err
	}
	if len(d.Events) == 0 {
		return false, ErrEmptyDigest
	}
	return c.deliver(ctx, ch.id, formatDigest(d))
}

// textLen is the length Telegram counts: UTF-16 code units.
func textLen(s string) int { return len(utf16.Encode([]rune(s))) }

// formatDigest renders a digest as MarkdownV2 within digestBudget.
func formatDigest(d notify.Digest) string {
	offline, online := d.Counts()
	other := len(d.Events) - offline - online
	var lines []string
	head := "📋 *" + EscapeMarkdownV2(fmt.Sprintf("LunaSentri digest: %s", countText(offline, online))) + "*"
	lines = append(lines, head)
	if other > 0 {
		lines = append(lines, EscapeMarkdownV2(fmt.Sprintf("and %d other notices", other)))
	}
	used := textLen(strings.Join(lines, "\n"))
	// fits adds line if there is room for it and for a final "… and N
	// more" line after it.
	const reserve = 40
	limit := digestBudget / 2 // the breakdown leaves half for the names
	fits := func(line string) bool {
		if used+1+textLen(line)+reserve > limit {
			return false
		}
		lines = append(lines, line)
		used += 1 + textLen(line)
		return true
	}

	if groups := d.Groups(); len(groups) > 0 {
		fits("")
		fits("*" + EscapeMarkdownV2("By "+strings.Join(truncateAll(d.GroupBy, digestLabelChars), ", ")+":") + "*")
		shown := 0
		for _, g := range groups {
			if shown == digestGroups || !fits(EscapeMarkdownV2("• "+groupText(d.GroupBy, g)+": "+countText(g.Offline, g.Online))) {
				break
			}
			shown++
		}
		if rest := len(groups) - shown; rest > 0 {
			lines = append(lines, EscapeMarkdownV2(fmt.Sprintf("… and %d more groups", rest)))
			used += 1 + textLen(lines[len(lines)-1])
		}
	}

	limit = digestBudget
	fits("")
	fits("*" + EscapeMarkdownV2("Machines:") + "*")
	shown := 0
	for _, ev := range d.Events {
		if shown == digestNames || !fits(digestLine(ev)) {
			break
		}
		shown++
	}
	if rest := len(d.Events) - shown; rest > 0 {
		lines = append(lines, EscapeMarkdownV2(fmt.Sprintf("… and %d more", rest)))
	}
	return strings.Join(lines, "\n")
}

func countText(offline, online int) string {
	return strconv.Itoa(offline) + " offline, " + strconv.Itoa(online) + " online"
}

// groupText is "env=prod, team=core" for one group_by row; an absent label
// shows as "(none)".
func groupText(by []string, g notify.DigestGroup) string {
	parts := make([]string, 0, len(by))
	for _, k := range by {
		v := g.Labels[k]
		if v == "" {
			v = "(none)"
		}
		parts = append(parts, truncate(k, digestLabelChars)+"="+truncate(v, digestLabelChars))
	}
	return strings.Join(parts, ", ")
}

func truncateAll(ss []string, n int) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = truncate(s, n)
	}
	return out
}

// digestLine is one machine in the names list.
func digestLine(ev notify.Event) string {
	m := ev.Machine
	name := truncate(firstNonEmpty(m.Name, m.Hostname, m.ID, "unknown machine"), digestNameChars)
	switch ev.Type {
	case notify.EventOffline:
		s := "🔴 " + EscapeMarkdownV2(name)
		if ev.Reminder > 0 {
			s += " " + EscapeMarkdownV2("(still offline, reminder "+strconv.Itoa(ev.Reminder)+")")
		} else if ev.Reason == notify.ReasonReported {
			s += " " + EscapeMarkdownV2("(reported)")
		}
		return s
	case notify.EventOnline:
		return "🟢 " + EscapeMarkdownV2(name)
	case notify.EventFlapping:
		return "🟠 " + EscapeMarkdownV2(name+" (flapping)")
	default:
		return "• " + EscapeMarkdownV2(name)
	}
}
