package fsm

import "fmt"

// CheckInvariants verifies the FSM's internal bookkeeping against its data.
// Tests call it after every command; it is production code (issue 11) so
// tools and a node's debug paths can run it too. Restore runs the
// data-level half of it (validateSnapshot) before swapping state in.
func (f *FSM) CheckInvariants() error {
	f.mu.RLock()
	defer f.mu.RUnlock()

	counts := map[Status]int{}
	for id, m := range f.machines.all() {
		if m.ID != id {
			return fmt.Errorf("machine %q stored under id %q", m.ID, id)
		}
		if f.byName[m.Name] != id {
			return fmt.Errorf("byName[%q] = %q, want %q", m.Name, f.byName[m.Name], id)
		}
		if m.KeyHash != (KeyHash{}) {
			if got, ok := f.keys.get(m.KeyHash); !ok || got != id {
				return fmt.Errorf("key of machine %q resolves to %q", id, got)
			}
		}
		counts[m.Status]++
	}
	if len(f.byName) != f.machines.len() {
		return fmt.Errorf("byName has %d names for %d machines", len(f.byName), f.machines.len())
	}
	sum := 0
	for s, n := range f.statusCount {
		if n != counts[s] {
			return fmt.Errorf("statusCount[%s] = %d, want %d", s, n, counts[s])
		}
		sum += n
	}
	if sum != f.machines.len() {
		return fmt.Errorf("status counts sum to %d, want %d machines", sum, f.machines.len())
	}
	keys := 0
	for i := range f.keys.shards {
		s := &f.keys.shards[i]
		s.mu.RLock()
		for _, id := range s.m {
			if !f.machines.has(id) {
				s.mu.RUnlock()
				return fmt.Errorf("key index points at missing machine %q", id)
			}
			keys++
		}
		s.mu.RUnlock()
	}
	if keys != f.machines.len() {
		return fmt.Errorf("key index has %d keys for %d machines", keys, f.machines.len())
	}

	if len(f.order) != len(f.events) {
		return fmt.Errorf("order has %d ids for %d events", len(f.order), len(f.events))
	}
	seen := make(map[string]bool, len(f.order))
	for _, id := range f.order {
		if seen[id] {
			return fmt.Errorf("event %q twice in order", id)
		}
		seen[id] = true
		if _, ok := f.events[id]; !ok {
			return fmt.Errorf("order names missing event %q", id)
		}
	}
	pending := 0
	for id, ev := range f.events {
		for _, d := range ev.Deliveries {
			if d.State == DeliveryPending {
				pending++
			}
		}
		_, indexed := f.pendingEvents[id]
		if ev.Pending() != indexed {
			return fmt.Errorf("event %q pending=%v but indexed=%v", id, ev.Pending(), indexed)
		}
	}
	for id := range f.pendingEvents {
		if _, ok := f.events[id]; !ok {
			return fmt.Errorf("pending event %q was evicted", id)
		}
	}
	// pendingCount only goes down when a delivery finishes or is dropped, so
	// an evicted pending event shows up here as a surplus.
	if pending != f.pendingCount {
		return fmt.Errorf("pendingCount = %d, but %d pending deliveries are stored", f.pendingCount, pending)
	}
	if f.pendingCount > f.opts.MaxPendingDeliveries {
		return fmt.Errorf("pendingCount %d over limit %d", f.pendingCount, f.opts.MaxPendingDeliveries)
	}
	return f.checkTokens() // issue 11
}

// validateSnapshot checks a decoded snapshot's meaning before Restore swaps
// it in: unique ids, names and keys, consistent references and every limit.
// A snapshot that decodes but breaks one of these would corrupt every node
// that restores it (a duplicate event id made evict panic on every node and
// on every replay: issue 11), so it is refused and nothing changes.
func (f *FSM) validateSnapshot(machines []Machine, channels []Channel, events []Event, x snapshotExtra) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrBadSnapshot, fmt.Sprintf(format, a...))
	}
	if len(machines) > f.opts.MaxMachines {
		return bad("%d machines, at most %d allowed", len(machines), f.opts.MaxMachines)
	}
	if len(channels) > f.opts.MaxChannels {
		return bad("%d channels, at most %d allowed", len(channels), f.opts.MaxChannels)
	}
	ids := make(map[string]struct{}, len(machines))
	names := make(map[string]struct{}, len(machines))
	keys := make(map[KeyHash]string, len(machines))
	for i := range machines {
		m := &machines[i]
		if m.ID == "" || m.Name == "" {
			return bad("machine %d has no id or name", i)
		}
		if m.Status == "" {
			return bad("machine %q has no status", m.Name)
		}
		if _, dup := ids[m.ID]; dup {
			return bad("machine id %q appears twice", m.ID)
		}
		if _, dup := names[m.Name]; dup {
			return bad("machine name %q appears twice", m.Name)
		}
		if other, dup := keys[m.KeyHash]; dup {
			return bad("machines %q and %q share a key", other, m.ID)
		}
		ids[m.ID], names[m.Name], keys[m.KeyHash] = struct{}{}, struct{}{}, m.ID
	}
	chans := make(map[string]struct{}, len(channels))
	for i := range channels {
		c := &channels[i]
		if c.Name == "" || c.Type == "" {
			return bad("channel %d has no name or type", i)
		}
		if _, dup := chans[c.Name]; dup {
			return bad("channel %q appears twice", c.Name)
		}
		chans[c.Name] = struct{}{}
	}
	evs := make(map[string]struct{}, len(events))
	pending := 0
	for i := range events {
		ev := &events[i]
		if ev.ID == "" {
			return bad("event %d has no id", i)
		}
		if _, dup := evs[ev.ID]; dup {
			return bad("event id %q appears twice", ev.ID)
		}
		evs[ev.ID] = struct{}{}
		seen := make(map[string]struct{}, len(ev.Deliveries))
		for _, d := range ev.Deliveries {
			if d.Channel == "" {
				return bad("event %q has a delivery without a channel", ev.ID)
			}
			if _, dup := seen[d.Channel]; dup {
				return bad("event %q has two deliveries to channel %q", ev.ID, d.Channel)
			}
			seen[d.Channel] = struct{}{}
			if d.State != DeliveryPending {
				continue
			}
			// A pending delivery is part of the outbox: its channel and
			// its machine must exist (deleting either drops it).
			pending++
			if _, ok := chans[d.Channel]; !ok {
				return bad("pending delivery of event %q names missing channel %q", ev.ID, d.Channel)
			}
			if _, ok := ids[ev.Machine.ID]; !ok {
				return bad("pending delivery of event %q is for missing machine %q", ev.ID, ev.Machine.ID)
			}
		}
	}
	if pending > f.opts.MaxPendingDeliveries {
		return bad("%d pending deliveries, at most %d allowed", pending, f.opts.MaxPendingDeliveries)
	}
	var ts tokenState
	ts.reset()
	for i := range x.tokens {
		t := &x.tokens[i]
		if err := validToken(t); err != nil {
			return bad("token %d: %v", i, err)
		}
		_, a := ts.byID[t.ID]
		_, b := ts.byHash[t.Hash]
		_, c := ts.byName[t.Name]
		if a || b || c {
			return bad("token %q repeats an id, name or secret", t.ID)
		}
		ts.insert(t)
	}
	return nil
}
