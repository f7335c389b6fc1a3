package ui_test

import (
	"bufio"
	"encoding/xml"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lunasentri/lunasentri/fsm"
	"github.com/lunasentri/lunasentri/transport/ui"
)

// hostile are labels, names and messages an attacker controls.
var hostile = map[string]string{
	"xss":   `<script>alert(1)</script>`,
	"attr":  `"><img src=x onerror=alert(2)>`,
	"rtl":   "\u202eevil\u202c עברית",
	"emoji": "🚀 ünïcødé",
}

func TestUI_SignInRedirectsAndSetsAStrictCookie(t *testing.T) {
	fl := newFleet(t)
	s := newSite(t, fl, nil)
	c := noFollow(t)

	r := do(t, c, "GET", s.srv.URL+"/ui/machines/web-1", "", nil)
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/ui/login?next=%2Fui%2Fmachines%2Fweb-1") {
		t.Fatalf("unauthenticated: %d %q", r.status, r.header.Get("Location"))
	}
	form := do(t, c, "GET", s.srv.URL+"/ui/login", "", nil)
	if form.status != 200 || !strings.Contains(form.body, `name="token"`) {
		t.Fatalf("login form: %d", form.status)
	}
	csrf := csrfOf(t, form.body)

	// A cross-site post, a form token from another browser or a bad token
	// sign nobody in.
	req, _ := http.NewRequest("POST", s.srv.URL+"/ui/login", strings.NewReader(url.Values{"token": {adminTok}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://evil.example")
	if resp, err := c.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site login: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if r := do(t, noFollow(t), "POST", s.srv.URL+"/ui/login", "", url.Values{"token": {adminTok}, "csrf": {csrf}}); r.status != http.StatusForbidden {
		t.Fatalf("login from another browser with a copied csrf: %d", r.status)
	}
	if r := do(t, c, "POST", s.srv.URL+"/ui/login", "", url.Values{"token": {"wrong"}, "csrf": {csrf}}); r.status != http.StatusUnauthorized || !strings.Contains(r.body, "not valid") {
		t.Fatalf("bad token: %d", r.status)
	}
	r = do(t, c, "POST", s.srv.URL+"/ui/login", "", url.Values{"token": {adminTok}, "csrf": {csrf}, "next": {"//evil.example/"}})
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/ui/" {
		t.Fatalf("login: %d %q", r.status, r.header.Get("Location"))
	}
	var sess *http.Cookie
	for _, ck := range (&http.Response{Header: r.header}).Cookies() {
		if ck.Name == "lunasentri_session" {
			sess = ck
		}
	}
	if sess == nil || !sess.HttpOnly || sess.SameSite != http.SameSiteStrictMode || sess.Secure || sess.MaxAge <= 0 {
		t.Fatalf("session cookie = %+v", sess)
	}
	if strings.Contains(sess.Value, adminTok) {
		t.Fatal("the cookie carries the token in clear")
	}
	// A script posts the field alone (no form token, no Origin): it works.
	if r := do(t, noFollow(t), "POST", s.srv.URL+"/ui/login", "", url.Values{"token": {readTok}}); r.status != http.StatusSeeOther {
		t.Fatalf("scripted sign-in: %d", r.status)
	}
	if p := do(t, c, "GET", s.srv.URL+"/ui/", "", nil); p.status != 200 || !strings.Contains(p.body, "Sign out") {
		t.Fatalf("fleet after sign-in: %d", p.status)
	}

	// Signing out needs the page's CSRF token, and the old cookie stops working.
	p := do(t, c, "GET", s.srv.URL+"/ui/", "", nil)
	if r := do(t, c, "POST", s.srv.URL+"/ui/logout", "", url.Values{}); r.status != http.StatusForbidden {
		t.Fatalf("logout without csrf: %d", r.status)
	}
	r = do(t, c, "POST", s.srv.URL+"/ui/logout", "", url.Values{"csrf": {csrfOf(t, p.body)}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("logout: %d", r.status)
	}
	if p := do(t, c, "GET", s.srv.URL+r.header.Get("Location"), "", nil); !strings.Contains(p.body, "You are signed out.") {
		t.Fatal("no word that the sign-out worked")
	}
	replay := noFollow(t)
	u, _ := url.Parse(s.srv.URL + "/ui/")
	replay.Jar.SetCookies(u, []*http.Cookie{{Name: "lunasentri_session", Value: sess.Value, Path: "/ui"}})
	if r := do(t, replay, "GET", s.srv.URL+"/ui/", "", nil); r.status != http.StatusSeeOther {
		t.Fatalf("a signed-out session still works: %d", r.status)
	}
}

func TestUI_BearerAndSecurityHeaders(t *testing.T) {
	fl := newFleet(t)
	s := newSite(t, fl, nil)
	c := noFollow(t)
	if r := do(t, c, "GET", s.srv.URL+"/ui/", "nope", nil); r.status != http.StatusUnauthorized {
		t.Fatalf("bad bearer: %d", r.status)
	}
	for _, path := range []string{"/ui/", "/ui/events", "/ui/channels", "/ui/cluster", "/ui/login"} {
		r := do(t, c, "GET", s.srv.URL+path, readTok, nil)
		if r.status != 200 {
			t.Fatalf("%s: %d", path, r.status)
		}
		csp := r.header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Fatalf("%s CSP = %q", path, csp)
		}
		if r.header.Get("X-Content-Type-Options") != "nosniff" || r.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("%s headers = %v", path, r.header)
		}
		// No inline script, no inline style: the CSP would block them anyway.
		if strings.Contains(r.body, "<script>") || strings.Contains(r.body, " style=") || strings.Contains(r.body, " onclick=") {
			t.Fatalf("%s has inline script or style", path)
		}
	}
	css := do(t, c, "GET", s.srv.URL+"/ui/static/style.css", "", nil)
	js := do(t, c, "GET", s.srv.URL+"/ui/static/live.js", "", nil)
	if css.status != 200 || js.status != 200 || !strings.Contains(css.header.Get("Content-Type"), "text/css") {
		t.Fatalf("static: %d %d %s", css.status, js.status, css.header.Get("Content-Type"))
	}
}

