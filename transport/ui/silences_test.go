package ui_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lunasentri/lunasentri/transport/ui"
)

// silenceModel is a replica that has silences (issue 10), with one
// hostile comment.
type silenceModel struct {
	model
	list []ui.Silence
}

func (m silenceModel) Silences() []ui.Silence { return m.list }

// expiringActions can also expire silences.
type expiringActions struct{ *actions }

func (a expiringActions) ExpireSilence(_ context.Context, id string) error {
	a.record("expire " + id)
	return nil
}

func TestSilences_ListCoverAndExpire(t *testing.T) {
	fl := newFleet(t)
	fl.register("db-1", map[string]string{"env": "prod"})
	fl.register("web-1", map[string]string{"env": "staging"})
	now := time.Now().UTC()
	list := []ui.Silence{
		{ID: "s-old", Machines: []string{"web-1"}, StartsAt: now.Add(-48 * time.Hour), EndsAt: now.Add(-47 * time.Hour), Comment: "old", State: "expired"},
		{ID: "s-prod", Matchers: map[string]string{"env": "prod"}, StartsAt: now.Add(-time.Hour), EndsAt: now.Add(time.Hour),
			Comment: `<script>window.pwned=1</script> db upgrade`, CreatedBy: "alice", State: "active"},
		{ID: "s-nightly", Matchers: map[string]string{"env": "staging"}, Schedule: "0 2 * * *", Duration: time.Hour, Timezone: "Europe/Berlin", State: "pending"},
	}
	act := &actions{available: map[string]bool{ui.ActionSilence: true}}
	s := newSite(t, fl, func(o *ui.Options) {
		o.Read = silenceModel{model{fl.f}, list}
		o.Actions = expiringActions{act}
	})
	c := noFollow(t)
	s.signIn(t, c, writeTok)
	p := do(t, c, "GET", s.srv.URL+"/ui/silences", "", nil)
	if p.status != 200 || !strings.Contains(p.body, `href="/ui/silences"`) {
		t.Fatalf("silences page: %d", p.status)
	}
	ia, ip, ie := strings.Index(p.body, "s-prod/expire"), strings.Index(p.body, "s-nightly/expire"), strings.Index(p.body, ">old<")
	if !(ia > 0 && ia < ip && ip < ie) {
		t.Fatalf("order active, pending, expired: %d %d %d", ia, ip, ie)
	}
	if strings.Contains(p.body, "s-old/expire") {
		t.Fatal("an expired silence has an Expire button")
	}
	if strings.Contains(p.body, "<script>window") || !strings.Contains(p.body, "&lt;script&gt;window.pwned=1&lt;/script&gt; db upgrade") {
		t.Fatal("comment not escaped")
	}
	if !strings.Contains(p.body, "0 2 * * * for 1h (Europe/Berlin)") {
		t.Fatal("maintenance window schedule missing")
	}
	m := do(t, c, "GET", s.srv.URL+"/ui/machines/db-1", "", nil)
	if !strings.Contains(m.body, "Silenced until") || !strings.Contains(m.body, "by alice") {
		t.Fatal("machine page does not say it is silenced")
	}
	if w := do(t, c, "GET", s.srv.URL+"/ui/machines/web-1", "", nil); strings.Contains(w.body, "Silenced until") {
		t.Fatal("web-1 is not covered by an active silence")
	}
	r := do(t, c, "POST", s.srv.URL+"/ui/silences/s-prod/expire", "", url.Values{"csrf": {csrfOf(t, m.body)}, "back": {"/ui/machines/db-1"}})
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/ui/machines/db-1" {
		t.Fatalf("expire: %d %s", r.status, r.header.Get("Location"))
	}
	if got := strings.Join(act.Calls(), ","); got != "expire s-prod" {
		t.Fatalf("actions = %s", got)
	}

	// Without silences in the read model there is no page and no link.
	plain := newSite(t, fl, nil)
	if r := do(t, noFollow(t), "GET", plain.srv.URL+"/ui/silences", readTok, nil); r.status != 404 {
		t.Fatalf("silences page without silences: %d", r.status)
	}
	if r := do(t, noFollow(t), "GET", plain.srv.URL+"/ui/", readTok, nil); strings.Contains(r.body, `href="/ui/silences"`) {
		t.Fatal("a Silences link without silences")
	}
}
