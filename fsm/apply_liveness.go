package fsm

import (
	"fmt"
	"time"
)

// heartbeatBatch moves last_seen forward and brings offline machines back.
//
// A beat older than the machine's last_seen is ignored (batches from several
// nodes interleave). An offline machine comes back only if the beat is still
// fresh at the leader's time (At − seen < threshold): a beat held for long by
// a cut-off node proves nothing about now, and acting on it would send a
// recovery alert followed at once by a second offline alert.
func (f *FSM) heartbeatBatch(index uint64, c HeartbeatBatch, fx *effects) *ApplyResult {
	if c.At.IsZero() || c.DefaultThreshold <= 0 {
		// With no threshold an offline machine could never come back.
		return &ApplyResult{Err: fmt.Errorf("%w: heartbeat batch needs a time and a positive default threshold", ErrBadCommand)}
	}
	res := &ApplyResult{}
	at := c.At.UTC()
	atNanos := at.UnixNano()
	seq := 0
	var ts []transition
	for _, b := range c.Beats {
		m, ok := f.machines.get(b.ID)
		if !ok {
			continue // deleted since the beat was taken
		}
		seenNanos := min(b.SeenAt, atNanos) // ages are never negative
		if !m.LastSeen.IsZero() && seenNanos <= m.LastSeen.UnixNano() {
			continue
		}
		f.noteMachine(b.ID, m) // about to change (capture.go)
		seen := time.Unix(0, seenNanos).UTC()
		threshold := m.Threshold(c.DefaultThreshold)
		switch m.Status {
		case StatusUnknown:
			// A brand-new (or resumed) machine: online, and nobody is told
			// (invariant 4).
			m.LastSeen = seen
			f.setStatus(m, StatusOnline, at)
			if m.Alerting != nil {
				m.Alerting.TransitionEvent = ""
			}
		case StatusOnline:
			m.LastSeen = seen
		case StatusPaused:
			m.LastSeen = seen // beats still count as contact; no detection
			continue
		case StatusOffline:
			if at.Sub(seen) >= threshold || (m.Reason == ReasonReported && seenNanos <= m.StatusChangedAt.UnixNano()) {
				// Stale news, or a beat from before a reported failure:
				// stays offline.
				m.LastSeen = seen
				continue
			}
			downFor := at.Sub(m.StatusChangedAt)
			m.LastSeen = seen
			f.setStatus(m, StatusOnline, at)
			m.Reason, m.Message = "", ""
			f.counters.TransitionsOnline++
			t := f.addEvent(index, seq, EventOnline, at, m, downFor)
			seq++
			ts = append(ts, t)
			res.Events = append(res.Events, t.ev.ID)
		}
		fx.seen = append(fx.seen, SeenMachine{ID: m.ID, LastSeen: m.LastSeen, Threshold: threshold})
	}
	f.finishTransitions(index, at, c.Alerting, ts, fx)
	return res
}

// finishTransitions routes a command's transitions to channels and trims
// the history.
func (f *FSM) finishTransitions(index uint64, at time.Time, cfg AlertingConfig, ts []transition, fx *effects) {
	if len(ts) == 0 {
		return
	}
	f.routeTransitions(index, at, cfg, ts, fx)
	f.evict()
}

// markOffline applies the leader's decision that machines passed their
// deadline, unless a newer heartbeat landed since the leader looked.
func (f *FSM) markOffline(index uint64, c MarkOffline, fx *effects) *ApplyResult {
	res := &ApplyResult{}
	at := c.At.UTC()
	seq := 0
	var ts []transition
	for _, mark := range c.Machines {
		m, ok := f.machines.get(mark.ID)
		if !ok || m.Status != StatusOnline || !m.LastSeen.Equal(mark.LastSeen) {
			continue // the fencepost moved: a heartbeat won the race
		}
		f.noteMachine(mark.ID, m) // about to change (capture.go)
		f.setStatus(m, StatusOffline, at)
		m.Reason, m.Message = ReasonSilence, ""
		f.counters.TransitionsOffline++
		t := f.addEvent(index, seq, EventOffline, at, m, 0)
		seq++
		ts = append(ts, t)
		res.Events = append(res.Events, t.ev.ID)
		fx.gone = append(fx.gone, m.ID)
	}
	f.finishTransitions(index, at, c.Alerting, ts, fx)
	return res
}

func (f *FSM) setStatus(m *Machine, s Status, at time.Time) {
	f.recordTransition(m, at) // issue 12: uptime history
	f.statusCount[m.Status]--
	f.statusCount[s]++
	m.Status = s
	m.StatusChangedAt = at
}