func TestFleet_OfflineFirstFiltersAndPages(t *testing.T) {
	fl := newFleet(t)
	t0 := fl.now
	for i := range 250 {
		env := "prod"
		if i%2 == 1 {
			env = "dev"
		}
		fl.register(name(i), map[string]string{"env": env})
	}
	var all []string
	for i := range 250 {
		all = append(all, name(i))
	}
	fl.beat(t0, all...)
	fl.offline(t0.Add(time.Hour), name(7))
	fl.offline(t0.Add(2*time.Hour), name(200))
	s := newSite(t, fl, func(o *ui.Options) { o.PageSize = 100 })
	c := noFollow(t)

	p := do(t, c, "GET", s.srv.URL+"/ui/", readTok, nil)
	i200, i7, i0 := strings.Index(p.body, ">"+name(200)+"<"), strings.Index(p.body, ">"+name(7)+"<"), strings.Index(p.body, ">"+name(0)+"<")
	if !(i200 > 0 && i200 < i7 && i7 < i0) {
		t.Fatalf("order: newest outage, older outage, then online (%d %d %d)", i200, i7, i0)
	}
	if !strings.Contains(p.body, "down 1h") || !strings.Contains(p.body, "down 2h") {
		t.Fatal("offline rows do not say how long they have been down")
	}
	if !strings.Contains(p.body, `<span class="n">2</span> <span class="what">Offline</span>`) ||
		!strings.Contains(p.body, `<span class="n">248</span> <span class="what">Online</span>`) {
		t.Fatal("counts by status missing")
	}
	if !strings.Contains(p.body, "1–100 of 250") || !strings.Contains(p.body, `href="/ui/?page=2"`) {
		t.Fatal("first page of three")
	}
	p = do(t, c, "GET", s.srv.URL+"/ui/?page=3", readTok, nil)
	if !strings.Contains(p.body, "201–250 of 250") || strings.Contains(p.body, "Next") {
		t.Fatal("last page")
	}
	p = do(t, c, "GET", s.srv.URL+"/ui/?status=offline", readTok, nil)
	if strings.Count(p.body, `class="row-offline"`) != 2 || strings.Contains(p.body, `class="row-online"`) {
		t.Fatal("status filter")
	}
	p = do(t, c, "GET", s.srv.URL+"/ui/?label=env%3Ddev&q=web-00", readTok, nil)
	// web-000 … web-009 match the name; of those the odd ones are dev.
	if n := strings.Count(p.body, "<tr class=\"row-"); n != 5 {
		t.Fatalf("label+name filter: %d rows", n)
	}
	p = do(t, c, "GET", s.srv.URL+"/ui/?label=nonsense", readTok, nil)
	if !strings.Contains(p.body, "key=value") {
		t.Fatal("a malformed label filter is explained")
	}
	p = do(t, c, "GET", s.srv.URL+"/ui/?q=zzz", readTok, nil)
	if !strings.Contains(p.body, "No machine matches") {
		t.Fatal("empty result is explained")
	}
}

