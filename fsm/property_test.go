package fsm_test

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/lunasentri/lunasentri/fsm"
)

// cmdGen draws commands that are mostly meaningful: names from small pools
// so that duplicates, deletes of live machines and limits all happen, event
// ids from what earlier commands returned, fenceposts read from the FSM.
type cmdGen struct {
	f      *fsm.FSM
	now    time.Time
	nextID int
	ids    []string // every machine id ever proposed, live or not
	events []string // every event id Apply returned
}

var (
	genNames    = []string{"m0", "m1", "m2", "m3", "m4", "m5", "m0", "m1", "m2", "m3", "m4", "m5", ""}
	genChannels = []string{"c0", "c1", "c2", "c3"}
	genLabels   = []map[string]string{nil, {"env": "prod"}, {"env": "dev"}, {"env": "prod", "team": "a"}, {"team": "a"}}
)

func (g *cmdGen) advance(t *rapid.T) time.Time {
	// Leader time mostly moves forward; a new leader's clock may be a bit behind.
	g.now = g.now.Add(time.Duration(rapid.IntRange(-10, 300).Draw(t, "dt")) * time.Second)
	return g.now
}

// machineID mostly picks a live machine, sometimes a deleted or bogus one.
func (g *cmdGen) machineID(t *rapid.T) string {
	live := g.f.Machines("")
	switch {
	case len(live) > 0 && rapid.IntRange(0, 4).Draw(t, "pickLive") != 0:
		return rapid.SampledFrom(live).Draw(t, "live").ID
	case len(g.ids) > 0 && rapid.Bool().Draw(t, "pickAny"):
		return rapid.SampledFrom(g.ids).Draw(t, "id")
	default:
		return "id-bogus"
	}
}

func (g *cmdGen) lastSeen(id string) time.Time {
	for _, m := range g.f.Machines("") {
		if m.ID == id {
			return m.LastSeen
		}
	}
	return time.Time{}
}

