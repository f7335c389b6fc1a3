package fsm_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/lunasentri/lunasentri/fsm"
)

func newToken(id, name, role, secret string) fsm.Token {
	return fsm.Token{ID: id, Name: name, Role: role, Hash: fsm.HashKey(secret), CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
}

func TestTokens_CreateListDeleteAndNeverExposeHashes(t *testing.T) {
	h := newHarness(t, fsm.Options{})
	res := h.ok(fsm.CmdCreateToken, fsm.CreateToken{Token: newToken("tok-1", "grafana", fsm.RoleRead, "s1")})
	if res.Token == nil || res.Token.Hash != (fsm.KeyHash{}) || res.Token.Name != "grafana" {
		t.Fatalf("create answered %+v", res.Token)
	}
	h.ok(fsm.CmdCreateToken, fsm.CreateToken{Token: newToken("tok-2", "ci", fsm.RoleWrite, "s2")})
	for _, tc := range []struct {
		name string
		tok  fsm.Token
		want error
	}{
		{"same id", newToken("tok-1", "x", fsm.RoleRead, "s3"), fsm.ErrTokenExists},
		{"same name", newToken("tok-3", "ci", fsm.RoleRead, "s3"), fsm.ErrTokenExists},
		{"same secret", newToken("tok-3", "y", fsm.RoleRead, "s1"), fsm.ErrTokenExists},
		{"bad role", newToken("tok-3", "y", "root", "s3"), fsm.ErrBadCommand},
		{"no name", newToken("tok-3", "", fsm.RoleRead, "s3"), fsm.ErrBadCommand},
		{"no hash", fsm.Token{ID: "tok-3", Name: "y", Role: fsm.RoleRead}, fsm.ErrBadCommand},
	} {
		res := h.apply(fsm.CmdCreateToken, fsm.CreateToken{Token: tc.tok})
		if !errors.Is(res.Err, tc.want) {
			t.Errorf("%s: err %v, want %v", tc.name, res.Err, tc.want)
		}
	}
	list := h.f.Tokens()
	if len(list) != 2 || list[0].Name != "ci" || list[1].Name != "grafana" {
		t.Fatalf("Tokens() = %+v", list)
	}
	for _, tk := range list {
		if tk.Hash != (fsm.KeyHash{}) {
			t.Fatal("Tokens() exposes a hash")
		}
	}
	if tk, ok := h.f.TokenByHash(fsm.HashKey("s2")); !ok || tk.Role != fsm.RoleWrite {
		t.Fatalf("TokenByHash = %+v %v", tk, ok)
	}
	wantErrIs(t, h.apply(fsm.CmdDeleteToken, fsm.DeleteToken{ID: "nope"}).Err, fsm.ErrTokenNotFound)
	h.ok(fsm.CmdDeleteToken, fsm.DeleteToken{ID: "tok-2"})
	if _, ok := h.f.TokenByHash(fsm.HashKey("s2")); ok {
		t.Fatal("revoked token still resolves")
	}
}

func TestTokens_SurviveSnapshotAndOldSnapshotsStayIdentical(t *testing.T) {
	h, _ := richState(t, nil)
	before := persist(t, h.f)
	if bytes.Contains(before, []byte(`"section"`)) {
		t.Fatal("a snapshot without tokens must keep the earlier format")
	}
	h.ok(fsm.CmdCreateToken, fsm.CreateToken{Token: newToken("tok-1", "wall", fsm.RoleRead, "s1")})
	data := persist(t, h.f)
	f2 := fsm.New(fsm.Options{MaxPendingDeliveries: 3})
	if err := restore(f2, data); err != nil {
		t.Fatal(err)
	}
	if tk, ok := f2.TokenByHash(fsm.HashKey("s1")); !ok || tk.Name != "wall" {
		t.Fatalf("token after restore: %+v %v", tk, ok)
	}
	if !bytes.Equal(persist(t, f2), data) {
		t.Fatal("restored state persists differently")
	}
	if err := f2.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
}

// snapshotLines splits a snapshot into its JSON lines.
func snapshotLines(data []byte) []string {
	return strings.Split(strings.TrimRight(string(data), "\n"), "\n")
}

// withHeader rewrites the header's counts to match lines.
func withHeader(t *testing.T, lines []string, machines, channels, events int) []byte {
	t.Helper()
	var hdr map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &hdr); err != nil {
		t.Fatal(err)
	}
	hdr["machines"], hdr["channels"], hdr["events"] = machines, channels, events
	b, _ := json.Marshal(hdr)
	lines[0] = string(b)
	return []byte(strings.Join(lines, "\n") + "\n")
}

