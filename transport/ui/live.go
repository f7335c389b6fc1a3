package ui

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Live updates: each open page holds one server-sent-events stream. The
// stream polls ReadModel.Version (O(1)) and sends "change" when it moves;
// the page's script then fetches itself again and swaps its live region.
// Pages render the same HTML either way, so nothing is built client-side.
//
// A stream lasts at most liveMaxAge; the browser reconnects (retry: 1s) and
// refreshes once on reconnect, which also covers this node restarting.
const (
	liveMaxAge    = 10 * time.Minute
	liveKeepAlive = 15 * time.Second
)

func (u *UI) handleLive(w http.ResponseWriter, r *http.Request, _ *session) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	version := oneLine(u.opts.Read.Version())
	write := func(s string) bool {
		// The server's WriteTimeout would cut a long stream: extend it per write.
		_ = rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if _, err := fmt.Fprint(w, s); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write("retry: 1000\nevent: hello\ndata: " + version + "\n\n") {
		return
	}
	poll := time.NewTicker(u.opts.LivePoll)
	defer poll.Stop()
	keep := time.NewTicker(liveKeepAlive)
	defer keep.Stop()
	end := time.NewTimer(liveMaxAge)
	defer end.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-end.C:
			return
		case <-keep.C:
			if !write(": keep-alive\n\n") {
				return
			}
		case <-poll.C:
			if v := oneLine(u.opts.Read.Version()); v != version {
				version = v
				if !write("event: change\ndata: " + v + "\n\n") {
					return
				}
			}
		}
	}
}

// oneLine keeps a version from breaking the event-stream framing.
func oneLine(s string) string { return strings.NewReplacer("\n", " ", "\r", " ").Replace(s) }