func name(i int) string { return "web-" + pad3(i) }
func pad3(i int) string {
	return string([]byte{byte('0' + i/100), byte('0' + i/10%10), byte('0' + i%10)})
}

func TestMachinePage_UptimeAndTimeline(t *testing.T) {
	fl := newFleet(t)
	t0 := fl.now
	fl.register("db-1", map[string]string{"env": "prod"})
	fl.apply(fsm.CmdCreateChannel, fsm.CreateChannel{Channel: fsm.Channel{Name: "ops", Type: "webhook", URL: "http://x", Match: map[string]string{}}})
	fl.beat(t0, "db-1")
	ev := fl.offline(t0.Add(time.Hour), "db-1")
	fl.apply(fsm.CmdRecordDeliveries, fsm.RecordDeliveries{At: t0.Add(time.Hour), Results: []fsm.DeliveryResult{
		{EventID: ev[0], Channel: "ops", State: fsm.DeliveryFailed, Attempts: 5, LastError: "receiver said 500 <b>boom</b>"}}})
	fl.beat(t0.Add(90*time.Minute), "db-1")
	s := newSite(t, fl, nil)
	p := do(t, noFollow(t), "GET", s.srv.URL+"/ui/machines/db-1", readTok, nil)
	if p.status != 200 {
		t.Fatalf("%d %s", p.status, p.body)
	}
	for _, want := range []string{"Last 24 hours", "Last 7 days", "Last 30 days", "1 outage, down 30m",
		`class="c-partial"`, `class="c-up"`, `class="c-nodata"`, "went offline", "came back online after 30m down",
		"receiver said 500 &lt;b&gt;boom&lt;/b&gt;", "5 attempts", "1m0s of silence"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("machine page lacks %q", want)
		}
	}
	if strings.Count(p.body, "<rect ") != 24+168+30 {
		t.Errorf("bars have %d cells, want 24+168+30", strings.Count(p.body, "<rect "))
	}
	if r := do(t, noFollow(t), "GET", s.srv.URL+"/ui/machines/nope", readTok, nil); r.status != 404 {
		t.Fatalf("missing machine: %d", r.status)
	}
}