// TestRestore_SemanticallyBadSnapshotsRefused: snapshots that decode but
// would corrupt state are refused before anything changes, and nothing
// panics (a duplicate event id used to panic in evict on every node).
func TestRestore_SemanticallyBadSnapshotsRefused(t *testing.T) {
	h, _ := richState(t, nil)
	good := persist(t, h.f)
	lines := snapshotLines(good)
	var hdr struct{ Machines, Channels, Events int }
	if err := json.Unmarshal([]byte(lines[0]), &hdr); err != nil {
		t.Fatal(err)
	}
	m0 := 1
	c0 := m0 + hdr.Machines
	e0 := c0 + hdr.Channels
	if hdr.Events < 2 || hdr.Machines < 2 || hdr.Channels < 2 {
		t.Fatalf("rich state too small: %+v", hdr)
	}
	insertAt := func(at int, line string) []string {
		out := append([]string{}, lines[:at]...)
		out = append(out, line)
		return append(out, lines[at:]...)
	}
	mutate := func(at int, fn func(map[string]any)) []string {
		out := append([]string{}, lines...)
		var v map[string]any
		if err := json.Unmarshal([]byte(out[at]), &v); err != nil {
			t.Fatal(err)
		}
		fn(v)
		b, _ := json.Marshal(v)
		out[at] = string(b)
		return out
	}
	pendingEvent := -1
	for i := e0; i < e0+hdr.Events; i++ {
		if strings.Contains(lines[i], `"state":"pending"`) {
			pendingEvent = i
		}
	}
	if pendingEvent < 0 {
		t.Fatal("rich state has no pending event")
	}
	cases := map[string][]byte{
		"duplicate event id":     withHeader(t, insertAt(e0, lines[e0]), hdr.Machines, hdr.Channels, hdr.Events+1),
		"duplicate machine id":   withHeader(t, insertAt(m0, lines[m0]), hdr.Machines+1, hdr.Channels, hdr.Events),
		"duplicate channel name": withHeader(t, insertAt(c0, lines[c0]), hdr.Machines, hdr.Channels+1, hdr.Events),
		"machine name reused": withHeader(t, mutate(m0+1, func(v map[string]any) {
			var first map[string]any
			_ = json.Unmarshal([]byte(lines[m0]), &first)
			v["name"] = first["name"]
		}), hdr.Machines, hdr.Channels, hdr.Events),
		"machine key reused": withHeader(t, mutate(m0+1, func(v map[string]any) {
			var first map[string]any
			_ = json.Unmarshal([]byte(lines[m0]), &first)
			v["key_hash"] = first["key_hash"]
		}), hdr.Machines, hdr.Channels, hdr.Events),
		"machine without id": withHeader(t, mutate(m0, func(v map[string]any) { v["id"] = "" }), hdr.Machines, hdr.Channels, hdr.Events),
		"event without id":   withHeader(t, mutate(e0, func(v map[string]any) { v["id"] = "" }), hdr.Machines, hdr.Channels, hdr.Events),
		"pending delivery to missing channel": withHeader(t, mutate(pendingEvent, func(v map[string]any) {
			for _, d := range v["deliveries"].([]any) {
				d.(map[string]any)["channel"] = "ghost"
			}
		}), hdr.Machines, hdr.Channels, hdr.Events),
		"pending delivery for missing machine": withHeader(t, mutate(pendingEvent, func(v map[string]any) {
			v["machine"].(map[string]any)["id"] = "ghost"
		}), hdr.Machines, hdr.Channels, hdr.Events),
		"unknown section":  []byte(string(good) + `{"section":"mystery","count":0}` + "\n"),
		"trailing garbage": []byte(string(good) + "garbage\n"),
		"token bad role": []byte(string(good) + `{"section":"tokens","count":1}` + "\n" +
			`{"id":"t","name":"n","role":"root","hash":"` + strings.Repeat("ab", 32) + `"}` + "\n"),
		"token repeated": []byte(string(good) + `{"section":"tokens","count":2}` + "\n" +
			`{"id":"t","name":"n","role":"read","hash":"` + strings.Repeat("ab", 32) + `"}` + "\n" +
			`{"id":"t","name":"n2","role":"read","hash":"` + strings.Repeat("cd", 32) + `"}` + "\n"),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			target, _ := richState(t, nil)
			target.ok(fsm.CmdCreateToken, fsm.CreateToken{Token: newToken("keep", "keep", fsm.RoleAdmin, "keep")})
			before := persist(t, target.f)
			err := restore(target.f, data)
			if err == nil {
				t.Fatal("restore accepted it")
			}
			if strings.Contains(err.Error(), "panicked") {
				t.Fatal(err)
			}
			if !bytes.Equal(persist(t, target.f), before) {
				t.Fatal("a refused restore changed state")
			}
			if err := target.f.CheckInvariants(); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("too many machines for this node", func(t *testing.T) {
		small := fsm.New(fsm.Options{MaxMachines: 1})
		if err := restore(small, good); err == nil || !errors.Is(err, fsm.ErrBadSnapshot) {
			t.Fatalf("err = %v, want ErrBadSnapshot", err)
		}
	})
	t.Run("too many pending deliveries for this node", func(t *testing.T) {
		tiny := fsm.New(fsm.Options{MaxPendingDeliveries: 1})
		if err := restore(tiny, good); err == nil {
			t.Fatal("accepted more pending deliveries than the limit")
		}
	})
}

func TestOldestPending_MatchesTheSortedOutbox(t *testing.T) {
	h, _ := richState(t, nil)
	pds := h.f.PendingDeliveries()
	at, ok := h.f.OldestPending()
	if len(pds) == 0 || !ok || !at.Equal(pds[0].Event.OccurredAt) {
		t.Fatalf("OldestPending = %v %v, outbox head %v", at, ok, pds)
	}
	if _, ok := fsm.New(fsm.Options{}).OldestPending(); ok {
		t.Fatal("an empty outbox has an oldest entry")
	}
}

// TestTokens_PropertyInvariantsReplayAndSnapshot: random token commands
// mixed with garbage keep the invariants after every Apply, replay to the
// same state, and survive a snapshot round trip.
func TestTokens_PropertyInvariantsReplayAndSnapshot(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		a := fsm.New(fsm.Options{})
		var log [][]byte
		names := []string{"a", "b", "c", "a"}
		roles := []string{fsm.RoleRead, fsm.RoleWrite, fsm.RoleAdmin, "root", ""}
		for i := range rapid.IntRange(1, 40).Draw(rt, "steps") {
			var data []byte
			switch rapid.IntRange(0, 3).Draw(rt, "kind") {
			case 0, 1:
				data = fsm.MustEncode(fsm.CmdCreateToken, fsm.CreateToken{Token: fsm.Token{
					ID:        "tok-" + rapid.SampledFrom([]string{"1", "2", "3", "4"}).Draw(rt, "id"),
					Name:      rapid.SampledFrom(names).Draw(rt, "name"),
					Role:      rapid.SampledFrom(roles).Draw(rt, "role"),
					Hash:      fsm.HashKey(rapid.SampledFrom([]string{"s1", "s2", "s3"}).Draw(rt, "secret")),
					CreatedAt: t0, ExpiresAt: t0.Add(time.Duration(rapid.IntRange(0, 3).Draw(rt, "ttl")) * time.Hour),
				}})
			case 2:
				data = fsm.MustEncode(fsm.CmdDeleteToken, fsm.DeleteToken{ID: "tok-" + rapid.SampledFrom([]string{"1", "2", "9"}).Draw(rt, "del")})
			default:
				data = []byte{byte(fsm.CmdCreateToken), '{'}
			}
			log = append(log, data)
			if res := a.ApplyBytes(uint64(i+1), data); res == nil {
				rt.Fatal("nil result")
			}
			if err := a.CheckInvariants(); err != nil {
				rt.Fatalf("step %d: %v", i, err)
			}
		}
		b := fsm.New(fsm.Options{})
		for i, data := range log {
			b.ApplyBytes(uint64(i+1), data)
		}
		sa, err := snapshotBytes(a)
		if err != nil {
			rt.Fatal(err)
		}
		sb, _ := snapshotBytes(b)
		if !bytes.Equal(sa, sb) {
			rt.Fatal("replay reached a different state")
		}
		c := fsm.New(fsm.Options{})
		if err := restore(c, sa); err != nil {
			rt.Fatalf("restore: %v", err)
		}
		if sc, _ := snapshotBytes(c); !bytes.Equal(sa, sc) {
			rt.Fatal("snapshot round trip changed state")
		}
		if !reflect.DeepEqual(a.Tokens(), c.Tokens()) {
			rt.Fatal("tokens differ after restore")
		}
	})
}
