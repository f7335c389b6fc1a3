package fsm_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/lunasentri/lunasentri/fsm"
)

func seg(s fsm.Status, from, to time.Time) fsm.Segment {
	return fsm.Segment{Status: s, Start: from, End: to}
}

func TestUptimeIn_Arithmetic(t *testing.T) {
	h := time.Hour
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	segs := []fsm.Segment{
		seg(fsm.StatusOnline, at(0), at(10*h)),
		seg(fsm.StatusOffline, at(10*h), at(12*h)),
		seg("paused", at(12*h), at(14*h)),
		seg(fsm.StatusUnknown, at(14*h), at(15*h)),
		seg(fsm.StatusOnline, at(15*h), at(20*h)),
		seg(fsm.StatusOffline, at(20*h), at(21*h)),
		seg(fsm.StatusOnline, at(21*h), at(24*h)),
	}
	cases := []struct {
		name      string
		from, to  time.Time
		up, down  time.Duration
		incidents int
		ratio     float64
	}{
		{"whole day", at(0), at(24 * h), 18 * h, 3 * h, 2, 18.0 / 21},
		{"before any history counts nothing", at(-48 * h), at(0), 0, 0, 0, 1},
		{"window starting inside an outage", at(11 * h), at(13 * h), 0, h, 1, 0},
		{"paused and unknown are not counted", at(12 * h), at(15 * h), 0, 0, 0, 1},
		{"window cut at both ends", at(9 * h), at(21*h + 30*time.Minute), 6*h + 30*time.Minute, 3 * h, 2, 6.5 / 9.5},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u := fsm.UptimeIn(segs, c.from, c.to)
			if u.Up != c.up || u.Down != c.down || u.Incidents != c.incidents {
				t.Fatalf("UptimeIn = %+v, want up %v down %v incidents %d", u, c.up, c.down, c.incidents)
			}
			if r := u.Ratio(); r < c.ratio-1e-9 || r > c.ratio+1e-9 {
				t.Fatalf("ratio = %v, want %v", r, c.ratio)
			}
		})
	}
}

func TestUptimeIn_AdjacentOfflineIsOneIncident(t *testing.T) {
	segs := []fsm.Segment{
		seg(fsm.StatusOffline, t0, t0.Add(time.Hour)),
		seg(fsm.StatusOffline, t0.Add(time.Hour), t0.Add(2*time.Hour)),
	}
	if u := fsm.UptimeIn(segs, t0, t0.Add(2*time.Hour)); u.Incidents != 1 || u.Down != 2*time.Hour {
		t.Fatalf("got %+v", u)
	}
}

func TestUptimeCells_HourlyBar(t *testing.T) {
	segs := []fsm.Segment{
		seg(fsm.StatusOnline, t0, t0.Add(90*time.Minute)),
		seg(fsm.StatusOffline, t0.Add(90*time.Minute), t0.Add(3*time.Hour)),
	}
	cells := fsm.UptimeCells(segs, t0.Add(-time.Hour), time.Hour, 4)
	want := []struct{ up, down time.Duration }{
		{0, 0}, {time.Hour, 0}, {30 * time.Minute, 30 * time.Minute}, {0, time.Hour},
	}
	for i, w := range want {
		if cells[i].Up != w.up || cells[i].Down != w.down {
			t.Fatalf("cell %d = %+v, want up %v down %v", i, cells[i], w.up, w.down)
		}
	}
}