func (g *cmdGen) next(t *rapid.T) []byte {
	switch rapid.SampledFrom([]string{
		"register", "register", "delete", "rotate", "beat", "beat", "beat", "beat",
		"offline", "offline", "offline", "channel", "channel", "unchannel", "record", "record", "record", "garbage",
	}).Draw(t, "cmd") {
	case "register":
		g.nextID++
		id := fmt.Sprintf("id-%d", g.nextID)
		if len(g.ids) > 0 && rapid.IntRange(0, 5).Draw(t, "dupID") == 0 {
			id = rapid.SampledFrom(g.ids).Draw(t, "reuse")
		} else {
			g.ids = append(g.ids, id)
		}
		return fsm.MustEncode(fsm.CmdRegisterMachine, fsm.RegisterMachine{Machine: fsm.Machine{
			ID: id, Name: rapid.SampledFrom(genNames).Draw(t, "name"),
			Labels:           rapid.SampledFrom(genLabels).Draw(t, "labels"),
			OfflineThreshold: rapid.SampledFrom([]time.Duration{0, 0, 30 * time.Second, 5 * time.Minute}).Draw(t, "thr"),
			KeyHash:          fsm.HashKey(fmt.Sprintf("key-%d", g.nextID)), CreatedAt: g.now,
		}})
	case "delete":
		return fsm.MustEncode(fsm.CmdDeleteMachine, fsm.DeleteMachine{Name: rapid.SampledFrom(genNames).Draw(t, "name")})
	case "rotate":
		g.nextID++
		return fsm.MustEncode(fsm.CmdRotateKey, fsm.RotateKey{Name: rapid.SampledFrom(genNames).Draw(t, "name"),
			KeyHash: fsm.HashKey(fmt.Sprintf("key-%d", g.nextID))})
	case "beat":
		c := fsm.HeartbeatBatch{At: g.advance(t), DefaultThreshold: rapid.SampledFrom([]time.Duration{defThreshold, defThreshold, time.Minute}).Draw(t, "dflt")}
		for range rapid.IntRange(0, 4).Draw(t, "beats") {
			age := time.Duration(rapid.IntRange(-30, 400).Draw(t, "age")) * time.Second // negative: in the future
			c.Beats = append(c.Beats, fsm.Beat{ID: g.machineID(t), SeenAt: c.At.Add(-age).UnixNano()})
		}
		return fsm.MustEncode(fsm.CmdHeartbeatBatch, c)
	case "offline":
		c := fsm.MarkOffline{At: g.advance(t)}
		for range rapid.IntRange(1, 3).Draw(t, "marks") {
			id := g.machineID(t)
			fence := g.lastSeen(id)
			switch rapid.IntRange(0, 5).Draw(t, "fence") {
			case 0:
				fence = fence.Add(-time.Second) // a heartbeat landed since
			case 1:
				fence = time.Time{}
			}
			c.Machines = append(c.Machines, fsm.OfflineMark{ID: id, LastSeen: fence})
		}
		return fsm.MustEncode(fsm.CmdMarkOffline, c)
	case "channel":
		return fsm.MustEncode(fsm.CmdCreateChannel, fsm.CreateChannel{Channel: fsm.Channel{
			Name:  rapid.SampledFrom(genChannels).Draw(t, "ch"),
			Type:  rapid.SampledFrom([]string{fsm.ChannelWebhook, fsm.ChannelTelegram, fsm.ChannelWebhook, fsm.ChannelTelegram, "bogus"}).Draw(t, "type"),
			Match: rapid.SampledFrom(genLabels).Draw(t, "match"), CreatedAt: g.now,
		}})
	case "unchannel":
		return fsm.MustEncode(fsm.CmdDeleteChannel, fsm.DeleteChannel{Name: rapid.SampledFrom(genChannels).Draw(t, "ch")})
	case "record":
		c := fsm.RecordDeliveries{At: g.advance(t)}
		pending := g.f.PendingDeliveries()
		for range rapid.IntRange(1, 3).Draw(t, "results") {
			ev, ch := "ev-999999-0", rapid.SampledFrom(genChannels).Draw(t, "ch")
			switch {
			case len(pending) > 0 && rapid.IntRange(0, 2).Draw(t, "pickPending") != 0:
				p := rapid.SampledFrom(pending).Draw(t, "pending")
				ev, ch = p.Event.ID, p.Delivery.Channel
			case len(g.events) > 0 && rapid.IntRange(0, 7).Draw(t, "bogusEvent") != 0:
				ev = rapid.SampledFrom(g.events).Draw(t, "event")
			}
			c.Results = append(c.Results, fsm.DeliveryResult{
				EventID: ev, Channel: ch,
				State:    rapid.SampledFrom([]string{fsm.DeliveryPending, fsm.DeliveryDelivered, fsm.DeliveryFailed, "weird"}).Draw(t, "state"),
				Attempts: rapid.IntRange(0, 5).Draw(t, "attempts"), LastError: rapid.SampledFrom([]string{"", "503", "timeout"}).Draw(t, "lastErr"),
			})
		}
		return fsm.MustEncode(fsm.CmdRecordDeliveries, c)
	default:
		return rapid.SampledFrom([][]byte{nil, {0}, {99, '{', '}'}, {byte(fsm.CmdHeartbeatBatch), '{'}}).Draw(t, "garbage")
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestFSM_DeterministicReplay(t *testing.T) {
	// Totals over all runs, to prove the generator reaches the paths that matter.
	var offline, online, dropped, finished, failedApplies int
	defer func() {
		t.Logf("offline %d online %d dropped %d finished %d errors %d", offline, online, dropped, finished, failedApplies)
		if offline == 0 || online == 0 || dropped == 0 || finished == 0 || failedApplies == 0 {
			t.Errorf("generator too tame: offline %d online %d dropped %d finished %d errors %d",
				offline, online, dropped, finished, failedApplies)
		}
	}()
	rapid.Check(t, func(t *rapid.T) {
		opts := fsm.Options{
			MaxEvents:            rapid.IntRange(1, 6).Draw(t, "maxEvents"),
			MaxPendingDeliveries: rapid.IntRange(1, 5).Draw(t, "maxPending"),
			MaxMachines:          5,
			MaxChannels:          3,
		}
		a := fsm.New(opts)
		g := &cmdGen{f: a, now: t0}
		var log [][]byte
		var results []*fsm.ApplyResult
		var snaps [][]byte // a's snapshot after every fourth step and the last
		var err error
		for i := range rapid.IntRange(1, 100).Draw(t, "steps") {
			data := g.next(t)
			pendingBefore := a.Stats().PendingDeliveries
			res := a.ApplyBytes(uint64(i+1), data)
			if res == nil {
				t.Fatalf("step %d: nil result", i)
			}
			if err := a.CheckInvariants(); err != nil {
				t.Fatalf("step %d (%q): %v", i, data, err)
			}
			checkStats(t, a)
			g.events = append(g.events, res.Events...)
			if res.Err != nil {
				failedApplies++
			}
			if len(data) > 0 && fsm.CommandType(data[0]) == fsm.CmdRecordDeliveries && a.Stats().PendingDeliveries < pendingBefore {
				finished++
			}
			log = append(log, data)
			results = append(results, res)
			snaps = append(snaps, nil)
			if i%4 == 3 {
				if snaps[i], err = snapshotBytes(a); err != nil {
					t.Fatal(err)
				}
			}
		}
		if snaps[len(snaps)-1], err = snapshotBytes(a); err != nil {
			t.Fatal(err)
		}

		b := fsm.New(opts)
		for i, data := range log {
			res := b.ApplyBytes(uint64(i+1), data)
			want := results[i]
			if errString(res.Err) != errString(want.Err) || !slices.Equal(res.Events, want.Events) ||
				!reflect.DeepEqual(res.Machine, want.Machine) || !reflect.DeepEqual(res.Channel, want.Channel) {
				t.Fatalf("step %d: replica answered %+v, original %+v", i, res, want)
			}
			if want.Err != nil && fsm.ErrorCode(want.Err) == "" {
				t.Fatalf("step %d: error without a code: %v", i, want.Err)
			}
			if snaps[i] == nil {
				continue
			}
			sb, err := snapshotBytes(b)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(snaps[i], sb) {
				t.Fatalf("replicas diverged at step %d:\n%s\n---\n%s", i, snaps[i], sb)
			}
		}
		sa := snaps[len(snaps)-1]

		st := a.Stats()
		offline += int(st.TransitionsOffline)
		online += int(st.TransitionsOnline)
		dropped += int(st.DeliveriesDropped)

		c := fsm.New(opts)
		if err := restore(c, sa); err != nil {
			t.Fatal(err)
		}
		if err := c.CheckInvariants(); err != nil {
			t.Fatalf("after restore: %v", err)
		}
		if sc, err := snapshotBytes(c); err != nil || !bytes.Equal(sa, sc) {
			t.Fatalf("restored snapshot differs (%v)", err)
		}
	})
}

// checkStats compares Stats with what the queries list.
func checkStats(t *rapid.T, f *fsm.FSM) {
	st := f.Stats()
	total := 0
	for _, s := range []fsm.Status{fsm.StatusUnknown, fsm.StatusOnline, fsm.StatusOffline, fsm.StatusPaused} {
		if n := len(f.Machines(s)); n != st.Machines[s] {
			t.Fatalf("Stats says %d %s machines, Machines lists %d", st.Machines[s], s, n)
		}
		total += st.Machines[s]
	}
	if total != f.MachineCount() || len(st.Machines) != 4 {
		t.Fatalf("status counts %v sum to %d, %d machines", st.Machines, total, f.MachineCount())
	}
	if n := len(f.PendingDeliveries()); n != st.PendingDeliveries {
		t.Fatalf("Stats says %d pending, PendingDeliveries lists %d", st.PendingDeliveries, n)
	}
	if st.Events != len(f.Events(0)) || st.Channels != len(f.Channels()) {
		t.Fatalf("stats %+v disagree with the lists", st)
	}
	if st.TransitionsOnline > st.TransitionsOffline {
		t.Fatalf("more recoveries (%d) than outages (%d)", st.TransitionsOnline, st.TransitionsOffline)
	}
}
