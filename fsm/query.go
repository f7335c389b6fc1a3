package fsm

import (
	"maps"
	"slices"
	"strings"
	"time"
)

// Machines returns copies of all machines (optionally one status), sorted by name.
func (f *FSM) Machines(status Status) []Machine {
	f.mu.RLock()
	out := make([]Machine, 0, f.machines.len())
	for _, m := range f.machines.all() {
		if status != "" && m.Status != status {
			continue
		}
		out = append(out, machineBody(m))
	}
	f.mu.RUnlock()
	slices.SortFunc(out, func(a, b Machine) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// MachineByName returns a copy of one machine.
func (f *FSM) MachineByName(name string) (Machine, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	id, ok := f.byName[name]
	if !ok {
		return Machine{}, ErrMachineNotFound
	}
	m, _ := f.machines.get(id)
	return machineBody(m), nil
}

// MachineCount is the number of registered machines.
func (f *FSM) MachineCount() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.machines.len()
}

// Liveness is what the monitor needs of an online machine.
type Liveness struct {
	ID               string
	LastSeen         time.Time
	OfflineThreshold time.Duration // 0: cluster default
}

// OnlineMachines lists every online machine for the monitor to rebuild its
// deadlines when leadership starts.
func (f *FSM) OnlineMachines() []Liveness {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]Liveness, 0, f.statusCount[StatusOnline])
	for _, m := range f.machines.all() {
		if m.Status == StatusOnline {
			out = append(out, Liveness{ID: m.ID, LastSeen: m.LastSeen, OfflineThreshold: m.OfflineThreshold})
		}
	}
	return out
}

// Channels returns copies of all channels sorted by name (secrets included:
// callers that answer the API must drop them).
func (f *FSM) Channels() []Channel {
	f.mu.RLock()
	out := make([]Channel, 0, len(f.channels))
	for _, c := range f.channels {
		cc := *c
		cc.Match = maps.Clone(c.Match)
		out = append(out, cc)
	}
	f.mu.RUnlock()
	slices.SortFunc(out, func(a, b Channel) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Channel returns a copy of one channel.
func (f *FSM) Channel(name string) (Channel, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	c, ok := f.channels[name]
	if !ok {
		return Channel{}, ErrChannelNotFound
	}
	cc := *c
	cc.Match = maps.Clone(c.Match)
	return cc, nil
}

// Events returns up to limit events, newest first.
func (f *FSM) Events(limit int) []Event {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if limit <= 0 || limit > len(f.order) {
		limit = len(f.order)
	}
	out := make([]Event, 0, limit)
	for i := len(f.order) - 1; i >= 0 && len(out) < limit; i-- {
		out = append(out, copyEvent(f.events[f.order[i]]))
	}
	return out
}

// Event returns one event by id.
func (f *FSM) Event(id string) (Event, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	ev, ok := f.events[id]
	if !ok {
		return Event{}, false
	}
	return copyEvent(ev), true
}

// PendingDelivery is one delivery the dispatcher still owes.
type PendingDelivery struct {
	Event    Event
	Delivery Delivery
}

// PendingDeliveries lists every pending delivery, oldest event first. Cost is
// proportional to the outbox, not to the history.
func (f *FSM) PendingDeliveries() []PendingDelivery {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var out []PendingDelivery
	for id := range f.pendingEvents {
		ev := f.events[id]
		for _, d := range ev.Deliveries {
			if d.State == DeliveryPending {
				out = append(out, PendingDelivery{Event: copyEvent(ev), Delivery: d})
			}
		}
	}
	slices.SortFunc(out, func(a, b PendingDelivery) int {
		if c := a.Event.OccurredAt.Compare(b.Event.OccurredAt); c != 0 {
			return c
		}
		if c := strings.Compare(a.Event.ID, b.Event.ID); c != 0 {
			return c
		}
		return strings.Compare(a.Delivery.Channel, b.Delivery.Channel)
	})
	return out
}

// Stats returns counts for metrics and status.
func (f *FSM) Stats() Stats {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return Stats{
		Counters:          f.counters,
		Machines:          maps.Clone(f.statusCount),
		Channels:          len(f.channels),
		Events:            len(f.events),
		PendingDeliveries: f.pendingCount,
		PendingNotices:    f.pendingNotices,
	}
}

func copyEvent(ev *Event) Event {
	out := *ev
	out.Deliveries = slices.Clone(ev.Deliveries)
	out.Machine.Labels = maps.Clone(ev.Machine.Labels)
	return out
}