func TestUI_HostileTextIsEscapedEverywhere(t *testing.T) {
	fl := newFleet(t)
	evil := `<script>alert("n")</script>`
	fl.register(evil, map[string]string{"xss": hostile["xss"], "attr": hostile["attr"], "rtl": hostile["rtl"], "emoji": hostile["emoji"], "public": "yes"})
	fl.apply(fsm.CmdCreateChannel, fsm.CreateChannel{Channel: fsm.Channel{Name: `"><svg onload=alert(3)>`, Type: "webhook", URL: "http://x",
		Match: map[string]string{"attr": hostile["attr"]}}})
	fl.beat(fl.now, evil)
	fl.offline(fl.now.Add(time.Hour), evil)
	s := newSite(t, fl, func(o *ui.Options) { o.StatusPageMatch = map[string]string{"public": "yes"} })
	c := noFollow(t)
	pages := []string{"/ui/", "/ui/?label=" + url.QueryEscape("xss="+hostile["xss"]), "/ui/machines/" + url.PathEscape(evil), "/ui/events", "/ui/channels", "/status"}
	for _, path := range pages {
		p := do(t, c, "GET", s.srv.URL+path, adminTok, nil)
		if p.status != 200 {
			t.Fatalf("%s: %d", path, p.status)
		}
		for _, raw := range []string{"<script>alert", "<img src=x", "<svg onload", "onerror=alert(2)>"} {
			if strings.Contains(p.body, raw) {
				t.Errorf("%s contains raw %q", path, raw)
			}
		}
		if path == "/ui/channels" {
			if !strings.Contains(p.body, "&#34;&gt;&lt;svg onload=alert(3)&gt;") {
				t.Errorf("channels page does not show the channel name literally")
			}
		} else if !strings.Contains(p.body, "&lt;script&gt;alert(") {
			t.Errorf("%s does not show the name literally", path)
		}
	}
	p := do(t, c, "GET", s.srv.URL+"/ui/machines/"+url.PathEscape(evil), adminTok, nil)
	if !strings.Contains(p.body, "\u202eevil\u202c עברית") || !strings.Contains(p.body, "🚀 ünïcødé") {
		t.Error("unicode and RTL labels are not shown as they are")
	}
	st := do(t, c, "GET", s.srv.URL+"/status", "", nil)
	if strings.Contains(st.body, "host-") || strings.Contains(st.body, "xss") || strings.Contains(st.body, "עברית") {
		t.Error("the status page shows hostnames or labels")
	}
	b := do(t, c, "GET", s.srv.URL+"/badge/"+url.PathEscape(evil)+".svg", "", nil)
	if b.status != 200 || strings.Contains(b.body, "<script>") {
		t.Fatalf("badge: %d %s", b.status, b.body)
	}
	if err := wellFormed(b.body); err != nil {
		t.Fatalf("badge is not well-formed XML: %v\n%s", err, b.body)
	}
	b = do(t, c, "GET", s.srv.URL+"/badge/label/attr/"+url.PathEscape(hostile["attr"])+".svg", "", nil)
	if b.status != 200 || strings.Contains(b.body, "<img") || wellFormed(b.body) != nil {
		t.Fatalf("label badge: %d %s", b.status, b.body)
	}
}

func wellFormed(s string) error {
	d := xml.NewDecoder(strings.NewReader(s))
	for {
		_, err := d.Token()
		if err != nil {
			if err.Error() == "EOF" {
				return nil
			}
			return err
		}
	}
}

func TestUI_WriteControlsFollowTheRole(t *testing.T) {
	fl := newFleet(t)
	fl.register("web-1", nil)
	fl.apply(fsm.CmdCreateChannel, fsm.CreateChannel{Channel: fsm.Channel{Name: "ops", Type: "webhook", URL: "http://x", Match: map[string]string{}}})
	s := newSite(t, fl, nil)

	reader := noFollow(t)
	s.signIn(t, reader, readTok)
	for _, path := range []string{"/ui/machines/web-1", "/ui/channels"} {
		p := do(t, reader, "GET", s.srv.URL+path, "", nil)
		if strings.Contains(p.body, "<button type=\"submit\">") {
			t.Fatalf("a read token sees write controls on %s", path)
		}
	}
	p := do(t, reader, "GET", s.srv.URL+"/ui/channels", "", nil)
	if r := do(t, reader, "POST", s.srv.URL+"/ui/channels/ops/test", "", url.Values{"csrf": {csrfOf(t, p.body)}}); r.status != http.StatusForbidden {
		t.Fatalf("read token test post: %d", r.status)
	}

	writer := noFollow(t)
	s.signIn(t, writer, writeTok)
	p = do(t, writer, "GET", s.srv.URL+"/ui/machines/web-1", "", nil)
	for _, b := range []string{">Pause<", ">Silence 1h<"} {
		if !strings.Contains(p.body, b) {
			t.Fatalf("write token does not see %s", b)
		}
	}
	// A post without the CSRF token is refused, one with it goes through.
	if r := do(t, writer, "POST", s.srv.URL+"/ui/machines/web-1/pause", "", url.Values{}); r.status != http.StatusForbidden {
		t.Fatalf("pause without csrf: %d", r.status)
	}
	r := do(t, writer, "POST", s.srv.URL+"/ui/machines/web-1/pause", "", url.Values{"csrf": {csrfOf(t, p.body)}})
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/ui/machines/web-1" {
		t.Fatalf("pause: %d %s", r.status, r.body)
	}
	if p := do(t, writer, "GET", s.srv.URL+"/ui/machines/web-1", "", nil); !strings.Contains(p.body, "Paused web-1") {
		t.Fatal("no confirmation after pausing")
	}
	p = do(t, writer, "GET", s.srv.URL+"/ui/channels", "", nil)
	s.act.testErr = errors.New(`receiver said 502 <html>`)
	do(t, writer, "POST", s.srv.URL+"/ui/channels/ops/test", "", url.Values{"csrf": {csrfOf(t, p.body)}})
	if p := do(t, writer, "GET", s.srv.URL+"/ui/channels", "", nil); !strings.Contains(p.body, "failed: receiver said 502 &lt;html&gt;") {
		t.Fatalf("test failure not shown:\n%s", p.body)
	}
	if got := strings.Join(s.act.Calls(), ","); got != "pause web-1,test ops" {
		t.Fatalf("actions = %s", got)
	}

	// Actions this build cannot do have no buttons.
	s2 := newSite(t, fl, func(o *ui.Options) { o.Actions = &actions{available: map[string]bool{ui.ActionTestChannel: true}} })
	p = do(t, noFollow(t), "GET", s2.srv.URL+"/ui/machines/web-1", adminTok, nil)
	if strings.Contains(p.body, ">Pause<") || strings.Contains(p.body, ">Silence 1h<") {
		t.Fatal("unavailable actions are shown")
	}
	if r := do(t, noFollow(t), "POST", s2.srv.URL+"/ui/machines/web-1/pause", adminTok, url.Values{}); r.status != http.StatusNotImplemented {
		t.Fatalf("unavailable action post: %d", r.status)
	}
}

