package transport

import (
	"errors"
	"net/http"
	"time"

	"github.com/lunasentri/lunasentri/fsm"
)

// uptimeWindows are the windows GET /v1/machines/{name}/uptime accepts.
var uptimeWindows = map[string]time.Duration{
	"24h": 24 * time.Hour,
	"7d":  7 * 24 * time.Hour,
	"30d": 30 * 24 * time.Hour,
}

// uptimeView is GET /v1/machines/{name}/uptime (docs/api.md "Machines").
type uptimeView struct {
	Window          string  `json:"window"`
	Uptime          float64 `json:"uptime"`
	DowntimeSeconds float64 `json:"downtime_seconds"`
	Incidents       int     `json:"incidents"`
	// MonitoredSeconds is the time that counted (online + offline): a
	// machine first seen an hour ago has 3600 here whatever the window.
	MonitoredSeconds float64 `json:"monitored_seconds"`
}

// handleUptime answers from this node's replica: time paused, unknown or
// before the first beat is not counted; with nothing counted, uptime is 1.
func (a *API) handleUptime(w http.ResponseWriter, r *http.Request) {
	window := r.URL.Query().Get("window")
	if window == "" {
		window = "24h"
	}
	d, ok := uptimeWindows[window]
	if !ok {
		writeError(w, http.StatusBadRequest, "window must be 24h, 7d or 30d, not %q", window)
		return
	}
	now := time.Now().UTC()
	_, segs, err := a.opts.FSM.MachineHistory(r.PathValue("name"), now)
	if errors.Is(err, fsm.ErrMachineNotFound) {
		writeError(w, http.StatusNotFound, "machine %q not found", r.PathValue("name"))
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "%s", err.Error())
		return
	}
	u := fsm.UptimeIn(segs, now.Add(-d), now)
	writeJSON(w, http.StatusOK, uptimeView{
		Window: window, Uptime: u.Ratio(), DowntimeSeconds: u.Down.Seconds(),
		Incidents: u.Incidents, MonitoredSeconds: u.Monitored().Seconds(),
	})
}
