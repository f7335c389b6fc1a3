package server

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/lunasentri/lunasentri/internal/testenv"
)

func publicStatusPage(_ int, o *Options) { o.StatusPageMatch = "public=yes" }

func getPage(t *testing.T, c *http.Client, u, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// TestUI_EveryNodeServesTheDashboardFromItsReplica: the UI is mounted beside
// the API on every node, the status page and badges follow
// -status-page-match, and a channel test from a follower's dashboard reaches
// the receiver through the leader.
func TestUI_EveryNodeServesTheDashboardFromItsReplica(t *testing.T) {
	tc := newTestCluster(t, 3, publicStatusPage)
	l := tc.leader()
	f := tc.follower()
	key := tc.register(l, "web-1", map[string]any{"labels": map[string]string{"public": "yes"}})
	tc.register(l, "db-1", map[string]any{"labels": map[string]string{"env": "prod"}})
	// The follower may not know the new key yet: beat until it is online.
	waitFor(t, 10*time.Second, "web-1 online on the follower", func() bool {
		tc.beatQuiet(f, key)
		return tc.machine(f, "web-1").Status == "online"
	})

	c := &http.Client{}
	if code, body := getPage(t, c, tc.url(f)+"/ui/", testToken); code != 200 || !strings.Contains(body, ">web-1<") || !strings.Contains(body, ">db-1<") {
		t.Fatalf("follower /ui/: %d", code)
	}
	if code, body := getPage(t, c, tc.url(f)+"/status", ""); code != 200 || !strings.Contains(body, "web-1") || strings.Contains(body, "db-1") {
		t.Fatalf("follower /status: %d\n%s", code, body)
	}
	if code, body := getPage(t, c, tc.url(f)+"/badge/web-1.svg", ""); code != 200 || !strings.Contains(body, ">up<") {
		t.Fatalf("badge: %d %s", code, body)
	}
	if code, _ := getPage(t, c, tc.url(f)+"/badge/db-1.svg", ""); code != 404 {
		t.Fatalf("badge of a machine off the status page: %d", code)
	}
	if code, body := getPage(t, c, tc.url(f)+"/v1/machines/web-1/uptime?window=7d", testToken); code != 200 || !strings.Contains(body, `"window":"7d"`) {
		t.Fatalf("uptime: %d %s", code, body)
	}
	// The API keeps everything else, JSON errors included.
	if code, body := getPage(t, c, tc.url(f)+"/nope", ""); code != 404 || !strings.Contains(body, `"error"`) {
		t.Fatalf("unknown path: %d %s", code, body)
	}

	// A channel test from the follower's dashboard, signed in by the form.
	hook := newHookReceiver(t, "0123456789abcdef0123456789abcdef")
	if code := call(t, "POST", tc.url(l)+"/v1/channels", testToken, map[string]any{
		"type": "webhook", "name": "hook", "url": hook.url(), "secret": "0123456789abcdef0123456789abcdef"}, nil); code != 201 {
		t.Fatalf("create channel: %d", code)
	}
	waitFor(t, 10*time.Second, "channel on the follower", func() bool { _, err := tc.nodes[f].FSM.Channel("hook"); return err == nil })
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	_, login := getPage(t, browser, tc.url(f)+"/ui/login", "")
	resp, err := browser.PostForm(tc.url(f)+"/ui/login", url.Values{"token": {testToken}, "csrf": {csrfField.FindStringSubmatch(login)[1]}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	_, channels := getPage(t, browser, tc.url(f)+"/ui/channels", "")
	if !strings.Contains(channels, "Send test") {
		t.Fatalf("no test button for the admin token:\n%s", channels)
	}
	resp, err = browser.PostForm(tc.url(f)+"/ui/channels/hook/test", url.Values{"csrf": {csrfField.FindStringSubmatch(channels)[1]}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "The test message to hook was delivered.") {
		t.Fatalf("after the test: %d\n%s", resp.StatusCode, body)
	}
	if n := len(hook.requests()); n != 1 {
		t.Fatalf("receiver got %d requests", n)
	}
	// Silence and pause from a follower's machine page (issue 10): each
	// form post becomes the cluster's state.
	_, page := getPage(t, browser, tc.url(f)+"/ui/machines/web-1", "")
	if !strings.Contains(page, ">Pause<") || !strings.Contains(page, "Silence") {
		t.Fatalf("machine page without pause and silence controls:\n%s", page)
	}
	csrf := csrfField.FindStringSubmatch(page)[1]
	for _, post := range []struct{ path, want string }{
		{"/ui/machines/web-1/silence?", "Silenced web-1 for 1h."},
		{"/ui/machines/web-1/pause?", "Paused web-1"},
	} {
		resp, err := browser.PostForm(tc.url(f)+post.path, url.Values{"csrf": {csrf}, "duration": {"1h"}})
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), post.want) {
			t.Fatalf("POST %s: %d\n%s", post.path, resp.StatusCode, body)
		}
	}
	var sil struct {
		Silences []struct {
			Machines []string `json:"machines"`
			State    string   `json:"state"`
		} `json:"silences"`
	}
	call(t, "GET", tc.url(f)+"/v1/silences", testToken, nil, &sil)
	if len(sil.Silences) != 1 || sil.Silences[0].State != "active" || sil.Silences[0].Machines[0] != "web-1" {
		t.Fatalf("silences after the dashboard's silence 1h: %+v", sil.Silences)
	}
	if s := tc.machine(f, "web-1").Status; s != "paused" {
		t.Fatalf("web-1 is %s after the dashboard's pause", s)
	}
	if _, page := getPage(t, browser, tc.url(f)+"/ui/silences", ""); !strings.Contains(page, "silenced from the dashboard") {
		t.Fatalf("silences page:\n%s", page)
	}
}

func TestStart_RefusesABadStatusPageMatch(t *testing.T) {
	if _, err := ParseStatusPageMatch("env"); err == nil || !strings.Contains(err.Error(), "-status-page-match") {
		t.Fatalf("got %v", err)
	}
	m, err := ParseStatusPageMatch(" env=prod , tier=web ")
	if err != nil || len(m) != 2 || m["env"] != "prod" || m["tier"] != "web" {
		t.Fatalf("got %v %v", m, err)
	}
}

// TestUI_BrowserSeesTransitionsLiveAcrossAFailover opens a follower's
// dashboard in chromium, lets a machine go offline and come back while the
// leader is killed in between, and checks each transition shows without a
// reload.
func TestUI_BrowserSeesTransitionsLiveAcrossAFailover(t *testing.T) {
	var chromium string
	for _, n := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(n); err == nil {
			chromium = p
			break
		}
	}
	if chromium == "" {
		testenv.MissingCapability(t, "chromium is not installed (make tools installs it)")
	}
	tc := newTestCluster(t, 3, nil)
	l := tc.leader()
	f := tc.follower()
	key := tc.register(l, "web-1", nil)
	stop := tc.beater(key, 300*time.Millisecond)
	waitFor(t, 10*time.Second, "web-1 online", func() bool { return tc.machine(f, "web-1").Status == "online" })

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.WindowSize(1200, 800))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	defer cancelT()
	shot := func(name string) {
		if buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot()); err == nil {
			_ = os.MkdirAll("screenshots", 0o755)
			_ = os.WriteFile(filepath.Join("screenshots", name+".png"), buf, 0o644)
		}
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			shot("failed")
			t.Fatalf("%s: %v", what, err)
		}
	}
	base := tc.url(f)
	do("sign in", chromedp.Navigate(base+"/ui/?q=web-1"), chromedp.WaitVisible("#token"),
		chromedp.SendKeys("#token", testToken), chromedp.Submit("#token"),
		chromedp.WaitVisible("tr.row-online"), chromedp.WaitVisible("#live-state.on"))
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.noReload = true`)); err != nil {
		t.Fatal(err)
	}

	stop() // silence: offline after the 3 s threshold
	do("offline shows live", chromedp.WaitVisible("tr.row-offline"))
	shot("server-offline-live")

	// Kill the leader (if it is not the node serving the page), then beat again.
	if l == f {
		t.Fatal("the follower leads")
	}
	tc.stop(l)
	beat, stopBeat := context.WithCancel(context.Background())
	defer stopBeat()
	go func() {
		for beat.Err() == nil {
			tc.beatQuiet(f, key)
			select {
			case <-beat.Done():
			case <-time.After(300 * time.Millisecond):
			}
		}
	}()
	do("online shows live after failover", chromedp.WaitVisible("tr.row-online"))
	shot("server-online-after-failover")
	ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.noReload === true`))
	if err != nil || !ok {
		t.Fatalf("the page reloaded (%v)", err)
	}
}

