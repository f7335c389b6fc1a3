package ui

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lunasentri/lunasentri/fsm"
)

// The public status page and the badges show only machines whose labels
// include every StatusPageMatch pair, and of those only the name, the
// status and uptime: never keys, hostnames, labels or errors.

// Public responses are cacheable for this long: short, so an outage shows
// within a minute even behind a CDN.
const publicMaxAge = 30

type publicView struct {
	Machines  []publicMachine
	Incidents []publicIncident
	Down      int
	Total     int
	Updated   string
}

type publicMachine struct {
	Name, Status, Class, Percent string
	Bar                          uptimeBar
}

type publicIncident struct {
	Machine, Started, Duration string
	Ongoing                    bool
}

func (u *UI) onStatusPage(m *fsm.Machine) bool {
	if len(u.opts.StatusPageMatch) == 0 {
		return false
	}
	for k, v := range u.opts.StatusPageMatch {
		if lv, ok := m.Labels[k]; !ok || lv != v {
			return false
		}
	}
	return true
}

func (u *UI) publicMachines() []fsm.Machine {
	var out []fsm.Machine
	for _, m := range u.opts.Read.Machines() {
		if u.onStatusPage(&m) {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b fsm.Machine) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// downFirst orders the status page: what is down leads.
func downFirst(ms []fsm.Machine) {
	slices.SortStableFunc(ms, func(a, b fsm.Machine) int {
		ad, bd := a.Status == fsm.StatusOffline, b.Status == fsm.StatusOffline
		switch {
		case ad && !bd:
			return -1
		case bd && !ad:
			return 1
		}
		return 0
	})
}

// publicStatus is what a badge says: up, down, paused or unknown.
func publicStatus(s fsm.Status) string {
	switch s {
	case fsm.StatusOnline:
		return "up"
	case fsm.StatusOffline:
		return "down"
	case "paused":
		return "paused"
	}
	return "unknown"
}

func (u *UI) publicHeaders(w http.ResponseWriter) {
	u.securityHeaders(w)
	w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(publicMaxAge))
}

func (u *UI) handleStatusPage(w http.ResponseWriter, r *http.Request) {
	if len(u.opts.StatusPageMatch) == 0 {
		u.securityHeaders(w)
		u.renderError(w, r, http.StatusNotFound, "This cluster has no public status page (see -status-page-match).")
		return
	}
	u.publicHeaders(w)
	now := u.opts.Now().UTC()
	pv := &publicView{Updated: stamp(now)}
	ids := map[string]string{}
	ms := u.publicMachines()
	downFirst(ms)
	for _, m := range ms {
		ids[m.ID] = m.Name
		det, err := u.opts.Read.Machine(m.Name, now)
		if err != nil {
			continue // deleted in between
		}
		bars := uptimeBars(det.Segments, now)
		ps := publicStatus(m.Status)
		pv.Machines = append(pv.Machines, publicMachine{Name: m.Name, Status: ps, Class: publicClass(ps), Percent: bars[2].Percent, Bar: bars[2]})
		pv.Total++
		if m.Status == fsm.StatusOffline {
			pv.Down++
		}
	}
	// Recent incidents: offline events of these machines in the last 30 days,
	// with when they ended if the recovery is in the history too.
	events := u.opts.Read.Events(0)
	for _, ev := range events {
		if len(pv.Incidents) == 10 || now.Sub(ev.OccurredAt) > 30*24*time.Hour {
			break
		}
		name, ok := ids[ev.Machine.ID]
		if !ok || ev.Type != fsm.EventOffline {
			continue
		}
		inc := publicIncident{Machine: name, Started: stamp(ev.OccurredAt)}
		// The recovery is the next online event of the machine after this one.
		if d, ok := recoveryAfter(events, ev); ok {
			inc.Duration = human(d)
		} else {
			inc.Ongoing = true
			inc.Duration = human(now.Sub(ev.OccurredAt)) + " so far"
		}
		pv.Incidents = append(pv.Incidents, inc)
	}
	u.render(w, r, http.StatusOK, "status", &pageData{Title: "Status", Public: pv})
}

// recoveryAfter finds how long the outage that started with off lasted,
// from the machine's next online event (events are newest first).
func recoveryAfter(events []fsm.Event, off fsm.Event) (time.Duration, bool) {
	var next *fsm.Event
	for i := range events {
		ev := &events[i]
		if !ev.OccurredAt.After(off.OccurredAt) {
			break
		}
		if ev.Machine.ID == off.Machine.ID {
			next = ev // keep going back towards off: the earliest after it wins
		}
	}
	if next == nil || next.Type != fsm.EventOnline {
		return 0, false
	}
	return next.OccurredAt.Sub(off.OccurredAt), true
}

func publicClass(s string) string {
	switch s {
	case "up":
		return "online"
	case "down":
		return "offline"
	case "paused":
		return "paused"
	}
	return "unknown"
}

// ---- badges ----

type badgeData struct {
	Label, Message, Color string
	LabelW, MessageW, W   int
	LabelX, MessageX      int
	Title                 string
}

// Badge colours (shields.io's palette, readable on white and dark pages).
const (
	colorUp      = "#2e8540"
	colorDown    = "#c62828"
	colorPartial = "#b26a00"
	colorNeutral = "#6b7280"
)

// textWidth estimates Verdana 11px, as shields does without a font table:
// 7 px a character is wide enough for most text, and an overlong label
// only gets more padding.
func textWidth(s string) int { return 7*utf8.RuneCountInString(s) + 10 }

func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func (u *UI) writeBadge(w http.ResponseWriter, r *http.Request, label, message, color string) {
	label, message = clip(label, 40), clip(message, 24)
	b := badgeData{Label: label, Message: message, Color: color, Title: label + ": " + message}
	b.LabelW, b.MessageW = textWidth(label), textWidth(message)
	b.W = b.LabelW + b.MessageW
	b.LabelX, b.MessageX = b.LabelW/2, b.LabelW+b.MessageW/2
	var buf bytes.Buffer
	if err := u.badge.ExecuteTemplate(&buf, "badge", b); err != nil {
		u.logger.Error("render badge", "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	sum := sha256.Sum256(buf.Bytes())
	etag := `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`
	u.publicHeaders(w)
	// A badge is an image: it needs no script, and may be embedded anywhere
	// (README pages), so no frame-ancestors limit applies to it.
	w.Header().Set("Content-Security-Policy", "default-src 'none'")
	w.Header().Del("X-Frame-Options")
	w.Header().Set("ETag", etag)
	w.Header().Set("Content-Type", "image/svg+xml; charset=utf-8")
	if match := r.Header.Get("If-None-Match"); match != "" && strings.Contains(match, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	_, _ = w.Write(buf.Bytes())
}

func (u *UI) badgeNotFound(w http.ResponseWriter) {
	u.securityHeaders(w)
	w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(publicMaxAge))
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusNotFound)
	_, _ = w.Write([]byte("no such badge\n"))
}

func (u *UI) handleMachineBadge(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutSuffix(r.PathValue("file"), ".svg")
	if !ok || name == "" {
		u.badgeNotFound(w)
		return
	}
	for _, m := range u.publicMachines() {
		if m.Name != name {
			continue
		}
		s := publicStatus(m.Status)
		color := colorNeutral
		switch s {
		case "up":
			color = colorUp
		case "down":
			color = colorDown
		}
		u.writeBadge(w, r, m.Name, s, color)
		return
	}
	u.badgeNotFound(w)
}

func (u *UI) handleLabelBadge(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	value, ok := strings.CutSuffix(r.PathValue("value"), ".svg")
	if !ok {
		u.badgeNotFound(w)
		return
	}
	up, total := 0, 0
	for _, m := range u.publicMachines() {
		if lv, ok := m.Labels[key]; !ok || lv != value {
			continue
		}
		total++
		if m.Status == fsm.StatusOnline {
			up++
		}
	}
	if total == 0 {
		u.badgeNotFound(w)
		return
	}
	color := colorUp
	switch {
	case up == 0:
		color = colorDown
	case up < total:
		color = colorPartial
	}
	u.writeBadge(w, r, key+"="+value, strconv.Itoa(up)+"/"+strconv.Itoa(total)+" up", color)
}
