package ui

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"
)

// actionTimeout bounds one action; a channel test waits for the receiver
// (the dispatcher's own send timeout is 10s).
const actionTimeout = 30 * time.Second

func (u *UI) finish(w http.ResponseWriter, r *http.Request, back, okMsg string, err error) {
	switch {
	case errors.Is(err, ErrUnavailable):
		u.setFlash(w, r, "error", "This action is not available on this server yet.")
	case err != nil:
		u.setFlash(w, r, "error", err.Error())
	default:
		u.setFlash(w, r, "ok", okMsg)
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

func machineURL(name string) string { return "/ui/machines/" + url.PathEscape(name) }

func (u *UI) doPause(w http.ResponseWriter, r *http.Request, _ *session) {
	ctx, cancel := context.WithTimeout(r.Context(), actionTimeout)
	defer cancel()
	name := r.PathValue("name")
	u.finish(w, r, machineURL(name), "Paused "+name+": no alerts until it is resumed.", u.opts.Actions.Pause(ctx, name))
}

func (u *UI) doResume(w http.ResponseWriter, r *http.Request, _ *session) {
	ctx, cancel := context.WithTimeout(r.Context(), actionTimeout)
	defer cancel()
	name := r.PathValue("name")
	u.finish(w, r, machineURL(name), "Resumed "+name+": it is watched again from its next heartbeat.", u.opts.Actions.Resume(ctx, name))
}

// silenceDurations are what the machine page offers.
var silenceDurations = map[string]time.Duration{"1h": time.Hour, "4h": 4 * time.Hour, "24h": 24 * time.Hour}

func (u *UI) doSilence(w http.ResponseWriter, r *http.Request, _ *session) {
	name := r.PathValue("name")
	d, ok := silenceDurations[r.PostForm.Get("duration")]
	if !ok {
		u.renderError(w, r, http.StatusBadRequest, "Silence for 1h, 4h or 24h.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), actionTimeout)
	defer cancel()
	err := u.opts.Actions.Silence(ctx, name, d, "silenced from the dashboard")
	u.finish(w, r, machineURL(name), "Silenced "+name+" for "+r.PostForm.Get("duration")+".", err)
}

func (u *UI) doTestChannel(w http.ResponseWriter, r *http.Request, _ *session) {
	ctx, cancel := context.WithTimeout(r.Context(), actionTimeout)
	defer cancel()
	name := r.PathValue("name")
	err := u.opts.Actions.TestChannel(ctx, name)
	if err != nil && !errors.Is(err, ErrUnavailable) {
		err = errors.New("The test message to " + name + " failed: " + err.Error())
	}
	u.finish(w, r, "/ui/channels", "The test message to "+name+" was delivered.", err)
}
