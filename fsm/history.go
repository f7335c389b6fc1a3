package fsm

import (
	"maps"
	"slices"
	"strings"
	"time"
)

// Status history (issue 12): per machine, the past status segments that
// uptime over the last 30 days needs, kept apart from the event history
// (which evicts by count across the whole fleet).
//
// A machine's current segment is already in the machine (Status since
// StatusChangedAt); history holds only the segments before it, recorded in
// setStatus when a segment ends. A machine that went unknown → online once
// and never changed again therefore has no history entry at all.

// History bounds. An entry is 8 bytes; a machine at the cap costs about
// 200 B with the map entry and slice header, which keeps even a fleet where
// every machine flaps within the 1 KiB a machine of BENCHMARKS.md (814 B
// measured at 1M without history). A machine that never changed costs nothing.
const (
	// HistoryRetention: segments that ended longer ago than this are
	// dropped when the machine next changes. 31 days, not 30, so a 30-day
	// bar aligned to whole days still has its first day.
	HistoryRetention = 31 * 24 * time.Hour
	// MaxHistorySegments caps one machine's history: 16 segments is 8
	// outages within the retention, exact for anything that is not
	// flapping; beyond it the oldest segments go and their time counts as
	// unknown (neither up nor down), as time before the first beat does.
	MaxHistorySegments = 16
)

// histEntry is one past segment packed in 8 bytes: the start in unix
// milliseconds (upper 56 bits) and a status code (lower 8). The segment
// lasts until the next entry's start or, for the last one, the machine's
// StatusChangedAt. In snapshots it is one JSON number.
type histEntry uint64

func newEntry(start time.Time, code uint8) histEntry {
	return histEntry(uint64(start.UnixMilli())<<8 | uint64(code))
}

func (e histEntry) start() time.Time { return time.UnixMilli(int64(e >> 8)).UTC() }
func (e histEntry) code() uint8      { return uint8(e) }

// Status codes in history. Anything unknown to this binary is kept as
// codeOther, which uptime does not count.
const (
	codeUnknown uint8 = iota
	codeOnline
	codeOffline
	codePaused
	codeOther uint8 = 255
)

func statusCode(s Status) uint8 {
	switch s {
	case StatusUnknown:
		return codeUnknown
	case StatusOnline:
		return codeOnline
	case StatusOffline:
		return codeOffline
	case "paused":
		return codePaused
	}
	return codeOther
}

func codeStatus(c uint8) Status {
	switch c {
	case codeUnknown:
		return StatusUnknown
	case codeOnline:
		return StatusOnline
	case codeOffline:
		return StatusOffline
	case codePaused:
		return "paused"
	}
	return "other"
}

// recordTransition ends m's current segment at `at`. It runs inside Apply
// (from setStatus) before m.Status changes; it reads no clock. Slices are
// never modified in place, so a snapshot may share them.
func (f *FSM) recordTransition(m *Machine, at time.Time) {
	old, _ := f.history.get(m.ID)
	if len(old) == 0 && (m.Status == StatusUnknown || m.StatusChangedAt.IsZero()) {
		return // the time before the first beat is never counted
	}
	horizon := at.Add(-HistoryRetention)
	// Drop leading segments that ended before the horizon.
	drop := 0
	for drop < len(old) {
		end := m.StatusChangedAt
		if drop+1 < len(old) {
			end = old[drop+1].start()
		}
		if end.After(horizon) {
			break
		}
		drop++
	}
	kept := old[drop:]
	if over := len(kept) + 1 - MaxHistorySegments; over > 0 {
		kept = kept[over:]
	}
	next := make([]histEntry, 0, len(kept)+1)
	next = append(next, kept...)
	if !m.StatusChangedAt.IsZero() {
		next = append(next, newEntry(m.StatusChangedAt, statusCode(m.Status)))
	}
	f.noteHistory(m.ID) // about to change (capture.go)
	if len(next) == 0 {
		f.history.del(m.ID)
		return
	}
	f.history.put(m.ID, next)
}

// forgetHistory drops a deleted machine's history.
func (f *FSM) forgetHistory(id string) {
	f.noteHistory(id)
	f.history.del(id)
}

// Segment is a span of time a machine spent in one status.
type Segment struct {
	Status Status
	Start  time.Time
	End    time.Time
}

