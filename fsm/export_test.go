package fsm

import "fmt"

// CheckInvariants verifies the FSM's internal bookkeeping against its data.
// Tests call it after every command. It is in the package (not fsm_test)
// because the pending index and the key index are not visible from outside.
func (f *FSM) CheckInvariants() error {
	f.mu.RLock()
	defer f.mu.RUnlock()

	counts := map[Status]int{}
	for id, m := range f.machines {
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
	if len(f.byName) != len(f.machines) {
		return fmt.Errorf("byName has %d names for %d machines", len(f.byName), len(f.machines))
	}
	sum := 0
	for s, n := range f.statusCount {
		if n != counts[s] {
			return fmt.Errorf("statusCount[%s] = %d, want %d", s, n, counts[s])
		}
		sum += n
	}
	if sum != len(f.machines) {
		return fmt.Errorf("status counts sum to %d, want %d machines", sum, len(f.machines))
	}
	keys := 0
	for i := range f.keys.shards {
		s := &f.keys.shards[i]
		s.mu.RLock()
		for _, id := range s.m {
			if _, ok := f.machines[id]; !ok {
				s.mu.RUnlock()
				return fmt.Errorf("key index points at missing machine %q", id)
			}
			keys++
		}
		s.mu.RUnlock()
	}
	if keys != len(f.machines) {
		return fmt.Errorf("key index has %d keys for %d machines", keys, len(f.machines))
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
	return nil
}

// LockHeld reports whether anyone holds the FSM lock, read or write. Only
// meaningful when nothing else is using the FSM at the same time.
func (f *FSM) LockHeld() bool {
	if f.mu.TryLock() {
		f.mu.Unlock()
		return false
	}
	return true
}