// beatQuiet sends one heartbeat and ignores the outcome (a node may be
// between leaders).
func (tc *testCluster) beatQuiet(i int, key string) {
	req, _ := http.NewRequest("POST", tc.url(i)+"/v1/heartbeat", strings.NewReader("{}"))
	req.Header.Set("Authorization", "Bearer "+key)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
}

// TestUI_SignInWithRoleTokens: the dashboard takes issue 11's tokens; a
// read token sees the fleet and no buttons that change things, a write
// token sees them, an unknown token is refused — on a follower that may
// not have applied the token yet.
func TestUI_SignInWithRoleTokens(t *testing.T) {
	tc := newTestCluster(t, 3, nil)
	tc.leader()
	f := tc.follower()
	tc.register(f, "web-1", nil)
	secret := func(role string) string {
		var out struct {
			Secret string `json:"secret"`
		}
		if code := call(t, "POST", tc.url(tc.leader())+"/v1/tokens", testToken, map[string]any{"name": "ui-" + role, "role": role}, &out); code != http.StatusCreated {
			t.Fatalf("create %s token: %d", role, code)
		}
		return out.Secret
	}
	read, write := secret("read"), secret("write")
	c := &http.Client{}
	code, page := getPage(t, c, tc.url(f)+"/ui/machines/web-1", read)
	if code != http.StatusOK || !strings.Contains(page, "web-1") {
		t.Fatalf("read token: %d\n%s", code, page)
	}
	if strings.Contains(page, ">Pause<") || strings.Contains(page, "Silence 1h") {
		t.Fatal("a read-only token sees buttons that change things")
	}
	if _, page = getPage(t, c, tc.url(f)+"/ui/machines/web-1", write); !strings.Contains(page, ">Pause<") {
		t.Fatalf("a write token sees no Pause button:\n%s", page)
	}
	if code, _ = getPage(t, c, tc.url(f)+"/ui/", "not-a-token"); code == http.StatusOK {
		t.Fatal("an unknown token got the dashboard")
	}
}
