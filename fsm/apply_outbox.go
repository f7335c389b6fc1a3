package fsm

import (
	"fmt"
	"slices"
	"time"
)

// EventID is deterministic: the Raft index of the entry that made the
// transition and its position within it. Every node derives the same id, and
// a user snapshot restore moves the index past every id in the snapshot.
func EventID(index uint64, seq int) string {
	return fmt.Sprintf("ev-%d-%d", index, seq)
}

// addEvent records a transition in the history. Its deliveries, one per
// matching channel, are decided by routeTransitions in the same Apply
// (invariant 5); the caller evicts once routing is done.
func (f *FSM) addEvent(index uint64, seq int, typ string, at time.Time, m *Machine, downFor time.Duration) transition {
	ev := &Event{
		ID:         EventID(index, seq),
		Type:       typ,
		OccurredAt: at,
		Machine:    machineBody(m),
		DownFor:    downFor,
	}
	if typ == EventOffline {
		ev.Reason, ev.Message = m.Reason, m.Message
	}
	f.events[ev.ID] = ev
	f.order = append(f.order, ev.ID)
	f.alerting(m).TransitionEvent = ev.ID
	return transition{m: m, ev: ev}
}

func (f *FSM) sortedChannelNames() []string {
	names := make([]string, 0, len(f.channels))
	for n := range f.channels {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// evict keeps the history at MaxEvents. An event whose deliveries are still
// pending is never evicted; the oldest finished ones go first.
func (f *FSM) evict() {
	excess := len(f.events) - f.opts.MaxEvents
	for excess > 0 && len(f.order) > 0 && !f.events[f.order[0]].Pending() {
		delete(f.events, f.order[0])
		f.order = f.order[1:]
		excess--
	}
	if excess <= 0 || len(f.pendingEvents) == len(f.events) {
		return
	}
	// A pending event heads the history: keep it, evict the oldest finished
	// events behind it.
	kept := f.order[:0]
	for _, id := range f.order {
		if excess > 0 && !f.events[id].Pending() {
			delete(f.events, id)
			excess--
			continue
		}
		kept = append(kept, id)
	}
	f.order = kept
}

// dropPending removes pending deliveries that match; finished ones stay as
// history. It reports whether anything was dropped.
func (f *FSM) dropPending(match func(*Event, *Delivery) bool) bool {
	dropped := false
	for id := range f.pendingEvents {
		ev := f.events[id]
		kept := ev.Deliveries[:0]
		for i := range ev.Deliveries {
			d := ev.Deliveries[i]
			if d.State == DeliveryPending && match(ev, &d) {
				f.pendingCount--
				dropped = true
				continue
			}
			kept = append(kept, d)
		}
		ev.Deliveries = kept
		if !ev.Pending() {
			delete(f.pendingEvents, id)
		}
	}
	if dropped {
		f.evict()
	}
	return dropped
}

func (f *FSM) recordDeliveries(c RecordDeliveries, fx *effects) *ApplyResult {
	finished := false
	for _, r := range c.Results {
		ev, ok := f.events[r.EventID]
		if !ok {
			if f.recordNotice(r, c.At.UTC()) {
				finished = true
			}
			continue
		}
		for i := range ev.Deliveries {
			d := &ev.Deliveries[i]
			if d.Channel != r.Channel || d.State != DeliveryPending {
				continue
			}
			if r.Attempts > d.Attempts {
				d.Attempts = r.Attempts
			}
			d.LastError = r.LastError
			d.UpdatedAt = c.At.UTC()
			switch r.State {
			case DeliveryDelivered, DeliveryFailed:
				d.State = r.State
				f.pendingCount--
				finished = true
			}
		}
		if !ev.Pending() {
			delete(f.pendingEvents, ev.ID)
		}
	}
	if finished {
		// No OutboxChanged: these are the dispatcher's own outcomes, and
		// waking it for each made it re-read the whole outbox per batch
		// (10k pending: the backlog took 11s to drain instead of 4s).
		f.evict()
	}
	return &ApplyResult{}
}
