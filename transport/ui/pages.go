package ui

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lunasentri/lunasentri/fsm"
)

// pageData is what every template gets; each page fills its part.
type pageData struct {
	Title   string
	Nav     string
	Session *sessionView
	NodeID  string
	Flash   *flash
	CSS     string // cache-busting version of style.css
	Live    bool   // the page has a live region
	// Stale: this node is not ready (no leader known, or behind the log),
	// so what it shows may be out of date. Signed-in pages only.
	Stale string

	// sign-in
	CSRF, Next, Problem string
	SignedOut           bool
	SessionTTL          string

	// LeaderID is who leads, as this node knows it ("" when nobody does).
	LeaderID string

	// error page
	Status  int
	Message string

	Fleet    *fleetView
	Machine  *machineView
	Events   []eventRow
	Channels []channelRow
	Silences []silenceRow
	Cluster  *ClusterView
	Public   *publicView
}

type sessionView struct {
	Role     string
	CanWrite bool
	CSRF     string
	// HasSilences: the cluster has silences (issue 10), so the nav links them.
	HasSilences bool
}

func (u *UI) parseTemplates() error {
	u.pages = make(map[string]*template.Template)
	for _, name := range []string{"login", "error", "fleet", "machine", "events", "channels", "cluster", "status", "silences"} {
		t, err := template.New("").ParseFS(templateFS, "templates/layout.html", "templates/partials.html", "templates/"+name+".html")
		if err != nil {
			return fmt.Errorf("ui: template %s: %w", name, err)
		}
		u.pages[name] = t
	}
	b, err := template.New("").ParseFS(templateFS, "templates/badge.svg.html")
	if err != nil {
		return fmt.Errorf("ui: badge template: %w", err)
	}
	u.badge = b
	return nil
}

