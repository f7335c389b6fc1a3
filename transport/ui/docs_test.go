//go:build docs

package ui_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/lunasentri/lunasentri/fsm"
	"github.com/lunasentri/lunasentri/transport/ui"
)

// TestBrowser_DocsScreenshots refreshes the screenshots in docs/ from a
// small, realistic fleet. It is built only with the docs tag (a chore, not
// a skipped test): go test -tags docs -run DocsScreenshots ./transport/ui/
func TestBrowser_DocsScreenshots(t *testing.T) {
	b := newBrowser(t)
	fl := newFleet(t)
	fl.now = time.Now().UTC().Add(-26 * time.Hour)
	t0 := fl.now
	type m struct{ name, env, role, host string }
	ms := []m{
		{"api-1", "prod", "api", "api-1.eu-west.example.net"}, {"api-2", "prod", "api", "api-2.eu-west.example.net"},
		{"db-primary", "prod", "db", "db-1.eu-west.example.net"}, {"db-replica", "prod", "db", "db-2.eu-west.example.net"},
		{"edge-ams", "prod", "edge", "edge-ams.example.net"}, {"edge-fra", "prod", "edge", "edge-fra.example.net"},
		{"queue-1", "prod", "queue", "mq-1.eu-west.example.net"}, {"web-1", "prod", "web", "web-1.eu-west.example.net"},
		{"web-2", "prod", "web", "web-2.eu-west.example.net"}, {"ci-runner-1", "ci", "ci", "runner-1.ci.example.net"},
		{"backup-nas", "office", "backup", "nas.office.example.net"}, {"staging-web", "staging", "web", "web.staging.example.net"},
	}
	var names []string
	for _, x := range ms {
		fl.apply(fsm.CmdRegisterMachine, fsm.RegisterMachine{Machine: fsm.Machine{
			ID: id(x.name), Name: x.name, Hostname: x.host, Labels: map[string]string{"env": x.env, "role": x.role, "public": map[bool]string{true: "yes", false: "no"}[x.env == "prod"]},
			Status: fsm.StatusUnknown, KeyHash: fsm.HashKey("key-" + x.name), CreatedAt: t0, StatusChangedAt: t0,
		}})
		names = append(names, x.name)
	}
	fl.register("new-laptop", map[string]string{"env": "office"})
	fl.apply(fsm.CmdCreateChannel, fsm.CreateChannel{Channel: fsm.Channel{Name: "oncall-telegram", Type: "telegram", ChatID: "1", Match: map[string]string{"env": "prod"}}})
	fl.apply(fsm.CmdCreateChannel, fsm.CreateChannel{Channel: fsm.Channel{Name: "ops-webhook", Type: "webhook", URL: "http://x", Match: map[string]string{},
		Policy: fsm.ChannelPolicy{RepeatInterval: 30 * time.Minute}}})
	fl.beat(t0, names...)
	outage := func(name string, at time.Time, d time.Duration, failed bool) {
		ev := fl.offline(at, name)
		res := []fsm.DeliveryResult{{EventID: ev[0], Channel: "ops-webhook", State: fsm.DeliveryDelivered, Attempts: 1}}
		if failed {
			res[0] = fsm.DeliveryResult{EventID: ev[0], Channel: "ops-webhook", State: fsm.DeliveryFailed, Attempts: 6, LastError: "POST https://hooks.example.com/lunasentri: 503 Service Unavailable"}
		}
		if mm, _ := fl.f.MachineByName(name); mm.Labels["env"] == "prod" {
			res = append(res, fsm.DeliveryResult{EventID: ev[0], Channel: "oncall-telegram", State: fsm.DeliveryDelivered, Attempts: 1})
		}
		fl.apply(fsm.CmdRecordDeliveries, fsm.RecordDeliveries{At: at.Add(time.Second), Results: res})
		if d > 0 {
			fl.beat(at.Add(d), name)
		}
	}
	outage("edge-fra", t0.Add(3*time.Hour), 40*time.Minute, false)
	outage("queue-1", t0.Add(9*time.Hour), 12*time.Minute, true)
	outage("edge-fra", t0.Add(20*time.Hour), 7*time.Minute, false)
	// Keep the rest fresh, then two current outages.
	var others []string
	for _, n := range names {
		if n != "db-replica" && n != "backup-nas" {
			others = append(others, n)
		}
	}
	now := time.Now().UTC()
	fl.beat(now.Add(-2*time.Hour-15*time.Minute), "backup-nas")
	fl.beat(now.Add(-7*time.Minute), "db-replica")
	outage("backup-nas", now.Add(-2*time.Hour-14*time.Minute), 0, false)
	outage("db-replica", now.Add(-6*time.Minute), 0, false)
	fl.beat(now.Add(-4*time.Second), others...)
	// Everything still pending was delivered, except the newest outage's.
	for _, pd := range fl.f.PendingDeliveries() {
		if pd.Event.Machine.Name == "db-replica" && pd.Delivery.Channel == "ops-webhook" {
			continue
		}
		fl.apply(fsm.CmdRecordDeliveries, fsm.RecordDeliveries{At: pd.Event.OccurredAt.Add(time.Second), Results: []fsm.DeliveryResult{
			{EventID: pd.Event.ID, Channel: pd.Delivery.Channel, State: fsm.DeliveryDelivered, Attempts: 1}}})
	}

	s := newSite(t, fl, func(o *ui.Options) { o.StatusPageMatch = map[string]string{"public": "yes"} })
	ctx := b.tab()
	signInBrowser(t, ctx, s.srv.URL, adminTok)
	dir := filepath.Join("..", "..", "docs")
	save := func(name string, full bool) {
		var buf []byte
		var err error
		if full {
			buf, err = chromedp.Run(ctx, chromedp.FullScreenshot(100))
		} else {
			buf, err = chromedp.Run(ctx, chromedp.CaptureScreenshot())
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	must(t, ctx, "fleet", chromedp.EmulateViewport(1200, 640), chromedp.Navigate(s.srv.URL+"/ui/"), chromedp.WaitVisible(".counts"))
	save("ui-fleet.png", true)
	must(t, ctx, "machine", chromedp.EmulateViewport(1200, 900), chromedp.Navigate(s.srv.URL+"/ui/machines/edge-fra"), chromedp.WaitVisible("svg.bar"))
	save("ui-machine.png", true)
	must(t, ctx, "status", chromedp.EmulateViewport(1000, 600), chromedp.Navigate(s.srv.URL+"/status"), chromedp.WaitVisible(".public-list"))
	save("status-page.png", true)
}
