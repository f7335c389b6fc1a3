package monitor

import "time"

// entry is one tracked machine. index is its position in the heap, kept up
// to date by the heap so MachineSeen and MachineGone can fix or remove it in
// O(log n) without searching.
//
// deadline is the real deadline; key is the one the heap is ordered by.
// While the entry is in the heap, key <= deadline always holds: a heartbeat
// that moves the deadline later only stores the new deadline (lazy, O(1)),
// leaving the older, earlier key in place as a lower bound. When the check
// finds such an entry due by key but not by deadline it re-keys it instead
// of expiring it. A deadline that moves earlier resets key and fixes the
// heap at once.
type entry struct {
	id        string
	lastSeen  time.Time
	threshold time.Duration
	deadline  time.Time
	key       time.Time
	index     int
}

// deadlineHeap is a min-heap of entries ordered by key (a lower bound on the
// deadline, see entry). It is written out rather than built on
// container/heap to avoid an interface call per comparison on a structure
// that can hold a million machines, and so it can count its own work: ops is
// the number of comparisons plus swaps, which the tests use to prove that a
// tick costs O(expired·log n), not O(n), and that a heartbeat costs none.
type deadlineHeap struct {
	items []*entry
	ops   uint64
}

func (h *deadlineHeap) len() int { return len(h.items) }

// min returns the entry with the earliest key, or nil.
func (h *deadlineHeap) min() *entry {
	if len(h.items) == 0 {
		return nil
	}
	return h.items[0]
}

func (h *deadlineHeap) push(e *entry) {
	e.index = len(h.items)
	h.items = append(h.items, e)
	h.up(e.index)
}

// pop removes and returns the entry with the earliest key.
func (h *deadlineHeap) pop() *entry {
	return h.remove(0)
}

// remove takes the entry at index i out of the heap.
func (h *deadlineHeap) remove(i int) *entry {
	n := len(h.items) - 1
	e := h.items[i]
	if i != n {
		h.swap(i, n)
	}
	h.items[n] = nil // let the collector have it
	h.items = h.items[:n]
	if i != n {
		if !h.down(i) {
			h.up(i)
		}
	}
	e.index = -1
	return e
}

// fix restores the heap order after the entry at index i changed key.
func (h *deadlineHeap) fix(i int) {
	if !h.down(i) {
		h.up(i)
	}
}

// reset drops every entry, keeping nothing alive from the previous term.
func (h *deadlineHeap) reset() {
	h.items = nil
}

func (h *deadlineHeap) less(i, j int) bool {
	h.ops++
	return h.items[i].key.Before(h.items[j].key)
}

func (h *deadlineHeap) swap(i, j int) {
	h.ops++
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.items[i].index = i
	h.items[j].index = j
}

func (h *deadlineHeap) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if !h.less(j, i) {
			break
		}
		h.swap(i, j)
		j = i
	}
}

// down sifts the entry at i0 down and reports whether it moved.
func (h *deadlineHeap) down(i0 int) bool {
	n := len(h.items)
	i := i0
	for {
		l := 2*i + 1
		if l >= n || l < 0 {
			break
		}
		j := l
		if r := l + 1; r < n && h.less(r, l) {
			j = r
		}
		if !h.less(j, i) {
			break
		}
		h.swap(i, j)
		i = j
	}
	return i > i0
}