func TestStatusPageAndBadges(t *testing.T) {
	fl := newFleet(t)
	fl.register("api", map[string]string{"public": "yes", "tier": "web"})
	fl.register("www", map[string]string{"public": "yes", "tier": "web"})
	fl.register("secret-db", map[string]string{"tier": "web"})
	fl.beat(fl.now, "api", "www", "secret-db")
	fl.offline(fl.now.Add(time.Hour), "www")

	off := newSite(t, fl, nil)
	c := noFollow(t)
	if r := do(t, c, "GET", off.srv.URL+"/status", "", nil); r.status != 404 {
		t.Fatalf("status page while unset: %d", r.status)
	}
	if r := do(t, c, "GET", off.srv.URL+"/badge/api.svg", "", nil); r.status != 404 {
		t.Fatalf("badge while unset: %d", r.status)
	}

	s := newSite(t, fl, func(o *ui.Options) { o.StatusPageMatch = map[string]string{"public": "yes"} })
	p := do(t, c, "GET", s.srv.URL+"/status", "", nil)
	if p.status != 200 || !strings.Contains(p.body, "1 of 2 down") || !strings.Contains(p.body, ">api<") || strings.Contains(p.body, "secret-db") {
		t.Fatalf("status page: %d\n%s", p.status, p.body)
	}
	if !strings.Contains(p.header.Get("Cache-Control"), "public, max-age=") {
		t.Fatalf("status page cache-control %q", p.header.Get("Cache-Control"))
	}
	if !strings.Contains(p.body, "ongoing") {
		t.Fatal("the ongoing outage is not among the incidents")
	}

	b := do(t, c, "GET", s.srv.URL+"/badge/api.svg", "", nil)
	if b.status != 200 || b.header.Get("Content-Type") != "image/svg+xml; charset=utf-8" || !strings.Contains(b.body, ">up<") {
		t.Fatalf("api badge: %d %s", b.status, b.body)
	}
	if b.header.Get("ETag") == "" || !strings.Contains(b.header.Get("Cache-Control"), "max-age=") {
		t.Fatalf("badge headers: %v", b.header)
	}
	req, _ := http.NewRequest("GET", s.srv.URL+"/badge/api.svg", nil)
	req.Header.Set("If-None-Match", b.header.Get("ETag"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Fatalf("conditional badge: %d", resp.StatusCode)
	}
	if b := do(t, c, "GET", s.srv.URL+"/badge/www.svg", "", nil); !strings.Contains(b.body, ">down<") {
		t.Fatalf("www badge: %s", b.body)
	}
	if b := do(t, c, "GET", s.srv.URL+"/badge/secret-db.svg", "", nil); b.status != 404 {
		t.Fatalf("a machine off the status page has a badge: %d", b.status)
	}
	if b := do(t, c, "GET", s.srv.URL+"/badge/label/tier/web.svg", "", nil); b.status != 200 || !strings.Contains(b.body, ">1/2 up<") {
		t.Fatalf("label badge: %d %s", b.status, b.body)
	}
	if b := do(t, c, "GET", s.srv.URL+"/badge/label/tier/db.svg", "", nil); b.status != 404 {
		t.Fatalf("empty label badge: %d", b.status)
	}
}

func TestLive_StreamTellsOfATransition(t *testing.T) {
	fl := newFleet(t)
	fl.register("web-1", nil)
	fl.beat(fl.now, "web-1")
	s := newSite(t, fl, nil)
	req, _ := http.NewRequest("GET", s.srv.URL+"/ui/live", nil)
	req.Header.Set("Authorization", "Bearer "+readTok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
	}
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	waitLine := func(want string) {
		t.Helper()
		timeout := time.After(5 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("stream ended before %q", want)
				}
				if l == want {
					return
				}
			case <-timeout:
				t.Fatalf("no %q within 5s", want)
			}
		}
	}
	waitLine("event: hello")
	start := time.Now()
	fl.offline(fl.now.Add(time.Hour), "web-1")
	waitLine("event: change")
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("change took %v", d)
	}
	if r := do(t, noFollow(t), "GET", s.srv.URL+"/ui/live", "", nil); r.status != http.StatusUnauthorized {
		t.Fatalf("live without auth: %d", r.status)
	}
}

