package ui_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/lunasentri/lunasentri/fsm"
	"github.com/lunasentri/lunasentri/internal/testenv"
	"github.com/lunasentri/lunasentri/transport/ui"
)

// The real-browser tests drive Debian's chromium (make tools installs it)
// through chromedp. Without chromium they skip, except under CI, where a
// missing browser is a failure. Screenshots go to screenshots/ (git-ignored).

func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testenv.MissingCapability(t, "chromium is not installed (make tools installs it); the browser tests must run in CI")
	return ""
}

// browser starts one headless chromium for a test; each call of tab opens a
// fresh, cookie-less browser context in it.
type browser struct {
	t     *testing.T
	alloc context.Context
}

func newBrowser(t *testing.T) *browser {
	path := chromiumPath(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-gpu", true), chromedp.Flag("hide-scrollbars", true))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	alloc, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	// The browser itself starts with the first context.
	root, cancelRoot := chromedp.NewContext(alloc)
	if err := chromedp.Do(root); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	t.Cleanup(cancelRoot)
	return &browser{t: t, alloc: root}
}

func (b *browser) tab() context.Context {
	ctx, cancel := chromedp.NewContext(b.alloc, chromedp.WithNewBrowserContext())
	b.t.Cleanup(cancel)
	ctx, cancelT := context.WithTimeout(ctx, 60*time.Second)
	b.t.Cleanup(cancelT)
	if err := chromedp.Do(ctx); err != nil {
		b.t.Fatal(err)
	}
	return ctx
}

func must(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		shot(t, ctx, "failed-"+strings.ReplaceAll(what, " ", "-"))
		t.Fatalf("%s: %v", what, err)
	}
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	dir := "screenshots"
	_ = os.MkdirAll(dir, 0o755)
	if err := os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644); err != nil {
		t.Logf("write screenshot: %v", err)
	}
}

func signInBrowser(t *testing.T, ctx context.Context, base, token string) {
	t.Helper()
	must(t, ctx, "sign in",
		chromedp.Navigate(base+"/ui/"),
		chromedp.WaitVisible("#token"),
		chromedp.SendKeys("#token", token),
		chromedp.Submit("#token"),
		chromedp.WaitVisible(".counts"),
	)
}

// pwned is set by any hostile label that manages to run.
const pwnedCheck = `typeof window.pwned === "undefined"`

func browserFleet(t *testing.T) *fleet {
	fl := newFleet(t)
	t0 := fl.now
	var names []string
	for i := range 1000 {
		n := fmt.Sprintf("web-%04d", i)
		labels := map[string]string{"env": []string{"prod", "staging", "dev"}[i%3], "role": "web", "public": "yes"}
		if i == 3 {
			labels["note"] = `<script>window.pwned=1</script>`
			labels["evil"] = `"><img src=x onerror="window.pwned=2">`
			labels["rtl"] = "\u202eevil\u202c עברית"
		}
		fl.register(n, labels)
		names = append(names, n)
	}
	fl.register(`<img src=x onerror="window.pwned=3">`, map[string]string{"public": "yes"})
	fl.apply(fsm.CmdCreateChannel, fsm.CreateChannel{Channel: fsm.Channel{Name: "ops-webhook", Type: "webhook", URL: "http://x", Match: map[string]string{"env": "prod"}}})
	fl.apply(fsm.CmdCreateChannel, fsm.CreateChannel{Channel: fsm.Channel{Name: "oncall-telegram", Type: "telegram", ChatID: "1", Match: map[string]string{}}})
	fl.beat(t0, names...)
	// A few outages: two still down, one that recovered.
	for i, n := range []string{"web-0003", "web-0042", "web-0100"} {
		ev := fl.offline(t0.Add(time.Duration(30+20*i)*time.Minute), n)
		fl.apply(fsm.CmdRecordDeliveries, fsm.RecordDeliveries{At: t0.Add(time.Hour), Results: []fsm.DeliveryResult{
			{EventID: ev[0], Channel: "oncall-telegram", State: fsm.DeliveryDelivered, Attempts: 1},
		}})
	}
	fl.beat(t0.Add(2*time.Hour), "web-0100")
	return fl
}

