package fsm

import (
	"maps"
	"slices"
	"strings"
	"time"
)

// PendingNotices lists the notices the dispatcher owes (digests whose
// window closed, reminders, flapping and late notices), oldest first.
func (f *FSM) PendingNotices() []Notice {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]Notice, 0, f.pendingNotices)
	for _, n := range f.notices {
		if n.State == DeliveryPending {
			out = append(out, copyNotice(n))
		}
	}
	slices.SortFunc(out, func(a, b Notice) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

func copyNotice(n *Notice) Notice {
	out := *n
	out.Events = slices.Clone(n.Events)
	out.GroupBy = slices.Clone(n.GroupBy)
	return out
}

// Silences returns copies of every silence, oldest first.
func (f *FSM) Silences() []Silence {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]Silence, 0, len(f.silenceOrder))
	for _, id := range f.silenceOrder {
		out = append(out, copySilence(f.silences[id]))
	}
	return out
}

// Silence returns one silence by id.
func (f *FSM) Silence(id string) (Silence, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	s, ok := f.silences[id]
	if !ok {
		return Silence{}, ErrSilenceNotFound
	}
	return copySilence(s), nil
}

func copySilence(s *Silence) Silence {
	out := *s
	out.Matchers = maps.Clone(s.Matchers)
	out.Machines = slices.Clone(s.Machines)
	return out
}

// ActiveSilences counts silences muting at t.
func (f *FSM) ActiveSilences(t time.Time) int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	n := 0
	for _, s := range f.silences {
		if s.ActiveAt(t) {
			n++
		}
	}
	return n
}

// SilencedAt reports whether an active silence covers the named machine.
func (f *FSM) SilencedAt(name string, t time.Time) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	id, ok := f.byName[name]
	if !ok {
		return false
	}
	m, _ := f.machines.get(id)
	return f.silencedAt(m, t)
}

// TickDue reports whether an AlertingTick at `now` would do anything: a
// digest window closed, a held notification may be released, or a reminder
// fell due. The leader asks every check interval; the cost is proportional
// to what is held or told offline, never to the fleet.
func (f *FSM) TickDue(now time.Time, cfg AlertingConfig) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for _, n := range f.notices {
		if n.State == NoticeCollecting && !now.Before(n.ClosesAt) {
			return true
		}
	}
	for id := range f.unsent {
		m, ok := f.machines.get(id)
		if !ok {
			return true
		}
		if m.Flapping && f.flapStable(m, now, cfg) {
			return true
		}
		if f.suppressedAt(m, now) == "" {
			return true
		}
	}
	for id := range f.toldOffline {
		m, ok := f.machines.get(id)
		if !ok || m.Status != StatusOffline || m.Alerting == nil {
			continue
		}
		for n, t := range m.Alerting.Told {
			ch, ok := f.channels[n]
			if ok && ch.Policy.RepeatInterval > 0 && !now.Before(t.At.Add(ch.Policy.RepeatInterval)) && ch.Matches(m.Labels) {
				if f.suppressedAt(m, now) == "" {
					return true
				}
			}
		}
	}
	return false
}
