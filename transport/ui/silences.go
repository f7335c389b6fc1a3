package ui

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/lunasentri/lunasentri/fsm"
)

// Silence is one silence or maintenance window (docs/api.md "Silences and
// maintenance windows", issue 10) as the dashboard shows it.
type Silence struct {
	ID        string
	Matchers  map[string]string
	Machines  []string
	StartsAt  time.Time
	EndsAt    time.Time // zero for a recurring window
	Schedule  string    // five-field cron, for a maintenance window
	Timezone  string
	Duration  time.Duration
	Comment   string
	CreatedBy string
	State     string // pending, active or expired
}

// SilenceReader is implemented by a ReadModel once the cluster has
// silences. Without it the Silences page and its link are not shown.
type SilenceReader interface {
	Silences() []Silence
}

// SilenceExpirer is implemented by Actions that can expire a silence; the
// Expire buttons need it and ActionSilence to be available.
type SilenceExpirer interface {
	ExpireSilence(ctx context.Context, id string) error
}

type silenceRow struct {
	ID, State, Class, Comment, CreatedBy, Schedule string
	Matchers                                       []kv
	Machines                                       []machineLink
	Starts, Ends                                   when
	CanExpire                                      bool
}

type machineLink struct{ Name, URL string }

func (u *UI) silenceReader() (SilenceReader, bool) {
	r, ok := u.opts.Read.(SilenceReader)
	return r, ok
}

func (u *UI) canExpire(s *session) bool {
	_, ok := u.opts.Actions.(SilenceExpirer)
	return ok && s.canWrite() && u.opts.Actions.Available(ActionSilence)
}

func (u *UI) handleSilences(w http.ResponseWriter, r *http.Request, s *session) {
	sr, ok := u.silenceReader()
	if !ok {
		u.renderError(w, r, http.StatusNotFound, "Silences are not available on this server yet.")
		return
	}
	d := u.base(w, r, s, "Silences", "silences")
	now := u.opts.Now()
	list := sr.Silences()
	// Active first, then pending, then expired; newest start first within each.
	rank := map[string]int{"active": 0, "pending": 1}
	slices.SortStableFunc(list, func(a, b Silence) int {
		ra, okA := rank[a.State]
		rb, okB := rank[b.State]
		if !okA {
			ra = 2
		}
		if !okB {
			rb = 2
		}
		if ra != rb {
			return ra - rb
		}
		return b.StartsAt.Compare(a.StartsAt)
	})
	canExpire := u.canExpire(s)
	for _, sl := range list {
		row := silenceRow{
			ID: sl.ID, State: sl.State, Class: silenceClass(sl.State), Comment: sl.Comment, CreatedBy: sl.CreatedBy,
			Matchers: sortedKV(sl.Matchers), Starts: whenOf(sl.StartsAt, now), Ends: whenOf(sl.EndsAt, now),
			CanExpire: canExpire && sl.State != "expired",
		}
		if sl.Schedule != "" {
			row.Schedule = sl.Schedule + " for " + human(sl.Duration)
			if sl.Timezone != "" {
				row.Schedule += " (" + sl.Timezone + ")"
			}
		}
		for _, m := range sl.Machines {
			row.Machines = append(row.Machines, machineLink{Name: m, URL: machineURL(m)})
		}
		d.Silences = append(d.Silences, row)
	}
	u.render(w, r, http.StatusOK, "silences", d)
}

func silenceClass(state string) string {
	switch state {
	case "active", "pending", "expired":
		return state
	}
	return "other"
}

// silencesFor lists the active silences that cover a machine.
func (u *UI) silencesFor(m fsm.Machine, now time.Time) []silenceRow {
	sr, ok := u.silenceReader()
	if !ok {
		return nil
	}
	var out []silenceRow
	for _, sl := range sr.Silences() {
		if sl.State != "active" || !covers(sl, m) {
			continue
		}
		out = append(out, silenceRow{ID: sl.ID, Comment: sl.Comment, CreatedBy: sl.CreatedBy, Ends: whenOf(sl.EndsAt, now)})
	}
	return out
}

func covers(sl Silence, m fsm.Machine) bool {
	if slices.Contains(sl.Machines, m.Name) {
		return true
	}
	if len(sl.Matchers) == 0 {
		return false
	}
	for k, v := range sl.Matchers {
		if lv, ok := m.Labels[k]; !ok || lv != v {
			return false
		}
	}
	return true
}

func (u *UI) doExpireSilence(w http.ResponseWriter, r *http.Request, _ *session) {
	ex, ok := u.opts.Actions.(SilenceExpirer)
	if !ok {
		u.renderError(w, r, http.StatusNotImplemented, "This action is not available on this server yet.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), actionTimeout)
	defer cancel()
	id := r.PathValue("id")
	back := "/ui/silences"
	if next := r.PostForm.Get("back"); strings.HasPrefix(next, "/ui/machines/") {
		back = next
	}
	u.finish(w, r, back, "Expired silence "+id+".", ex.ExpireSilence(ctx, id))
}
