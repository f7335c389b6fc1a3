package transport_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/lunasentri/lunasentri/fsm"
)

func TestUptime_WindowsAndErrors(t *testing.T) {
	n := newNode(t, true, nil)
	n.register(t, "web-1")
	id := machine(t, n.fsm, "web-1").ID
	apply := func(typ fsm.CommandType, body any) {
		t.Helper()
		if _, _, err := n.cons.Apply(context.Background(), fsm.MustEncode(typ, body)); err != nil {
			t.Fatal(err)
		}
	}
	// Online two hours ago, offline for 30 minutes, back an hour ago.
	now := time.Now().UTC()
	first, down, back := now.Add(-2*time.Hour), now.Add(-90*time.Minute), now.Add(-time.Hour)
	apply(fsm.CmdHeartbeatBatch, fsm.HeartbeatBatch{At: first, DefaultThreshold: time.Minute,
		Beats: []fsm.Beat{{ID: id, SeenAt: first.UnixNano()}}})
	apply(fsm.CmdMarkOffline, fsm.MarkOffline{At: down, Machines: []fsm.OfflineMark{{ID: id, LastSeen: first}}})
	apply(fsm.CmdHeartbeatBatch, fsm.HeartbeatBatch{At: back, DefaultThreshold: time.Minute,
		Beats: []fsm.Beat{{ID: id, SeenAt: back.UnixNano()}}})

	for _, w := range []string{"24h", "7d", "30d"} {
		r := n.admin(t, "GET", "/v1/machines/web-1/uptime?window="+w, "")
		if r.status != http.StatusOK {
			t.Fatalf("%s: %d %s", w, r.status, r.raw)
		}
		if r.body["window"] != w || r.body["incidents"] != 1.0 {
			t.Fatalf("%s: %s", w, r.raw)
		}
		// 30 min down out of ~2 h counted: the time before the first beat
		// is not counted, whatever the window.
		if ds := r.body["downtime_seconds"].(float64); ds < 1799.99 || ds > 1800.01 {
			t.Fatalf("%s downtime_seconds = %v", w, ds)
		}
		if u := r.body["uptime"].(float64); u < 0.74 || u > 0.76 {
			t.Fatalf("%s uptime = %v, want about 0.75", w, u)
		}
	}
	wantJSONError(t, n.admin(t, "GET", "/v1/machines/web-1/uptime?window=1y", ""), http.StatusBadRequest)
	wantJSONError(t, n.admin(t, "GET", "/v1/machines/nope/uptime?window=24h", ""), http.StatusNotFound)
	wantJSONError(t, call(t, "GET", n.srv.URL+"/v1/machines/web-1/uptime", "", ""), http.StatusUnauthorized)
}