// render executes a page into a buffer first, so a template error is a
// clean 500 and not half a page.
func (u *UI) render(w http.ResponseWriter, r *http.Request, status int, name string, d *pageData) {
	d.CSS = u.cssHash
	if d.NodeID == "" || d.Session != nil {
		cv := u.opts.Read.Cluster()
		d.NodeID, d.LeaderID = cv.NodeID, cv.LeaderID
		// "applying log" is a follower a few entries behind, which under a
		// steady heartbeat load is true for a moment now and then: not news.
		if d.Session != nil && (cv.LeaderID == "" || !cv.Ready && cv.ReadyReason != "applying log") {
			d.Stale = "This node (" + cv.NodeID + ") is not ready"
			if cv.ReadyReason != "" {
				d.Stale += ": " + cv.ReadyReason
			}
			d.Stale += ". What you see may be behind; another node may know more."
		}
	}
	var buf bytes.Buffer
	if err := u.pages[name].ExecuteTemplate(&buf, "layout", d); err != nil {
		u.logger.Error("render page", "page", name, "error", err)
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

func (u *UI) renderError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	u.render(w, r, status, "error", &pageData{Title: http.StatusText(status), Status: status, Message: msg})
}

func (u *UI) base(w http.ResponseWriter, r *http.Request, s *session, title, nav string) *pageData {
	_, hasSilences := u.silenceReader()
	sv := &sessionView{Role: s.role, CanWrite: s.canWrite(), HasSilences: hasSilences}
	if !s.bearer {
		sv.CSRF = u.sessions.csrf("session", s.id)
	}
	return &pageData{Title: title, Nav: nav, Session: sv, Flash: u.takeFlash(w, r), Live: true}
}

// ---- fleet ----

type fleetView struct {
	Counts   []countCard
	Total    int
	Status   string
	Label    string
	Query    string
	Rows     []machineRow
	Matched  int
	From, To int
	Page     int
	Pages    int
	PrevURL  string
	NextURL  string
	ClearURL string
	Problem  string
}

type countCard struct {
	Status, Label, URL string
	N                  int
	Current            bool
}

type machineRow struct {
	Name, URL, Status, Class string
	Since                    when
	LastSeen                 when
	Labels                   []kv
	Hostname                 string
}

func (u *UI) handleFleet(w http.ResponseWriter, r *http.Request, s *session) {
	d := u.base(w, r, s, "Fleet", "fleet")
	d.Fleet = u.fleet(r.URL.Query())
	u.render(w, r, http.StatusOK, "fleet", d)
}

// fleet filters, orders and pages the machines. At 10k machines it is one
// pass to filter and count, and a sort of what matched.
func (u *UI) fleet(q url.Values) *fleetView {
	now := u.opts.Now()
	v := &fleetView{Status: q.Get("status"), Label: strings.TrimSpace(q.Get("label")), Query: strings.TrimSpace(q.Get("q"))}
	var lk, lv string
	hasLabel := false
	if v.Label != "" {
		var ok bool
		lk, lv, ok = strings.Cut(v.Label, "=")
		lk, lv = strings.TrimSpace(lk), strings.TrimSpace(lv)
		if !ok || lk == "" {
			v.Problem = "A label filter looks like key=value."
		} else {
			hasLabel = true
		}
	}
	query := strings.ToLower(v.Query)
	all := u.opts.Read.Machines()
	v.Total = len(all)
	counts := map[fsm.Status]int{}
	matched := make([]*fsm.Machine, 0, len(all))
	for i := range all {
		m := &all[i]
		if hasLabel && m.Labels[lk] != lv {
			continue
		}
		if query != "" && !strings.Contains(strings.ToLower(m.Name), query) {
			continue
		}
		counts[m.Status]++
		if v.Status != "" && string(m.Status) != v.Status {
			continue
		}
		matched = append(matched, m)
	}
	slices.SortFunc(matched, func(a, b *fsm.Machine) int {
		if ra, rb := statusRank(a.Status), statusRank(b.Status); ra != rb {
			return ra - rb
		}
		if a.Status == fsm.StatusOffline {
			// The newest outage first: that is what just paged someone.
			if c := b.StatusChangedAt.Compare(a.StatusChangedAt); c != 0 {
				return c
			}
		}
		return strings.Compare(a.Name, b.Name)
	})
	link := func(status string, page int) string {
		p := url.Values{}
		if status != "" {
			p.Set("status", status)
		}
		if v.Label != "" {
			p.Set("label", v.Label)
		}
		if v.Query != "" {
			p.Set("q", v.Query)
		}
		if page > 1 {
			p.Set("page", strconv.Itoa(page))
		}
		if len(p) == 0 {
			return "/ui/"
		}
		return "/ui/?" + p.Encode()
	}
	sum := 0
	for _, c := range []struct {
		s     fsm.Status
		label string
	}{{fsm.StatusOffline, "Offline"}, {fsm.StatusOnline, "Online"}, {fsm.StatusUnknown, "Never seen"}, {"paused", "Paused"}} {
		sum += counts[c.s]
		if c.s == "paused" && counts[c.s] == 0 {
			continue
		}
		v.Counts = append(v.Counts, countCard{Status: string(c.s), Label: c.label, N: counts[c.s], URL: link(string(c.s), 1), Current: v.Status == string(c.s)})
	}
	all1 := 0
	for _, n := range counts {
		all1 += n
	}
	if other := all1 - sum; other > 0 {
		v.Counts = append(v.Counts, countCard{Status: "other", Label: "Other", N: other, URL: link("", 1)})
	}
	v.Counts = append([]countCard{{Status: "all", Label: "All", N: all1, URL: link("", 1), Current: v.Status == ""}}, v.Counts...)

	v.Matched = len(matched)
	size := u.opts.PageSize
	v.Pages = max(1, (len(matched)+size-1)/size)
	v.Page, _ = strconv.Atoi(q.Get("page"))
	v.Page = min(max(v.Page, 1), v.Pages)
	lo := (v.Page - 1) * size
	hi := min(lo+size, len(matched))
	v.From, v.To = lo+1, hi
	if v.Page > 1 {
		v.PrevURL = link(v.Status, v.Page-1)
	}
	if v.Page < v.Pages {
		v.NextURL = link(v.Status, v.Page+1)
	}
	if v.Status != "" || v.Label != "" || v.Query != "" {
		v.ClearURL = "/ui/"
	}
	v.Rows = make([]machineRow, 0, hi-lo)
	for _, m := range matched[lo:hi] {
		v.Rows = append(v.Rows, machineRow{
			Name: m.Name, URL: "/ui/machines/" + url.PathEscape(m.Name),
			Status: string(m.Status), Class: statusClass(m.Status),
			Since: whenOf(m.StatusChangedAt, now), LastSeen: whenOf(m.LastSeen, now),
			Labels: sortedKV(m.Labels), Hostname: m.Hostname,
		})
	}
	return v
}

// ---- machine ----

type machineView struct {
	Name, Status, Class, Hostname, Description string
	Since, LastSeen, Created                   when
	Threshold                                  string
	ThresholdDefault                           bool
	Labels                                     []kv
	Agent                                      *agentView
	Bars                                       []uptimeBar
	Timeline                                   []eventRow
	Escaped                                    string // the name as a path segment
	CanPause, CanResume, CanSilence, CanExpire bool
	Silenced                                   []silenceRow
	// Issue 10: flapping, and why an offline machine is offline.
	Flapping        bool
	Reason, Message string
}

type agentView struct {
	Hostname, Version string
	Reported          when
	Info              []kv
}

func (u *UI) handleMachine(w http.ResponseWriter, r *http.Request, s *session) {
	name := r.PathValue("name")
	now := u.opts.Now().UTC()
	det, err := u.opts.Read.Machine(name, now)
	if errors.Is(err, fsm.ErrMachineNotFound) {
		u.renderError(w, r, http.StatusNotFound, "No machine is called “"+name+"”. It may have been deleted.")
		return
	}
	if err != nil {
		u.renderError(w, r, http.StatusInternalServerError, err.Error())
		return
	}
	m := det.Machine
	d := u.base(w, r, s, m.Name, "fleet")
	mv := &machineView{
		Name: m.Name, Status: string(m.Status), Class: statusClass(m.Status),
		Hostname: m.Hostname, Description: m.Description,
		Since: whenOf(m.StatusChangedAt, now), LastSeen: whenOf(m.LastSeen, now), Created: whenOf(m.CreatedAt, now),
		Threshold: m.Threshold(u.opts.Read.DefaultThreshold()).String(), ThresholdDefault: m.OfflineThreshold == 0,
		Labels: sortedKV(m.Labels), Escaped: url.PathEscape(m.Name),
		Bars:     uptimeBars(det.Segments, now),
		Flapping: m.Flapping, Message: m.Message,
	}
	if m.Reason == fsm.ReasonReported {
		mv.Reason = "Its agent reported a failure"
	}
	if a := det.Agent; a != nil {
		mv.Agent = &agentView{Hostname: a.Hostname, Version: a.AgentVersion, Reported: whenOf(a.ReportedAt, now), Info: sortedKV(a.Info)}
	}
	if s.canWrite() && u.opts.Actions != nil {
		paused := m.Status == "paused"
		mv.CanPause = !paused && u.opts.Actions.Available(ActionPause)
		mv.CanResume = paused && u.opts.Actions.Available(ActionPause)
		mv.CanSilence = u.opts.Actions.Available(ActionSilence)
	}
	mv.Silenced = u.silencesFor(m, now)
	mv.CanExpire = u.canExpire(s)
	for _, ev := range u.opts.Read.Events(0) {
		if ev.Machine.ID == m.ID {
			mv.Timeline = append(mv.Timeline, u.eventRow(ev, now))
			if len(mv.Timeline) == 50 {
				break
			}
		}
	}
	d.Machine = mv
	u.render(w, r, http.StatusOK, "machine", d)
}

// ---- events ----

type eventRow struct {
	ID, Type, Label, Class, Machine, MachineURL, DownFor, Reason, Message string
	At                                                                    when
	Deliveries                                                            []deliveryRow
}

type deliveryRow struct {
	Channel, Type, State, Class, Error string
	Attempts                           int
	Digest                             string
}

func (u *UI) eventRow(ev fsm.Event, now time.Time) eventRow {
	row := eventRow{
		ID: ev.ID, Type: ev.Type, Machine: ev.Machine.Name,
		MachineURL: "/ui/machines/" + url.PathEscape(ev.Machine.Name), At: whenOf(ev.OccurredAt, now),
	}
	switch ev.Type {
	case fsm.EventOffline:
		row.Label, row.Class = "went offline", "offline"
		row.Message = ev.Message
		if ev.Reason == fsm.ReasonReported {
			row.Reason = "its agent reported a failure"
		} else if ev.Reason == fsm.ReasonSilence {
			row.Reason = "no heartbeat within the threshold"
		}
	case fsm.EventOnline:
		row.Label, row.Class = "came back online", "online"
		if ev.DownFor > 0 {
			row.DownFor = human(ev.DownFor)
		}
	default:
		row.Label, row.Class = ev.Type, "other"
	}
	for _, dl := range ev.Deliveries {
		row.Deliveries = append(row.Deliveries, deliveryRow{
			Channel: dl.Channel, Type: dl.ChannelType, State: dl.State, Class: deliveryClass(dl.State),
			Error: dl.LastError, Attempts: dl.Attempts, Digest: dl.Digest,
		})
	}
	return row
}

func deliveryClass(s string) string {
	switch s {
	case fsm.DeliveryDelivered, fsm.DeliveryFailed, fsm.DeliveryPending, "silenced", "grouped", "suppressed":
		return s
	}
	return "other"
}

func (u *UI) handleEvents(w http.ResponseWriter, r *http.Request, s *session) {
	d := u.base(w, r, s, "Events", "events")
	now := u.opts.Now()
	for _, ev := range u.opts.Read.Events(200) {
		d.Events = append(d.Events, u.eventRow(ev, now))
	}
	u.render(w, r, http.StatusOK, "events", d)
}

// ---- channels ----

type channelRow struct {
	Name, Type, Escaped string
	Match               []kv
	Policy              []kv
	LastError           string
	LastErrorAt         when
	LastDelivered       when
	CanTest             bool
}

func (u *UI) handleChannels(w http.ResponseWriter, r *http.Request, s *session) {
	d := u.base(w, r, s, "Channels", "channels")
	now := u.opts.Now()
	events := u.opts.Read.Events(0)
	canTest := s.canWrite() && u.opts.Actions != nil && u.opts.Actions.Available(ActionTestChannel)
	for _, c := range u.opts.Read.Channels() {
		row := channelRow{Name: c.Name, Type: c.Type, Escaped: url.PathEscape(c.Name), Match: sortedKV(c.Match), CanTest: canTest}
		p := c.Policy
		if p.RepeatInterval > 0 {
			row.Policy = append(row.Policy, kv{Key: "repeat every", Value: p.RepeatInterval.String()})
		}
		if p.GroupAfter > 0 {
			row.Policy = append(row.Policy, kv{Key: "group after", Value: strconv.Itoa(p.GroupAfter)})
		}
		if p.GroupWindow > 0 {
			row.Policy = append(row.Policy, kv{Key: "group window", Value: p.GroupWindow.String()})
		}
		if len(p.GroupBy) > 0 {
			row.Policy = append(row.Policy, kv{Key: "group by", Value: strings.Join(p.GroupBy, ", ")})
		}
		// The newest outcome of each kind, from the event history.
		delivered := false
		for i := range events {
			for _, dl := range events[i].Deliveries {
				if dl.Channel != c.Name {
					continue
				}
				if dl.State == fsm.DeliveryDelivered && !delivered {
					row.LastDelivered, delivered = whenOf(dl.UpdatedAt, now), true
				}
				if dl.LastError != "" && row.LastError == "" {
					row.LastError, row.LastErrorAt = dl.LastError, whenOf(dl.UpdatedAt, now)
				}
			}
		}
		if !delivered {
			row.LastDelivered = when{Never: true}
		}
		d.Channels = append(d.Channels, row)
	}
	u.render(w, r, http.StatusOK, "channels", d)
}

// ---- cluster ----

func (u *UI) handleCluster(w http.ResponseWriter, r *http.Request, s *session) {
	d := u.base(w, r, s, "Cluster", "cluster")
	cv := u.opts.Read.Cluster()
	d.Cluster = &cv
	d.NodeID = cv.NodeID
	u.render(w, r, http.StatusOK, "cluster", d)
}
