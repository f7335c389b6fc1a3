package fsm

import (
	"fmt"
	"maps"
	"time"
)

// Limits on what operators and agents may write.
const (
	// MaxFailureMessage bounds a reported failure's message (docs/api.md: the
	// request body is at most 10 KiB).
	MaxFailureMessage = 10 << 10
)

func (f *FSM) updateMachine(c UpdateMachine, fx *effects) *ApplyResult {
	id, ok := f.byName[c.Name]
	if !ok {
		return &ApplyResult{Err: ErrMachineNotFound}
	}
	m, _ := f.mutableMachine(id)
	if c.Labels != nil {
		f.releaseLabels(m.Labels)
		l := maps.Clone(*c.Labels)
		if len(l) == 0 {
			l = nil
		}
		m.Labels = f.internLabels(l)
	}
	if c.Description != nil {
		m.Description = *c.Description
	}
	if c.Hostname != nil {
		m.Hostname = *c.Hostname
	}
	if c.OfflineThreshold != nil {
		if *c.OfflineThreshold < 0 {
			return &ApplyResult{Err: fmt.Errorf("%w: negative threshold", ErrBadCommand)}
		}
		m.OfflineThreshold = *c.OfflineThreshold
		if m.Status == StatusOnline && c.DefaultThreshold > 0 {
			// The monitor forgets the old deadline and takes the new one.
			fx.retimed = append(fx.retimed, SeenMachine{ID: m.ID, LastSeen: m.LastSeen, Threshold: m.Threshold(c.DefaultThreshold)})
		}
	}
	out := machineBody(m)
	return &ApplyResult{Machine: &out}
}

func (f *FSM) pauseMachine(c PauseMachine, fx *effects) *ApplyResult {
	id, ok := f.byName[c.Name]
	if !ok {
		return &ApplyResult{Err: ErrMachineNotFound}
	}
	m, _ := f.mutableMachine(id)
	if m.Status != StatusPaused {
		f.setStatus(m, StatusPaused, c.At.UTC())
		m.Reason, m.Message, m.Flapping = "", "", false
		// Reminders end (remind skips machines that are not offline); what
		// channels were told is kept, so a machine told offline before the
		// pause is told it is back once it beats after the resume.
		if a := m.Alerting; a != nil {
			a.Flips, a.TransitionEvent = nil, ""
			if len(a.Told) > 0 {
				f.markUnsent(m)
			}
		}
		fx.gone = append(fx.gone, id)
	}
	out := machineBody(m)
	return &ApplyResult{Machine: &out}
}

func (f *FSM) resumeMachine(c ResumeMachine, fx *effects) *ApplyResult {
	id, ok := f.byName[c.Name]
	if !ok {
		return &ApplyResult{Err: ErrMachineNotFound}
	}
	m, _ := f.mutableMachine(id)
	if m.Status == StatusPaused {
		// Unknown until its next beat, which brings it online without an
		// event (invariant 4).
		f.setStatus(m, StatusUnknown, c.At.UTC())
	}
	out := machineBody(m)
	return &ApplyResult{Machine: &out}
}

// reportFailure puts a machine offline at once with reason "reported". A
// paused or already offline machine is left as it is.
func (f *FSM) reportFailure(index uint64, c ReportFailure, fx *effects) *ApplyResult {
	m, ok := f.mutableMachine(c.ID)
	if !ok {
		return &ApplyResult{Err: ErrMachineNotFound}
	}
	if c.At.IsZero() {
		return &ApplyResult{Err: fmt.Errorf("%w: a reported failure needs a time", ErrBadCommand)}
	}
	if len(c.Message) > MaxFailureMessage {
		return &ApplyResult{Err: fmt.Errorf("%w: message longer than %d bytes", ErrBadCommand, MaxFailureMessage)}
	}
	out := func() *ApplyResult { mb := machineBody(m); return &ApplyResult{Machine: &mb} }
	if m.Status == StatusPaused || m.Status == StatusOffline {
		return out()
	}
	at := c.At.UTC()
	f.setStatus(m, StatusOffline, at)
	m.Reason, m.Message = ReasonReported, c.Message
	f.counters.TransitionsOffline++
	t := f.addEvent(index, 0, EventOffline, at, m, 0)
	f.finishTransitions(index, at, c.Alerting, []transition{t}, fx)
	fx.gone = append(fx.gone, m.ID)
	res := out()
	res.Events = []string{t.ev.ID}
	return res
}

func (f *FSM) updateChannel(c UpdateChannel) *ApplyResult {
	old, ok := f.channels[c.Channel.Name]
	if !ok {
		return &ApplyResult{Err: ErrChannelNotFound}
	}
	ch := c.Channel
	if ch.Type != old.Type {
		return &ApplyResult{Err: fmt.Errorf("%w: a channel's type cannot change", ErrBadCommand)}
	}
	ch.CreatedAt = old.CreatedAt
	if ch.Match == nil {
		ch.Match = map[string]string{}
	}
	f.channels[ch.Name] = &ch
	out := ch
	return &ApplyResult{Channel: &out}
}

// forgetMachine drops a deleted machine's alerting state: its pending
// notices go with it, as its pending deliveries do.
func (f *FSM) forgetMachine(id string) bool {
	delete(f.unsent, id)
	delete(f.toldOffline, id)
	return f.dropNotices(func(n *Notice) bool {
		return n.Kind != NoticeDigest && len(n.Events) == 1 && n.Events[0].Machine.ID == id
	})
}

// forgetChannel drops a deleted channel's notices and storm state.
func (f *FSM) forgetChannel(name string) bool {
	delete(f.storms, name)
	return f.dropNotices(func(n *Notice) bool { return n.Channel == name })
}

func (f *FSM) dropNotices(match func(*Notice) bool) bool {
	dropped := false
	for id, n := range f.notices {
		if (n.State == DeliveryPending || n.State == NoticeCollecting) && match(n) {
			if n.State == DeliveryPending {
				f.pendingNotices--
			}
			delete(f.notices, id)
			dropped = true
		}
	}
	return dropped
}

// recordNotice applies a dispatcher outcome to a notice; a final one
// removes it (the events it carried keep their own history).
func (f *FSM) recordNotice(r DeliveryResult, at time.Time) bool {
	n, ok := f.notices[r.EventID]
	if !ok || n.Channel != r.Channel || n.State != DeliveryPending {
		return false
	}
	n.Attempts = max(n.Attempts, r.Attempts)
	n.LastError = r.LastError
	n.UpdatedAt = at
	switch r.State {
	case DeliveryDelivered, DeliveryFailed:
		if r.State == DeliveryDelivered {
			switch n.Kind {
			case NoticeDigest:
				f.counters.DigestsDelivered++
			case NoticeReminder:
				f.counters.RemindersDelivered++
			}
		}
		f.pendingNotices--
		delete(f.notices, n.ID)
		return true
	}
	return false
}