// MachineHistory returns a machine (a copy) and its known status segments,
// oldest first, the current one ending at now. Time before the first
// segment is unknown.
func (f *FSM) MachineHistory(name string, now time.Time) (Machine, []Segment, error) {
	f.mu.RLock()
	id, ok := f.byName[name]
	if !ok {
		f.mu.RUnlock()
		return Machine{}, nil, ErrMachineNotFound
	}
	mp, _ := f.machines.get(id)
	m := *mp
	hist, _ := f.history.get(id)
	f.mu.RUnlock()
	m.Labels = maps.Clone(m.Labels)
	return m, segmentsOf(hist, m, now), nil
}

func segmentsOf(hist []histEntry, m Machine, now time.Time) []Segment {
	out := make([]Segment, 0, len(hist)+1)
	for i, h := range hist {
		end := m.StatusChangedAt
		if i+1 < len(hist) {
			end = hist[i+1].start()
		}
		out = append(out, Segment{Status: codeStatus(h.code()), Start: h.start(), End: end})
	}
	if !m.StatusChangedAt.IsZero() && now.After(m.StatusChangedAt) {
		out = append(out, Segment{Status: m.Status, Start: m.StatusChangedAt, End: now})
	}
	return out
}

// Uptime is what a span of history adds up to.
type Uptime struct {
	Up   time.Duration // online
	Down time.Duration // offline
	// Incidents: outages (offline segments) that overlap the span.
	Incidents int
}

// Monitored is the counted time: online plus offline. Paused, unknown and
// anything before the first beat are not counted.
func (u Uptime) Monitored() time.Duration { return u.Up + u.Down }

// Ratio is up / (up + down), and 1 when nothing was counted.
func (u Uptime) Ratio() float64 {
	if u.Monitored() <= 0 {
		return 1
	}
	return float64(u.Up) / float64(u.Monitored())
}

// UptimeIn adds up the segments' overlap with [from, to). Pure arithmetic:
// segments must be sorted and not overlap, as MachineHistory returns them.
func UptimeIn(segs []Segment, from, to time.Time) Uptime {
	var u Uptime
	prevOfflineEnd := time.Time{}
	for _, s := range segs {
		start, end := s.Start, s.End
		if start.Before(from) {
			start = from
		}
		if end.After(to) {
			end = to
		}
		if !end.After(start) {
			if s.Status == StatusOffline {
				prevOfflineEnd = s.End
			}
			continue
		}
		d := end.Sub(start)
		switch s.Status {
		case StatusOnline:
			u.Up += d
		case StatusOffline:
			u.Down += d
			// Two adjacent offline segments (say, a reported failure
			// while already down) are one outage.
			if prevOfflineEnd.IsZero() || !prevOfflineEnd.Equal(s.Start) {
				u.Incidents++
			}
		}
		if s.Status == StatusOffline {
			prevOfflineEnd = s.End
		} else {
			prevOfflineEnd = time.Time{}
		}
	}
	return u
}

// UptimeCells splits [from, from+n*step) into n cells, oldest first: one
// bar cell per hour or day.
func UptimeCells(segs []Segment, from time.Time, step time.Duration, n int) []Uptime {
	out := make([]Uptime, n)
	i := 0
	for c := range n {
		cf := from.Add(time.Duration(c) * step)
		ct := cf.Add(step)
		// Skip segments that end before this cell; a segment may span many.
		for i < len(segs) && !segs[i].End.After(cf) {
			i++
		}
		out[c] = UptimeIn(segs[i:], cf, ct)
	}
	return out
}

// historySnapshot is one machine's history in a snapshot.
type historySnapshot struct {
	ID      string      `json:"id"`
	Entries []histEntry `json:"h"`
}

func sortHistory(h []historySnapshot) {
	slices.SortFunc(h, func(a, b historySnapshot) int { return strings.Compare(a.ID, b.ID) })
}

// restoreHistory installs decoded history, skipping machines that do not
// exist (a corrupt or hand-edited snapshot).
func (f *FSM) restoreHistory(h []historySnapshot) {
	f.history = newShardedMap[[]histEntry](f.seed)
	for _, r := range h {
		if f.machines.has(r.ID) && len(r.Entries) > 0 {
			f.history.put(r.ID, r.Entries)
		}
	}
}
