package fsm

import "time"

// OldestPending returns when the oldest event with a pending delivery
// happened, without copying or sorting the outbox: /metrics is open and
// scraped often, and PendingDeliveries copied and sorted the whole outbox
// on every scrape (issue 11). O(events with pending deliveries), no
// allocation.
func (f *FSM) OldestPending() (time.Time, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var oldest time.Time
	found := false
	for id := range f.pendingEvents {
		at := f.events[id].OccurredAt
		if !found || at.Before(oldest) {
			oldest, found = at, true
		}
	}
	return oldest, found
}