func TestBrowser_Dashboard(t *testing.T) {
	b := newBrowser(t)
	fl := browserFleet(t)
	s := newSite(t, fl, func(o *ui.Options) {
		o.StatusPageMatch = map[string]string{"public": "yes"}
		o.Auth = roles{adminTok: ui.RoleAdmin, readTok: ui.RoleRead}
	})
	base := s.srv.URL
	ctx := b.tab()

	// Sign-in page, then the fleet.
	must(t, ctx, "login page", chromedp.Navigate(base+"/ui/"), chromedp.WaitVisible("#token"))
	shot(t, ctx, "01-login")
	signInBrowser(t, ctx, base, adminTok)
	shot(t, ctx, "02-fleet")
	if n := eval[int](t, ctx, `document.querySelectorAll("table.fleet tbody tr").length`); n != 100 {
		t.Fatalf("fleet shows %d rows, want a page of 100", n)
	}
	first := eval[string](t, ctx, `document.querySelector("table.fleet tbody tr th a").textContent`)
	if first != "web-0042" {
		t.Fatalf("first row is %q, want the newest outage web-0042", first)
	}
	if !eval[bool](t, ctx, pwnedCheck) {
		t.Fatal("a hostile label ran script on the fleet page")
	}
	// The label is shown literally.
	if !eval[bool](t, ctx, `[...document.querySelectorAll(".label .v")].some(e => e.textContent === "<script>window.pwned=1</script>")`) {
		t.Fatal("the <script> label is not shown as text")
	}

	// Filters: by name, then by label and status.
	must(t, ctx, "filter by name",
		chromedp.SendKeys(`input[name="q"]`, "web-00"),
		chromedp.Submit(`input[name="q"]`),
		chromedp.WaitVisible(`a.clear`),
	)
	if n := eval[int](t, ctx, `document.querySelectorAll("table.fleet tbody tr").length`); n != 100 {
		t.Fatalf("name filter: %d rows", n)
	}
	must(t, ctx, "filter by label and status", chromedp.Navigate(base+"/ui/?label=env%3Dprod&status=offline"), chromedp.WaitVisible(".counts"))
	shot(t, ctx, "03-fleet-filtered")
	if got := eval[string](t, ctx, `[...document.querySelectorAll("table.fleet tbody th a")].map(a => a.textContent).join(",")`); got != "web-0042,web-0003" {
		t.Fatalf("prod+offline = %q", got)
	}

	// A machine page, with its uptime bars and timeline.
	must(t, ctx, "machine page", chromedp.Navigate(base+"/ui/machines/web-0003"), chromedp.WaitVisible("svg.bar"))
	shot(t, ctx, "04-machine")
	if n := eval[int](t, ctx, `document.querySelectorAll("svg.bar rect").length`); n != 24+168+30 {
		t.Fatalf("uptime cells: %d", n)
	}
	if !eval[bool](t, ctx, pwnedCheck) {
		t.Fatal("a hostile label ran script on the machine page")
	}
	must(t, ctx, "recovered machine", chromedp.Navigate(base+"/ui/machines/web-0100"), chromedp.WaitVisible("svg.bar"))
	shot(t, ctx, "05-machine-recovered")

	// Pause from the UI.
	must(t, ctx, "pause", chromedp.Click(`.actions form[action$="/pause"] button`), chromedp.WaitVisible(".flash-ok"))
	if calls := s.act.Calls(); len(calls) != 1 || calls[0] != "pause web-0100" {
		t.Fatalf("actions = %v", calls)
	}

	// A live transition arrives without a reload.
	must(t, ctx, "fleet for live", chromedp.Navigate(base+"/ui/?q=web-0007"), chromedp.WaitVisible("#live-state.on"))
	eval[bool](t, ctx, `window.noReload = true`)
	start := time.Now()
	fl.offline(time.Now().UTC(), "web-0007")
	must(t, ctx, "live transition", chromedp.WaitVisible(`tr.row-offline`))
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the transition took %v to show", d)
	}
	if !eval[bool](t, ctx, `window.noReload === true`) {
		t.Fatal("the page reloaded instead of updating live")
	}
	shot(t, ctx, "06-fleet-live")

	for _, p := range []string{"events", "channels", "cluster"} {
		must(t, ctx, p, chromedp.Navigate(base+"/ui/"+p), chromedp.WaitVisible("main h1"))
		shot(t, ctx, "07-"+p)
		if !eval[bool](t, ctx, pwnedCheck) {
			t.Fatalf("a hostile name ran script on %s", p)
		}
	}

	// Dark theme follows prefers-color-scheme.
	if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}}); err != nil {
		t.Fatal(err)
	}
	must(t, ctx, "dark machine", chromedp.Navigate(base+"/ui/machines/web-0003"), chromedp.WaitVisible("svg.bar"))
	shot(t, ctx, "08-machine-dark")
	must(t, ctx, "dark fleet", chromedp.Navigate(base+"/ui/"), chromedp.WaitVisible(".counts"))
	shot(t, ctx, "08-fleet-dark")
	if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{}); err != nil {
		t.Fatal(err)
	}

	// Sign out: the dashboard asks to sign in again.
	must(t, ctx, "sign out", chromedp.Click(`form[action="/ui/logout"] button`), chromedp.WaitVisible("#token"))
	must(t, ctx, "after sign-out", chromedp.Navigate(base+"/ui/"), chromedp.WaitVisible("#token"))

	// The status page and badges need no cookie.
	must(t, ctx, "status page", chromedp.Navigate(base+"/status"), chromedp.WaitVisible(".public-list"))
	shot(t, ctx, "09-status")
	if !eval[bool](t, ctx, pwnedCheck) {
		t.Fatal("a hostile name ran script on the status page")
	}
	if eval[bool](t, ctx, `document.body.textContent.includes("env") || document.body.textContent.includes("host-")`) {
		t.Fatal("the status page shows labels or hostnames")
	}
	must(t, ctx, "badge", chromedp.Navigate(base+"/badge/web-0003.svg"), chromedp.WaitReady("svg"))
	if got := eval[string](t, ctx, `document.querySelector("svg").getAttribute("aria-label")`); got != "web-0003: down" {
		t.Fatalf("badge says %q", got)
	}
	must(t, ctx, "label badge", chromedp.Navigate(base+"/badge/label/env/prod.svg"), chromedp.WaitReady("svg"))
	if got := eval[string](t, ctx, `document.querySelector("svg").getAttribute("aria-label")`); got != "env=prod: 332/334 up" {
		t.Fatalf("label badge says %q", got)
	}
	must(t, ctx, "hostile badge", chromedp.Navigate(base+`/badge/%3Cimg%20src=x%20onerror=%22window.pwned=3%22%3E.svg`), chromedp.WaitReady("svg"))
	if !eval[bool](t, ctx, pwnedCheck) {
		t.Fatal("a hostile name ran script in a badge")
	}
}