// lostModel is a node that lost its leader.
type lostModel struct{ model }

func (m lostModel) Cluster() ui.ClusterView {
	return ui.ClusterView{NodeID: "node-c", RaftState: "Candidate", ReadyReason: "no leader known"}
}

func TestUI_WarnsWhenTheNodeHasNoLeader(t *testing.T) {
	fl := newFleet(t)
	fl.register("web-1", nil)
	s := newSite(t, fl, func(o *ui.Options) { o.Read = lostModel{model{fl.f}} })
	p := do(t, noFollow(t), "GET", s.srv.URL+"/ui/", readTok, nil)
	if p.status != 200 || !strings.Contains(p.body, "This node (node-c) is not ready: no leader known.") {
		t.Fatalf("no warning on a node without a leader: %d", p.status)
	}
	ok := newSite(t, fl, nil)
	if p := do(t, noFollow(t), "GET", ok.srv.URL+"/ui/", readTok, nil); strings.Contains(p.body, "is not ready") {
		t.Fatal("a warning on a healthy node")
	}
}

// TestMachinePage_ReportedFailureDigestAndFlapping: issue 10's facts on the
// machine page, escaped: why it is offline (a reported failure and its
// message), which digest carried a transition, and flapping.
func TestMachinePage_ReportedFailureDigestAndFlapping(t *testing.T) {
	fl := newFleet(t)
	t0 := fl.now
	fl.apply(fsm.CmdCreateChannel, fsm.CreateChannel{Channel: fsm.Channel{Name: "ops", Type: "webhook", URL: "http://x",
		Policy: fsm.ChannelPolicy{GroupAfter: 1}}})
	for _, n := range []string{"db-1", "db-2", "db-3"} {
		fl.register(n, nil)
	}
	fl.beat(t0, "db-1", "db-2", "db-3")
	fl.apply(fsm.CmdMarkOffline, fsm.MarkOffline{At: t0.Add(time.Hour), Machines: []fsm.OfflineMark{
		{ID: id("db-2"), LastSeen: t0}, {ID: id("db-3"), LastSeen: t0}}})
	fl.apply(fsm.CmdReportFailure, fsm.ReportFailure{ID: id("db-1"), At: t0.Add(2 * time.Hour), Message: `disk <b>full</b>`})
	s := newSite(t, fl, nil)
	p := do(t, noFollow(t), "GET", s.srv.URL+"/ui/machines/db-1", readTok, nil)
	for _, want := range []string{"Its agent reported a failure", "disk &lt;b&gt;full&lt;/b&gt;", "its agent reported a failure"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("db-1's page lacks %q", want)
		}
	}
	p = do(t, noFollow(t), "GET", s.srv.URL+"/ui/machines/db-2", readTok, nil)
	for _, want := range []string{"no heartbeat within the threshold", "grouped", "in digest dg-"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("db-2's page lacks %q", want)
		}
	}
}