// history replays transitions through Apply and checks MachineHistory.
func TestMachineHistory_RecordsTransitionsInApply(t *testing.T) {
	h := newHarness(t, fsm.Options{})
	h.register("web1", nil, 0)
	h.register("quiet", nil, 0)

	// unknown → online: nothing is recorded (the time before the first beat
	// never counts, and a steady machine costs nothing).
	h.beat(t0, t0, "web1", "quiet")
	_, segs, err := h.f.MachineHistory("quiet", t0.Add(time.Hour))
	if err != nil || len(segs) != 1 || segs[0].Status != fsm.StatusOnline || !segs[0].Start.Equal(t0) {
		t.Fatalf("quiet segments = %+v, %v", segs, err)
	}

	_, off := h.goOffline(t0, "web1")
	back := off.Add(10 * time.Minute)
	h.beat(back, back, "web1")
	now := back.Add(time.Hour)
	_, segs, err = h.f.MachineHistory("web1", now)
	if err != nil {
		t.Fatal(err)
	}
	want := []fsm.Segment{
		seg(fsm.StatusOnline, t0, off),
		seg(fsm.StatusOffline, off, back),
		seg(fsm.StatusOnline, back, now),
	}
	if len(segs) != len(want) {
		t.Fatalf("segments = %+v", segs)
	}
	for i := range want {
		if segs[i].Status != want[i].Status || !segs[i].Start.Equal(want[i].Start) || !segs[i].End.Equal(want[i].End) {
			t.Fatalf("segment %d = %+v, want %+v", i, segs[i], want[i])
		}
	}
	u := fsm.UptimeIn(segs, now.Add(-24*time.Hour), now)
	if u.Down != 10*time.Minute || u.Incidents != 1 {
		t.Fatalf("uptime = %+v", u)
	}

	// The history survives a snapshot and restore byte for byte, and the
	// event history evicting everything does not touch it.
	data, err := snapshotBytes(h.f)
	if err != nil {
		t.Fatal(err)
	}
	h2 := newHarness(t, fsm.Options{})
	if err := restore(h2.f, data); err != nil {
		t.Fatal(err)
	}
	_, segs2, _ := h2.f.MachineHistory("web1", now)
	if len(segs2) != 3 || !segs2[1].Start.Equal(off) || !segs2[1].End.Equal(back) {
		t.Fatalf("restored segments = %+v", segs2)
	}
	data2, _ := snapshotBytes(h2.f)
	if !bytes.Equal(data, data2) {
		t.Fatal("snapshot of the restored state differs")
	}

	// Deleting the machine forgets its history.
	h.ok(fsm.CmdDeleteMachine, fsm.DeleteMachine{Name: "web1"})
	h.register("web1", nil, 0)
	_, segs, _ = h.f.MachineHistory("web1", now)
	if u := fsm.UptimeIn(segs, t0, now); u.Monitored() != 0 || len(segs) > 1 {
		t.Fatalf("re-registered machine has segments %+v", segs)
	}
}

func TestMachineHistory_Bounded(t *testing.T) {
	h := newHarness(t, fsm.Options{})
	h.register("flappy", nil, 0)
	at := t0
	for range 200 {
		_, off := h.goOffline(at, "flappy")
		at = off.Add(time.Minute)
	}
	_, segs, _ := h.f.MachineHistory("flappy", at)
	// The cap plus the current segment.
	if len(segs) > fsm.MaxHistorySegments+1 {
		t.Fatalf("%d segments kept, cap %d", len(segs), fsm.MaxHistorySegments)
	}
	// Segments older than the retention are dropped at the next change.
	later := at.Add(fsm.HistoryRetention + 48*time.Hour)
	h.beat(later, later, "flappy")
	h.goOffline(later, "flappy")
	_, segs, _ = h.f.MachineHistory("flappy", later.Add(time.Hour))
	for _, s := range segs {
		if s.End.Before(later.Add(-fsm.HistoryRetention)) {
			t.Fatalf("segment %+v is older than the retention", s)
		}
	}
}

func TestRestore_SnapshotWithoutHistory(t *testing.T) {
	h := newHarness(t, fsm.Options{})
	h.register("web1", nil, 0)
	h.beat(t0, t0, "web1")
	data, err := snapshotBytes(h.f)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data[:bytes.IndexByte(data, '\n')], []byte("history")) {
		t.Fatalf("a fleet without history writes a history count: %s", data)
	}
	h2 := newHarness(t, fsm.Options{})
	if err := restore(h2.f, data); err != nil {
		t.Fatal(err)
	}
}