func TestBrowser_ReadOnlyTokenSeesNoWriteControls(t *testing.T) {
	b := newBrowser(t)
	fl := browserFleet(t)
	s := newSite(t, fl, func(o *ui.Options) { o.Auth = roles{readTok: ui.RoleRead} })
	ctx := b.tab()
	signInBrowser(t, ctx, s.srv.URL, readTok)
	for _, p := range []string{"/ui/machines/web-0003", "/ui/channels"} {
		must(t, ctx, p, chromedp.Navigate(s.srv.URL+p), chromedp.WaitVisible("main h1"))
		if n := eval[int](t, ctx, `document.querySelectorAll("main form[method=post] button").length`); n != 0 {
			t.Fatalf("%s shows %d write buttons to a read token", p, n)
		}
	}
	shot(t, ctx, "10-machine-read-only")
}

func TestBrowser_PagesWorkWithoutJavaScript(t *testing.T) {
	b := newBrowser(t)
	fl := browserFleet(t)
	s := newSite(t, fl, func(o *ui.Options) { o.StatusPageMatch = map[string]string{"public": "yes"} })
	ctx := b.tab()
	if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatal(err)
	}
	signInBrowser(t, ctx, s.srv.URL, adminTok)
	if n := eval[int](t, ctx, `document.querySelectorAll("table.fleet tbody tr").length`); n != 100 {
		t.Fatalf("no-JS fleet: %d rows", n)
	}
	must(t, ctx, "no-JS filter",
		chromedp.SendKeys(`input[name="q"]`, "web-004"),
		chromedp.Submit(`input[name="q"]`),
		chromedp.WaitVisible(`a.clear`))
	must(t, ctx, "no-JS machine", chromedp.Navigate(s.srv.URL+"/ui/machines/web-0042"), chromedp.WaitVisible("svg.bar"))
	shot(t, ctx, "11-machine-no-js")
	must(t, ctx, "no-JS channels test button", chromedp.Navigate(s.srv.URL+"/ui/channels"), chromedp.Click(`form[action$="/test"] button`), chromedp.WaitVisible(".flash-ok"))
	must(t, ctx, "no-JS status", chromedp.Navigate(s.srv.URL+"/status"), chromedp.WaitVisible(".public-list"))
}

func TestBrowser_Silences(t *testing.T) {
	b := newBrowser(t)
	fl := browserFleet(t)
	now := time.Now().UTC()
	list := []ui.Silence{
		{ID: "s1", Matchers: map[string]string{"env": "prod"}, StartsAt: now.Add(-time.Hour), EndsAt: now.Add(time.Hour),
			Comment: `db upgrade <script>window.pwned=1</script>`, CreatedBy: "alice", State: "active"},
		{ID: "s2", Machines: []string{"web-0001", "web-0002"}, Schedule: "0 2 * * 0", Duration: 2 * time.Hour, Timezone: "Europe/Berlin", Comment: "weekly patching", State: "pending"},
		{ID: "s3", Machines: []string{"web-0005"}, StartsAt: now.Add(-50 * time.Hour), EndsAt: now.Add(-49 * time.Hour), Comment: "disk swap", State: "expired"},
	}
	act := &actions{available: map[string]bool{ui.ActionSilence: true, ui.ActionPause: true}}
	s := newSite(t, fl, func(o *ui.Options) { o.Read = silenceModel{model{fl.f}, list}; o.Actions = expiringActions{act} })
	ctx := b.tab()
	signInBrowser(t, ctx, s.srv.URL, adminTok)
	must(t, ctx, "silences", chromedp.Navigate(s.srv.URL+"/ui/silences"), chromedp.WaitVisible("table.silences"))
	shot(t, ctx, "12-silences")
	must(t, ctx, "silenced machine", chromedp.Navigate(s.srv.URL+"/ui/machines/web-0003"), chromedp.WaitVisible(".flash-silenced"))
	shot(t, ctx, "13-machine-silenced")
	if !eval[bool](t, ctx, pwnedCheck) {
		t.Fatal("a silence comment ran script")
	}
	must(t, ctx, "expire", chromedp.Click(`.flash-silenced button`), chromedp.WaitVisible(".flash-ok"))
	if got := act.Calls(); len(got) != 1 || got[0] != "expire s1" {
		t.Fatalf("actions = %v", got)
	}
}

// TestBrowser_ReportedFailureDigestAndFlapping shows issue 10's facts as a
// person sees them: why a machine is down, the digest that carried a
// transition, a flapping machine.
func TestBrowser_ReportedFailureDigestAndFlapping(t *testing.T) {
	b := newBrowser(t)
	fl := newFleet(t)
	t0 := fl.now
	fl.apply(fsm.CmdCreateChannel, fsm.CreateChannel{Channel: fsm.Channel{Name: "ops", Type: "webhook", URL: "http://x",
		Policy: fsm.ChannelPolicy{GroupAfter: 1}}})
	for _, n := range []string{"backup-1", "db-2", "db-3"} {
		fl.register(n, map[string]string{"env": "prod"})
	}
	fl.beat(t0, "backup-1", "db-2", "db-3")
	fl.apply(fsm.CmdMarkOffline, fsm.MarkOffline{At: t0.Add(time.Hour), Machines: []fsm.OfflineMark{
		{ID: id("db-2"), LastSeen: t0}, {ID: id("db-3"), LastSeen: t0}}})
	fl.apply(fsm.CmdReportFailure, fsm.ReportFailure{ID: id("backup-1"), At: t0.Add(2 * time.Hour), Message: "pg_dump exited 1: disk full on /var/backups"})
	s := newSite(t, fl, nil)
	ctx := b.tab()
	signInBrowser(t, ctx, s.srv.URL, adminTok)
	must(t, ctx, "backup-1", chromedp.Navigate(s.srv.URL+"/ui/machines/backup-1"), chromedp.WaitVisible("main h1"))
	if txt := eval[string](t, ctx, `document.querySelector("main .flash-error").innerText`); !strings.Contains(txt, "pg_dump exited 1") {
		t.Fatalf("reported failure banner: %q", txt)
	}
	shot(t, ctx, "11-machine-reported-failure")
	must(t, ctx, "db-2", chromedp.Navigate(s.srv.URL+"/ui/machines/db-2"), chromedp.WaitVisible("main h1"))
	if txt := eval[string](t, ctx, `document.querySelector("main ol.timeline").innerText`); !strings.Contains(txt, "in digest dg-") {
		t.Fatalf("timeline: %q", txt)
	}
	must(t, ctx, "scroll to the timeline", chromedp.ScrollIntoView("main ol.timeline"))
	shot(t, ctx, "12-machine-in-digest")
}
